//! The reconcile loop. Each pass (one process at a time, under a PostgreSQL advisory lock, so
//! several replicas are safe):
//! - runs syncs that were requested `stale_after` ago and never started (their request was
//!   lost to the consumer, or it is stuck);
//! - retries failed syncs whose error was retryable, after a pause that doubles with each
//!   failure of that head, at most `max_retries` times; then they stay failed until an admin
//!   retries them;
//! - every `head_check_interval`, asks each idle target's source for its branch head and
//!   requests a sync when the copy does not hold it (a lost or out-of-order delivery, or a git
//!   source that has no webhooks); the aggregate decides whether that head is requested. A head
//!   read while deliveries still wait undecided on `GITHUB_DELIVERIES` may be newer than pushes
//!   about to be decided (after an outage, or a restart of every process), which would then
//!   request older heads and the reconciled one again: so the check waits until the worker has
//!   decided every stored delivery, and is put off at most `head_check_interval` (under a load
//!   that never lets the worker be idle it then runs anyway).
//!
//! It reads the `targets` and `sync_runs` read models to find candidates; every action goes
//! through the target aggregate, which refuses what is no longer true.

use hooklog_domain::connector_target::{SyncReason, TargetCommand, TargetError, TargetOwner};
use hooklog_domain::ids::{
    Branch, CommitSha, ConnectionId, InstallationId, RepositoryId, RepositoryName, SourceLocation,
    SyncId, TargetId,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_infra::metrics::RECONCILE_ACTIONS;
use hooklog_write::CommandError;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::ReconcileConfig;
use crate::executor::Executor;
use crate::source::RepoRef;

/// The advisory lock one reconcile pass holds.
const RECONCILE_LOCK: i64 = 7_525_356_009_530_812_163;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// False when another process held the lock: this one did nothing.
    pub ran: bool,
    pub stale_run: u64,
    pub retried: u64,
    pub head_moved: u64,
}

/// Runs a pass every `interval` until `shutdown`; every `head_check_interval` the pass also
/// checks branch heads.
pub async fn run(
    config: ReconcileConfig,
    executor: Executor,
    jetstream: async_nats::jetstream::Context,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heads_checked: Option<tokio::time::Instant> = None;
    let mut put_off_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let due = heads_checked.is_none_or(|at| at.elapsed() >= config.head_check_interval);
        let check_heads = due
            && (deliveries_decided(&jetstream).await
                || put_off_since.is_some_and(|at| at.elapsed() >= config.head_check_interval));
        if check_heads {
            heads_checked = Some(tokio::time::Instant::now());
            put_off_since = None;
        } else if due && put_off_since.is_none() {
            tracing::debug!(
                "branch heads checked once the worker has decided the stored deliveries"
            );
            put_off_since = Some(tokio::time::Instant::now());
        }
        match pass(&config, &executor, check_heads).await {
            Ok(pass) if pass.ran => tracing::debug!(?pass, "reconcile pass"),
            Ok(_) => tracing::debug!("another process reconciles"),
            Err(err) => {
                tracing::warn!(error = %err, "reconcile pass failed; next one in an interval")
            }
        }
    }
}

/// Whether every delivery on `GITHUB_DELIVERIES` has been decided: the worker's consumer has none
/// pending or unacked. True without a worker consumer or stream (nothing here decides
/// deliveries); false when JetStream cannot say.
pub async fn deliveries_decided(jetstream: &async_nats::jetstream::Context) -> bool {
    use async_nats::jetstream::context::ConsumerInfoErrorKind;
    use hooklog_infra::streams::{DELIVERIES_STREAM, WORKER_CONSUMER};

    let Ok(stream) = jetstream.get_stream_no_info(DELIVERIES_STREAM).await else {
        return false;
    };
    match stream.consumer_info(WORKER_CONSUMER).await {
        Ok(info) => info.num_pending == 0 && info.num_ack_pending == 0,
        Err(err) => matches!(
            err.kind(),
            ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::StreamNotFound
        ),
    }
}

/// One pass, when no other process is in one; `check_heads`: ask the sources for branch heads.
pub async fn pass(
    config: &ReconcileConfig,
    executor: &Executor,
    check_heads: bool,
) -> Result<Pass, sqlx::Error> {
    let pool = executor.bus().pool();
    let mut lock = pool.acquire().await?;
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(RECONCILE_LOCK)
        .fetch_one(&mut *lock)
        .await?;
    if !held {
        return Ok(Pass::default());
    }
    let outcome = steps(config, executor, pool, check_heads).await;
    // Released with the session too, should the unlock fail.
    if let Err(err) = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(RECONCILE_LOCK)
        .execute(&mut *lock)
        .await
    {
        tracing::warn!(error = %err, "cannot release the reconcile lock; closing its connection");
        lock.detach();
    }
    outcome
}

