//! The record itself: the event history of one aggregate (from the event store, with payload and
//! metadata) and the dead letters the worker could not process.

use axum::extract::State;
use axum::Json;
use cqrs_es::Aggregate;
use hooklog_domain::connector_instance::ConnectorInstance;
use hooklog_domain::connector_target::ConnectorTarget;
use hooklog_projections::query::{self, DeadLetterView, Page, StoredEventView};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::params::{self, instance_id, target_id};
use crate::state::AdminState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Answer only once the `connector` read model applied this `HOOKLOG_EVENTS` position.
    pub min_position: Option<u64>,
}

/// Lists dead letters: deliveries the worker could not process (they stay on the stream).
#[utoipa::path(get, path = "/v1/admin/dead-letters", tag = "events", params(PageParams),
    responses(
        (status = 200, description = "A page of dead letters", body = Page<DeadLetterView>),
        (status = 400, description = "Bad cursor or parameter", body = ErrorBody),
    ))]
pub async fn dead_letters(
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<DeadLetterView>>, ApiError> {
    state.reach(query::CONNECTOR, q.min_position).await?;
    let page = query::dead_letters(&state.db, &params::page(q.cursor, q.limit)).await?;
    Ok(Json(page))
}

/// The events of one aggregate, in sequence order, with payload and metadata.
#[utoipa::path(get, path = "/v1/admin/aggregates/{type}/{id}/events", tag = "events",
    params(
        ("type" = String, Path, description = "`ConnectorInstance` or `ConnectorTarget`"),
        ("id" = String, Path, description = "The aggregate id"),
        PageParams,
    ),
    responses(
        (status = 200, description = "A page of events", body = Page<StoredEventView>),
        (status = 400, description = "Unknown aggregate type, bad id or cursor", body = ErrorBody),
        (status = 404, description = "No event for this aggregate", body = ErrorBody),
    ))]
pub async fn aggregate_events(
    State(state): State<AdminState>,
    ApiPath((aggregate_type, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<StoredEventView>>, ApiError> {
    let id = match aggregate_type.as_str() {
        ConnectorInstance::TYPE => instance_id(&id)?.to_string(),
        ConnectorTarget::TYPE => target_id(&id)?.to_string(),
        other => {
            return Err(ApiError::bad_request(
                "bad_aggregate_type",
                format!(
                    "{other:?} is not an aggregate type; use {} or {}",
                    ConnectorInstance::TYPE,
                    ConnectorTarget::TYPE
                ),
            ))
        }
    };
    state.reach(query::CONNECTOR, q.min_position).await?;
    let first_page = q.cursor.is_none();
    let page = query::aggregate_events(
        &state.db,
        &aggregate_type,
        &id,
        &params::page(q.cursor, q.limit),
    )
    .await?;
    if first_page && page.items.is_empty() {
        return Err(ApiError::not_found(
            "aggregate_not_found",
            format!("{aggregate_type} {id}"),
        ));
    }
    Ok(Json(page))
}
