//! What every command route answers besides its own ids: the events the request committed (read
//! back from the `events` table by the request's correlation id) and the `HOOKLOG_EVENTS`
//! position they reached, so a client can read its own writes with `min_position`.
//!
//! The relay publishes each event to `hooklog.events.<aggregate_type>.<aggregate_id>` with a
//! `Hooklog-Sequence` header; the position is found by polling the last message on that subject
//! until its sequence reaches the last one committed. A command that committed nothing answers
//! the aggregate's current position.

use std::time::Duration;

use async_nats::jetstream::stream::DirectGetErrorKind;
use hooklog_domain::metadata::CommandMetadata;
use hooklog_infra::streams::{event_headers, event_subject, EVENTS_STREAM};
use serde::Serialize;
use tokio::time::Instant;
use utoipa::ToSchema;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::auth::Operator;
use crate::error::ApiError;
use crate::state::AdminState;

/// How often the last message of a subject is read while waiting for the relay.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// One request's commands: a fresh correlation id, and the actor `operator:<name>` of the token
/// that sent them (taken from what the auth middleware found).
pub struct Request {
    pub meta: CommandMetadata,
}

impl Request {
    /// Commands sent by `operator`.
    pub fn by(operator: &Operator) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        Self {
            meta: CommandMetadata::from_operator(&operator.name, &id),
        }
    }

    pub fn correlation_id(&self) -> &str {
        &self.meta.correlation_id
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Request {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Operator>()
            .map(Request::by)
            .ok_or_else(|| ApiError::Internal("a command route ran without the token check".into()))
    }
}

/// An event a request committed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommittedEvent {
    /// `ConnectorInstance` or `ConnectorTarget`.
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The event's sequence within its aggregate.
    pub sequence: i64,
    pub event_type: String,
    /// The event itself, for the routes that read what their command decided.
    #[serde(skip)]
    pub(crate) payload: serde_json::Value,
}

/// What a command request committed, and where that stands on `HOOKLOG_EVENTS`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Receipt {
    /// The events committed, per aggregate in sequence order; empty when nothing changed.
    pub events: Vec<CommittedEvent>,
    /// The `HOOKLOG_EVENTS` stream sequence of the last of those events (or, when nothing
    /// changed, of the aggregates' latest events); pass it as `min_position` to read the
    /// change. Null when it was not published in time (see `published`) or never was.
    pub position: Option<u64>,
    /// Whether every committed event was seen on `HOOKLOG_EVENTS` before answering.
    pub published: bool,
}

impl AdminState {
    /// The receipt of `request` over the aggregates it sent commands to.
    pub(crate) async fn receipt(
        &self,
        request: &Request,
        aggregates: &[(&str, String)],
    ) -> Result<Receipt, ApiError> {
        self.receipt_with_cascade(request, aggregates, &[]).await
    }

