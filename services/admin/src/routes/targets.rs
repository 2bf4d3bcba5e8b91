//! `/v1/admin/targets`: tracked repository branches. Tracking and untracking are the write
//! side's use cases, the same as `hooklog targets track|untrack` (one command on the target; the
//! process manager attaches it to or detaches it from its installation); updates change
//! `auto_sync` and the path filters. Syncs are in `syncs`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cqrs_es::Aggregate;
use hooklog_domain::connector_instance::ConnectorInstance;
use hooklog_domain::connector_target::{ConnectorTarget, PathFilters, TargetCommand, TargetStatus};
use hooklog_domain::ids::{InstanceId, TargetId};
use hooklog_projections::query::{self, Page, TargetFilter, TargetView};
use hooklog_write::usecases;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::commands::{Receipt, Request};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::params::{self, instance_id, target_id};
use crate::routes::ReadParams;
use crate::state::AdminState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTargets {
    /// Only the targets of this instance (`github-installation-<n>` or the number).
    pub instance: Option<String>,
    /// Only the target of this repository connection (its id).
    pub connection: Option<String>,
    /// `idle`, `queued`, `running`, `failed`, `disabled` or `removed`.
    pub status: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Answer only once the read model applied this `HOOKLOG_EVENTS` position.
    pub min_position: Option<u64>,
}

/// Which paths of the branch are synced (globs: `*`, `**`, `?`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PathFiltersBody {
    /// Paths to sync; empty: every path.
    #[serde(default)]
    pub include: Vec<String>,
    /// Paths never synced.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl PathFiltersBody {
    fn parse(self) -> Result<PathFilters, ApiError> {
        PathFilters::parse(self.include, self.exclude)
            .map_err(|reason| ApiError::invalid("invalid_path_filters", reason))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackTarget {
    pub installation_id: u64,
    /// GitHub's numeric repository id (stable across renames).
    pub repository_id: u64,
    /// `OWNER/NAME`.
    pub repository: String,
    /// Branch name, without `refs/heads/`.
    pub branch: String,
    /// Sync on every push (default true).
    #[serde(default)]
    pub auto_sync: Option<bool>,
    #[serde(default)]
    pub path_filters: Option<PathFiltersBody>,
    /// A git repository to read the branch from instead of the GitHub App: an absolute path, or a
    /// `file://`, `git://`, `http(s)://`, `ssh://` or scp-like `user@host:path` URL, without
    /// credentials or `.`/`..` segments. It must be under a prefix of
    /// `HOOKLOG_SYNCER_ALLOWED_SOURCES` (unset: every source is refused, 422
    /// `source_not_allowed`).
    #[serde(default)]
    pub source: Option<String>,
}

/// At least one field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTarget {
    #[serde(default)]
    pub auto_sync: Option<bool>,
    #[serde(default)]
    pub path_filters: Option<PathFiltersBody>,
}

/// The answer to a target command.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetAccepted {
    pub target_id: String,
    pub instance_id: Option<String>,
    #[serde(flatten)]
    pub receipt: Receipt,
}

