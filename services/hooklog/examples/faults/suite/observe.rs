//! What the suite reads back, trusting nothing hooklog reports about itself: the deliveries
//! on `GITHUB_DELIVERIES` (by their `X-GitHub-Delivery` header), the decisions and sync events
//! in the event store (`events`), the outbox, the projections' checkpoints and the latest
//! checkpoint of each audit log.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use async_nats::jetstream::{self, consumer::pull, consumer::DeliverPolicy};
use futures::StreamExt;
use hooklog_infra::streams::{
    audit_checkpoint_subject, delivery_headers, AUDIT_STREAM, DELIVERIES_STREAM, EVENTS_STREAM,
};
use sqlx::PgPool;

/// The deliveries on `GITHUB_DELIVERIES`, read incrementally.
#[derive(Default)]
pub struct Stored {
    /// Delivery id to the number of messages carrying it.
    pub copies: HashMap<String, u32>,
    pub messages: u64,
    next: u64,
}

impl Stored {
    /// Reads what was appended since the last call.
    pub async fn catch_up(&mut self, js: &jetstream::Context) -> anyhow::Result<()> {
        let mut stream = js.get_stream(DELIVERIES_STREAM).await?;
        let last = stream.info().await?.state.last_sequence;
        let first = self.next.max(1);
        if last < first {
            return Ok(());
        }
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: first,
                },
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        while let Some(message) = messages.next().await {
            let message = message?;
            let info = message.info().map_err(|e| anyhow::anyhow!("{e}"))?;
            let (sequence, pending) = (info.stream_sequence, info.pending);
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get(delivery_headers::DELIVERY))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            *self.copies.entry(id).or_default() += 1;
            self.messages += 1;
            self.next = sequence + 1;
            if sequence >= last || pending == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// One sync of one target, from its events.
#[derive(Debug, Clone)]
pub struct SyncRun {
    pub target: String,
    pub head: String,
    pub reason: String,
    /// `completed`, `partial` or `failed`; `None` while in flight.
    pub outcome: Option<String>,
}

/// The event store's side.
#[derive(Default)]
pub struct Store {
    /// Delivery id to the decisions recorded for it (event types of its `Delivery` aggregate).
    pub decisions: HashMap<String, Vec<String>>,
    /// Decisions taken at a delivery's second or later hand-out to a worker (a killed worker's
    /// deliveries, a batch retried after an outage).
    pub decided_on_redelivery: u64,
    pub outbox: i64,
    /// Sync runs, each target's in the order they were requested.
    pub syncs: Vec<SyncRun>,
    /// Sync id to its place in `syncs`.
    index: HashMap<String, usize>,
    /// Each target's copy: the head of its last completed sync.
    pub copy_heads: HashMap<String, String>,
    pub removed_targets: Vec<String>,
    /// Projection name to (stream, position).
    pub positions: Vec<(String, String, i64)>,
}

impl Store {
    pub async fn read(pool: &PgPool) -> anyhow::Result<Self> {
        let mut store = Store::default();
        let decisions: Vec<(Option<String>, String, Option<String>)> = sqlx::query_as(
            "SELECT json_extract_path_text(payload, event_type, 'delivery_id'), event_type, \
               json_extract_path_text(payload, event_type, 'attempts') \
             FROM events WHERE aggregate_type = 'Delivery'",
        )
        .fetch_all(pool)
        .await
        .context("cannot read the decisions")?;
        for (id, kind, attempts) in decisions {
            if attempts
                .and_then(|a| a.parse::<u64>().ok())
                .is_some_and(|a| a > 1)
            {
                store.decided_on_redelivery += 1;
            }
            store
                .decisions
                .entry(id.unwrap_or_default())
                .or_default()
                .push(kind);
        }
        store.outbox = sqlx::query_scalar("SELECT count(*) FROM event_outbox")
            .fetch_one(pool)
            .await?;
        let target_events: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
            "SELECT aggregate_id, event_type, payload::jsonb FROM events \
             WHERE aggregate_type = 'ConnectorTarget' \
               AND event_type IN ('SyncRequested', 'SyncCompleted', 'SyncFailed', 'TargetRemoved') \
             ORDER BY aggregate_id, sequence",
        )
        .fetch_all(pool)
        .await
        .context("cannot read the targets' events")?;
        for (target, kind, payload) in target_events {
            let body = &payload[&kind];
            let text = |field: &str| body[field].as_str().unwrap_or_default().to_owned();
            match kind.as_str() {
                "SyncRequested" => {
                    store.index.insert(text("sync_id"), store.syncs.len());
                    store.syncs.push(SyncRun {
                        target,
                        head: text("head_sha"),
                        reason: text("reason"),
                        outcome: None,
                    });
                }
                "SyncCompleted" | "SyncFailed" => {
                    let outcome = match kind.as_str() {
                        "SyncFailed" => "failed".to_owned(),
                        _ => text("status"),
                    };
                    if outcome != "failed" {
                        store.copy_heads.insert(target.clone(), text("head_sha"));
                    }
                    if let Some(&i) = store.index.get(&text("sync_id")) {
                        store.syncs[i].outcome = Some(outcome);
                    }
                }
                _ => store.removed_targets.push(target),
            }
        }
        store.positions = sqlx::query_as(
            "SELECT projection, stream, position FROM projection_checkpoints ORDER BY projection",
        )
        .fetch_all(pool)
        .await?;
        Ok(store)
    }

