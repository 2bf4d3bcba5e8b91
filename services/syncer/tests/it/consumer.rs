//! The syncer as it runs in `serve`: the durable consumer on `HOOKLOG_EVENTS` (fed by the relay)
//! and the reconcile loop, against a git source, with the read models kept by the projector.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hooklog_domain::ids::{Branch, CommitSha, TargetId};
use hooklog_syncer::config::ReconcileConfig;
use hooklog_syncer::reconcile;
use hooklog_syncer::source::github::{GithubApp, GithubAppConfig};
use hooklog_syncer::source::{RepoRef, RepoSource, SourceError, Sources, TreeEntry};
use hooklog_syncer::testing::TestRepo;
use hooklog_syncer::{Executor, SyncerConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::{Harness, WAIT, ZERO};

fn unconfigured_github() -> Arc<dyn RepoSource> {
    Arc::new(GithubApp::new(GithubAppConfig::default()).unwrap())
}

/// A syncer with `quick` settings on the harness's stream, until `shutdown`.
fn spawn_syncer(h: &Harness, executor: Executor, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(hooklog_syncer::run(
        quick(),
        executor,
        h.js.clone(),
        shutdown,
    ))
}

fn quick() -> SyncerConfig {
    SyncerConfig {
        ack_wait: Duration::from_secs(2),
        progress_interval: Duration::from_millis(500),
        retry_delay: Duration::from_millis(100),
        ..SyncerConfig::default()
    }
}

#[tokio::test]
async fn a_pushed_head_is_synced_by_the_consumer_and_reported_completed() {
    let h = Harness::start().await;
    let repo = TestRepo::new();
    repo.write("plugins/x/SKILL.md", "---\nname: x\ndescription: y\n---\n");
    let head = repo.commit("first");
    let target = h.track(Some(&repo.path().display().to_string())).await;
    let executor = h.executor(h.sources(unconfigured_github()));
    spawn_syncer(&h, executor, h.shutdown());

    let sync = h.push(target, ZERO, &head).await.unwrap();
    h.until_run(sync, "completed").await;
    let types = h.until_events(target, "SyncCompleted", 1).await;
    assert_eq!(
        types,
        [
            "TargetTracked",
            "SyncRequested",
            "SyncStarted",
            "SyncCompleted"
        ]
    );
}

#[tokio::test]
async fn a_github_target_without_an_app_fails_with_an_error_naming_the_settings() {
    let h = Harness::start().await;
    let target = h.track(None).await;
    let executor = h.executor(h.sources(unconfigured_github()));
    spawn_syncer(&h, executor, h.shutdown());
    let head = CommitSha::parse(&"a".repeat(40)).unwrap();
    let sync = h.push(target, ZERO, &head).await.unwrap();
    h.until_run(sync, "failed").await;
    let (error, retryable): (String, bool) =
        sqlx::query_as("SELECT error, retryable FROM sync_runs WHERE sync_id = $1")
            .bind(sync.0)
            .fetch_one(&h.pool)
            .await
            .unwrap();
    assert!(error.contains("HOOKLOG_GITHUB_APP_ID"), "{error}");
    assert!(!retryable);
}

/// A repository with one commit (`a.md`) and a target reading it: the repository (removed on
/// drop), its head and the target.
async fn one_commit_target(h: &Harness) -> (TestRepo, CommitSha, TargetId) {
    let repo = TestRepo::new();
    repo.write("a.md", "a");
    let head = repo.commit("first");
    let target = h.track(Some(&repo.path().display().to_string())).await;
    (repo, head, target)
}

/// The harness's sources, with a git source whose first tree read never returns, and the flag
/// that read sets as it starts hanging.
fn hanging_once(h: &Harness) -> (Sources, Arc<AtomicBool>) {
    let mut sources = h.sources(unconfigured_github());
    let hung = Arc::new(AtomicBool::new(false));
    sources.local = Arc::new(HangsOnce {
        inner: sources.local.clone(),
        hung: hung.clone(),
    });
    (sources, hung)
}

/// A git source whose first tree read never returns: the syncer that took the request "hangs".
struct HangsOnce {
    inner: Arc<dyn RepoSource>,
    hung: Arc<AtomicBool>,
}

#[async_trait]
impl RepoSource for HangsOnce {
    async fn tree(
        &self,
        repo: &RepoRef,
        commit: &CommitSha,
    ) -> Result<Vec<TreeEntry>, SourceError> {
        if !self.hung.swap(true, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.tree(repo, commit).await
    }
    async fn blobs(
        &self,
        repo: &RepoRef,
        commit: &CommitSha,
        shas: &[String],
    ) -> Vec<Result<Bytes, SourceError>> {
        self.inner.blobs(repo, commit, shas).await
    }
    async fn branch_head(
        &self,
        repo: &RepoRef,
        branch: &Branch,
    ) -> Result<Option<CommitSha>, SourceError> {
        self.inner.branch_head(repo, branch).await
    }
}

#[tokio::test]
async fn a_syncer_that_dies_mid_sync_leaves_the_request_to_another_which_reports_it_once() {
    let h = Harness::start().await;
    let (_repo, head, target) = one_commit_target(&h).await;
    let (sources, hung) = hanging_once(&h);

    // The first syncer takes the request and hangs in the tree read; then it "dies".
    let first = CancellationToken::new();
    let dying = spawn_syncer(&h, h.executor(sources.clone()), first.clone());
    let sync = h.push(target, ZERO, &head).await.unwrap();
    h.until_events(target, "SyncStarted", 1).await;
    // `SyncStarted` commits before the tree read: abort only once the first syncer hangs in it,
    // or the second syncer would take the hanging read instead.
    tokio::time::timeout(WAIT, async {
        while !hung.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the first syncer reaches the tree read");
    dying.abort();

    // A second syncer gets the unacked request after ack_wait and finishes it.
    spawn_syncer(&h, h.executor(sources), h.shutdown());
    h.until_run(sync, "completed").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let types = h.event_types(target).await;
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    assert_eq!(
        (
            count("SyncStarted"),
            count("SyncCompleted"),
            count("SyncFailed")
        ),
        (1, 1, 0),
        "{types:?}"
    );
}

#[tokio::test]
async fn reconcile_runs_a_request_never_started_and_catches_a_head_moved_without_a_push() {
    let h = Harness::start().await;
    let (repo, head, target) = one_commit_target(&h).await;
    // No consumer runs: the request is never picked up.
    let sync = h.push(target, ZERO, &head).await.unwrap();
    h.until_run(sync, "queued").await;
    let executor = h.executor(h.sources(unconfigured_github()));
    let config = ReconcileConfig {
        stale_after: Duration::from_secs(1),
        ..ReconcileConfig::default()
    };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pass = reconcile::pass(&config, &executor, true).await.unwrap();
    assert!(pass.ran);
    assert_eq!(pass.stale_run, 1, "{pass:?}");
    h.until_run(sync, "completed").await;

    // A commit nobody pushed: the next pass requests it (reason reconcile).
    repo.write("b.md", "b");
    let moved = repo.commit("second");
    h.until_target_synced(target, &head).await;
    let pass = reconcile::pass(&config, &executor, true).await.unwrap();
    assert_eq!(pass.head_moved, 1, "{pass:?}");
    assert_eq!(h.until_run_of_head(target, &moved).await, "reconcile");
}

#[tokio::test]
async fn a_retryable_failure_is_retried_with_backoff_up_to_the_limit_then_stays_failed() {
    let h = Harness::start().await;
    // A remote source nobody listens on: every fetch fails, retryably.
    let target = h.track(Some("http://127.0.0.1:9/nobody.git")).await;
    let executor = h.executor(h.sources(unconfigured_github()));
    let head = CommitSha::parse(&"b".repeat(40)).unwrap();
    let sync = h.push(target, ZERO, &head).await.unwrap();
    let settled = executor.execute(target, sync, "test").await.unwrap();
    assert!(
        matches!(
            settled,
            hooklog_syncer::Settled::Failed {
                retryable: true,
                ..
            }
        ),
        "{settled:?}"
    );
    h.until_run(sync, "failed").await;
    h.until_target_state(target, "failed").await;

    let config = ReconcileConfig {
        max_retries: 2,
        retry_delay: Duration::from_secs(1),
        ..ReconcileConfig::default()
    };
    // Within the first pause: no retry yet.
    let pass = reconcile::pass(&config, &executor, true).await.unwrap();
    assert_eq!(pass.retried, 0, "{pass:?}");
    for failures in 1..=2u32 {
        tokio::time::sleep(config.backoff(failures) + Duration::from_millis(200)).await;
        let pass = reconcile::pass(&config, &executor, true).await.unwrap();
        assert_eq!(pass.retried, 1, "after failure {failures}: {pass:?}");
        let state = h.bus.load_target(target).await.unwrap();
        let retry = state.in_flight().expect("the retry is in flight").sync_id;
        executor.execute(target, retry, "test").await.unwrap();
        h.until_run(retry, "failed").await;
        h.until_target_state(target, "failed").await;
    }
    // Two retries after the first failure: the limit; it now waits for an admin.
    tokio::time::sleep(config.backoff(3) + Duration::from_millis(200)).await;
    let pass = reconcile::pass(&config, &executor, true).await.unwrap();
    assert_eq!(pass.retried, 0, "{pass:?}");
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_runs WHERE target_id = $1 AND status = 'failed'",
    )
    .bind(target.0)
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(failed, 3);
}

#[tokio::test]
async fn a_sync_that_hangs_is_given_up_at_its_timeout_and_fails_retryably() {
    let h = Harness::start().await;
    let (_repo, head, target) = one_commit_target(&h).await;
    let (sources, _) = hanging_once(&h);
    let limits = hooklog_syncer::sync::SyncLimits {
        timeout: Duration::from_secs(1),
        ..hooklog_syncer::sync::SyncLimits::default()
    };
    let executor = Executor::new(h.bus.clone(), sources, limits);
    let sync = h.push(target, ZERO, &head).await.unwrap();
    let settled = executor.execute(target, sync, "test").await.unwrap();
    let hooklog_syncer::Settled::Failed { error, retryable } = settled else {
        panic!("the sync should fail: {settled:?}");
    };
    assert!(retryable);
    assert!(error.contains("HOOKLOG_SYNCER_SYNC_TIMEOUT"), "{error}");
    h.until_run(sync, "failed").await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM synced_files WHERE target_id = $1")
        .bind(target.0)
        .fetch_one(&h.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn branch_heads_wait_until_the_worker_has_decided_every_stored_delivery() {
    use async_nats::jetstream::consumer::pull;
    use futures::StreamExt;
    use hooklog_infra::streams::{delivery_subject, DELIVERIES_STREAM, WORKER_CONSUMER};
    use hooklog_syncer::reconcile::deliveries_decided;

    let backends = hooklog_infra::testing::Backends::start("hooklog-syncer-test").await;
    let js = &backends.js;
    assert!(
        deliveries_decided(js).await,
        "no worker consumer: nothing waits"
    );
    let stream = js.get_stream(DELIVERIES_STREAM).await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(WORKER_CONSUMER.to_owned()),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        deliveries_decided(js).await,
        "a consumer with nothing to do"
    );
    js.publish(delivery_subject("push"), "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        !deliveries_decided(js).await,
        "a delivery not handed out yet"
    );
    let mut messages = consumer.fetch().max_messages(1).messages().await.unwrap();
    let message = messages.next().await.unwrap().unwrap();
    assert!(
        !deliveries_decided(js).await,
        "a delivery handed out, not acked"
    );
    message.double_ack().await.unwrap();
    assert!(deliveries_decided(js).await, "every delivery decided");
}
