//! What the syncer holds of a target's branch (`synced_files`): its files by path, one file with
//! its content, and discovery (the marketplaces, plugins, skills, agents and commands on the
//! branch). The rows are the syncer's, not a projection; `min_position` waits on `connector` so
//! a client can read the files of a target it just tracked.

use axum::extract::State;
use axum::Json;
use base64::Engine;
use hooklog_domain::ids::TargetId;
use hooklog_projections::query::{self, Discovery, FileFilter, Page, SyncedFileView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::params::{self, target_id};
use crate::routes::targets::not_found;
use crate::routes::ReadParams;
use crate::state::AdminState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListFiles {
    /// `marketplace`, `plugin`, `skill`, `agent`, `command` or `file`.
    pub kind: Option<String>,
    /// Only paths that start with this (e.g. `plugins/lint/`).
    pub prefix: Option<String>,
    /// List tombstones (paths gone from the branch) too; default false.
    pub include_deleted: Option<bool>,
    /// From the previous page's `next_cursor` (the last path it listed).
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Answer only once the read model applied this `HOOKLOG_EVENTS` position.
    pub min_position: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetFile {
    /// The file's path in the branch.
    pub path: String,
    /// Answer only once the read model applied this `HOOKLOG_EVENTS` position.
    pub min_position: Option<u64>,
}

/// A synced file with its content: `content` when it is UTF-8 text, else `content_base64`;
/// neither for a tombstone.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileRecord {
    #[serde(flatten)]
    pub file: SyncedFileView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
}

/// Lists a target's synced files in path order, without their content.
#[utoipa::path(get, path = "/v1/admin/targets/{id}/files", tag = "files",
    params(("id" = String, Path, description = "Target id (a UUID)"), ListFiles),
    responses(
        (status = 200, description = "A page of the target's files", body = Page<SyncedFileView>),
        (status = 400, description = "Bad id, kind, limit or parameter", body = ErrorBody),
        (status = 404, description = "Unknown target", body = ErrorBody),
        (status = 503, description = "Position not reached or store unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListFiles>,
) -> Result<Json<Page<SyncedFileView>>, ApiError> {
    let id = target_id(&id)?;
    known(&state, id, q.min_position).await?;
    let filter = FileFilter {
        kind: q.kind,
        prefix: q.prefix,
        include_deleted: q.include_deleted.unwrap_or(false),
    };
    let page = query::files(&state.db, id, &filter, &params::page(q.cursor, q.limit)).await?;
    Ok(Json(page))
}

/// One synced file of a target, with its content.
#[utoipa::path(get, path = "/v1/admin/targets/{id}/file", tag = "files",
    params(("id" = String, Path, description = "Target id (a UUID)"), GetFile),
    responses(
        (status = 200, description = "The file (a tombstone has no content)", body = FileRecord),
        (status = 400, description = "Bad id, or no `path`", body = ErrorBody),
        (status = 404, description = "Unknown target or path", body = ErrorBody),
        (status = 503, description = "Position not reached or store unavailable", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<GetFile>,
) -> Result<Json<FileRecord>, ApiError> {
    let id = target_id(&id)?;
    known(&state, id, q.min_position).await?;
    let found = query::file(&state.db, id, &q.path).await?.ok_or_else(|| {
        ApiError::not_found(
            "file_not_found",
            format!("file {:?} of target {id}", q.path),
        )
    })?;
    let mut record = FileRecord {
        file: found.file,
        content: None,
        content_base64: None,
    };
    match found.content.map(String::from_utf8) {
        None => {}
        Some(Ok(text)) => record.content = Some(text),
        Some(Err(err)) => {
            record.content_base64 =
                Some(base64::engine::general_purpose::STANDARD.encode(err.into_bytes()))
        }
    }
    Ok(Json(record))
}

/// What the target's branch holds: marketplaces with the plugins they list, plugins, skills,
/// agents and commands, each in path order; tombstones left out.
#[utoipa::path(get, path = "/v1/admin/targets/{id}/discovery", tag = "files",
    params(("id" = String, Path, description = "Target id (a UUID)"), ReadParams),
    responses(
        (status = 200, description = "What the branch holds", body = Discovery),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 404, description = "Unknown target", body = ErrorBody),
        (status = 503, description = "Position not reached or store unavailable", body = ErrorBody),
    ))]
pub async fn discovery(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadParams>,
) -> Result<Json<Discovery>, ApiError> {
    let id = target_id(&id)?;
    known(&state, id, q.min_position).await?;
    Ok(Json(query::discovery(&state.db, id).await?))
}

/// Waits for `min_position`, then 404 unless the `targets` read model has the target.
async fn known(
    state: &AdminState,
    id: TargetId,
    min_position: Option<u64>,
) -> Result<(), ApiError> {
    state.reach(query::CONNECTOR, min_position).await?;
    match query::target(&state.db, id).await? {
        Some(_) => Ok(()),
        None => Err(not_found(id)),
    }
}