    /// Syncs requested and not finished, of targets not removed.
    pub fn in_flight(&self) -> Vec<&SyncRun> {
        self.syncs
            .iter()
            .filter(|run| run.outcome.is_none() && !self.removed_targets.contains(&run.target))
            .collect()
    }

    /// (target, head) pairs completed more than once, with how often.
    pub fn double_syncs(&self) -> Vec<(String, String, usize)> {
        let mut done: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for run in &self.syncs {
            if matches!(run.outcome.as_deref(), Some("completed" | "partial")) {
                *done.entry((&run.target, &run.head)).or_default() += 1;
            }
        }
        done.into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|((t, h), n)| (t.to_owned(), h.to_owned(), n))
            .collect()
    }
}

/// Last sequence of a stream (0 when it is empty or missing).
pub async fn last_sequence(js: &jetstream::Context, name: &str) -> u64 {
    match js.get_stream(name).await {
        Ok(mut stream) => stream
            .info()
            .await
            .map(|i| i.state.last_sequence)
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// The tree size of the latest signed checkpoint of `log` (`deliveries` or `events`).
pub async fn checkpoint_size(js: &jetstream::Context, log: &str) -> Option<u64> {
    let stream = js.get_stream(AUDIT_STREAM).await.ok()?;
    let message = stream
        .get_last_raw_message_by_subject(&audit_checkpoint_subject(log))
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&message.payload).into_owned();
    text.lines().nth(1)?.trim().parse().ok()
}

/// Whether the projections and the sealer have caught up with both streams: the lag of each, as
/// `(what, position, stream end)`, for those behind.
pub async fn behind(js: &jetstream::Context, store: &Store) -> Vec<(String, u64, u64)> {
    let ends = [
        (
            DELIVERIES_STREAM,
            last_sequence(js, DELIVERIES_STREAM).await,
        ),
        (EVENTS_STREAM, last_sequence(js, EVENTS_STREAM).await),
    ];
    let mut behind = vec![];
    for (stream, end) in ends {
        for (projection, of, position) in &store.positions {
            let position = (*position).max(0) as u64;
            if of == stream && position < end {
                behind.push((format!("projection {projection}"), position, end));
            }
        }
        let log = if stream == DELIVERIES_STREAM {
            "deliveries"
        } else {
            "events"
        };
        let sealed = checkpoint_size(js, log).await.unwrap_or(0);
        if sealed < end {
            behind.push((format!("checkpoint of the {log} log"), sealed, end));
        }
    }
    behind
}
