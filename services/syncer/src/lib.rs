//! hooklog's syncer: keeps the server's copy of each tracked branch in step with its head SHA.
//!
//! - `source`: the `RepoSource` port and its two sources, the GitHub App and a git repository.
//! - `filters`: a target's include/exclude globs, compiled.
//! - `plan`: the diff of a tree against the last synced snapshot (pure).
//! - `discovery`: what a file is (marketplace, plugin, skill, agent, command, other) and its
//!   parsed manifest or front matter (pure).
//! - `store`: the `synced_files` snapshot and `sync_results`, written in one transaction.
//! - `sync`: one sync, from tree to stored result.
//! - `executor`: one requested sync through the target aggregate (start, run, report).
//! - `consumer`: the durable consumer of `SyncRequested` on `HOOKLOG_EVENTS`, which reports
//!   `SyncStarted`, `SyncCompleted` and `SyncFailed` through the target aggregate.
//! - `reconcile`: the loop that re-runs syncs never started, catches heads that moved without a
//!   push, and retries failed syncs with backoff.
//! - `testing` (feature `testing`): a fake GitHub and test git repositories, for hooklog's own
//!   tests and benchmarks.
#![forbid(unsafe_code)]

pub mod config;
pub mod consumer;
pub mod discovery;
pub mod executor;
pub mod filters;
pub mod plan;
pub mod reconcile;
pub mod source;
pub mod store;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{ReconcileConfig, SyncerConfig};
pub use executor::{Executor, Settled};

/// Runs the consumer and the reconcile loop until `shutdown`, letting the syncs in hand finish.
pub async fn run(
    config: SyncerConfig,
    executor: Executor,
    jetstream: async_nats::jetstream::Context,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let reconcile = tokio::spawn(reconcile::run(
        config.reconcile.clone(),
        executor.clone(),
        jetstream.clone(),
        shutdown.clone(),
    ));
    consumer::run(config, executor, jetstream, shutdown).await;
    if let Err(err) = reconcile.await {
        tracing::error!(error = %err, "the reconcile loop panicked");
    }
}
