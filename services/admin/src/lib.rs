//! hooklog's admin listener: `/healthz`, `/readyz` and `/metrics` (open), and the admin API under
//! `/v1/admin` (bearer tokens: read-write and read-only).
//!
//! - `dashboard`: the web page at `/` over the admin API, its assets embedded;
//! - `audit`: the transparency logs as C2SP tlog-tiles under `/v1/audit` (checkpoints and hash
//!   tiles open, entry bundles with a token);
//! - `auth`: the token check in front of `/v1/admin`;
//! - `routes`: one module per resource; reads come from the read models (`hooklog-projections`),
//!   commands go through the command bus (`hooklog-worker`) and answer 202 with what they
//!   committed (`commands`);
//! - `error`: every failure mapped to one JSON shape; `extract`: axum's rejections mapped to it;
//! - `openapi`: the generated OpenAPI document; `metrics`: Prometheus text with scrape-time gauges;
//! - `state`: the one `Clone` state of cheap handles.
#![forbid(unsafe_code)]

pub mod audit;
mod auth;
mod commands;
mod dashboard;
mod error;
mod extract;
mod health;
mod metrics;
mod openapi;
mod params;
pub mod routes;
mod state;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::{Access, Operator, Tokens, WRITE_ACTOR};
pub use commands::{CommittedEvent, Receipt};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use health::Readiness;
pub use openapi::ApiDoc;
pub use state::{AdminState, Waits};

/// The whole admin listener.
pub fn router(state: AdminState) -> Router {
    let tokens = Arc::clone(&state.tokens);
    let api = routes::api().layer(axum::middleware::from_fn_with_state(
        tokens,
        auth::require_token,
    ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .nest("/v1/admin", api)
        .nest("/v1/audit", audit::routes())
        .merge(dashboard::routes())
        .with_state(state)
}

/// Serves the admin listener until `shutdown` fires, then finishes in-flight requests (live
/// feeds end at once).
pub async fn run(
    mut state: AdminState,
    listener: TcpListener,
    limits: hooklog_infra::serve::ServerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if !state.tokens.any() {
        tracing::warn!(
            "no admin token is set (HOOKLOG_ADMIN_TOKEN, HOOKLOG_ADMIN_READ_TOKEN, HOOKLOG_ADMIN_TOKENS_FILE): the admin API answers 401 to everything"
        );
    }
    state.shutdown = shutdown.clone();
    tracing::info!(addr = %listener.local_addr()?, "admin listening");
    hooklog_infra::serve::serve(listener, router(state), limits, shutdown).await
}
