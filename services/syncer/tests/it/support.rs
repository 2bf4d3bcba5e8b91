//! A syncer's world in-process: its own `nats-server`, a fresh database, the relay and the
//! projector running (the consumer reads `HOOKLOG_EVENTS`, the reconcile loop the read models),
//! and targets tracked and pushed through the same command bus the worker uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use hooklog_domain::clock::SystemClock;
use hooklog_domain::connector_target::{Push, TargetCommand, TargetOwner};
use hooklog_domain::ids::{
    Branch, CommitSha, InstallationId, RepositoryId, RepositoryName, SourceLocation, SyncId,
    TargetId,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_domain::source::AllowedSources;
use hooklog_infra::testing::Backends;
use hooklog_syncer::source::local::LocalGit;
use hooklog_syncer::source::{RepoSource, Sources};
use hooklog_syncer::sync::SyncLimits;
use hooklog_syncer::Executor;
use hooklog_write::CommandBus;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub const INSTALLATION: u64 = 77;
pub const REPOSITORY: u64 = 1296269;
pub const REPO: &str = "octo/plugins";
/// How long a test waits for the services to get somewhere.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Harness {
    pub js: jetstream::Context,
    pub pool: PgPool,
    pub bus: CommandBus,
    pub cache: tempfile::TempDir,
    shutdown: CancellationToken,
    _backends: Backends,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Harness {
    pub async fn start() -> Self {
        let backends = Backends::start("hooklog-syncer-test").await;
        let (js, pool) = (backends.js.clone(), backends.pool.clone());
        let shutdown = CancellationToken::new();
        tokio::spawn(hooklog_relay::run(
            hooklog_relay::RelayConfig::default(),
            pool.clone(),
            js.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(hooklog_projections::run(
            hooklog_projections::ProjectorConfig::default(),
            pool.clone(),
            js.clone(),
            shutdown.clone(),
        ));
        Self {
            js,
            bus: CommandBus::new(pool.clone(), Arc::new(SystemClock)),
            pool,
            cache: tempfile::tempdir().unwrap(),
            shutdown,
            _backends: backends,
        }
    }

    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Local git sources under `allowed_sources()`; GitHub targets get `github`.
    pub fn sources(&self, github: Arc<dyn RepoSource>) -> Sources {
        self.sources_allowing(github, allowed_sources())
    }

    /// Local git sources under `allowed` only; GitHub targets get `github`.
    pub fn sources_allowing(
        &self,
        github: Arc<dyn RepoSource>,
        allowed: AllowedSources,
    ) -> Sources {
        Sources {
            github,
            local: Arc::new(LocalGit::new(self.cache.path().to_path_buf(), allowed)),
        }
    }

    pub fn executor(&self, sources: Sources) -> Executor {
        Executor::new(self.bus.clone(), sources, SyncLimits::default())
    }

    /// Tracks `main` of `REPO` for `INSTALLATION`, read from `source` (None: GitHub).
    pub async fn track(&self, source: Option<&str>) -> TargetId {
        let branch = Branch::parse("main").unwrap();
        let target = TargetId::for_branch(
            InstallationId(INSTALLATION),
            RepositoryId(REPOSITORY),
            &branch,
        );
        let track = TargetCommand::Track {
            owner: TargetOwner::Installation(InstallationId(INSTALLATION)),
            repository_id: RepositoryId(REPOSITORY),
            repository: RepositoryName::parse(REPO).unwrap(),
            branch,
            auto_sync: true,
            source: source.map(|s| SourceLocation::parse(s).unwrap()),
            path_filters: Default::default(),
        };
        self.bus.target(target, track, &operator()).await.unwrap();
        target
    }

    /// A push of `head` (after `before`) in its own delivery; the sync it requested, if any.
    pub async fn push(&self, target: TargetId, before: &str, head: &CommitSha) -> Option<SyncId> {
        let delivery = format!("push-{head}");
        let push = Push {
            head_sha: head.clone(),
            before_sha: CommitSha::parse(before).unwrap(),
            forced: false,
            deleted: false,
            delivery_id: delivery.clone(),
        };
        self.bus
            .target(
                target,
                TargetCommand::RecordPush(push),
                &CommandMetadata::from_delivery(&delivery),
            )
            .await
            .unwrap();
        let state = self.bus.load_target(target).await.unwrap();
        state
            .in_flight()
            .filter(|s| &s.head_sha == head)
            .map(|s| s.sync_id)
    }

    /// The event types of `target`, in order.
    pub async fn event_types(&self, target: TargetId) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT event_type FROM events WHERE aggregate_type = 'ConnectorTarget' \
             AND aggregate_id = $1 ORDER BY sequence",
        )
        .bind(target.to_string())
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Waits until `target` has `count` events of `event_type`; all its event types.
    pub async fn until_events(
        &self,
        target: TargetId,
        event_type: &str,
        count: usize,
    ) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let types = self.event_types(target).await;
            if types.iter().filter(|t| *t == event_type).count() >= count {
                return types;
            }
            assert!(
                Instant::now() < deadline,
                "{event_type} x{count} not reached within {WAIT:?}: {types:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the `sync_runs` read model shows `sync` with `status`.
    pub async fn until_run(&self, sync: SyncId, status: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let shown: Option<String> =
                sqlx::query_scalar("SELECT status FROM sync_runs WHERE sync_id = $1")
                    .bind(sync.0)
                    .fetch_optional(&self.pool)
                    .await
                    .unwrap();
            if shown.as_deref() == Some(status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "run {sync} not {status} within {WAIT:?}: {shown:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the `targets` read model shows `target` with `status`.
    pub async fn until_target_state(&self, target: TargetId, status: &str) {
        self.until_target(target, |row| row.0 == status).await;
    }

    /// Waits until the `targets` read model shows `target` idle with `head` synced.
    pub async fn until_target_synced(&self, target: TargetId, head: &CommitSha) {
        self.until_target(target, |row| {
            row.0 == "idle" && row.1.as_deref() == Some(head.as_str())
        })
        .await;
    }

    async fn until_target(
        &self,
        target: TargetId,
        done: impl Fn(&(String, Option<String>)) -> bool,
    ) {
        let deadline = Instant::now() + WAIT;
        loop {
            let row: Option<(String, Option<String>)> =
                sqlx::query_as("SELECT status, last_synced_sha FROM targets WHERE target_id = $1")
                    .bind(target.0)
                    .fetch_optional(&self.pool)
                    .await
                    .unwrap();
            if row.as_ref().is_some_and(&done) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "target {target} not there within {WAIT:?}: {row:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the `sync_runs` read model has a run of `head` for `target`; its reason.
    pub async fn until_run_of_head(&self, target: TargetId, head: &CommitSha) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let reason: Option<String> = sqlx::query_scalar(
                "SELECT reason FROM sync_runs WHERE target_id = $1 AND head_sha = $2",
            )
            .bind(target.0)
            .bind(head.as_str())
            .fetch_optional(&self.pool)
            .await
            .unwrap();
            if let Some(reason) = reason {
                return reason;
            }
            assert!(
                Instant::now() < deadline,
                "no run of {head} within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Live (not deleted) paths of `target` and their blob SHAs, in path order.
    pub async fn live_files(&self, target: TargetId) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT path, blob_sha FROM synced_files WHERE target_id = $1 AND NOT deleted \
             ORDER BY path COLLATE \"C\"",
        )
        .bind(target.0)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Tombstoned paths of `target`, in path order.
    pub async fn tombstones(&self, target: TargetId) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT path FROM synced_files WHERE target_id = $1 AND deleted \
             ORDER BY path COLLATE \"C\"",
        )
        .bind(target.0)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }
}

/// What the tests let targets read (`HOOKLOG_SYNCER_ALLOWED_SOURCES`): the temporary directory
/// their repositories are made in, and the address nobody listens on that the retry tests use.
pub fn allowed_sources() -> AllowedSources {
    let temp = std::env::temp_dir();
    AllowedSources::parse(&format!("{}, http://127.0.0.1:9/", temp.display())).unwrap()
}

pub fn operator() -> CommandMetadata {
    CommandMetadata::from_operator("test", &uuid::Uuid::new_v4().to_string())
}

/// GitHub's `before` of a new branch.
pub const ZERO: &str = "0000000000000000000000000000000000000000";
