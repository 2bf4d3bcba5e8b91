//! The sealer (role `sealer`): keeps an RFC 6962 Merkle tree over each stream
//! (`GITHUB_DELIVERIES` as the `deliveries` log, `HOOKLOG_EVENTS` as `events`), stores its C2SP
//! tiles in PostgreSQL as they fill, and every `HOOKLOG_AUDIT_CHECKPOINT_INTERVAL` signs a C2SP
//! checkpoint of each log that grew into `HOOKLOG_AUDIT` (DESIGN.md, "Audit"). The formats are
//! `hooklog_audit`'s; this crate brings the streams, the storage and the clock.
//!
//! Why a checkpoint can be trusted to mean what it says:
//! - **Leaf `i` is the message at stream sequence `i + 1`, and nothing else.** The sealer reads
//!   each stream with an ordered consumer from its stored size + 1 and checks every message's
//!   sequence: a missing one (a gap, a message deleted before the stream denied deletes) stops
//!   that log with an error naming both sequences, and nothing past it is sealed. Each entry is
//!   built from the message as stored, its body hashed here (`message`).
//! - **What is committed is what is signed.** A chunk of leaves (what arrived within
//!   `commit_delay`, at most `batch_size`) is committed in one transaction
//!   with the tiles it filled and the tree's new right edge, and only if the stored tree is still
//!   at the size this sealer read (`store::commit`), so a crash loses nothing committed and a
//!   restart goes on from the stored edge. Before signing, the sealer stores the partial tiles of
//!   the size it signs, then recomputes the root from the *stored* tiles and checks it against
//!   the tree in hand: a served tile can always prove what the checkpoint says.
//! - **Never a checkpoint inconsistent with the previous one.** The latest checkpoint is read
//!   back from `HOOKLOG_AUDIT` (at start and after each publish), and a new one is signed only
//!   after a consistency proof from it to the new tree, computed from the stored tiles, verifies
//!   (RFC 9162 §2.1.4.2). A tree that does not extend it (a database restored from an old backup
//!   and fed different messages, an edited tile) is reported and never signed.
//! - **One sealer at a time, safe with replicas.** Only the holder of the PostgreSQL advisory
//!   lock [`LEASE_KEY`] seals; the others stand by. Even a holder that lost its lease without
//!   knowing cannot interleave with the next: its commit fails on the size check, and its
//!   checkpoint is published only if the latest one on the subject is still the one it extends
//!   (`Nats-Expected-Last-Subject-Sequence`), with `Nats-Msg-Id` `<log>:<size>` dropping a
//!   repeat of the same one.
//! - **Nothing is trusted for being on the stream**: the leaf is computed from bytes, and an entry
//!   that cannot be encoded (a header longer than the layout's u16) stops the log, named.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod key;
pub mod message;
pub mod prove;
mod seal;
pub mod store;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use hooklog_audit::{Log, SigningKey};
use hooklog_infra::postgres::Lease;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use seal::{latest_checkpoint, latest_note, Signed};

/// The advisory lock only the working sealer holds (`hooklog` + 4 in ASCII; the relay has 1, the process manager 2, the syncer's reconcile pass 3).
pub const LEASE_KEY: i64 = 0x686f_6f6b_6c6f_6704;

/// Leaves sealed, by log.
pub const SEALER_LEAVES: &str = "hooklog_sealer_leaves_total";

/// How the sealer works.
#[derive(Debug, Clone)]
pub struct SealerConfig {
    /// How often a checkpoint is signed for a log that grew.
    pub checkpoint_interval: Duration,
    /// Most leaves committed together.
    pub batch_size: usize,
    /// Longest a leaf read from a stream waits to be committed with the ones after it (a
    /// checkpoint commits what waits first).
    pub commit_delay: Duration,
    /// How often a standing-by sealer tries the lease, and the holder checks it.
    pub lock_retry: Duration,
    /// Pause before a log whose sealing failed is tried again.
    pub retry_delay: Duration,
}

impl Default for SealerConfig {
    fn default() -> Self {
        Self {
            checkpoint_interval: Duration::from_secs(10),
            batch_size: 4096,
            commit_delay: Duration::from_secs(1),
            lock_retry: Duration::from_secs(5),
            retry_delay: Duration::from_secs(5),
        }
    }
}

/// Why a log's sealing stopped.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Nats(String),
    /// A stream sequence is missing: the log is not contiguous from 1.
    #[error("the {log} stream skips from sequence {} to {found}: sequence {expected} is missing, so nothing past it is sealed", expected - 1)]
    Gap {
        log: &'static str,
        expected: u64,
        found: u64,
    },
    /// A message that has no canonical entry.
    #[error("message {sequence} of the {log} stream has no entry: {reason}")]
    Entry {
        log: &'static str,
        sequence: u64,
        reason: String,
    },
    /// The latest checkpoint on `HOOKLOG_AUDIT` is not a checkpoint.
    #[error(
        "the latest {log} checkpoint (HOOKLOG_AUDIT sequence {sequence}) is malformed: {reason}"
    )]
    BadCheckpoint {
        log: &'static str,
        sequence: u64,
        reason: String,
    },
    /// The tree would not be consistent with what was signed or stored: never signed.
    #[error("not signing the {log} log: {reason}")]
    Inconsistent { log: &'static str, reason: String },
}

/// Seals both logs until `shutdown`, as one of possibly several sealers of which only the
/// holder of [`LEASE_KEY`] works.
pub async fn run(
    config: SealerConfig,
    pool: PgPool,
    js: jetstream::Context,
    key: Arc<SigningKey>,
    shutdown: CancellationToken,
) {
    let mut standing_by = false;
    while !shutdown.is_cancelled() {
        match Lease::take(&pool, LEASE_KEY).await {
            Ok(Some(lease)) => {
                standing_by = false;
                lead(&config, &pool, &js, &key, lease, &shutdown).await;
            }
            Ok(None) if !standing_by => {
                tracing::info!("another sealer holds the lease; standing by");
                standing_by = true;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "cannot take the sealer lease yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.lock_retry) => {}
        }
    }
    tracing::info!("sealer stopped");
}

async fn lead(
    config: &SealerConfig,
    pool: &PgPool,
    js: &jetstream::Context,
    key: &SigningKey,
    mut lease: Lease,
    shutdown: &CancellationToken,
) {
    tracing::info!(verifier_key = %key.verifier(), "took the sealer lease; sealing both logs");
    let lost = shutdown.child_token();
    let watch = async {
        loop {
            tokio::select! {
                () = lost.cancelled() => return,
                () = tokio::time::sleep(config.lock_retry) => {}
            }
            if let Err(err) = lease.check().await {
                tracing::error!(error = %err, "lost the sealer lease; standing down");
                lost.cancel();
                return;
            }
        }
    };
    tokio::join!(
        watch,
        seal_until(config, pool, js, key, Log::Deliveries, &lost),
        seal_until(config, pool, js, key, Log::Events, &lost),
    );
    lease.release().await;
}

/// Seals one log until `stop`, waiting out and logging every failure.
async fn seal_until(
    config: &SealerConfig,
    pool: &PgPool,
    js: &jetstream::Context,
    key: &SigningKey,
    log: Log,
    stop: &CancellationToken,
) {
    while !stop.is_cancelled() {
        match seal::seal(config, pool, js, key, log, stop).await {
            Ok(()) => return,
            Err(err) => {
                tracing::error!(log = log.name(), error = %err, "sealing stopped; trying again")
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(config.retry_delay) => {}
        }
    }
}
