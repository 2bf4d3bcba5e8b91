//! The process manager (role `process-manager`): every cross-aggregate step of hooklog runs
//! here, never inside a request. It consumes the `ConnectorInstance`, `ConnectorTarget` and
//! `RepositoryConnection` subjects of `HOOKLOG_EVENTS` through its own durable consumer
//! (`hooklog-process-manager`: JetStream keeps its checkpoint, the last event acked) and runs the
//! steps each event asks for (`hooklog_write::reactions`: a deleted or disconnected installation
//! removes its targets, a removed repository disables them, renames follow, an auto-tracked
//! target is tracked and given its push, a tracked target is attached, a removed one detached, a
//! GitHub repository connection's branch is tracked once its webhook exists and removed when it
//! disconnects).
//!
//! Why nothing is lost or done twice:
//! - **An event is acked only after all its steps committed** (or were refused, a decision).
//!   Killed anywhere, the event is handed out again and its steps run again.
//! - **Each step runs once**: its command carries the idempotency key `event:<event id>/<step>`,
//!   which the write side stores with the step's first event and checks before every attempt, so
//!   a re-run skips what committed, even with a second process manager racing this one.
//! - **In stream order, in batches**: one process manager works at a time, the holder of the
//!   PostgreSQL advisory lock [`LEASE_KEY`] (the others stand by and take over when its session
//!   ends). It takes what has arrived, up to `batch_size` events (`max_ack_pending`), and handles
//!   them one after the other in stream order, acking each once its steps committed, so a target
//!   tracked and then its installation disconnected are handled in that order. A retryable
//!   failure is waited out in place, with growing pauses, and every later event waits behind it
//!   (never `nak`ed, which would let newer events overtake it). While an event's steps run (a
//!   disconnect of many targets) the message is kept in progress, and before each batch the
//!   holder checks that its lease still holds.
//! - **New aggregate types are read from the start**: a consumer made by an earlier hooklog
//!   that consumed fewer subjects is recreated from the first event, so the events of the new
//!   types committed before the upgrade are handled too; events handled already run again,
//!   harmlessly, by their steps' keys.
//! - **A takeover resumes in order**: events a previous holder had in hand and never acked (it was
//!   killed) would come back only after `ack_wait`, behind newer ones; so the new holder rewinds
//!   the consumer to just after its ack floor (deletes and recreates it from there), and those
//!   events come first again. Events past the floor that were acked already run again: their
//!   steps' keys make that harmless.
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
use hooklog_domain::repository_connection::{ConnectionEvent, ConnectionId};
use hooklog_infra::metrics::{PROCESS_MANAGER_EVENTS, PROCESS_MANAGER_STEPS};
use hooklog_infra::nats::durable::{self, Delivered};
use hooklog_infra::postgres::Lease;
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
    /// The first pause after a retryable failure; doubles up to `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// Events handed to the process manager at once, at most (its consumer's `max_ack_pending`).
    pub batch_size: usize,
    /// How often a process manager standing by tries to take the lease.
    pub lock_retry: Duration,
}

/// Key of the session-level advisory lock the working process manager holds: the ASCII bytes of
/// `hooklog` followed by `0x02`, read as a big-endian `i64` (the relay's is `0x01`).
pub const LEASE_KEY: i64 = 0x686f_6f6b_6c6f_6702;

impl Default for ProcessManagerConfig {
    fn default() -> Self {
        Self {
            durable_name: "hooklog-process-manager".to_owned(),
            ack_wait: Duration::from_secs(30),
            progress_interval: Duration::from_secs(10),
            retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
            batch_size: 256,
            lock_retry: Duration::from_secs(1),
        }
    }
}

impl ProcessManagerConfig {
    fn consumer_config(&self, deliver_policy: DeliverPolicy) -> pull::Config {
        pull::Config {
            durable_name: Some(self.durable_name.clone()),
            description: Some("hooklog process manager: events into cascades".to_owned()),
            deliver_policy,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: -1,
            // One batch in hand; only the lease holder consumes.
            max_ack_pending: i64::try_from(self.batch_size.max(1)).unwrap_or(1024),
            filter_subjects: vec![
                format!("{EVENTS_SUBJECT_PREFIX}.ConnectorInstance.>"),
                format!("{EVENTS_SUBJECT_PREFIX}.ConnectorTarget.>"),
                format!("{EVENTS_SUBJECT_PREFIX}.RepositoryConnection.>"),
            ],
            ..Default::default()
        }
    }
}

