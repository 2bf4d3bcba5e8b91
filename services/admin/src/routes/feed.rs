//! `GET /v1/admin/feed`: `HOOKLOG_EVENTS` live, as Server-Sent Events. Each request gets its own
//! ordered (ephemeral, unacknowledged) consumer starting after `Last-Event-ID` or `?after=`, else
//! at the next event published. An SSE event's `id` is its stream sequence, so a client that
//! reconnects with `Last-Event-ID` misses nothing. The feed ends when the listener shuts down or
//! NATS fails; the client reconnects.

use std::convert::Infallible;

use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::Message;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{future, Stream, StreamExt};
use hooklog_infra::streams::{event_headers, EVENTS_STREAM, EVENTS_SUBJECT_PREFIX};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::state::AdminState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// Start after this `HOOKLOG_EVENTS` sequence (a `Last-Event-ID` header wins over it).
    pub after: Option<u64>,
}

/// The `data` of each SSE event.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedEvent {
    /// Stream sequence on `HOOKLOG_EVENTS` (also the SSE `id`).
    pub position: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Sequence within the aggregate.
    pub sequence: u64,
    /// Also the SSE `event`.
    pub event_type: String,
    pub payload: serde_json::Value,
    /// The command metadata (`correlation_id`, `causation_id`, `actor`, `delivery_id`).
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Domain events as they are published (Server-Sent Events).
#[utoipa::path(get, path = "/v1/admin/feed", tag = "events", params(
        FeedParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this stream sequence"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`; each event's data is a FeedEvent", content_type = "text/event-stream", body = FeedEvent),
        (status = 400, description = "Bad `after` or `Last-Event-ID`", body = ErrorBody),
        (status = 503, description = "NATS unavailable", body = ErrorBody),
    ))]
pub async fn feed(
    State(state): State<AdminState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<FeedParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "bad_last_event_id",
                        "Last-Event-ID must be a stream sequence (a non-negative integer)",
                    )
                })?,
        ),
        None => None,
    };
    let deliver_policy = match last_event_id.or(q.after) {
        Some(after) => DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        },
        None => DeliverPolicy::New,
    };
    let stream = state
        .js
        .get_stream_no_info(EVENTS_STREAM)
        .await
        .map_err(|err| ApiError::unavailable("opening the events stream", err))?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy,
            filter_subject: format!("{EVENTS_SUBJECT_PREFIX}.>"),
            ..Default::default()
        })
        .await
        .map_err(|err| ApiError::unavailable("creating the feed consumer", err))?;
    let messages = consumer
        .messages()
        .await
        .map_err(|err| ApiError::unavailable("starting the feed", err))?;
    let events = messages
        .take_until(state.shutdown.clone().cancelled_owned())
        .take_while(|message| {
            if let Err(err) = message {
                tracing::warn!(error = %err, "feed: the events stream failed; ending the feed");
            }
            future::ready(message.is_ok())
        })
        .filter_map(|message| future::ready(message.ok().and_then(|m| sse_event(&m))))
        .map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn sse_event(message: &Message) -> Option<Event> {
    let position = message.info().ok()?.stream_sequence;
    let headers = message.headers.as_ref()?;
    let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    let event_type = header(event_headers::EVENT_TYPE)?;
    let mut metadata = serde_json::Map::new();
    for (name, values) in headers.iter() {
        let name = name.to_string();
        let prefix = event_headers::METADATA_PREFIX;
        let key = name
            .get(..prefix.len())
            .filter(|p| p.eq_ignore_ascii_case(prefix))
            .and_then(|_| name.get(prefix.len()..))
            .filter(|key| !key.is_empty());
        if let (Some(key), Some(value)) = (key, values.last()) {
            metadata.insert(key.to_owned(), value.as_str().into());
        }
    }
    let data = FeedEvent {
        position,
        aggregate_type: header(event_headers::AGGREGATE_TYPE)?,
        aggregate_id: header(event_headers::AGGREGATE_ID)?,
        sequence: header(event_headers::SEQUENCE)?.parse().ok()?,
        payload: serde_json::from_slice(&message.payload).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&message.payload).into_owned())
        }),
        metadata,
        event_type: event_type.clone(),
    };
    let event = Event::default()
        .id(position.to_string())
        .json_data(&data)
        .ok()?;
    // SSE fields cannot hold line breaks; an event type never has one, but a header could.
    Some(match event_type.contains(['\n', '\r']) {
        true => event,
        false => event.event(event_type),
    })
}
