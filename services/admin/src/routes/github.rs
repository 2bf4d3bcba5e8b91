//! `/v1/admin/github/deliveries`: what the GitHub reconciler found (deliveries GitHub attempted
//! that `GITHUB_DELIVERIES` lacked when a pass looked) from the `github_deliveries` read model,
//! and an operator's redeliveries, asked through the GitHub App as `hooklog github redeliver`
//! does (`hooklog_reconciler::redeliver::by_operator`): the ask is committed as
//! `RedeliveryRequested` before GitHub is asked, whatever the arrival timeout and the attempt
//! bound, while GitHub's window is open and the delivery has not arrived.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cqrs_es::Aggregate;
use hooklog_domain::delivery::DeliveryKey;
use hooklog_domain::github_delivery::GithubDelivery;
use hooklog_projections::query::{self, GithubDeliveryFilter, GithubDeliveryView, Page};
use hooklog_reconciler::redeliver::{by_operator, reported, Asked, OperatorError, Reported};
use hooklog_syncer::source::github::AppClient;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::commands::{Receipt, Request};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::params;
use crate::routes::ReadParams;
use crate::state::AdminState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListGithubDeliveries {
    /// `missing`, `requested`, `arrived` or `unrecoverable`.
    pub status: Option<String>,
    /// `true`: only those not arrived (missing, requested or unrecoverable); `false`: only
    /// those arrived.
    pub missing: Option<bool>,
    /// GitHub event (`push`, `installation`, …).
    pub event: Option<String>,
    /// GitHub App installation id.
    pub installation_id: Option<u64>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Answer only once the `connector` read model applied this `HOOKLOG_EVENTS` position.
    pub min_position: Option<u64>,
}

/// What became of an operator's redelivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedeliveryOutcome {
    /// GitHub took the request (202): the redelivery is on its way.
    Accepted,
    /// GitHub did not take it (unreachable, a server error); asked again later.
    Failed,
    /// GitHub refused it (404, 422): the delivery is unrecoverable.
    Refused,
}

/// The answer to a redelivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redelivery {
    pub guid: String,
    pub outcome: RedeliveryOutcome,
    /// Why it failed or was refused; null when accepted.
    pub detail: Option<String>,
    #[serde(flatten)]
    pub receipt: Receipt,
}

/// A GUID not redelivered, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotRedelivered {
    pub guid: String,
    pub detail: String,
}

/// The answer to `redeliver-missing`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct RedeliveredMissing {
    /// GUIDs not arrived (missing, requested or unrecoverable), each asked once.
    pub asked: u64,
    /// Those GitHub took.
    pub accepted: u64,
    /// Those not sent (arrived meanwhile, past GitHub's window, not due) or that GitHub refused.
    pub refused: Vec<NotRedelivered>,
    /// Those GitHub did not take, or that could not be recorded.
    pub failed: Vec<NotRedelivered>,
}

/// Lists the deliveries GitHub attempted that the stream lacked when the reconciler looked,
/// newest found first.
#[utoipa::path(get, path = "/v1/admin/github/deliveries", tag = "github", params(ListGithubDeliveries),
    responses(
        (status = 200, description = "A page of GitHub-side deliveries, newest found first", body = Page<GithubDeliveryView>),
        (status = 400, description = "Bad status, missing, event, installation_id, limit or cursor (`bad_filter`, `bad_query`, `bad_cursor`)", body = ErrorBody),
        (status = 503, description = "Position not reached or store unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<ListGithubDeliveries>,
) -> Result<Json<Page<GithubDeliveryView>>, ApiError> {
    state.reach(query::CONNECTOR, q.min_position).await?;
    let filter = GithubDeliveryFilter {
        status: q.status,
        missing: q.missing,
        event: q.event,
        installation_id: q.installation_id,
    };
    let page =
        query::github_deliveries(&state.db, &filter, &params::page(q.cursor, q.limit)).await?;
    Ok(Json(page))
}

/// One GitHub-side delivery the reconciler found missing, and what was done about it.
#[utoipa::path(get, path = "/v1/admin/github/deliveries/{guid}", tag = "github",
    params(("guid" = String, Path, description = "GitHub's `X-GitHub-Delivery`"), ReadParams),
    responses(
        (status = 200, description = "The delivery", body = GithubDeliveryView),
        (status = 404, description = "Never recorded missing", body = ErrorBody),
        (status = 503, description = "Position not reached or store unavailable", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AdminState>,
    ApiPath(guid): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadParams>,
) -> Result<Json<GithubDeliveryView>, ApiError> {
    state.reach(query::CONNECTOR, q.min_position).await?;
    query::github_delivery(&state.db, &guid)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&guid))
}

