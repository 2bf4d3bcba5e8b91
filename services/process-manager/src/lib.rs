//! The process manager (role `process-manager`): every cross-aggregate step of hooklog runs
//! here, never inside a request. It consumes the `ConnectorInstance` and `ConnectorTarget`
//! subjects of `HOOKLOG_EVENTS` through its own durable consumer (`hooklog-process-manager`:
//! JetStream keeps its checkpoint, the last event acked) and runs the steps each event asks for
//! (`hooklog_write::reactions`: a deleted or disconnected installation removes its targets, a
//! removed repository disables them, renames follow, an auto-tracked target is tracked and given
//! its push, a tracked target is attached, a removed one detached).
//!
//! Why nothing is lost or done twice:
//! - **An event is acked only after all its steps committed** (or were refused, a decision).
//!   Killed anywhere, the event is handed out again and its steps run again.
//! - **Each step runs once**: its command carries the idempotency key `event:<event id>/<step>`,
//!   which the write side stores with the step's first event and checks before every attempt, so
//!   a re-run skips what committed, even with a second process manager racing this one.
//! - **In stream order**: one event at a time across all replicas (`max_ack_pending` 1), so a
//!   target tracked and then its installation disconnected are handled in that order. While an
//!   event's steps run (a disconnect of many targets) the message is kept in progress.
//! - **Nothing is trusted for being on the stream**: an event is decoded from its payload with
//!   the domain's own types and only the steps the domain's rules derive are sent; a payload that
//!   does not decode is logged and terminated, never guessed at.
#![forbid(unsafe_code)]

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind, Message};
use hooklog_domain::connector_instance::InstanceEvent;
use hooklog_domain::connector_target::TargetEvent;
use hooklog_domain::ids::{InstanceId, TargetId};
use hooklog_domain::metadata::keys;
use hooklog_infra::metrics::{PROCESS_MANAGER_EVENTS, PROCESS_MANAGER_STEPS};
use hooklog_infra::nats::durable::{self, Delivered};
use hooklog_infra::streams::{event_headers, event_msg_id, EVENTS_STREAM, EVENTS_SUBJECT_PREFIX};
use hooklog_write::reactions::{self, Committed, ReactionError};
use hooklog_write::CommandBus;
use tokio_util::sync::CancellationToken;

/// How the process manager consumes.
#[derive(Debug, Clone)]
pub struct ProcessManagerConfig {
    /// The durable consumer's name: process managers with the same name share one checkpoint.
    pub durable_name: String,
    /// How long JetStream waits for an ack before handing the event out again.
    pub ack_wait: Duration,
    /// How often an event still being handled is reported in progress.
    pub progress_interval: Duration,
    /// The first `nak` delay after a retryable failure; doubles up to `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
}

impl Default for ProcessManagerConfig {
    fn default() -> Self {
        Self {
            durable_name: "hooklog-process-manager".to_owned(),
            ack_wait: Duration::from_secs(30),
            progress_interval: Duration::from_secs(10),
            retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
        }
    }
}

impl ProcessManagerConfig {
    fn consumer_config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.durable_name.clone()),
            description: Some("hooklog process manager: events into cascades".to_owned()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: -1,
            // One event at a time, in stream order, across every process manager.
            max_ack_pending: 1,
            filter_subjects: vec![
                format!("{EVENTS_SUBJECT_PREFIX}.ConnectorInstance.>"),
                format!("{EVENTS_SUBJECT_PREFIX}.ConnectorTarget.>"),
            ],
            ..Default::default()
        }
    }
}

/// Consumes until `shutdown`, then lets the event in hand finish. Survives NATS and PostgreSQL
/// outages: it waits and resumes from its checkpoint.
pub async fn run(
    config: ProcessManagerConfig,
    bus: CommandBus,
    jetstream: jetstream::Context,
    shutdown: CancellationToken,
) {
    durable::consume(
        &jetstream,
        EVENTS_STREAM,
        config.consumer_config(),
        1,
        shutdown,
        |delivered| handle(&config, &bus, delivered),
    )
    .await;
    tracing::info!("process manager stopped");
}

