//! `Env`: a fresh migrated database and a `nats-server` of the test's own with both streams;
//! the projector started as a task; waiting for a checkpoint; table digests.

use std::time::Duration;

use async_nats::jetstream;
use hooklog_infra::nats::{self, EmbeddedNats};
use hooklog_infra::testing::{fresh_database_url, nats_server_bin};
use hooklog_infra::{postgres, streams};
use hooklog_projections::{Projection, ProjectorConfig};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Env {
    pub pool: PgPool,
    pub js: jetstream::Context,
    _nats: EmbeddedNats,
    _dir: tempfile::TempDir,
}

pub struct Running {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
}

impl Running {
    /// Stops it the hard way: the task is dropped wherever it is, mid-transaction included.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

impl Env {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = EmbeddedNats::start(&nats_server_bin(), dir.path())
            .await
            .expect("nats-server starts");
        let client = nats::connect(&server.url(), "hooklog-projections-test")
            .await
            .expect("connect to NATS");
        let js = jetstream::new(client);
        let window = Duration::from_secs(120);
        streams::ensure_deliveries_stream(&js, window)
            .await
            .expect("deliveries stream");
        streams::ensure_events_stream(&js, window)
            .await
            .expect("events stream");
        let (url, _) = fresh_database_url();
        let pool = postgres::connect_and_migrate(&url).await.expect("database");
        Self {
            pool,
            js,
            _nats: server,
            _dir: dir,
        }
    }

    pub fn projector(&self, batch_size: usize) -> Running {
        let shutdown = CancellationToken::new();
        let config = ProjectorConfig {
            batch_size,
            retry: Duration::from_millis(100),
        };
        let task = tokio::spawn(hooklog_projections::run(
            config,
            self.pool.clone(),
            self.js.clone(),
            shutdown.clone(),
        ));
        Running {
            shutdown,
            task: tokio::spawn(async move {
                task.await.expect("projector task").expect("projector");
            }),
        }
    }

    pub async fn position(&self, projection: Projection) -> u64 {
        hooklog_projections::query::position(&self.pool, projection.name())
            .await
            .expect("checkpoint")
    }

    pub async fn last_sequence(&self, projection: Projection) -> u64 {
        let mut stream = self
            .js
            .get_stream(projection.stream())
            .await
            .expect("stream");
        stream
            .info()
            .await
            .expect("stream info")
            .state
            .last_sequence
    }

    /// Waits until `projection` has applied everything its stream holds.
    pub async fn caught_up(&self, projection: Projection) {
        let last = self.last_sequence(projection).await;
        let reached =
            hooklog_projections::query::wait_for(&self.pool, projection.name(), last, PATIENCE)
                .await
                .expect("checkpoint");
        assert!(
            reached,
            "{} did not reach {last}: at {}",
            projection.name(),
            self.position(projection).await
        );
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .expect(sql)
    }
}
