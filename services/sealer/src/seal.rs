//! One log's sealing loop: read the stream in order from the stored size, grow the tree,
//! commit, and sign a checkpoint each interval the tree grew.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self};
use futures::StreamExt;
use hooklog_audit::note::unverified_text;
use hooklog_audit::tiles::{tiles_for_subtrees, TileHashes};
use hooklog_audit::tree::{
    consistency_proof_from, consistency_subtrees, root_from, root_subtrees, verify_consistency,
};
use hooklog_audit::{Checkpoint, Frontier, Hash, Log, SigningKey};
use hooklog_infra::streams::{audit_checkpoint_subject, AUDIT_STREAM};
use tokio_util::sync::CancellationToken;

use crate::message::{stream_message, stream_name};
use crate::store;
use crate::{SealError, SealerConfig, SEALER_LEAVES};

/// The latest checkpoint of a log on `HOOKLOG_AUDIT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub size: u64,
    pub root: Hash,
    /// Its sequence on `HOOKLOG_AUDIT`: the next one is published only if this is still the
    /// latest (`Nats-Expected-Last-Subject-Sequence`).
    pub audit_sequence: u64,
}

/// The latest checkpoint note of `log` on `HOOKLOG_AUDIT`, as published, with its sequence
/// there; `None` before the first. The error says what could not be read.
pub async fn latest_note(
    js: &jetstream::Context,
    log: Log,
) -> Result<Option<(u64, String)>, String> {
    let stream = js
        .get_stream(AUDIT_STREAM)
        .await
        .map_err(|err| format!("cannot read {AUDIT_STREAM}: {err}"))?;
    let subject = audit_checkpoint_subject(log.name());
    match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(message) => Ok(Some((
            message.sequence,
            String::from_utf8_lossy(&message.payload).into_owned(),
        ))),
        Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(err) => Err(format!(
            "cannot read the latest checkpoint on {subject}: {err}"
        )),
    }
}

/// The latest checkpoint of `log`, `None` before the first. One signed by another key (a key
/// replaced) still binds the tree: it is read, with a warning, and the next must extend it.
pub async fn latest_checkpoint(
    js: &jetstream::Context,
    log: Log,
    key: &SigningKey,
) -> Result<Option<Signed>, SealError> {
    let Some((audit_sequence, note)) = latest_note(js, log).await.map_err(SealError::Nats)? else {
        return Ok(None);
    };
    let origin = log.origin(key.name());
    let checkpoint = match Checkpoint::open(&note, &key.verifier(), &origin) {
        Ok(checkpoint) => checkpoint,
        Err(err) => {
            tracing::warn!(log = log.name(), audit_seq = audit_sequence, error = %err,
                "the latest checkpoint was not signed by this sealer's key; the next one must still extend its tree");
            Checkpoint::parse(unverified_text(&note)).map_err(|err| SealError::BadCheckpoint {
                log: log.name(),
                sequence: audit_sequence,
                reason: err.to_string(),
            })?
        }
    };
    Ok(Some(Signed {
        size: checkpoint.size(),
        root: checkpoint.root(),
        audit_sequence,
    }))
}

/// Seals `log` until `stop`: an error ends the call (the caller waits and calls again, which
/// resumes from what was committed).
pub async fn seal(
    config: &SealerConfig,
    pool: &sqlx::PgPool,
    js: &jetstream::Context,
    key: &SigningKey,
    log: Log,
    stop: &CancellationToken,
) -> Result<(), SealError> {
    let mut frontier = store::load_tree(pool, log).await?;
    let mut last = latest_checkpoint(js, log, key).await?;
    let stream = js
        .get_stream(stream_name(log))
        .await
        .map_err(|err| SealError::Nats(format!("cannot read {}: {err}", stream_name(log))))?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: frontier.size() + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|err| SealError::Nats(format!("cannot read {}: {err}", stream_name(log))))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|err| SealError::Nats(format!("cannot read {}: {err}", stream_name(log))))?
        .ready_chunks(config.batch_size);
    tracing::info!(
        log = log.name(),
        size = frontier.size(),
        checkpoint = last.as_ref().map(|signed| signed.size),
        "sealing"
    );
    // A tree that outgrew the last checkpoint (committed before a restart, or up to a gap) is
    // signed before anything else.
    if frontier.size() > last.as_ref().map_or(0, |signed| signed.size) {
        last = Some(checkpoint(pool, js, key, log, &frontier, last.as_ref()).await?);
    }
    let mut tick = tokio::time::interval(config.checkpoint_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Leaves wait up to `commit_delay` (or the next checkpoint, or a full batch) to be committed
    // together: on a live stream one commit per message would cost the database a synchronous
    // commit for every delivery and event, and nothing is signed before its commit anyway.
    let mut pending = Pending::default();
    loop {
        let commit_due = async {
            match pending.commit_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {
                pending.commit(pool, log, &mut frontier).await?;
                if frontier.size() > last.as_ref().map_or(0, |signed| signed.size) {
                    last = Some(checkpoint(pool, js, key, log, &frontier, last.as_ref()).await?);
                }
            }
            () = commit_due => pending.commit(pool, log, &mut frontier).await?,
            chunk = messages.next() => {
                let Some(chunk) = chunk else {
                    return Err(SealError::Nats(format!("the consumer of {} ended", stream_name(log))));
                };
                if pending.messages.len() + chunk.len() > config.batch_size {
                    pending.commit(pool, log, &mut frontier).await?;
                }
                pending.add(chunk, config.commit_delay);
                if pending.messages.len() >= config.batch_size {
                    pending.commit(pool, log, &mut frontier).await?;
                }
            }
        }
    }
}

