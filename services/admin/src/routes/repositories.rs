//! `/v1/admin/repositories`: repositories connected without the App, through a webhook
//! hooklog creates at GitHub or GitLab. Reads come from the `repository_connections` read
//! model; connect, retry and disconnect go through the write side's use cases, each one
//! command; the `repositories` role calls the provider. No answer carries a secret or a token.
//! `/v1/admin/incidents` and `/v1/admin/pull-requests` read what the connections' webhooks
//! told of their CI runs and pull requests.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cqrs_es::Aggregate;
use hooklog_domain::repository_connection::{ConnectionId, RepositoryConnection};
use hooklog_projections::query::{
    self, ConnectionFilter, ConnectionView, IncidentFilter, IncidentView, Page, PullRequestFilter,
    PullRequestView, WebhookHealthView,
};
use hooklog_write::repositories::{self, ConnectRepository};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::commands::{Receipt, Request};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::params::{self, connection_id};
use crate::routes::ReadParams;
use crate::state::AdminState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListConnections {
    /// `pending`, `active`, `failed`, `disconnecting`, `delete_failed` or `disconnected`.
    pub status: Option<String>,
    /// `github` or `gitlab`.
    pub provider: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Answer only once the read model applied this `HOOKLOG_EVENTS` position.
    pub min_position: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectRepositoryBody {
    /// `github` or `gitlab`.
    pub provider: String,
    /// GitHub: `OWNER/NAME`; GitLab: the project's path (`group/sub/name`) or numeric id.
    pub repository: String,
    /// The branch to track.
    pub branch: String,
    /// GitHub: a token with `admin:repo_hook` (or a fine-grained token with webhook write);
    /// GitLab: a project access token with `api`. Sealed at rest, never answered or logged.
    #[schema(value_type = String)]
    pub token: SecretString,
}

/// The answer to a connection command.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionAccepted {
    pub connection_id: String,
    /// Where it stands now (`pending` after a connect: the webhook is being created).
    pub status: String,
    /// Where the provider posts the connection's deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_url: Option<String>,
    #[serde(flatten)]
    pub receipt: Receipt,
}

/// Lists repository connections, newest first.
#[utoipa::path(get, path = "/v1/admin/repositories", tag = "repositories", params(ListConnections),
    responses(
        (status = 200, description = "A page of connections", body = Page<ConnectionView>),
        (status = 400, description = "Bad filter, cursor or parameter", body = ErrorBody),
        (status = 503, description = "Position not reached or store unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<ListConnections>,
) -> Result<Json<Page<ConnectionView>>, ApiError> {
    state.reach(query::CONNECTOR, q.min_position).await?;
    let filter = ConnectionFilter {
        status: q.status,
        provider: q.provider,
    };
    let page = query::connections(&state.db, &filter, &params::page(q.cursor, q.limit)).await?;
    Ok(Json(page))
}

/// One repository connection.
#[utoipa::path(get, path = "/v1/admin/repositories/{id}", tag = "repositories",
    params(("id" = String, Path, description = "The connection id"), ReadParams),
    responses(
        (status = 200, description = "The connection", body = ConnectionView),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 404, description = "Unknown connection", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadParams>,
) -> Result<Json<ConnectionView>, ApiError> {
    let id = connection_id(&id)?;
    state.reach(query::CONNECTOR, q.min_position).await?;
    query::connection(&state.db, id.0)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "connection_not_found",
                format!("repository connection {id}"),
            )
        })
}

/// Connects a repository's branch: hooklog makes a secret, seals it and the token, and
/// creates the webhook (in the background: see `status` and `last_error`).
#[utoipa::path(post, path = "/v1/admin/repositories", tag = "repositories", request_body = ConnectRepositoryBody,
    responses(
        (status = 202, description = "Connected; the webhook is being created", body = ConnectionAccepted),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 409, description = "The branch is connected already", body = ErrorBody),
        (status = 422, description = "Bad provider, repository, branch or token", body = ErrorBody),
        (status = 503, description = "HOOKLOG_SECRETS_KEY or HOOKLOG_PUBLIC_URL not set, or store unavailable", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AdminState>,
    request: Request,
    ApiJson(body): ApiJson<ConnectRepositoryBody>,
) -> Result<(StatusCode, Json<ConnectionAccepted>), ApiError> {
    let connected = repositories::connect(
        &state.bus,
        state.vault.as_ref(),
        state.public_url.as_deref(),
        ConnectRepository {
            provider: body.provider,
            repository: body.repository,
            branch: body.branch,
            token: body.token,
        },
        &request.meta,
    )
    .await?;
    accepted(
        &state,
        &request,
        connected.connection,
        "pending",
        Some(connected.hook_url),
    )
    .await
}

/// Asks for another attempt at creating a failed connection's webhook.
#[utoipa::path(post, path = "/v1/admin/repositories/{id}/retry", tag = "repositories",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 202, description = "Retrying", body = ConnectionAccepted),
        (status = 404, description = "Unknown connection", body = ErrorBody),
        (status = 409, description = "The webhook creation has not failed, or the connection is disconnected", body = ErrorBody),
    ))]