fn not_found(guid: &str) -> ApiError {
    ApiError::not_found(
        "github_delivery_not_found",
        format!("GitHub delivery {guid:?}"),
    )
}

/// The App client, or why there is none.
fn app(state: &AdminState) -> Result<Arc<AppClient>, ApiError> {
    state.github.clone().ok_or_else(|| ApiError::NotConfigured {
        code: "github_app_not_configured",
        message: "the GitHub App is not configured here: set HOOKLOG_GITHUB_APP_ID and \
                  HOOKLOG_GITHUB_APP_PRIVATE_KEY (or HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE) to ask \
                  GitHub for redeliveries"
            .to_owned(),
    })
}

/// Asks GitHub now for the next redelivery of one GUID recorded missing, whatever the arrival
/// timeout and the attempt bound (GitHub's window and what arrived still hold).
#[utoipa::path(post, path = "/v1/admin/github/deliveries/{guid}/redeliver", tag = "github",
    params(("guid" = String, Path, description = "GitHub's `X-GitHub-Delivery`")),
    responses(
        (status = 202, description = "Asked: GitHub accepted, failed or refused", body = Redelivery),
        (status = 404, description = "Never recorded missing", body = ErrorBody),
        (status = 409, description = "Arrived, past GitHub's window, or not due (`redelivery_refused`)", body = ErrorBody),
        (status = 503, description = "The GitHub App is not configured, or the store is unavailable", body = ErrorBody),
    ))]
pub async fn redeliver(
    State(state): State<AdminState>,
    request: Request,
    ApiPath(guid): ApiPath<String>,
) -> Result<(StatusCode, Json<Redelivery>), ApiError> {
    let client = app(&state)?;
    let asked = by_operator(
        &state.bus,
        &client,
        &guid,
        state.redelivery_policy,
        &request.meta,
    )
    .await?;
    let detail = asked.detail();
    let outcome = match asked {
        Asked::Accepted => RedeliveryOutcome::Accepted,
        Asked::Failed(_) => RedeliveryOutcome::Failed,
        Asked::Refused { .. } => RedeliveryOutcome::Refused,
        Asked::NotDue(reason) => return Err(ApiError::conflict("redelivery_refused", reason)),
    };
    let key = DeliveryKey::for_delivery(&guid).0;
    let receipt = state
        .receipt(&request, &[(GithubDelivery::TYPE, key)])
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Redelivery {
            guid,
            outcome,
            detail,
            receipt,
        }),
    ))
}

/// Asks GitHub now for the next redelivery of every GUID not arrived (missing, requested or
/// unrecoverable in the read model), one by one.
#[utoipa::path(post, path = "/v1/admin/github/deliveries/redeliver-missing", tag = "github",
    responses(
        (status = 200, description = "Each GUID not arrived asked once", body = RedeliveredMissing),
        (status = 503, description = "The GitHub App is not configured, or the store is unavailable", body = ErrorBody),
    ))]
pub async fn redeliver_missing(
    State(state): State<AdminState>,
    request: Request,
) -> Result<Json<RedeliveredMissing>, ApiError> {
    let client = app(&state)?;
    let guids = query::open_github_deliveries(&state.db).await?;
    let mut report = RedeliveredMissing::default();
    for guid in guids {
        report.asked += 1;
        let asked = by_operator(
            &state.bus,
            &client,
            &guid,
            state.redelivery_policy,
            &request.meta,
        )
        .await;
        if let Err(OperatorError::Failed(err)) = &asked {
            tracing::warn!(guid, error = %err, "an operator's redelivery could not be recorded");
        }
        let (reported, detail) = reported(&asked);
        let detail = detail.unwrap_or_default();
        match reported {
            Reported::Accepted => report.accepted += 1,
            Reported::Refused => report.refused.push(NotRedelivered { guid, detail }),
            Reported::Failed => report.failed.push(NotRedelivered { guid, detail }),
        }
    }
    Ok(Json(report))
}
