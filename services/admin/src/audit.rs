//! The transparency logs on the admin listener, as C2SP tlog-tiles (DESIGN.md, "Audit"):
//!
//! - `GET /v1/audit/key`: the verifier key checkpoints are signed with (text, one line);
//! - `GET /v1/audit/{log}/checkpoint`: the latest signed checkpoint of `deliveries` or `events`;
//! - `GET /v1/audit/{log}/tile/<L>/<N>[.p/<W>]`: a hash tile, as the sealer stored it;
//! - `GET /v1/audit/{log}/tile/entries/<N>[.p/<W>]`: an entry bundle, read from the stream.
//!
//! Checkpoints, keys and hash tiles reveal hashes only and are open to anyone, so any monitor
//! can follow the logs; entry bundles hold the messages' headers (repository names, delivery
//! ids) and need an admin token (read or read-write). A tile or bundle is served only for a
//! tree size the sealer has reached; a full one never changes and is marked immutable.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hooklog_audit::tiles::encode_bundle;
use hooklog_audit::{Log, Tile, TileLevel};
use hooklog_sealer::message::{parse_log, read_entries};
use hooklog_sealer::{latest_note, store};

use crate::error::{ApiError, ErrorBody};
use crate::state::AdminState;

pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/key", get(key))
        .route("/{log}/checkpoint", get(checkpoint))
        .route("/{log}/tile/{*path}", get(tile))
}

fn log_of(name: &str) -> Result<Log, ApiError> {
    parse_log(name).ok_or_else(|| ApiError::NotFound {
        code: "unknown_log",
        what: format!("log {name:?} (the logs are `deliveries` and `events`)"),
    })
}

fn text(body: String, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

/// The Ed25519 verifier key the audit checkpoints are signed with (signed-note format).
#[utoipa::path(get, path = "/v1/audit/key", tag = "audit", security(()),
    responses(
        (status = 200, description = "The verifier key, one line", content_type = "text/plain", body = String),
        (status = 404, description = "This process has no audit key", body = ErrorBody),
    ))]
pub async fn key(State(state): State<AdminState>) -> Result<Response, ApiError> {
    let key = state.audit_key.as_ref().ok_or_else(|| ApiError::NotFound {
        code: "no_audit_key",
        what: "the audit verifier key (this process has no audit signing key: run the sealer \
               here or set HOOKLOG_AUDIT_SIGNING_KEY or HOOKLOG_AUDIT_SIGNING_KEY_FILE)"
            .to_string(),
    })?;
    Ok(text(format!("{key}\n"), "no-cache"))
}

/// The latest signed checkpoint of a log (C2SP tlog-checkpoint, signed note).
#[utoipa::path(get, path = "/v1/audit/{log}/checkpoint", tag = "audit", security(()),
    params(("log" = String, Path, description = "`deliveries` or `events`")),
    responses(
        (status = 200, description = "The checkpoint note", content_type = "text/plain", body = String),
        (status = 404, description = "Unknown log, or no checkpoint signed yet", body = ErrorBody),
    ))]
pub async fn checkpoint(
    State(state): State<AdminState>,
    Path(log): Path<String>,
) -> Result<Response, ApiError> {
    let log = log_of(&log)?;
    match latest_note(&state.js, log).await {
        Ok(Some((_, note))) => Ok(text(note, "no-cache")),
        Ok(None) => Err(ApiError::NotFound {
            code: "no_checkpoint",
            what: format!("a checkpoint of the {} log (none signed yet)", log.name()),
        }),
        Err(reason) => Err(ApiError::Unavailable(reason)),
    }
}

/// A C2SP tlog-tiles tile: `<L>/<N>[.p/<W>]` (hashes, open) or `entries/<N>[.p/<W>]` (an entry
/// bundle, with an admin token).
#[utoipa::path(get, path = "/v1/audit/{log}/tile/{path}", tag = "audit", security((), ("bearer" = [])),
    params(
        ("log" = String, Path, description = "`deliveries` or `events`"),
        ("path" = String, Path, description = "The tile path after `tile/`, e.g. `0/x001/234.p/5` or `entries/000`"),
    ),
    responses(
        (status = 200, description = "The tile's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "An entry bundle without a valid token", body = ErrorBody),
        (status = 404, description = "Unknown log, malformed path, or a tile past the sealed tree", body = ErrorBody),
    ))]
pub async fn tile(
    State(state): State<AdminState>,
    Path((log, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let log = log_of(&log)?;
    let tile = Tile::parse_path(&format!("tile/{path}")).map_err(|err| ApiError::NotFound {
        code: "not_a_tile",
        what: format!("tile ({err})"),
    })?;
    let size = store::tree_size(&state.db, log)
        .await
        .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    let not_in_tree = || ApiError::NotFound {
        code: "tile_not_in_tree",
        what: format!(
            "tile {} of the {} log (its tree has {size} leaves)",
            tile.path(),
            log.name()
        ),
    };
    let span = tile.leaf_span().ok_or_else(not_in_tree)?;
    if span.end > size {
        return Err(not_in_tree());
    }
    let bytes = match tile.level {
        TileLevel::Hashes(_) => store::read_tile(&state.db, log, tile)
            .await
            .map_err(|err| ApiError::Unavailable(err.to_string()))?
            .ok_or_else(not_in_tree)?,
        TileLevel::Entries => {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes);
            state.tokens.authorize(&method, authorization)?;
            let entries = read_entries(&state.js, log, span.start + 1, usize::from(tile.width))
                .await
                .map_err(|err| ApiError::Unavailable(err.to_string()))?;
            encode_bundle(&entries).map_err(|err| ApiError::Internal(err.to_string()))?
        }
    };
    let cache = if tile.is_full() {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response())
}
