//! The syncer's durable pull consumer (`hooklog-syncer`) on the `ConnectorTarget` subjects of
//! `HOOKLOG_EVENTS`. Every `SyncRequested` is handed to the executor; other target events are
//! acked at once. While a sync runs the message is kept with in-progress acks, so a long sync is
//! not handed to another syncer; a crash leaves it unacked, and JetStream hands it out again
//! after `ack_wait` (the executor then finishes it and reports it once).

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind, Message};
use hooklog_domain::connector_target::TargetEvent;
use hooklog_domain::ids::TargetId;
use hooklog_domain::metadata::keys;
use hooklog_infra::nats::durable::{self, Delivered};
use hooklog_infra::streams::{event_headers, EVENTS_STREAM, EVENTS_SUBJECT_PREFIX};
use tokio_util::sync::CancellationToken;

use crate::config::SyncerConfig;
use crate::executor::{Executor, Settled};

fn consumer_config(config: &SyncerConfig) -> pull::Config {
    pull::Config {
        durable_name: Some(config.durable_name.clone()),
        description: Some("hooklog syncer: SyncRequested into synced files".to_owned()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: config.ack_wait,
        max_deliver: -1,
        max_ack_pending: config.max_ack_pending,
        filter_subject: format!("{EVENTS_SUBJECT_PREFIX}.ConnectorTarget.>"),
        ..Default::default()
    }
}

/// Consumes until `shutdown`, then lets the syncs in hand finish. Survives NATS and PostgreSQL
/// outages: it waits and resumes.
pub async fn run(
    config: SyncerConfig,
    executor: Executor,
    jetstream: jetstream::Context,
    shutdown: CancellationToken,
) {
    durable::consume(
        &jetstream,
        EVENTS_STREAM,
        consumer_config(&config),
        config.concurrency,
        shutdown,
        |message| handle(&config, &executor, message),
    )
    .await;
    tracing::info!("syncer stopped");
}

#[tracing::instrument(skip_all, fields(stream_seq = delivered.stream_sequence))]
async fn handle(config: &SyncerConfig, executor: &Executor, delivered: Delivered) {
    let attempts = delivered.attempts;
    let header = |name: &str| delivered.header(name);
    let message = &delivered.message;
    if header(event_headers::EVENT_TYPE).as_deref() != Some("SyncRequested") {
        ack(message, AckKind::Ack).await;
        return;
    }
    let request = header(event_headers::AGGREGATE_ID)
        .and_then(|id| TargetId::parse(&id).ok())
        .zip(serde_json::from_slice::<TargetEvent>(&message.payload).ok());
    let (target, sync_id) = match request {
        Some((target, TargetEvent::SyncRequested { sync_id, .. })) => (target, sync_id),
        _ => {
            // The reconcile loop finds the request in the read model and runs it.
            tracing::error!("a SyncRequested the syncer cannot read; left to the reconcile loop");
            ack(message, AckKind::Term).await;
            return;
        }
    };
    let correlation = header(&format!(
        "{}{}",
        event_headers::METADATA_PREFIX,
        keys::CORRELATION_ID
    ))
    .unwrap_or_else(|| sync_id.to_string());

    let execute = executor.execute(target, sync_id, &correlation);
    let outcome = durable::with_progress(message, config.progress_interval, execute).await;
    let kind = match outcome {
        Ok(Settled::Completed(result)) => {
            tracing::debug!(status = ?result.status, "sync reported");
            AckKind::Ack
        }
        Ok(Settled::Failed { .. } | Settled::NotInFlight) => AckKind::Ack,
        Err(retry) => {
            let delay = config.retry_delay(attempts);
            tracing::warn!(reason = %retry, attempts, ?delay, "sync will be retried");
            AckKind::Nak(Some(delay))
        }
    };
    ack(message, kind).await;
}

async fn ack(message: &Message, kind: AckKind) {
    if let Err(err) = message.ack_with(kind).await {
        // The message comes back after `ack_wait`; the executor makes that harmless.
        tracing::warn!(error = %err, "ack failed");
    }
}