    /// The receipt of `request` once the process manager's steps on the `cascaded` aggregates
    /// committed too (they carry the request's correlation id), so a client reading with
    /// `position` sees them. The request only waits: the steps run in the process manager,
    /// whether or not anybody waits. Not done within the publish wait: `published: false`.
    pub(crate) async fn receipt_with_cascade(
        &self,
        request: &Request,
        aggregates: &[(&str, String)],
        cascaded: &[(&str, String)],
    ) -> Result<Receipt, ApiError> {
        let deadline = Instant::now() + self.waits.publish;
        let mut waiting = cascaded.to_vec();
        loop {
            let mut still = Vec::new();
            for (aggregate_type, aggregate_id) in waiting {
                let committed = self
                    .committed(aggregate_type, &aggregate_id, request.correlation_id())
                    .await?;
                if committed.is_empty() {
                    still.push((aggregate_type, aggregate_id));
                }
            }
            waiting = still;
            if waiting.is_empty() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        if !waiting.is_empty() {
            tracing::warn!(
                pending = waiting.len(),
                "the process manager did not finish a request's cascade in time"
            );
        }
        let mut aggregates = aggregates.to_vec();
        aggregates.extend(cascaded.iter().cloned());
        let mut receipt = self
            .receipt_until(request.correlation_id(), &aggregates, deadline)
            .await?;
        if !waiting.is_empty() {
            receipt.published = false;
            receipt.position = None;
        }
        Ok(receipt)
    }

    async fn receipt_until(
        &self,
        correlation_id: &str,
        aggregates: &[(&str, String)],
        deadline: Instant,
    ) -> Result<Receipt, ApiError> {
        let mut events = Vec::new();
        let mut position = None;
        let mut published = true;
        for (aggregate_type, aggregate_id) in aggregates {
            let committed = self
                .committed(aggregate_type, aggregate_id, correlation_id)
                .await?;
            let last = committed.last().map(|e| e.sequence);
            events.extend(committed);
            match self
                .published_position(aggregate_type, aggregate_id, last, deadline)
                .await
            {
                Some(at) => position = position.max(Some(at)),
                None if last.is_some() => published = false,
                None => {}
            }
        }
        Ok(Receipt {
            events,
            position: position.filter(|_| published),
            published,
        })
    }

    /// Waits, within the publish and position waits, until the connector read model shows what
    /// `correlation_id` committed on one aggregate, for an answer that sends a browser to a page
    /// reading it (a page loaded before the read model caught up would show the old state, and
    /// its live feed starts after the event). False when it did not in time; nothing fails.
    pub(crate) async fn shown(
        &self,
        aggregate_type: &str,
        aggregate_id: String,
        correlation_id: &str,
    ) -> bool {
        let deadline = Instant::now() + self.waits.publish;
        let aggregates = [(aggregate_type, aggregate_id)];
        match self
            .receipt_until(correlation_id, &aggregates, deadline)
            .await
        {
            Ok(receipt) if receipt.events.is_empty() => true,
            Ok(Receipt {
                position: Some(position),
                ..
            }) => self
                .reach(hooklog_projections::query::CONNECTOR, Some(position))
                .await
                .is_ok(),
            _ => false,
        }
    }

    /// The events `correlation_id` committed on one aggregate, in order.
    pub(crate) async fn committed(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        correlation_id: &str,
    ) -> Result<Vec<CommittedEvent>, ApiError> {
        type Row = (
            String,
            String,
            i64,
            String,
            sqlx::types::Json<serde_json::Value>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, payload FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 \
             AND metadata->>'correlation_id' = $3 ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(correlation_id)
        .fetch_all(&self.db)
        .await
        .map_err(|err| ApiError::unavailable("reading the committed events", err))?;
        Ok(rows
            .into_iter()
            .map(
                |(aggregate_type, aggregate_id, sequence, event_type, payload)| CommittedEvent {
                    aggregate_type,
                    aggregate_id,
                    sequence,
                    event_type,
                    payload: payload.0,
                },
            )
            .collect())
    }

    /// The stream sequence of the aggregate's last published event once its `Hooklog-Sequence`
    /// reaches `sequence` (waiting until `deadline`); without `sequence`, whatever is there now.
    async fn published_position(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: Option<i64>,
        deadline: Instant,
    ) -> Option<u64> {
        let subject = event_subject(aggregate_type, aggregate_id);
        let stream = match self.js.get_stream_no_info(EVENTS_STREAM).await {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the events stream for a command's position");
                return None;
            }
        };
        loop {
            let last = match stream.direct_get_last_for_subject(subject.as_str()).await {
                Ok(message) => {
                    let published = message
                        .headers
                        .get(event_headers::SEQUENCE)
                        .and_then(|value| value.as_str().parse::<i64>().ok());
                    Some((message.sequence, published))
                }
                Err(err) if matches!(err.kind(), DirectGetErrorKind::NotFound) => None,
                Err(err) => {
                    tracing::warn!(error = %err, subject = %subject, "cannot read the last event of an aggregate");
                    None
                }
            };
            match (sequence, last) {
                (None, last) => return last.map(|(at, _)| at),
                (Some(wanted), Some((at, Some(published)))) if published >= wanted => {
                    return Some(at)
                }
                _ if Instant::now() >= deadline => {
                    tracing::warn!(subject = %subject, "the relay did not publish a command's events in time");
                    return None;
                }
                _ => tokio::time::sleep(POLL_INTERVAL).await,
            }
        }
    }
}
