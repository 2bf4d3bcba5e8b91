//! `/v1/admin/instances`: GitHub App installations. Reads come from the `connector` read model;
//! commands go through the write side's use cases to the `ConnectorInstance` aggregate.
//! Disconnecting an instance sends one command; the process manager removes its targets, and
//! the answer waits (up to the publish wait) for those removals so a client reads them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cqrs_es::Aggregate;
use hooklog_domain::connector_instance::{ConnectorInstance, InstanceCommand, InstanceStatus};
use hooklog_domain::connector_target::ConnectorTarget;
use hooklog_domain::ids::InstanceId;
use hooklog_projections::query::{self, InstanceFilter, InstanceView, Page};
use hooklog_write::usecases;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::commands::{Receipt, Request};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::params::{self, instance_id};
use crate::routes::ReadParams;
use crate::state::AdminState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListInstances {
    /// `pending`, `connected`, `suspended`, `deleted` or `disconnected`.
    pub status: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Answer only once the read model applied this `HOOKLOG_EVENTS` position.
    pub min_position: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectInstance {
    /// The GitHub App installation id.
    pub installation_id: u64,
    /// The account (user or organization login) the App is installed on.
    #[serde(default)]
    pub account: Option<String>,
    /// Track the default branch of repositories automatically when pushed to.
    #[serde(default)]
    pub auto_track: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstance {
    pub auto_track: bool,
}

/// The answer to an instance command.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceAccepted {
    pub instance_id: String,
    #[serde(flatten)]
    pub receipt: Receipt,
}

/// Lists instances.
#[utoipa::path(get, path = "/v1/admin/instances", tag = "instances", params(ListInstances),
    responses(
        (status = 200, description = "A page of instances", body = Page<InstanceView>),
        (status = 400, description = "Bad filter, cursor or parameter", body = ErrorBody),
        (status = 503, description = "Position not reached or store unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<ListInstances>,
) -> Result<Json<Page<InstanceView>>, ApiError> {
    state.reach(query::CONNECTOR, q.min_position).await?;
    let filter = InstanceFilter { status: q.status };
    let page = query::instances(&state.db, &filter, &params::page(q.cursor, q.limit)).await?;
    Ok(Json(page))
}

/// One instance.
#[utoipa::path(get, path = "/v1/admin/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "`github-installation-<n>` or the installation number"), ReadParams),
    responses(
        (status = 200, description = "The instance", body = InstanceView),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 404, description = "Unknown instance", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadParams>,
) -> Result<Json<InstanceView>, ApiError> {
    let id = instance_id(&id)?;
    state.reach(query::CONNECTOR, q.min_position).await?;
    query::instance(&state.db, &id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(id))
}

/// Connects an installation (as GitHub's `installation.created` would).
#[utoipa::path(post, path = "/v1/admin/instances", tag = "instances", request_body = ConnectInstance,
    responses(
        (status = 202, description = "Connected", body = InstanceAccepted),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 409, description = "Refused (already connected, deleted)", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AdminState>,
    request: Request,
    ApiJson(body): ApiJson<ConnectInstance>,
) -> Result<(StatusCode, Json<InstanceAccepted>), ApiError> {
    let id = usecases::connect(
        &state.bus,
        body.installation_id,
        body.account,
        body.auto_track,
        &request.meta,
    )
    .await?;
    accepted(&state, &request, id, &[]).await
}

/// Turns `auto_track` on or off.
#[utoipa::path(patch, path = "/v1/admin/instances/{id}", tag = "instances", request_body = UpdateInstance,
    params(("id" = String, Path, description = "`github-installation-<n>` or the installation number")),
    responses(
        (status = 202, description = "Updated (or already so: no events)", body = InstanceAccepted),
        (status = 404, description = "Unknown instance", body = ErrorBody),
        (status = 409, description = "Refused (deleted, disconnected)", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AdminState>,
    request: Request,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateInstance>,
) -> Result<(StatusCode, Json<InstanceAccepted>), ApiError> {
    let id = instance_id(&id)?;
    existing(&state, id).await?;
    let command = InstanceCommand::SetAutoTrack {
        enabled: body.auto_track,
    };
    state.bus.instance(id, command, &request.meta).await?;
    accepted(&state, &request, id, &[]).await
}

/// Disconnects an installation; its targets are removed.
#[utoipa::path(delete, path = "/v1/admin/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "`github-installation-<n>` or the installation number")),
    responses(
        (status = 202, description = "Disconnected; targets removed", body = InstanceAccepted),
        (status = 404, description = "Unknown instance", body = ErrorBody),
        (status = 409, description = "Refused (already disconnected or deleted)", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AdminState>,
    request: Request,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<InstanceAccepted>), ApiError> {
    let id = instance_id(&id)?;
    let disconnected = usecases::disconnect(&state.bus, id, &request.meta).await?;
    let removed: Vec<String> = disconnected
        .removed_targets
        .iter()
        .map(ToString::to_string)
        .collect();
    accepted(&state, &request, id, &removed).await
}

/// 404 unless the instance has history.
async fn existing(state: &AdminState, id: InstanceId) -> Result<ConnectorInstance, ApiError> {
    let instance = state.bus.load_instance(id).await?;
    match instance.status() {
        InstanceStatus::Unknown => Err(not_found(id)),
        _ => Ok(instance),
    }
}

fn not_found(id: InstanceId) -> ApiError {
    ApiError::not_found("instance_not_found", format!("instance {id}"))
}

async fn accepted(
    state: &AdminState,
    request: &Request,
    id: InstanceId,
    targets: &[String],
) -> Result<(StatusCode, Json<InstanceAccepted>), ApiError> {
    let aggregates = [(ConnectorInstance::TYPE, id.to_string())];
    let cascaded: Vec<_> = targets
        .iter()
        .map(|t| (ConnectorTarget::TYPE, t.clone()))
        .collect();
    let receipt = state
        .receipt_with_cascade(request, &aggregates, &cascaded)
        .await?;
    let body = InstanceAccepted {
        instance_id: id.to_string(),
        receipt,
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}