/// Lists targets.
#[utoipa::path(get, path = "/v1/admin/targets", tag = "targets", params(ListTargets),
    responses(
        (status = 200, description = "A page of targets", body = Page<TargetView>),
        (status = 400, description = "Bad filter, cursor or parameter", body = ErrorBody),
        (status = 503, description = "Position not reached or store unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<ListTargets>,
) -> Result<Json<Page<TargetView>>, ApiError> {
    let instance = match q.instance {
        Some(raw) => Some(
            instance_id(&raw)
                .map_err(|_| {
                    ApiError::bad_request(
                        "bad_filter",
                        format!("instance: {raw:?} is not an instance id"),
                    )
                })?
                .to_string(),
        ),
        None => None,
    };
    let connection = match q.connection {
        Some(raw) => Some(
            hooklog_domain::repository_connection::ConnectionId::parse(&raw)
                .map_err(|err| ApiError::bad_request("bad_filter", format!("connection: {err}")))?
                .0,
        ),
        None => None,
    };
    state.reach(query::CONNECTOR, q.min_position).await?;
    let filter = TargetFilter {
        instance,
        connection,
        status: q.status,
    };
    let page = query::targets(&state.db, &filter, &params::page(q.cursor, q.limit)).await?;
    Ok(Json(page))
}

/// One target.
#[utoipa::path(get, path = "/v1/admin/targets/{id}", tag = "targets",
    params(("id" = String, Path, description = "Target id (a UUID)"), ReadParams),
    responses(
        (status = 200, description = "The target", body = TargetView),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 404, description = "Unknown target", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadParams>,
) -> Result<Json<TargetView>, ApiError> {
    let id = target_id(&id)?;
    state.reach(query::CONNECTOR, q.min_position).await?;
    query::target(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(id))
}

/// Tracks a repository branch (like `hooklog targets track`).
#[utoipa::path(post, path = "/v1/admin/targets", tag = "targets", request_body = TrackTarget,
    responses(
        (status = 202, description = "Tracked", body = TargetAccepted),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 409, description = "Already tracked, or the installation refused", body = ErrorBody),
        (status = 422, description = "Bad repository, branch, path filters or source, or a source HOOKLOG_SYNCER_ALLOWED_SOURCES does not allow", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AdminState>,
    request: Request,
    ApiJson(body): ApiJson<TrackTarget>,
) -> Result<(StatusCode, Json<TargetAccepted>), ApiError> {
    let track = usecases::TrackBranch {
        installation_id: body.installation_id,
        repository_id: body.repository_id,
        repository: body.repository,
        branch: body.branch,
        auto_sync: body.auto_sync.unwrap_or(true),
        source: body.source,
        path_filters: body.path_filters.map(|f| (f.include, f.exclude)),
    };
    let tracked = usecases::track(&state.bus, track, &state.allowed_sources, &request.meta).await?;
    let cascade = tracked.attaches.then_some(tracked.instance);
    accepted(
        &state,
        &request,
        tracked.target,
        Some(tracked.instance),
        cascade,
    )
    .await
}

/// Changes `auto_sync` and/or the path filters.
#[utoipa::path(patch, path = "/v1/admin/targets/{id}", tag = "targets", request_body = UpdateTarget,
    params(("id" = String, Path, description = "Target id (a UUID)")),
    responses(
        (status = 202, description = "Updated (or already so: no events)", body = TargetAccepted),
        (status = 404, description = "Unknown target", body = ErrorBody),
        (status = 409, description = "Refused (removed)", body = ErrorBody),
        (status = 422, description = "Nothing to change, or bad path filters", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AdminState>,
    request: Request,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<UpdateTarget>,
) -> Result<(StatusCode, Json<TargetAccepted>), ApiError> {
    let id = target_id(&id)?;
    let body = body.filter(|b| b.auto_sync.is_some() || b.path_filters.is_some());
    let Some(body) = body else {
        return Err(ApiError::invalid(
            "empty_update",
            "name at least one of `auto_sync` and `path_filters`",
        ));
    };
    let filters = body.path_filters.map(PathFiltersBody::parse).transpose()?;
    let current = existing(&state, id).await?;
    if let Some(enabled) = body.auto_sync {
        let command = TargetCommand::SetAutoSync { enabled };
        state.bus.target(id, command, &request.meta).await?;
    }
    if let Some(filters) = filters {
        let command = TargetCommand::SetPathFilters { filters };
        state.bus.target(id, command, &request.meta).await?;
    }
    accepted(
        &state,
        &request,
        id,
        current.installation_id().map(InstanceId),
        None,
    )
    .await
}

/// Stops tracking (like `hooklog targets untrack`); its history stays.
#[utoipa::path(delete, path = "/v1/admin/targets/{id}", tag = "targets",
    params(("id" = String, Path, description = "Target id (a UUID)")),
    responses(
        (status = 202, description = "Removed and detached from its instance", body = TargetAccepted),
        (status = 404, description = "Unknown target", body = ErrorBody),
        (status = 409, description = "Refused (already removed)", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AdminState>,
    request: Request,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<TargetAccepted>), ApiError> {
    let id = target_id(&id)?;
    let untracked = usecases::untrack(&state.bus, id, &request.meta).await?;
    let cascade = untracked.instance.filter(|_| untracked.detaches);
    accepted(&state, &request, id, untracked.instance, cascade).await
}

/// The target's state, 404 unless it was ever tracked.
pub(crate) async fn existing(
    state: &AdminState,
    id: TargetId,
) -> Result<ConnectorTarget, ApiError> {
    let target = state.bus.load_target(id).await?;
    match target.status() {
        TargetStatus::Untracked => Err(not_found(id)),
        _ => Ok(target),
    }
}

pub(crate) fn not_found(id: TargetId) -> ApiError {
    ApiError::not_found("target_not_found", format!("target {id}"))
}

/// The answer to a target command; `cascaded`: the instance the process manager changes for
/// it (attach, detach), waited for.
async fn accepted(
    state: &AdminState,
    request: &Request,
    target: TargetId,
    instance: Option<InstanceId>,
    cascaded: Option<InstanceId>,
) -> Result<(StatusCode, Json<TargetAccepted>), ApiError> {
    let mut aggregates = Vec::new();
    if let Some(instance) = instance.filter(|i| Some(*i) != cascaded) {
        aggregates.push((ConnectorInstance::TYPE, instance.to_string()));
    }
    aggregates.push((ConnectorTarget::TYPE, target.to_string()));
    let cascaded: Vec<_> = cascaded
        .iter()
        .map(|i| (ConnectorInstance::TYPE, i.to_string()))
        .collect();
    let receipt = state
        .receipt_with_cascade(request, &aggregates, &cascaded)
        .await?;
    let body = TargetAccepted {
        target_id: target.to_string(),
        instance_id: instance.map(|i| i.to_string()),
        receipt,
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}
