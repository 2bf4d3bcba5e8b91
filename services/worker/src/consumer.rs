//! The delivery worker: a durable pull consumer on `GITHUB_DELIVERIES`. Each message is acked
//! only after its command committed and its decision was recorded (a `Delivery` event:
//! processed, ignored or dead-lettered, once per delivery id), and reported in progress
//! while it runs (so a slow one is not handed to a second worker); a retryable failure (the
//! event store down, an aggregate conflict) is `nak`ed with a growing delay; a poison message is
//! decided as a dead letter (`DeliveryDeadLettered`), then `term`inated. Several workers may share the durable consumer:
//! JetStream hands each message to one of them at a time.
//! Each settled delivery is counted by outcome (`hooklog_worker_deliveries_total`).

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind};
use hooklog_infra::metrics::{DEAD_LETTERS_RECORDED, WORKER_DELIVERIES};
use hooklog_infra::nats::durable::{self, Delivered};
use hooklog_infra::streams::{delivery_headers, DELIVERIES_STREAM, DELIVERIES_SUBJECT_PREFIX};
use tokio_util::sync::CancellationToken;

use hooklog_domain::delivery::{
    DecideDelivery, Decision, DeliveryError, DeliveryKey, StreamPosition,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_write::CommandError;

use crate::process::{Delivery, Failure, OutcomeKind, Processor};

/// How the worker consumes.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The durable consumer's name: workers with the same name share the work.
    pub durable_name: String,
    /// Messages handed out and not yet acked, across all workers of the consumer.
    pub max_ack_pending: i64,
    /// Messages one worker processes at once.
    pub concurrency: usize,
    /// How long JetStream waits for an ack before handing the message out again.
    pub ack_wait: Duration,
    /// How often a delivery still being handled is reported in progress, well below
    /// `ack_wait`, so a slow one is never handed to a second worker meanwhile.
    pub progress_interval: Duration,
    /// The first `nak` delay; it doubles with each attempt up to `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            durable_name: "hooklog-worker".to_owned(),
            max_ack_pending: 1024,
            concurrency: 32,
            ack_wait: Duration::from_secs(30),
            progress_interval: Duration::from_secs(10),
            retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
        }
    }
}

impl WorkerConfig {
    fn consumer_config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.durable_name.clone()),
            description: Some("hooklog worker: deliveries into commands".to_owned()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: -1,
            max_ack_pending: self.max_ack_pending,
            filter_subject: format!("{DELIVERIES_SUBJECT_PREFIX}.>"),
            ..Default::default()
        }
    }

    fn retry_delay(&self, attempts: i64) -> Duration {
        durable::retry_delay(self.retry_delay, attempts, self.max_retry_delay)
    }
}

/// Consumes until `shutdown`, then lets the messages in hand finish. Survives NATS and
/// PostgreSQL outages: it waits and resumes.
pub async fn run(
    config: WorkerConfig,
    processor: Processor,
    jetstream: jetstream::Context,
    shutdown: CancellationToken,
) {
    let worker = Worker { config, processor };
    durable::consume(
        &jetstream,
        DELIVERIES_STREAM,
        worker.config.consumer_config(),
        worker.config.concurrency,
        shutdown,
        |message| worker.handle(message),
    )
    .await;
    tracing::info!("worker stopped");
}

struct Worker {
    config: WorkerConfig,
    processor: Processor,
}

/// A delivery as the consumer sees it: its id, its key and where it sits on the stream.
struct Handed {
    delivery_id: String,
    key: DeliveryKey,
    position: StreamPosition,
}