pub async fn retry(
    State(state): State<AdminState>,
    request: Request,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<ConnectionAccepted>), ApiError> {
    let id = connection_id(&id)?;
    repositories::retry(&state.bus, id, &request.meta).await?;
    accepted(&state, &request, id, "pending", None).await
}

/// Disconnects: deliveries are refused at once; the webhook is deleted at the provider, then
/// the connection is `disconnected` (`delete_failed` while the deletion fails; it is retried).
#[utoipa::path(delete, path = "/v1/admin/repositories/{id}", tag = "repositories",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 202, description = "Disconnecting", body = ConnectionAccepted),
        (status = 404, description = "Unknown connection", body = ErrorBody),
        (status = 409, description = "Already disconnected", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AdminState>,
    request: Request,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<ConnectionAccepted>), ApiError> {
    let id = connection_id(&id)?;
    let status = repositories::disconnect(&state.bus, id, &request.meta).await?;
    accepted(&state, &request, id, status.as_str(), None).await
}

async fn accepted(
    state: &AdminState,
    request: &Request,
    id: ConnectionId,
    status: &str,
    hook_url: Option<String>,
) -> Result<(StatusCode, Json<ConnectionAccepted>), ApiError> {
    let receipt = state
        .receipt(request, &[(RepositoryConnection::TYPE, id.to_string())])
        .await?;
    let body = ConnectionAccepted {
        connection_id: id.to_string(),
        status: status.to_owned(),
        hook_url,
        receipt,
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// A connection's webhook health, as last read from the provider: the delivery log's newest
/// attempts and failures, and webhooks under hooklog's path that no connection owns.
#[utoipa::path(get, path = "/v1/admin/repositories/{id}/health", tag = "repositories",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 200, description = "The last check", body = WebhookHealthView),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 404, description = "Not checked yet (or no such connection)", body = ErrorBody),
    ))]
pub async fn health(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookHealthView>, ApiError> {
    let id = connection_id(&id)?;
    query::webhook_health(&state.db, id.0)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "health_not_checked",
                format!("a health check of repository connection {id}"),
            )
        })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListIncidents {
    /// `open` or `resolved`.
    pub status: Option<String>,
    /// Only this connection's.
    pub connection: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    pub min_position: Option<u64>,
}

/// Incidents: failing streaks of connections' CI workflows on their branches, newest first.
#[utoipa::path(get, path = "/v1/admin/incidents", tag = "repositories", params(ListIncidents),
    responses(
        (status = 200, description = "A page of incidents", body = Page<IncidentView>),
        (status = 400, description = "Bad filter, cursor or parameter", body = ErrorBody),
    ))]
pub async fn incidents(
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<ListIncidents>,
) -> Result<Json<Page<IncidentView>>, ApiError> {
    state.reach(query::CONNECTOR, q.min_position).await?;
    let filter = IncidentFilter {
        status: q.status,
        connection: connection_filter(q.connection.as_deref())?,
    };
    let page = query::incidents(&state.db, &filter, &params::page(q.cursor, q.limit)).await?;
    Ok(Json(page))
}

/// One incident.
#[utoipa::path(get, path = "/v1/admin/incidents/{id}", tag = "repositories",
    params(("id" = String, Path, description = "The incident id"), ReadParams),
    responses(
        (status = 200, description = "The incident", body = IncidentView),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 404, description = "Unknown incident", body = ErrorBody),
    ))]
pub async fn incident(
    State(state): State<AdminState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadParams>,
) -> Result<Json<IncidentView>, ApiError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| {
        ApiError::bad_request("bad_id", format!("{id:?} is not an incident id (a UUID)"))
    })?;
    state.reach(query::CONNECTOR, q.min_position).await?;
    query::incident(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("incident_not_found", format!("incident {id}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPullRequests {
    /// `open`, `closed` or `merged`.
    pub state: Option<String>,
    /// Only this connection's.
    pub connection: Option<String>,
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    pub min_position: Option<u64>,
}

/// Connections' pull requests as their latest change left them, latest changed first.
#[utoipa::path(get, path = "/v1/admin/pull-requests", tag = "repositories", params(ListPullRequests),
    responses(
        (status = 200, description = "A page of pull requests", body = Page<PullRequestView>),
        (status = 400, description = "Bad filter, cursor or parameter", body = ErrorBody),
    ))]
pub async fn pull_requests(
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<ListPullRequests>,
) -> Result<Json<Page<PullRequestView>>, ApiError> {
    state.reach(query::CONNECTOR, q.min_position).await?;
    let filter = PullRequestFilter {
        state: q.state,
        connection: connection_filter(q.connection.as_deref())?,
    };
    let page = query::pull_requests(&state.db, &filter, &params::page(q.cursor, q.limit)).await?;
    Ok(Json(page))
}

/// The `connection` filter of a list, checked.
fn connection_filter(raw: Option<&str>) -> Result<Option<uuid::Uuid>, ApiError> {
    Ok(raw.map(connection_id).transpose()?.map(|id| id.0))
}
