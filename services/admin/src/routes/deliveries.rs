//! `/v1/admin/deliveries`: what GitHub sent, from the `deliveries` read model, and one delivery
//! in full: what it caused, plus its stored headers and payload read back from
//! `GITHUB_DELIVERIES` (the raw record, not a copy).

use std::collections::BTreeMap;

use async_nats::jetstream::stream::DirectGetErrorKind;
use axum::extract::State;
use axum::Json;
use base64::Engine;
use hooklog_domain::github::events::json_document;
use hooklog_infra::streams::{delivery_headers, DELIVERIES_STREAM};
use hooklog_projections::query::{self, DeliveryDetail, DeliveryFilter, DeliveryView, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::params::{self, timestamp};
use crate::routes::ReadParams;
use crate::state::AdminState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListDeliveries {
    /// GitHub event (`push`, `installation`, …).
    pub event: Option<String>,
    /// `accepted`, `processed`, `ignored`, `failed` (dead letter) or `duplicate`.
    pub outcome: Option<String>,
    /// GitHub App installation id.
    pub installation: Option<u64>,
    /// Received at or after (RFC 3339).
    pub since: Option<String>,
    /// Received before (RFC 3339).
    pub until: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// Answer only once the read model applied this `GITHUB_DELIVERIES` position.
    pub min_position: Option<u64>,
}

/// A delivery with what it caused and its stored message.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryRecord {
    #[serde(flatten)]
    pub detail: DeliveryDetail,
    /// The headers stored with the message (GitHub's and hooklog's; never the secret).
    pub headers: BTreeMap<String, String>,
    /// The JSON document GitHub sent (form encoding unwrapped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// The body, base64, when it is not a JSON document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
}

/// Lists deliveries.
#[utoipa::path(get, path = "/v1/admin/deliveries", tag = "deliveries", params(ListDeliveries),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<DeliveryView>),
        (status = 400, description = "Bad filter, cursor or parameter", body = ErrorBody),
        (status = 503, description = "Position not reached or store unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AdminState>,
    ApiQuery(q): ApiQuery<ListDeliveries>,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    let since = q
        .since
        .as_deref()
        .map(|t| timestamp("since", t))
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .map(|t| timestamp("until", t))
        .transpose()?;
    state.reach(query::DELIVERIES, q.min_position).await?;
    let filter = DeliveryFilter {
        event: q.event,
        outcome: q.outcome,
        installation: q.installation,
        since,
        until,
    };
    let page = query::deliveries(&state.db, &filter, &params::page(q.cursor, q.limit)).await?;
    Ok(Json(page))
}

/// One delivery, with its raw payload from the stream.
#[utoipa::path(get, path = "/v1/admin/deliveries/{delivery_id}", tag = "deliveries",
    params(("delivery_id" = String, Path, description = "GitHub's `X-GitHub-Delivery`"), ReadParams),
    responses(
        (status = 200, description = "The delivery", body = DeliveryRecord),
        (status = 404, description = "Unknown delivery", body = ErrorBody),
        (status = 503, description = "Position not reached or store unavailable", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AdminState>,
    ApiPath(delivery_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReadParams>,
) -> Result<Json<DeliveryRecord>, ApiError> {
    state.reach(query::DELIVERIES, q.min_position).await?;
    let detail = query::delivery(&state.db, &delivery_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("delivery_not_found", format!("delivery {delivery_id:?}"))
        })?;
    let sequence = u64::try_from(detail.delivery.stream_sequence).unwrap_or_default();
    let stream = state
        .js
        .get_stream_no_info(DELIVERIES_STREAM)
        .await
        .map_err(|err| ApiError::unavailable("opening the deliveries stream", err))?;
    let message = match stream.direct_get(sequence).await {
        Ok(message) => Some(message),
        Err(err) if matches!(err.kind(), DirectGetErrorKind::NotFound) => None,
        Err(err) => {
            return Err(ApiError::unavailable(
                "reading a delivery from the stream",
                err,
            ))
        }
    };
    let mut record = DeliveryRecord {
        detail,
        headers: BTreeMap::new(),
        payload: None,
        payload_base64: None,
    };
    let Some(message) = message else {
        tracing::warn!(
            stream_seq = sequence,
            "a projected delivery is missing from the stream"
        );
        return Ok(Json(record));
    };
    for (name, values) in message.headers.iter() {
        let joined: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
        record.headers.insert(name.to_string(), joined.join(", "));
    }
    let content_type = message
        .headers
        .get(delivery_headers::CONTENT_TYPE)
        .map(|v| v.as_str());
    let document = json_document(content_type, &message.payload)
        .ok()
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok());
    match document {
        Some(document) => record.payload = Some(document),
        None => {
            record.payload_base64 =
                Some(base64::engine::general_purpose::STANDARD.encode(&message.payload))
        }
    }
    Ok(Json(record))
}