/// Consumes until `shutdown`, then lets the event in hand finish, as one of possibly several
/// process managers of which only the holder of [`LEASE_KEY`] works. Survives NATS and
/// PostgreSQL outages: it waits and resumes from its checkpoint.
pub async fn run(
    config: ProcessManagerConfig,
    bus: CommandBus,
    jetstream: jetstream::Context,
    shutdown: CancellationToken,
) {
    let mut standing_by = false;
    while !shutdown.is_cancelled() {
        match Lease::take(bus.pool(), LEASE_KEY).await {
            Ok(Some(lease)) => {
                standing_by = false;
                lead(&config, &bus, &jetstream, lease, &shutdown).await;
            }
            Ok(None) if !standing_by => {
                tracing::info!("another process manager holds the lease; standing by");
                standing_by = true;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "cannot take the process manager lease yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.lock_retry) => {}
        }
    }
    tracing::info!("process manager stopped");
}

/// Works while the lease holds: rewinds the consumer past a predecessor's unacked events, then
/// handles batches in order.
async fn lead(
    config: &ProcessManagerConfig,
    bus: &CommandBus,
    jetstream: &jetstream::Context,
    lease: Lease,
    shutdown: &CancellationToken,
) {
    tracing::info!("took the process manager lease; handling events");
    if let Err(err) = rewind(config, jetstream).await {
        tracing::warn!(error = %err, "cannot read the process manager's consumer yet");
        lease.release().await;
        return;
    }
    let lease = tokio::sync::Mutex::new(lease);
    let lost = shutdown.child_token();
    durable::consume_batches(
        jetstream,
        EVENTS_STREAM,
        config.consumer_config(DeliverPolicy::All),
        config.batch_size,
        lost.clone(),
        |batch| async {
            if let Err(err) = lease.lock().await.check().await {
                // Another process manager may hold it now: hand these events back unacked.
                tracing::error!(error = %err, "lost the process manager lease; standing down");
                lost.cancel();
                return;
            }
            for delivered in batch {
                if lost.is_cancelled() {
                    return;
                }
                handle(config, bus, delivered, &lost).await;
            }
        },
    )
    .await;
    lease.into_inner().release().await;
}

/// Brings the consumer to this configuration (its batch size), and when events were handed out
/// and never acked (a holder killed with a batch in hand), which would come back after
/// `ack_wait` behind newer events, recreates it just after its ack floor so they come first.
async fn rewind(
    config: &ProcessManagerConfig,
    jetstream: &jetstream::Context,
) -> Result<(), String> {
    let stream = jetstream
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|e| e.to_string())?;
    let Ok(info) = stream.consumer_info(&config.durable_name).await else {
        return Ok(()); // not created yet: it starts at the beginning
    };
    let wanted = config.consumer_config(info.config.deliver_policy);
    if info.config.filter_subjects != wanted.filter_subjects {
        // Made by an earlier hooklog that consumed fewer aggregate types: the events of the new
        // ones already behind its position would never be handed out. Start again from the
        // first event; the steps already taken have their keys and change nothing.
        tracing::info!(
            from = ?info.config.filter_subjects,
            to = ?wanted.filter_subjects,
            "the process manager consumes more aggregate types now; reading the events again \
             from the start"
        );
        return recreate(config, &stream, DeliverPolicy::All).await;
    }
    if info.config.max_ack_pending != wanted.max_ack_pending {
        // Made by an earlier hooklog (one event at a time) or another batch size.
        stream
            .update_consumer(wanted)
            .await
            .map_err(|e| e.to_string())?;
    }
    if info.num_ack_pending == 0 {
        return Ok(());
    }
    let floor = info.ack_floor.stream_sequence;
    tracing::info!(
        in_hand = info.num_ack_pending,
        ack_floor = floor,
        "a previous process manager left events unacked; resuming right after its ack floor"
    );
    let from = DeliverPolicy::ByStartSequence {
        start_sequence: floor + 1,
    };
    recreate(config, &stream, from).await
}

/// Deletes the consumer and creates it again, delivering `from`.
async fn recreate(
    config: &ProcessManagerConfig,
    stream: &jetstream::stream::Stream,
    from: DeliverPolicy,
) -> Result<(), String> {
    stream
        .delete_consumer(&config.durable_name)
        .await
        .map_err(|e| e.to_string())?;
    stream
        .create_consumer(config.consumer_config(from))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(stream_seq = delivered.stream_sequence))]
async fn handle(
    config: &ProcessManagerConfig,
    bus: &CommandBus,
    delivered: Delivered,
    stop: &CancellationToken,
) {
    let message = &delivered.message;
    let mut failures: i64 = 0;
    let kind = loop {
        let outcome =
            durable::with_progress(message, config.progress_interval, react(bus, &delivered)).await;
        match outcome {
            Ok(None) => {
                metrics::counter!(PROCESS_MANAGER_EVENTS, "result" => "none").increment(1);
                break AckKind::Ack;
            }
            Ok(Some(reacted)) => {
                metrics::counter!(PROCESS_MANAGER_EVENTS, "result" => "reacted").increment(1);
                let done = reacted.steps - reacted.refused;
                metrics::counter!(PROCESS_MANAGER_STEPS, "result" => "done").increment(done as u64);
                metrics::counter!(PROCESS_MANAGER_STEPS, "result" => "refused")
                    .increment(reacted.refused as u64);
                metrics::counter!(PROCESS_MANAGER_STEPS, "result" => "compensated")
                    .increment(reacted.compensated as u64);
                break AckKind::Ack;
            }
            Err(Unhandled::Retry(reason)) => {
                metrics::counter!(PROCESS_MANAGER_EVENTS, "result" => "retry").increment(1);
                failures += 1;
                let delay =
                    durable::retry_delay(config.retry_delay, failures, config.max_retry_delay);
                tracing::warn!(failures, ?delay, reason = %reason, "event's steps will be retried; later events wait behind it");
                let pause = durable::with_progress(
                    message,
                    config.progress_interval,
                    tokio::time::sleep(delay),
                );
                tokio::select! {
                    // Unacked, it is handed out again, first.
                    () = stop.cancelled() => return,
                    () = pause => {}
                }
            }
            Err(Unhandled::Unreadable(reason)) => {
                metrics::counter!(PROCESS_MANAGER_EVENTS, "result" => "unreadable").increment(1);
                tracing::error!(reason = %reason, "an event the process manager cannot read; its cascade needs a person");
                break AckKind::Term;
            }
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
        "RepositoryConnection" => {
            let id = ConnectionId::parse(&aggregate_id)
                .map_err(|e| Unhandled::Unreadable(e.to_string()))?;
            let event: ConnectionEvent = serde_json::from_slice(payload)
                .map_err(|e| Unhandled::Unreadable(format!("{aggregate_type} payload: {e}")))?;
            Committed::connection(bus, id, event).await?
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
