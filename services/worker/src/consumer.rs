//! The delivery worker: a durable pull consumer on `GITHUB_DELIVERIES`. Each message is acked
//! only after its command committed and its decision was recorded (a `Delivery` event:
//! processed, ignored or dead-lettered, once per delivery id), and reported in progress
//! while it runs (so a slow one is not handed to a second worker); a retryable failure (the
//! event store down, an aggregate conflict) is `nak`ed with a growing delay; a poison message is
//! decided as a dead letter (`DeliveryDeadLettered`), then `term`inated. Several workers may share the durable consumer:
//! JetStream hands each message to one of them at a time.
//! Each settled delivery is counted by outcome (`hooklog_worker_deliveries_total`).
//!
//! **Batches.** The worker takes every message that has arrived, up to `batch_size`, and
//! decides them together on one `hooklog_write::Batch`: one pair of queries loads every
//! delivery's decision and every aggregate the batch names, each delivery's commands and its
//! decision are decided in memory in stream order (so two deliveries to one aggregate see each
//! other, as one after the other on the bus), and one statement commits them all. What that
//! keeps:
//! - *acked only after commit*: no message of a batch is acked before its commit returned;
//! - *idempotent per delivery id*: a delivery decided before (by an earlier batch, another
//!   worker, or a copy earlier in the same batch) is acked and runs nothing; its commands carry
//!   the delivery's key, as on the bus;
//! - *per aggregate order*: batches run one at a time, their deliveries in stream order;
//! - *a poison message is isolated*: it is rolled back to the savepoint taken before it and
//!   decided as a dead letter in the same commit; a delivery that must wait (its aggregate could
//!   not be loaded) is rolled back and `nak`ed; the rest of the batch commits;
//! - *nothing half done*: a commit that fails (another process wrote to one of the batch's
//!   aggregates first, or PostgreSQL failed) writes nothing, and the batch's deliveries are then
//!   decided one at a time through the bus, whose conflict retries and failure mapping are
//!   those of a lone delivery.

use std::time::Duration;

use futures::StreamExt;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind};
use hooklog_infra::metrics::{DEAD_LETTERS_RECORDED, WORKER_DELIVERIES};
use hooklog_infra::nats::durable::{self, Delivered};
use hooklog_infra::streams::{delivery_headers, DELIVERIES_STREAM, DELIVERIES_SUBJECT_PREFIX};
use tokio_util::sync::CancellationToken;

