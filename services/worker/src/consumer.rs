//! The delivery worker: a durable pull consumer on `GITHUB_DELIVERIES`. Each message is acked
//! only after its commands committed and its outcome was recorded, and reported in progress
//! while it runs (so a slow one is not handed to a second worker); a retryable failure (the
//! event store down, an aggregate conflict) is `nak`ed with a growing delay; a poison message is
//! recorded as a dead letter, then `term`inated. Several workers may share the durable consumer:
//! JetStream hands each message to one of them at a time.
//! Each settled delivery is counted by outcome (`hooklog_worker_deliveries_total`).

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind};
use hooklog_infra::metrics::{DEAD_LETTERS_RECORDED, WORKER_DELIVERIES};
use hooklog_infra::nats::durable::{self, Delivered};
use hooklog_infra::streams::{delivery_headers, DELIVERIES_STREAM, DELIVERIES_SUBJECT_PREFIX};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::process::{Delivery, Failure, Processor};
use crate::records::{self, Position};

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
    pool: PgPool,
    jetstream: jetstream::Context,
    shutdown: CancellationToken,
) {
    let worker = Worker {
        config,
        processor,
        pool,
    };
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
    pool: PgPool,
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
        let position = Position {
            delivery_id: &delivery_id,
            event: &event,
            stream_sequence: sequence,
            attempts,
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
            self.settle(position, delivery),
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
                match records::record_dead_letter(&self.pool, position, &reason).await {
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

    /// Processes a delivery unless its outcome is already recorded, then records it.
    async fn settle(&self, position: Position<'_>, delivery: Delivery<'_>) -> Result<(), Failure> {
        let unavailable = |err: sqlx::Error| Failure::Retry(err.to_string());
        if let Some(outcome) = records::recorded_outcome(&self.pool, position.delivery_id)
            .await
            .map_err(unavailable)?
        {
            tracing::info!(delivery_id = %position.delivery_id, outcome = %outcome, "delivery already processed; redelivery changes nothing");
            return Ok(());
        }
        if delivery.event.is_empty() {
            return Err(Failure::Poison(
                "the message has no X-GitHub-Event header".to_owned(),
            ));
        }
        let outcome = self.processor.process(delivery).await?;
        tracing::info!(delivery_id = %position.delivery_id, outcome = outcome.kind.as_str(), detail = %outcome.detail, "delivery processed");
        records::record_outcome(&self.pool, position, &outcome)
            .await
            .map_err(unavailable)?;
        metrics::counter!(WORKER_DELIVERIES, "outcome" => outcome.kind.as_str()).increment(1);
        Ok(())
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