/// Messages read but not yet committed to the tree, and when they must be.
#[derive(Default)]
struct Pending {
    messages: Vec<Result<jetstream::Message, pull::OrderedError>>,
    /// `commit_delay` after the first of them arrived.
    commit_at: Option<tokio::time::Instant>,
}

impl Pending {
    fn add(
        &mut self,
        chunk: Vec<Result<jetstream::Message, pull::OrderedError>>,
        commit_delay: Duration,
    ) {
        self.messages.extend(chunk);
        self.commit_at
            .get_or_insert_with(|| tokio::time::Instant::now() + commit_delay);
    }

    /// Commits what waits (if anything) to `frontier`'s tree.
    async fn commit(
        &mut self,
        pool: &sqlx::PgPool,
        log: Log,
        frontier: &mut Frontier,
    ) -> Result<(), SealError> {
        self.commit_at = None;
        match self.messages.is_empty() {
            true => Ok(()),
            false => grow(pool, log, frontier, std::mem::take(&mut self.messages)).await,
        }
    }
}

/// Appends a chunk of messages to the tree and commits it with the tiles that filled.
async fn grow(
    pool: &sqlx::PgPool,
    log: Log,
    frontier: &mut Frontier,
    chunk: Vec<Result<jetstream::Message, pull::OrderedError>>,
) -> Result<(), SealError> {
    let from = frontier.size();
    let mut grown = frontier.clone();
    let mut full = Vec::new();
    // What precedes a bad message is committed before the error ends the call, so the tree
    // stops exactly at it.
    let mut stopped = None;
    for message in chunk {
        match leaf_of(log, grown.size() + 1, message) {
            Ok(leaf) => grown.push(leaf, &mut full),
            Err(err) => {
                stopped = Some(err);
                break;
            }
        }
    }
    if grown.size() > from {
        store::commit(pool, log, from, &grown, &full).await?;
        metrics::counter!(SEALER_LEAVES, "log" => log.name()).increment(grown.size() - from);
        *frontier = grown;
    }
    stopped.map_or(Ok(()), Err)
}

/// The leaf of the message that must be at stream sequence `expected`.
fn leaf_of(
    log: Log,
    expected: u64,
    message: Result<jetstream::Message, pull::OrderedError>,
) -> Result<Hash, SealError> {
    let message = message
        .map_err(|err| SealError::Nats(format!("cannot read {}: {err}", stream_name(log))))?;
    let entry = stream_message(&message).map_err(|err| SealError::Entry {
        log: log.name(),
        sequence: expected,
        reason: err.to_string(),
    })?;
    if entry.sequence != expected {
        return Err(SealError::Gap {
            log: log.name(),
            expected,
            found: entry.sequence,
        });
    }
    entry.leaf_hash().map_err(|err| SealError::Entry {
        log: log.name(),
        sequence: entry.sequence,
        reason: err.to_string(),
    })
}

/// Signs and publishes the checkpoint of the committed tree, after storing its partial tiles
/// and checking, from the stored tiles (not from memory), that they make its root and that the
/// tree extends the latest checkpoint.
async fn checkpoint(
    pool: &sqlx::PgPool,
    js: &jetstream::Context,
    key: &SigningKey,
    log: Log,
    frontier: &Frontier,
    last: Option<&Signed>,
) -> Result<Signed, SealError> {
    let started = Instant::now();
    let size = frontier.size();
    let root = frontier.root();
    store::store_tiles(pool, log, &frontier.partial_tiles()).await?;
    let old_size = last.map_or(0, |signed| signed.size);
    let mut subtrees = root_subtrees(size);
    subtrees.extend(consistency_subtrees(old_size, size).map_err(|err| {
        SealError::Inconsistent {
            log: log.name(),
            reason: err.to_string(),
        }
    })?);
    let needed: BTreeSet<_> = tiles_for_subtrees(&subtrees, size).unwrap_or_default();
    let mut stored = TileHashes::new(size, store::read_tiles(pool, log, &needed).await?);
    let inconsistent = |reason: String| SealError::Inconsistent {
        log: log.name(),
        reason,
    };
    let stored_root = root_from(&mut stored, size).map_err(|err| inconsistent(err.to_string()))?;
    if stored_root != root {
        return Err(inconsistent(format!(
            "the stored tiles of size {size} have root {stored_root}, the tree in hand {root}"
        )));
    }
    if let Some(previous) = last {
        let proof = consistency_proof_from(&mut stored, previous.size, size)
            .map_err(|err| inconsistent(err.to_string()))?
            .map_err(|err| inconsistent(err.to_string()))?;
        verify_consistency(previous.size, size, &previous.root, &root, &proof).map_err(|_| {
            inconsistent(format!(
                "the tree of size {size} does not extend the checkpoint of size {} (root {})",
                previous.size, previous.root
            ))
        })?;
    }
    let note = Checkpoint::new(&log.origin(key.name()), size, root)
        .map_err(|err| inconsistent(err.to_string()))?
        .sign(key);
    let message = PublishMessage::build()
        .message_id(format!("{}:{size}", log.name()))
        .expected_last_subject_sequence(last.map_or(0, |signed| signed.audit_sequence))
        .payload(note.into_bytes().into());
    let subject = audit_checkpoint_subject(log.name());
    let ack = js
        .send_publish(subject.clone(), message)
        .await
        .map_err(|err| SealError::Nats(format!("cannot publish to {subject}: {err}")))?
        .await
        .map_err(|err| SealError::Nats(format!("{subject} did not store the checkpoint: {err}")))?;
    tracing::info!(
        log = log.name(),
        size,
        root = %root,
        audit_seq = ack.sequence,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "signed a checkpoint"
    );
    Ok(Signed {
        size,
        root,
        audit_sequence: ack.sequence,
    })
}