#[tracing::instrument(skip_all, fields(stream_seq = delivered.stream_sequence))]
async fn handle(config: &ProcessManagerConfig, bus: &CommandBus, delivered: Delivered) {
    let message = &delivered.message;
    let outcome =
        durable::with_progress(message, config.progress_interval, react(bus, &delivered)).await;
    let kind = match outcome {
        Ok(None) => {
            metrics::counter!(PROCESS_MANAGER_EVENTS, "result" => "none").increment(1);
            AckKind::Ack
        }
        Ok(Some(reacted)) => {
            metrics::counter!(PROCESS_MANAGER_EVENTS, "result" => "reacted").increment(1);
            let done = reacted.steps - reacted.refused;
            metrics::counter!(PROCESS_MANAGER_STEPS, "result" => "done").increment(done as u64);
            metrics::counter!(PROCESS_MANAGER_STEPS, "result" => "refused")
                .increment(reacted.refused as u64);
            metrics::counter!(PROCESS_MANAGER_STEPS, "result" => "compensated")
                .increment(reacted.compensated as u64);
            AckKind::Ack
        }
        Err(Unhandled::Retry(reason)) => {
            metrics::counter!(PROCESS_MANAGER_EVENTS, "result" => "retry").increment(1);
            let delay = durable::retry_delay(
                config.retry_delay,
                delivered.attempts,
                config.max_retry_delay,
            );
            tracing::warn!(attempts = delivered.attempts, ?delay, reason = %reason, "event's steps will be retried");
            AckKind::Nak(Some(delay))
        }
        Err(Unhandled::Unreadable(reason)) => {
            metrics::counter!(PROCESS_MANAGER_EVENTS, "result" => "unreadable").increment(1);
            tracing::error!(reason = %reason, "an event the process manager cannot read; its cascade needs a person");
            AckKind::Term
        }
    };
    ack(message, kind).await;
}

enum Unhandled {
    Retry(String),
    Unreadable(String),
}

impl From<ReactionError> for Unhandled {
    fn from(err: ReactionError) -> Self {
        match err {
            ReactionError::Retry(reason) => Self::Retry(reason),
            ReactionError::Corrupt(reason) => Self::Unreadable(reason),
        }
    }
}

/// Decodes the event and runs its steps; `None` when it asks for none.
async fn react(
    bus: &CommandBus,
    delivered: &Delivered,
) -> Result<Option<reactions::Reacted>, Unhandled> {
    let header = |name: &str| delivered.header(name);
    let payload = &delivered.message.payload;
    let unreadable = |what: &str| Unhandled::Unreadable(format!("event {what}"));
    let aggregate_type = header(event_headers::AGGREGATE_TYPE)
        .ok_or_else(|| unreadable("without an aggregate type"))?;
    let aggregate_id =
        header(event_headers::AGGREGATE_ID).ok_or_else(|| unreadable("without an aggregate id"))?;
    let sequence: u64 = header(event_headers::SEQUENCE)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| unreadable("without a sequence"))?;
    let committed = match aggregate_type.as_str() {
        "ConnectorInstance" => {
            let id = InstanceId::parse(&aggregate_id)
                .map_err(|e| Unhandled::Unreadable(e.to_string()))?;
            let event: InstanceEvent = serde_json::from_slice(payload)
                .map_err(|e| Unhandled::Unreadable(format!("{aggregate_type} payload: {e}")))?;
            Committed::Instance(id, event)
        }
        "ConnectorTarget" => {
            let id =
                TargetId::parse(&aggregate_id).map_err(|e| Unhandled::Unreadable(e.to_string()))?;
            let event: TargetEvent = serde_json::from_slice(payload)
                .map_err(|e| Unhandled::Unreadable(format!("{aggregate_type} payload: {e}")))?;
            Committed::target(bus, id, event).await?
        }
        other => {
            return Err(Unhandled::Unreadable(format!(
                "of aggregate type {other:?}"
            )))
        }
    };
    if reactions::steps(&committed).is_empty() {
        return Ok(None);
    }
    let meta = |key: &str| header(&format!("{}{key}", event_headers::METADATA_PREFIX));
    let event_id = event_msg_id(&aggregate_type, &aggregate_id, sequence);
    let correlation = meta(keys::CORRELATION_ID).unwrap_or_else(|| event_id.clone());
    let delivery = meta(keys::DELIVERY_ID);
    let reacted = reactions::run(
        bus,
        &event_id,
        &correlation,
        delivery.as_deref(),
        &committed,
    )
    .await?;
    tracing::debug!(event_id = %event_id, ?reacted, "event's steps done");
    Ok(Some(reacted))
}

async fn ack(message: &Message, kind: AckKind) {
    if let Err(err) = message.ack_with(kind).await {
        // The event comes back after `ack_wait`; its steps' keys make that harmless.
        tracing::warn!(error = %err, "ack failed");
    }
}
