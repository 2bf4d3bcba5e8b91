//! Runs one requested sync through the target aggregate: `StartSync`, the sync itself, then
//! `CompleteSync` or `FailSync`. The aggregate is the arbiter: a sync that is no longer the one
//! in flight (completed, failed, or its target removed) is left alone, `StartSync` of a started
//! sync changes nothing, and a result already reported is not reported twice. Syncs of one
//! target run one at a time in a process.

use std::sync::Arc;
use std::time::Instant;

use hooklog_domain::connector_target::{ConnectorTarget, TargetCommand, TargetError};
use hooklog_domain::ids::{SyncId, TargetId};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_infra::metrics::{SYNCER_SYNCS, SYNCER_SYNC_DURATION};
use hooklog_write::{CommandBus, CommandError};
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::source::{RepoRef, Sources};
use crate::store::SyncResult;
use crate::sync::{self, SyncError, SyncJob, SyncLimits};

/// Lock stripes: syncs of one target run one at a time within a process.
const STRIPES: usize = 64;

/// How a sync ended, for the caller that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// `SyncCompleted` was reported (now, or by an earlier run).
    Completed(SyncResult),
    /// `SyncFailed` was reported.
    Failed { error: String, retryable: bool },
    /// Nothing to do: the sync is not (or no longer) the target's sync in flight.
    NotInFlight,
}

/// Why a sync could not be settled now (PostgreSQL unavailable, a conflict that outlasted the
/// bus's retries): the caller tries again later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Retry(pub String);

#[derive(Clone)]
pub struct Executor {
    bus: CommandBus,
    pool: PgPool,
    sources: Sources,
    limits: SyncLimits,
    stripes: Arc<Vec<Mutex<()>>>,
}

impl Executor {
    pub fn new(bus: CommandBus, sources: Sources, limits: SyncLimits) -> Self {
        Self {
            pool: bus.pool().clone(),
            bus,
            sources,
            limits,
            stripes: Arc::new((0..STRIPES).map(|_| Mutex::new(())).collect()),
        }
    }

    pub fn bus(&self) -> &CommandBus {
        &self.bus
    }

    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Runs `sync_id` of `target` if it is the target's sync in flight, and reports how it
    /// ended. `correlation_id` ties the reports to the request.
    #[tracing::instrument(skip_all, fields(target_id = %target, sync_id = %sync_id))]
    pub async fn execute(
        &self,
        target: TargetId,
        sync_id: SyncId,
        correlation_id: &str,
    ) -> Result<Settled, Retry> {
        let stripe = (target.0.as_u128() % STRIPES as u128) as usize;
        let _one_at_a_time = self.stripes[stripe].lock().await;
        let meta = CommandMetadata::from_system("syncer", correlation_id, &sync_id.to_string());
        let state = self
            .bus
            .load_target(target)
            .await
            .map_err(|err| Retry(format!("cannot read target {target}: {err}")))?;
        let Some(job) = job_of(&state, target, sync_id) else {
            tracing::info!("sync is not in flight; nothing to do");
            return Ok(Settled::NotInFlight);
        };
        match self
            .report(target, TargetCommand::StartSync { sync_id }, &meta)
            .await?
        {
            Reported::Yes => {}
            Reported::Refused => return Ok(Settled::NotInFlight),
        }
        let started = Instant::now();
        let outcome = sync::run(&self.pool, &self.sources, &self.limits, &job).await;
        let (command, settled, label) = match outcome {
            Ok(result) => (
                TargetCommand::CompleteSync {
                    sync_id,
                    status: result.status,
                    created: result.created,
                    updated: result.updated,
                    deleted: result.deleted,
                    skipped: result.skipped,
                    failures: result.failures.clone(),
                },
                Settled::Completed(result.clone()),
                result.status.as_str(),
            ),
            // Nothing was written: run the whole sync again later rather than report a
            // failure that only says the database was away.
            Err(SyncError::Store(err)) => {
                return Err(Retry(format!("the syncer's tables are unavailable: {err}")))
            }
            Err(err) => {
                let (error, retryable) = (err.to_string(), err.is_retryable());
                tracing::warn!(error = %error, retryable, "sync failed");
                (
                    TargetCommand::FailSync {
                        sync_id,
                        error: error.clone(),
                        retryable,
                    },
                    Settled::Failed { error, retryable },
                    "failed",
                )
            }
        };
        match self.report(target, command, &meta).await? {
            Reported::Yes => {
                metrics::counter!(SYNCER_SYNCS, "status" => label).increment(1);
                metrics::histogram!(SYNCER_SYNC_DURATION, "status" => label)
                    .record(started.elapsed().as_secs_f64());
                Ok(settled)
            }
            // Reported by an earlier run of the same sync (or the target was removed meanwhile).
            Reported::Refused => Ok(settled),
        }
    }

    async fn report(
        &self,
        target: TargetId,
        command: TargetCommand,
        meta: &CommandMetadata,
    ) -> Result<Reported, Retry> {
        match self.bus.target(target, command, meta).await {
            Ok(_) => Ok(Reported::Yes),
            Err(CommandError::Rejected(
                err
                @ (TargetError::UnknownSync(_) | TargetError::Removed | TargetError::NotTracked),
            )) => {
                tracing::info!(reason = %err, "the target no longer waits for this sync");
                Ok(Reported::Refused)
            }
            Err(err) => Err(Retry(format!("cannot report to target {target}: {err}"))),
        }
    }
}

enum Reported {
    Yes,
    Refused,
}

/// The job of `sync_id` when it is the target's sync in flight.
fn job_of(state: &ConnectorTarget, target: TargetId, sync_id: SyncId) -> Option<SyncJob> {
    let in_flight = state.in_flight().filter(|s| s.sync_id == sync_id)?;
    Some(SyncJob {
        target_id: target,
        sync_id,
        head_sha: in_flight.head_sha.clone(),
        repo: RepoRef {
            owner: state.owner()?,
            repository_id: state.repository_id()?,
            repository: state.repository()?.clone(),
            source: state.source().cloned(),
        },
        filters: state.path_filters().clone(),
    })
}