impl Worker {
    #[tracing::instrument(skip_all, fields(stream_seq = delivered.stream_sequence))]
    async fn handle(&self, delivered: Delivered) {
        let (sequence, attempts) = (delivered.stream_sequence, delivered.attempts);
        let header = |name: &str| delivered.header(name);
        let message = &delivered.message;
        let event = header(delivery_headers::EVENT).unwrap_or_default();
        let delivery_id =
            header(delivery_headers::DELIVERY).unwrap_or_else(|| format!("stream-seq-{sequence}"));
        let content_type = header(delivery_headers::CONTENT_TYPE);
        let handed = Handed {
            key: DeliveryKey::for_delivery(&delivery_id),
            position: StreamPosition {
                event: event.clone(),
                stream_sequence: sequence,
                attempts: u64::try_from(attempts).unwrap_or(0),
            },
            delivery_id: delivery_id.clone(),
        };
        let delivery = Delivery {
            delivery_id: &delivery_id,
            event: &event,
            content_type: content_type.as_deref(),
            body: &message.payload,
        };
        let started = std::time::Instant::now();
        let settled = durable::with_progress(
            message,
            self.config.progress_interval,
            self.settle(&handed, delivery),
        )
        .await;
        tracing::debug!(delivery_id = %delivery_id, elapsed_us = started.elapsed().as_micros() as u64, "delivery settled");
        let ack = match settled {
            Ok(()) => AckKind::Ack,
            Err(Failure::Retry(reason)) => {
                let delay = self.config.retry_delay(attempts);
                tracing::warn!(delivery_id = %delivery_id, attempts, ?delay, reason = %reason, "delivery will be retried");
                AckKind::Nak(Some(delay))
            }
            Err(Failure::Poison(reason)) => {
                let decision = Decision::DeadLettered {
                    reason: reason.clone(),
                };
                match self.decide(&handed, decision).await {
                    Ok(()) => {
                        tracing::error!(delivery_id = %delivery_id, reason = %reason, "dead letter");
                        metrics::counter!(WORKER_DELIVERIES, "outcome" => "dead_letter")
                            .increment(1);
                        metrics::counter!(DEAD_LETTERS_RECORDED).increment(1);
                        AckKind::Term
                    }
                    Err(err) => {
                        tracing::warn!(delivery_id = %delivery_id, error = %err, "cannot record dead letter yet");
                        AckKind::Nak(Some(self.config.retry_delay(attempts)))
                    }
                }
            }
        };
        if let Err(err) = message.ack_with(ack).await {
            // The message comes back after `ack_wait`; idempotence makes that harmless.
            tracing::warn!(delivery_id = %delivery_id, error = %err, "ack failed");
        }
    }

    /// Processes a delivery unless it was decided already, then records the decision.
    async fn settle(&self, handed: &Handed, delivery: Delivery<'_>) -> Result<(), Failure> {
        let state = self
            .processor
            .bus()
            .load_delivery(&handed.key)
            .await
            .map_err(|err| Failure::Retry(err.to_string()))?;
        if let Some(outcome) = state.decided() {
            tracing::info!(delivery_id = %handed.delivery_id, outcome = outcome.as_str(), "delivery already decided; redelivery changes nothing");
            return Ok(());
        }
        if delivery.event.is_empty() {
            return Err(Failure::Poison(
                "the message has no X-GitHub-Event header".to_owned(),
            ));
        }
        let outcome = self.processor.process(delivery).await?;
        tracing::info!(delivery_id = %handed.delivery_id, outcome = outcome.kind.as_str(), detail = %outcome.detail, "delivery processed");
        let kind = outcome.kind;
        let decision = match kind {
            OutcomeKind::Processed => Decision::Processed {
                detail: outcome.detail,
                commands: outcome.commands,
            },
            OutcomeKind::Ignored => Decision::Ignored {
                reason: outcome.detail,
            },
        };
        self.decide(handed, decision).await?;
        metrics::counter!(WORKER_DELIVERIES, "outcome" => kind.as_str()).increment(1);
        Ok(())
    }

    /// Records `decision` as the delivery's `Delivery` event. A decision already there (a
    /// second worker got there first) stands.
    async fn decide(&self, handed: &Handed, decision: Decision) -> Result<(), Failure> {
        let command = DecideDelivery {
            delivery_id: handed.delivery_id.clone(),
            position: handed.position.clone(),
            decision,
        };
        let meta = CommandMetadata::from_delivery(&handed.delivery_id);
        match self
            .processor
            .bus()
            .delivery(&handed.key, command, &meta)
            .await
        {
            Ok(_) | Err(CommandError::Rejected(DeliveryError::AlreadyDecided(..))) => Ok(()),
            Err(err) if err.is_retryable() => Err(Failure::Retry(err.to_string())),
            Err(err) => Err(Failure::Poison(err.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_limit() {
        let config = WorkerConfig::default();
        assert_eq!(config.retry_delay(1), Duration::from_millis(500));
        assert_eq!(config.retry_delay(2), Duration::from_secs(1));
        assert_eq!(config.retry_delay(4), Duration::from_secs(4));
        assert_eq!(config.retry_delay(50), Duration::from_secs(30));
        assert_eq!(config.retry_delay(i64::MAX), Duration::from_secs(30));
    }
}
