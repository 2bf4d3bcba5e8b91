//! [`run`]: the relay loop. Take the lock, or stand by; while holding it, publish the outbox in
//! order and delete what JetStream acknowledged; on any Postgres failure, start over.
//!
//! Per-aggregate order: an aggregate's rows are published in `id` order, each only once the one
//! before it is acknowledged (rows of different aggregates share round trips, see
//! [`relay_rows`]). That is each aggregate's sequence order because `events` has the primary key
//! `(aggregate_type, aggregate_id, sequence)` and postgres-es appends event n+1 only after loading
//! event n: either in the same transaction, after n's insert (so n+1's trigger draws the larger
//! id from the `bigserial`), or in a later one, which can only see n once n has committed (and
//! drawn its id). Two writers racing for the same sequence collide on the primary key and one
//! rolls back, taking its outbox row with it. So for one aggregate, a larger sequence always has
//! a larger id, and is never visible before the smaller one. Across aggregates, ids may commit out
//! of order; rows are deleted (not tracked by a high-water mark), so a late commit is never
//! skipped, only published after others.

use std::collections::HashMap;
use std::convert::Infallible;

use async_nats::jetstream;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::first_pass::{Check, FirstPass};
use crate::message::EventMessage;
use crate::outbox::{self, OutboxRow, Session};
use crate::publish::{Published, Publisher};
use crate::{RelayConfig, RelayError};

/// Publishes every committed event from the outbox to `HOOKLOG_EVENTS` until `shutdown` is
/// cancelled, as one of possibly several relays of which only the holder of the Postgres
/// advisory lock [`ADVISORY_LOCK_KEY`](crate::ADVISORY_LOCK_KEY) works; the others stand by.
///
/// The caller creates the stream first (`hooklog_infra::streams::ensure_events_stream`); while it
/// is missing, publishes are retried. Postgres or NATS outages are logged and waited out; this
/// returns `Ok` on shutdown and an error only for settings that cannot work. The relay uses two
/// connections of its own, made with `pool`'s settings: the lock session and a listener.
pub async fn run(
    config: RelayConfig,
    pool: PgPool,
    jetstream: jetstream::Context,
    shutdown: CancellationToken,
) -> Result<(), RelayError> {
    config.validate()?;
    let mut relay = Relay {
        publisher: Publisher::new(jetstream, config.publish_timeout),
        config,
        pool,
        session: None,
        standing_by: false,
        failures: 0,
    };
    loop {
        let turn = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            turn = relay.turn() => turn,
        };
        match turn {
            Ok(()) => relay.failures = 0,
            Err(err) => {
                relay.failures = relay.failures.saturating_add(1);
                relay.standing_by = false;
                let retry_in = relay.config.lock_retry;
                // The first failure of a run is an error; the rest of an outage, warnings.
                if relay.failures == 1 {
                    tracing::error!(error = %err, ?retry_in, "relay interrupted; taking the lock again");
                } else {
                    tracing::warn!(error = %err, ?retry_in, failures = relay.failures, "relay still interrupted");
                }
            }
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(relay.config.lock_retry) => {}
        }
    }
    if let Some(session) = relay.session.take() {
        session.close().await;
    }
    tracing::info!("relay stopped");
    Ok(())
}

struct Relay {
    config: RelayConfig,
    pool: PgPool,
    publisher: Publisher,
    /// The lock session, kept while standing by so each retry is one statement.
    session: Option<Session>,
    standing_by: bool,
    /// Failed turns in a row.
    failures: u32,
}

impl Relay {
    /// Tries to take the lock. Returns `Ok` when another relay holds it; otherwise relays until
    /// something fails.
    async fn turn(&mut self) -> Result<(), RelayError> {
        // A failed statement drops the session: it may be broken, and with it goes the lock.
        let mut session = match self.session.take() {
            Some(session) => session,
            None => Session::connect(&self.pool).await?,
        };
        if !session.try_lock().await? {
            if self.standing_by {
                tracing::debug!("another relay still holds the lock");
            } else {
                tracing::info!("another relay holds the lock; standing by");
                self.standing_by = true;
            }
            self.session = Some(session);
            return Ok(());
        }
        self.standing_by = false;
        self.failures = 0;
        tracing::info!("took the relay lock; publishing the outbox");
        lead(&mut session, &self.publisher, &self.config, &self.pool)
            .await
            .map(|never| match never {})
    }
}

/// Relays while holding the lock, until a Postgres step fails (or the future is dropped).
async fn lead(
    session: &mut Session,
    publisher: &Publisher,
    config: &RelayConfig,
    pool: &PgPool,
) -> Result<Infallible, RelayError> {
    // Listen before the first read, so that no commit after that read goes unnoticed.
    let mut listener = outbox::listen(pool).await?;
    let mut first_pass = FirstPass::new(session.last_id().await?);
    let limit = i64::try_from(config.batch_size).unwrap_or(i64::MAX);
    loop {
        let rows = session.fetch(limit).await?;
        let full = rows.len() == config.batch_size;
        relay_batch(session, publisher, config, &rows, &mut first_pass).await?;
        if !full {
            wait_for_commits(&mut listener, config).await?;
        }
    }
}

/// Publishes `rows`, then deletes those JetStream acknowledged. Stops at a row that can never be
/// published, or when the session is lost while a publish is pending, after deleting the rows
/// published so far (which fails too when the session is gone: they are checked against the
/// stream by the next lock holder).
async fn relay_batch(
    session: &mut Session,
    publisher: &Publisher,
    config: &RelayConfig,
    rows: &[OutboxRow],
    first_pass: &mut FirstPass,
) -> Result<(), RelayError> {
    let mut done = Vec::with_capacity(rows.len());
    let relayed = tokio::select! {
        relayed = relay_rows(publisher, rows, first_pass, &mut done) => relayed,
        lost = watch_session(session, config) => Err(lost),
    };
    session.delete(&done).await?;
    relayed
}

