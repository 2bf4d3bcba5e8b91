//! Sync runs: request a manual sync of a target, retry a failed run, and read runs from the
//! `connector` read model. A request answers the `sync_id` of the `SyncRequested` it committed,
//! or `queued: true` when a sync is in flight and the request became its follow-up.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cqrs_es::Aggregate;
use hooklog_domain::connector_target::{ConnectorTarget, SyncReason, TargetCommand, TargetEvent};
use hooklog_domain::ids::{CommitSha, TargetId};
use hooklog_projections::query::{self, Page, SyncRunFilter, SyncRunView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::commands::{Receipt, Request};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, OptionalJson};
use crate::params::{self, head_sha, sync_id, target_id};
use crate::routes::targets::existing;
use crate::routes::ReadParams;
use crate::state::AdminState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListSyncs {
    /// Only the runs of this target (a UUID).
    pub target: Option<String>,
    /// `queued`, `running`, `completed`, `partial` or `failed`.
    pub status: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Answer only once the read model applied this `HOOKLOG_EVENTS` position.
    pub min_position: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTargetSyncs {
    /// `queued`, `running`, `completed`, `partial` or `failed`.
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    pub min_position: Option<u64>,
}

/// Optional body of a manual sync.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSyncBody {
    /// The commit to sync (40 or 64 lowercase hex); default: the last head pushed.
    #[serde(default)]
    pub head_sha: Option<String>,
}

/// The answer to a sync request.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncAccepted {
    pub target_id: String,
    /// The sync requested; null when the request was queued behind the sync in flight.
    pub sync_id: Option<String>,
    /// The request waits for the sync in flight (`SyncQueued`).
    pub queued: bool,
    pub head_sha: Option<String>,
    #[serde(flatten)]
    pub receipt: Receipt,
}

/// Lists sync runs, newest position last.
#[utoipa::path(get, path = "/v1/admin/syncs", tag = "syncs", params(ListSyncs),
    responses(
        (status = 200, description = "A page of sync runs", body = Page<SyncRunView>),
        (status = 400, description = "Bad filter, cursor or parameter", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<ListSyncs>,
) -> Result<Json<Page<SyncRunView>>, ApiError> {
    let target = match q.target {
        Some(raw) => Some(target_id(&raw).map_err(|_| {
            ApiError::bad_request("bad_filter", format!("target: {raw:?} is not a target id"))
        })?),
        None => None,
    };
    runs(&state, target, q.status, q.cursor, q.limit, q.min_position).await
}

/// Lists the sync runs of one target.
#[utoipa::path(get, path = "/v1/admin/targets/{id}/syncs", tag = "syncs",
    params(("id" = String, Path, description = "Target id (a UUID)"), ListTargetSyncs),
    responses(
        (status = 200, description = "A page of the target's sync runs", body = Page<SyncRunView>),
        (status = 400, description = "Bad id, filter or cursor", body = ErrorBody),
    ))]
pub async fn list_for_target(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListTargetSyncs>,
) -> Result<Json<Page<SyncRunView>>, ApiError> {
    let target = target_id(&id)?;
    runs(
        &state,
        Some(target),
        q.status,
        q.cursor,
        q.limit,
        q.min_position,
    )
    .await
}

async fn runs(
    state: &AdminState,
    target: Option<TargetId>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
    min_position: Option<u64>,
) -> Result<Json<Page<SyncRunView>>, ApiError> {
    state.reach(query::CONNECTOR, min_position).await?;
    let filter = SyncRunFilter { target, status };
    let page = query::sync_runs(&state.db, &filter, &params::page(cursor, limit)).await?;
    Ok(Json(page))
}

/// One sync run.
#[utoipa::path(get, path = "/v1/admin/syncs/{sync_id}", tag = "syncs",
    params(("sync_id" = String, Path, description = "Sync id (a UUID)"), ReadParams),
    responses(
        (status = 200, description = "The sync run", body = SyncRunView),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 404, description = "Unknown sync run", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadParams>,
) -> Result<Json<SyncRunView>, ApiError> {
    let id = sync_id(&id)?;
    state.reach(query::CONNECTOR, q.min_position).await?;
    query::sync_run(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("sync_not_found", format!("sync {id}")))
}

/// Requests a manual sync of a target.
#[utoipa::path(post, path = "/v1/admin/targets/{id}/sync", tag = "syncs", request_body(content = Option<RequestSyncBody>),
    params(("id" = String, Path, description = "Target id (a UUID)")),
    responses(
        (status = 202, description = "Requested, or queued behind the sync in flight", body = SyncAccepted),
        (status = 404, description = "Unknown target", body = ErrorBody),
        (status = 409, description = "Refused (head already synced, no known head, disabled, removed)", body = ErrorBody),
        (status = 422, description = "Bad head SHA", body = ErrorBody),
    ))]
pub async fn request(
    State(state): State<AdminState>,
    request: Request,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<RequestSyncBody>,
) -> Result<(StatusCode, Json<SyncAccepted>), ApiError> {
    let target = target_id(&id)?;
    let head = body
        .unwrap_or_default()
        .head_sha
        .as_deref()
        .map(head_sha)
        .transpose()?;
    existing(&state, target).await?;
    send(&state, request, target, head, SyncReason::Manual).await
}

/// Retries a failed sync run at its head.
#[utoipa::path(post, path = "/v1/admin/syncs/{sync_id}/retry", tag = "syncs",
    params(("sync_id" = String, Path, description = "Sync id (a UUID)")),
    responses(
        (status = 202, description = "Requested again, or queued", body = SyncAccepted),
        (status = 404, description = "Unknown sync run", body = ErrorBody),
        (status = 409, description = "The run did not fail, or the target refused", body = ErrorBody),
    ))]
pub async fn retry(
    State(state): State<AdminState>,
    request: Request,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<SyncAccepted>), ApiError> {
    let id = sync_id(&id)?;
    let run = query::sync_run(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("sync_not_found", format!("sync {id}")))?;
    if run.status != "failed" {
        return Err(ApiError::conflict(
            "sync_not_failed",
            format!(
                "sync {id} is {}; only a failed sync can be retried",
                run.status
            ),
        ));
    }
    let head = CommitSha::parse(&run.head_sha)
        .map_err(|err| ApiError::Internal(format!("sync {id} has a bad head SHA: {err}")))?;
    send(
        &state,
        request,
        TargetId(run.target_id),
        Some(head),
        SyncReason::Retry,
    )
    .await
}

async fn send(
    state: &AdminState,
    request: Request,
    target: TargetId,
    head_sha: Option<CommitSha>,
    reason: SyncReason,
) -> Result<(StatusCode, Json<SyncAccepted>), ApiError> {
    let command = TargetCommand::RequestSync { head_sha, reason };
    state.bus.target(target, command, &request.meta).await?;
    let receipt = state
        .receipt(&request, &[(ConnectorTarget::TYPE, target.to_string())])
        .await?;
    let mut body = SyncAccepted {
        target_id: target.to_string(),
        sync_id: None,
        queued: false,
        head_sha: None,
        receipt,
    };
    for event in &body.receipt.events {
        match serde_json::from_value(event.payload.clone()) {
            Ok(TargetEvent::SyncRequested {
                sync_id, head_sha, ..
            }) => {
                body.sync_id = Some(sync_id.to_string());
                body.head_sha = Some(head_sha.to_string());
            }
            Ok(TargetEvent::SyncQueued { head_sha, .. }) => {
                body.queued = true;
                body.head_sha = Some(head_sha.to_string());
            }
            _ => {}
        }
    }
    Ok((StatusCode::ACCEPTED, Json(body)))
}