use hooklog_domain::delivery::{
    DecideDelivery, Decision, DeliveryError, DeliveryKey, Outcome, StreamPosition,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_write::{AggregateRef, Batch, CommandError};

use crate::authenticity;
use crate::process::{self, Delivery, Failure, OutcomeKind, Parsed, Processor};
use hooklog_domain::github::WebhookSecret;

/// How the worker consumes.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The durable consumer's name: workers with the same name share the work.
    pub durable_name: String,
    /// Messages handed out and not yet acked, across all workers of the consumer.
    pub max_ack_pending: i64,
    /// Messages one worker decides together, at most (what arrived while the last batch ran).
    pub batch_size: usize,
    /// Messages one worker processes at once when it decides them one at a time (a batch whose
    /// commit failed).
    pub concurrency: usize,
    /// How long JetStream waits for an ack before handing the message out again.
    pub ack_wait: Duration,
    /// How often a delivery still being handled is reported in progress, well below
    /// `ack_wait`, so a slow one is never handed to a second worker meanwhile.
    pub progress_interval: Duration,
    /// The first `nak` delay; it doubles with each attempt up to `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// The webhook secrets, current first: every delivery's signature is checked again with
    /// them before it is acted on ([`crate::authenticity`]).
    pub secrets: Vec<WebhookSecret>,
    /// Where repository connections' webhook secrets are (their deliveries are checked with
    /// their own connection's). With neither `secrets` nor a vault the worker does not consume.
    pub vault: Option<hooklog_write::vault::Vault>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            durable_name: hooklog_infra::streams::WORKER_CONSUMER.to_owned(),
            max_ack_pending: 1024,
            batch_size: 256,
            concurrency: 32,
            ack_wait: Duration::from_secs(30),
            progress_interval: Duration::from_secs(10),
            retry_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
            secrets: Vec::new(),
            vault: None,
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
    if config.secrets.is_empty() && config.vault.is_none() {
        tracing::error!(
            "neither HOOKLOG_GITHUB_WEBHOOK_SECRET nor HOOKLOG_SECRETS_KEY is set: the worker \
             cannot check deliveries' signatures and consumes nothing until one is set \
             (deliveries stay on the stream)"
        );
        shutdown.cancelled().await;
        return;
    }
    let worker = Worker { config, processor };
    durable::consume_batches(
        &jetstream,
        DELIVERIES_STREAM,
        worker.config.consumer_config(),
        worker.config.batch_size,
        shutdown,
        |batch| worker.handle_batch(batch),
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
    content_type: Option<String>,
}

impl Handed {
    fn new(delivered: &Delivered) -> Self {
        let sequence = delivered.stream_sequence;
        let event = delivered
            .header(delivery_headers::EVENT)
            .unwrap_or_default();
        let delivery_id = delivered
            .header(delivery_headers::DELIVERY)
            .unwrap_or_else(|| format!("stream-seq-{sequence}"));
        Self {
            key: DeliveryKey::for_delivery(&delivery_id),
            position: StreamPosition {
                event,
                stream_sequence: sequence,
                attempts: u64::try_from(delivered.attempts).unwrap_or(0),
            },
            content_type: delivered.header(delivery_headers::CONTENT_TYPE),
            delivery_id,
        }
    }

    fn delivery<'a>(&'a self, delivered: &'a Delivered) -> Delivery<'a> {
        Delivery {
            delivery_id: &self.delivery_id,
            event: &self.position.event,
            content_type: self.content_type.as_deref(),
            body: &delivered.message.payload,
        }
    }

    fn metadata(&self) -> CommandMetadata {
        CommandMetadata::from_delivery(&self.delivery_id)
    }

    fn decide(&self, decision: Decision) -> DecideDelivery {
        DecideDelivery {
            delivery_id: self.delivery_id.clone(),
            position: self.position.clone(),
            decision,
        }
    }
}

/// What a batch did with one of its deliveries.
enum Verdict {
    /// Decided now: processed or ignored (acked), or dead-lettered (terminated).
    Decided(Outcome, String),
    /// Decided before: acked, nothing run.
    AlreadyDecided(Outcome),
    /// Not decided: `nak`ed, to be tried again after a delay.
    Retry(String),
}

/// The decision an outcome is recorded as.
fn decision_of(outcome: crate::process::Outcome) -> Decision {
    match outcome.kind {
        OutcomeKind::Processed => Decision::Processed {
            detail: outcome.detail,
            commands: outcome.commands,
        },
        OutcomeKind::Ignored => Decision::Ignored {
            reason: outcome.detail,
        },
    }
}

impl Worker {
    /// Decides a batch together (see the module doc), then acks each message by its verdict;
    /// a batch that cannot commit is decided again one delivery at a time.
    async fn handle_batch(&self, batch: Vec<Delivered>) {
        let messages: Vec<&async_nats::jetstream::Message> =
            batch.iter().map(|d| &d.message).collect();
        let handed: Vec<Handed> = batch.iter().map(Handed::new).collect();
        let started = std::time::Instant::now();
        let decided = durable::with_progress_all(
            &messages,
            self.config.progress_interval,
            self.decide_batch(&batch, &handed),
        )
        .await;
        let verdicts = match decided {
            Ok(verdicts) => verdicts,
            Err(reason) => {
                tracing::warn!(deliveries = batch.len(), reason = %reason, "batch not committed; deciding its deliveries one at a time");
                futures::stream::iter(batch)
                    .for_each_concurrent(self.config.concurrency, |delivered| {
                        self.handle(delivered)
                    })
                    .await;
                return;
            }
        };
        tracing::debug!(
            deliveries = batch.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "batch committed"
        );
        let acks = batch.iter().zip(&handed).zip(verdicts).map(|((delivered, handed), verdict)| {
            let delivery_id = &handed.delivery_id;
            let ack = match verdict {
                Verdict::Decided(outcome, detail) => {
                    metrics::counter!(WORKER_DELIVERIES, "outcome" => outcome.as_str()).increment(1);
                    if outcome == Outcome::DeadLetter {
                        metrics::counter!(DEAD_LETTERS_RECORDED).increment(1);
                        tracing::error!(delivery_id = %delivery_id, reason = %detail, "dead letter");
                        AckKind::Term
                    } else {
                        tracing::info!(delivery_id = %delivery_id, outcome = outcome.as_str(), detail = %detail, "delivery processed");
                        AckKind::Ack
                    }
                }
                Verdict::AlreadyDecided(outcome) => {
                    tracing::info!(delivery_id = %delivery_id, outcome = outcome.as_str(), "delivery already decided; redelivery changes nothing");
                    AckKind::Ack
                }
                Verdict::Retry(reason) => {
                    let delay = self.config.retry_delay(delivered.attempts);
                    tracing::warn!(delivery_id = %delivery_id, attempts = delivered.attempts, ?delay, reason = %reason, "delivery will be retried");
                    AckKind::Nak(Some(delay))
                }
            };
            async move {
                if let Err(err) = delivered.message.ack_with(ack).await {
                    // The message comes back after `ack_wait`; idempotence makes that harmless.
                    tracing::warn!(delivery_id = %delivery_id, error = %err, "ack failed");
                }
            }
        });
        futures::future::join_all(acks).await;
    }

    /// Decides every delivery of the batch on one `Batch` and commits it; `Err` when nothing
    /// was committed.
    async fn decide_batch(
        &self,
        batch: &[Delivered],
        handed: &[Handed],
    ) -> Result<Vec<Verdict>, String> {
        let keys = handed
            .iter()
            .filter_map(|h| h.metadata().idempotency_key())
            .collect();
        let writes = self.processor.bus().batch(keys);
        let connections =
            authenticity::ConnectionKeys::load(self.config.vault.as_ref(), batch).await;
        let parsed: Vec<Result<Parsed, Failure>> = handed
            .iter()
            .zip(batch)
            .map(|(h, delivered)| self.verified(h, delivered, &connections))
            .collect();
        let named: Vec<AggregateRef> = handed
            .iter()
            .map(|h| AggregateRef::Delivery(h.key.clone()))
            .chain(parsed.iter().flatten().flat_map(Parsed::aggregates))
            .collect();
        writes.load(&named).await?;

        let mut verdicts = Vec::with_capacity(batch.len());
        for (h, parsed) in handed.iter().zip(parsed) {
            verdicts.push(self.decide_one(&writes, h, parsed).await);
        }
        writes.commit().await.map_err(|err| err.to_string())?;
        Ok(verdicts)
    }

    /// The delivery checked ([`authenticity`]) and decoded: the App's with the App's secrets,
    /// a repository connection's with its connection's, and decoded as that connection's.
    fn verified(
        &self,
        handed: &Handed,
        delivered: &Delivered,
        connections: &authenticity::ConnectionKeys,
    ) -> Result<Parsed, Failure> {
        if handed.position.event.is_empty() {
            return Err(Failure::Poison(
                "the message has no X-GitHub-Event header".to_owned(),
            ));
        }
        match authenticity::connection_of(delivered) {
            None => {
                authenticity::check(delivered, &self.config.secrets)?;
                Parsed::parse(handed.delivery(delivered))
            }
            Some(connection) => {
                authenticity::check(delivered, connections.secrets(&connection)?)?;
                Parsed::for_connection(&connection, handed.delivery(delivered))
            }
        }
    }

    /// One delivery of a batch: its commands and its decision, or nothing if it was decided
    /// before; what it did is rolled back unless its decision was recorded.
    async fn decide_one(
        &self,
        writes: &Batch<'_>,
        handed: &Handed,
        parsed: Result<Parsed, Failure>,
    ) -> Verdict {
        let state = match writes.load_delivery(&handed.key).await {
            Ok(state) => state,
            Err(err) => return Verdict::Retry(err.to_string()),
        };
        if let Some(outcome) = state.decided() {
            return Verdict::AlreadyDecided(outcome);
        }
        let savepoint = writes.savepoint();
        let meta = handed.metadata();
        let ran = match parsed {
            Ok(parsed) => process::run(writes, parsed, &meta).await,
            Err(failure) => Err(failure),
        };
        let (decided, detail, decision) = match ran {
            Ok(outcome) => {
                let decided = match outcome.kind {
                    OutcomeKind::Processed => Outcome::Processed,
                    OutcomeKind::Ignored => Outcome::Ignored,
                };
                (decided, outcome.detail.clone(), decision_of(outcome))
            }
            Err(Failure::Poison(reason)) => {
                writes.rollback(savepoint);
                return self.dead_letter(writes, handed, reason).await;
            }
            Err(Failure::Retry(reason)) => {
                writes.rollback(savepoint);
                return Verdict::Retry(reason);
            }
        };
        match writes
            .delivery(&handed.key, handed.decide(decision), &meta)
            .await
        {
            Ok(_) => Verdict::Decided(decided, detail),
            Err(err) => {
                // The commands stand or fall with their decision.
                writes.rollback(savepoint);
                Verdict::Retry(err.to_string())
            }
        }
    }

    async fn dead_letter(&self, writes: &Batch<'_>, handed: &Handed, reason: String) -> Verdict {
        let decision = handed.decide(Decision::DeadLettered {
            reason: reason.clone(),
        });
        match writes
            .delivery(&handed.key, decision, &handed.metadata())
            .await
        {
            Ok(_) => Verdict::Decided(Outcome::DeadLetter, reason),
            Err(err) => Verdict::Retry(err.to_string()),
        }
    }

    #[tracing::instrument(skip_all, fields(stream_seq = delivered.stream_sequence))]
    async fn handle(&self, delivered: Delivered) {
        let attempts = delivered.attempts;
        let message = &delivered.message;
        let handed = Handed::new(&delivered);
        let delivery_id = handed.delivery_id.clone();
        let delivery = handed.delivery(&delivered);
        let started = std::time::Instant::now();
        let settled = durable::with_progress(
            message,
            self.config.progress_interval,
            self.settle(&handed, &delivered, delivery),
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
    async fn settle(
        &self,
        handed: &Handed,
        delivered: &Delivered,
        delivery: Delivery<'_>,
    ) -> Result<(), Failure> {
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
        let connections = authenticity::ConnectionKeys::load(
            self.config.vault.as_ref(),
            std::slice::from_ref(delivered),
        )
        .await;
        let parsed = self.verified(handed, delivered, &connections)?;
        let outcome = self.processor.process(delivery.delivery_id, parsed).await?;
        tracing::info!(delivery_id = %handed.delivery_id, outcome = outcome.kind.as_str(), detail = %outcome.detail, "delivery processed");
        let kind = outcome.kind;
        self.decide(handed, decision_of(outcome)).await?;
        metrics::counter!(WORKER_DELIVERIES, "outcome" => kind.as_str()).increment(1);
        Ok(())
    }

    /// Records `decision` as the delivery's `Delivery` event. A decision already there (a
    /// second worker got there first) stands.
    async fn decide(&self, handed: &Handed, decision: Decision) -> Result<(), Failure> {
        match self
            .processor
            .bus()
            .delivery(&handed.key, handed.decide(decision), &handed.metadata())
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