/// Publishes `rows` (in id order), pushing the id of each one stored onto `done`.
///
/// Rows of the first pass go one at a time, each checked against the stream as it comes. The
/// others, which nobody else can have published, go in waves: wave k holds the k-th row of each
/// aggregate in the batch, its PubAcks awaited together, and wave k+1 is sent only once all of
/// wave k is stored. An aggregate's event n+1 is thus never sent before event n is on the
/// stream, and a batch of events of different aggregates costs one round trip, not one each.
/// Nothing at or after a row that can never be published is sent.
async fn relay_rows(
    publisher: &Publisher,
    rows: &[OutboxRow],
    first_pass: &mut FirstPass,
    done: &mut Vec<i64>,
) -> Result<(), RelayError> {
    let mut rest = rows;
    while let Some((row, tail)) = rest.split_first() {
        if !first_pass.covers(row.id) {
            break;
        }
        let span = tracing::info_span!(
            "relay_event",
            outbox_id = row.id,
            aggregate_type = %row.aggregate_type,
            aggregate_id = %row.aggregate_id,
            sequence = row.sequence,
        );
        relay_row(publisher, row, first_pass)
            .instrument(span)
            .await?;
        done.push(row.id);
        rest = tail;
    }
    let mut messages = Vec::with_capacity(rest.len());
    let mut unpublishable = None;
    for row in rest {
        match EventMessage::from_row(row) {
            Ok(message) => messages.push((row.id, message)),
            Err(err) => {
                unpublishable = Some(err);
                break;
            }
        }
    }
    for wave in waves(&messages) {
        let sent: Vec<&EventMessage> = wave.iter().map(|&i| &messages[i].1).collect();
        publisher.publish_wave(&sent).await;
        done.extend(wave.iter().map(|&i| messages[i].0));
    }
    unpublishable.map_or(Ok(()), Err)
}

/// Splits messages (in id order) into waves: the indices of each subject's first message, then
/// of each subject's second, and so on, each wave in id order.
fn waves(messages: &[(i64, EventMessage)]) -> Vec<Vec<usize>> {
    let mut depth: HashMap<&str, usize> = HashMap::new();
    let mut waves: Vec<Vec<usize>> = vec![];
    for (index, (_, message)) in messages.iter().enumerate() {
        let depth = depth.entry(message.subject.as_str()).or_default();
        if waves.len() == *depth {
            waves.push(vec![]);
        }
        waves[*depth].push(index);
        *depth += 1;
    }
    waves
}

async fn relay_row(
    publisher: &Publisher,
    row: &OutboxRow,
    first_pass: &mut FirstPass,
) -> Result<(), RelayError> {
    let message = EventMessage::from_row(row)?;
    let published = match first_pass.check(row.id, &message.subject, message.sequence) {
        Check::AlreadyOnStream { last_sequence } => Published::AlreadyOnStream { last_sequence },
        Check::AskStream => publisher.publish(&message, true).await,
        Check::Publish => publisher.publish(&message, false).await,
    };
    match published {
        Published::Stored {
            stream_seq,
            duplicate,
        } => {
            first_pass.record(&message.subject, message.sequence);
            tracing::debug!(stream_seq, duplicate, "event published");
        }
        Published::AlreadyOnStream { last_sequence } => {
            first_pass.record(&message.subject, last_sequence);
            tracing::info!(
                last_sequence,
                "event already on the stream (stored by an earlier attempt or relay); not publishing it again"
            );
        }
    }
    Ok(())
}

/// Pings the lock session every `poll_interval` while a publish is pending (NATS may be down for
/// long), and returns the error once it is lost: by then another relay may hold the lock, and
/// this one must stop publishing.
async fn watch_session(session: &mut Session, config: &RelayConfig) -> RelayError {
    loop {
        tokio::time::sleep(config.poll_interval).await;
        if let Err(err) = session.ping().await {
            return err;
        }
    }
}

/// Waits for a commit notification, or `poll_interval` at most.
async fn wait_for_commits(
    listener: &mut PgListener,
    config: &RelayConfig,
) -> Result<(), RelayError> {
    tokio::select! {
        received = listener.recv() => {
            received.map_err(RelayError::postgres("waiting for outbox notifications"))?;
            // One read serves every commit notified so far.
            while listener.next_buffered().is_some() {}
        }
        () = tokio::time::sleep(config.poll_interval) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: i64, aggregate: &str, sequence: i64) -> (i64, EventMessage) {
        let row = OutboxRow {
            id,
            aggregate_type: "ConnectorTarget".to_owned(),
            aggregate_id: aggregate.to_owned(),
            sequence,
            event_type: "PushRecorded".to_owned(),
            event_version: "1".to_owned(),
            payload: "{}".to_owned(),
            metadata: "{}".to_owned(),
        };
        (id, EventMessage::from_row(&row).expect("a publishable row"))
    }

    #[test]
    fn each_wave_holds_at_most_one_event_per_aggregate_in_sequence_order() {
        let messages = [
            message(1, "a", 1),
            message(2, "a", 2),
            message(3, "b", 7),
            message(4, "c", 1),
            message(5, "a", 3),
            message(6, "b", 8),
        ];
        assert_eq!(waves(&messages), vec![vec![0, 2, 3], vec![1, 5], vec![4]]);
        assert!(waves(&[]).is_empty());
    }
}