async fn steps(
    config: &ReconcileConfig,
    executor: &Executor,
    pool: &PgPool,
    check_heads: bool,
) -> Result<Pass, sqlx::Error> {
    let mut pass = Pass {
        ran: true,
        ..Pass::default()
    };
    let correlation = uuid::Uuid::new_v4().to_string();
    let meta = CommandMetadata::from_system("reconcile", &correlation, &correlation);

    let stale: Vec<(uuid::Uuid, uuid::Uuid)> = sqlx::query_as(
        "SELECT target_id, sync_id FROM sync_runs WHERE status = 'queued' \
         AND requested_at < now() - make_interval(secs => $1) ORDER BY position",
    )
    .bind(config.stale_after.as_secs_f64())
    .fetch_all(pool)
    .await?;
    for (target, sync) in stale {
        let (target, sync) = (TargetId(target), SyncId(sync));
        tracing::info!(target_id = %target, sync_id = %sync, "running a sync requested long ago and never started");
        match executor.execute(target, sync, &correlation).await {
            Ok(_) => {
                pass.stale_run += 1;
                metrics::counter!(RECONCILE_ACTIONS, "reason" => "stale").increment(1);
            }
            Err(err) => tracing::warn!(target_id = %target, error = %err, "stale sync not settled"),
        }
    }

    // Failed targets whose last run failed retryably, with how often that head failed and when
    // it last did.
    let failed: Vec<(uuid::Uuid, String, i64, f64)> = sqlx::query_as(
        "SELECT t.target_id, r.head_sha, \
           (SELECT count(*) FROM sync_runs f WHERE f.target_id = t.target_id \
              AND f.head_sha = r.head_sha AND f.status = 'failed'), \
           extract(epoch FROM now() - r.completed_at)::float8 \
         FROM targets t JOIN sync_runs r ON r.sync_id = t.last_sync_id \
         WHERE t.status = 'failed' AND r.status = 'failed' AND r.retryable",
    )
    .fetch_all(pool)
    .await?;
    for (target, head, failures, since) in failed {
        let failures = u32::try_from(failures).unwrap_or(u32::MAX);
        if failures > config.max_retries
            || since < config.backoff(failures).as_secs_f64()
            || CommitSha::parse(&head).is_err()
        {
            continue;
        }
        let target = TargetId(target);
        let command = TargetCommand::RequestSync {
            head_sha: None,
            reason: SyncReason::Retry,
        };
        if request(executor, target, command, &meta).await {
            tracing::info!(target_id = %target, head_sha = %head, failures, "retrying a failed sync");
            pass.retried += 1;
            metrics::counter!(RECONCILE_ACTIONS, "reason" => "retry").increment(1);
        }
    }

    if !check_heads {
        return Ok(pass);
    }
    let idle: Vec<TargetRow> = sqlx::query_as(
        "SELECT target_id, installation_id, connection_id, repository_id, repository, branch, \
           source, \
           last_synced_sha \
         FROM targets WHERE status = 'idle' AND auto_sync ORDER BY position",
    )
    .fetch_all(pool)
    .await?;
    for row in idle {
        let Some((target, repo, branch)) = row.parse() else {
            continue;
        };
        let source = executor.sources().for_repo(&repo);
        let head = match source.branch_head(&repo, &branch).await {
            Ok(Some(head)) => head,
            Ok(None) => continue,
            Err(err) => {
                tracing::debug!(target_id = %target, error = %err, "branch head unknown");
                continue;
            }
        };
        // Only the copy's head (the last completed sync's) settles it: a head requested, even
        // synced, before may be what the branch went back to. The aggregate refuses the rest
        // (a head in flight or queued, or the one whose sync last failed).
        if row.last_synced_sha.as_deref() == Some(head.as_str()) {
            continue;
        }
        let command = TargetCommand::RequestSync {
            head_sha: Some(head.clone()),
            reason: SyncReason::Reconcile,
        };
        if request(executor, target, command, &meta).await {
            tracing::info!(target_id = %target, head_sha = %head, "branch head moved without a push; sync requested");
            pass.head_moved += 1;
            metrics::counter!(RECONCILE_ACTIONS, "reason" => "head_moved").increment(1);
        }
    }
    Ok(pass)
}

/// Sends `command`; true when the aggregate took it. Refusals are decisions (the target moved
/// on meanwhile), logged and left.
async fn request(
    executor: &Executor,
    target: TargetId,
    command: TargetCommand,
    meta: &CommandMetadata,
) -> bool {
    match executor.bus().target(target, command, meta).await {
        Ok(_) => true,
        Err(CommandError::Rejected(err)) => {
            log_refusal(target, &err);
            false
        }
        Err(err) => {
            tracing::warn!(target_id = %target, error = %err, "reconcile command not sent");
            false
        }
    }
}

fn log_refusal(target: TargetId, err: &TargetError) {
    tracing::debug!(target_id = %target, reason = %err, "reconcile command refused");
}

#[derive(sqlx::FromRow)]
struct TargetRow {
    target_id: uuid::Uuid,
    installation_id: Option<i64>,
    connection_id: Option<uuid::Uuid>,
    repository_id: i64,
    repository: String,
    branch: String,
    source: Option<String>,
    last_synced_sha: Option<String>,
}

impl TargetRow {
    fn parse(&self) -> Option<(TargetId, RepoRef, Branch)> {
        let repo = RepoRef {
            owner: match (self.installation_id, self.connection_id) {
                (Some(installation), _) => {
                    TargetOwner::Installation(InstallationId(u64::try_from(installation).ok()?))
                }
                (None, Some(connection)) => TargetOwner::Connection(ConnectionId(connection)),
                (None, None) => return None,
            },
            repository_id: RepositoryId(u64::try_from(self.repository_id).ok()?),
            // Stored values, decoded as the events are: the sources check them again by
            // today's rules before anything is fetched.
            repository: RepositoryName::from_stored(&self.repository).ok()?,
            source: match &self.source {
                Some(source) => Some(SourceLocation::from_stored(source).ok()?),
                None => None,
            },
        };
        Some((
            TargetId(self.target_id),
            repo,
            Branch::parse(&self.branch).ok()?,
        ))
    }
}
