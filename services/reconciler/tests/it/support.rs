//! A reconciler's world: real NATS and PostgreSQL, the ingress, relay and projector, and the
//! fake GitHub whose delivery log the reconciler reads and whose redeliveries post signed
//! deliveries to the ingress, as GitHub does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hooklog_domain::clock::SystemClock;
use hooklog_domain::github::WebhookSecret;
use hooklog_domain::github_delivery::RedeliveryPolicy;
use hooklog_infra::config::Settings;
use hooklog_infra::testing::{octokit_example, Backends};
use hooklog_ingress::IngressConfig;
use hooklog_reconciler::{PassReport, Reconciler, ReconcilerConfig};
use hooklog_syncer::source::github::AppClient;
use hooklog_syncer::testing::{FakeGithub, APP_ID, PUBLIC_KEY};
use hooklog_write::CommandBus;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "reconciler-test-webhook-secret";

pub struct World {
    pub backends: Backends,
    pub github: FakeGithub,
    pub bus: CommandBus,
    /// Where the ingress listens (`…/v1/webhooks/connectors/github`).
    pub webhook_url: String,
    pub shutdown: CancellationToken,
    _repo_dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl World {
    pub async fn start() -> World {
        let backends = Backends::start("hooklog-reconciler-test").await;
        let shutdown = CancellationToken::new();
        let (pool, js) = (backends.pool.clone(), backends.js.clone());
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
        let config = IngressConfig {
            secrets: vec![WebhookSecret::new(SECRET)],
            ..IngressConfig::from_settings(&Settings::default())
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook_url = format!(
            "http://{}{}",
            listener.local_addr().unwrap(),
            hooklog_ingress::WEBHOOK_PATH
        );
        tokio::spawn(hooklog_ingress::run(
            config,
            backends.client.clone(),
            listener,
            Default::default(),
            shutdown.clone(),
        ));
        let repo_dir = tempfile::tempdir().unwrap();
        let github = FakeGithub::start(repo_dir.path().to_path_buf(), APP_ID, PUBLIC_KEY).await;
        github.set_webhook_url(&webhook_url);
        github.set_webhook_secret(SECRET);
        World {
            bus: CommandBus::new(pool, Arc::new(SystemClock)),
            backends,
            github,
            webhook_url,
            shutdown,
            _repo_dir: repo_dir,
        }
    }

    /// A push payload (a real GitHub example) for delivery `n`.
    pub fn push_body(n: u64) -> Vec<u8> {
        let mut body = octokit_example("push", |_| true);
        body["after"] = serde_json::json!(format!("{n:040x}"));
        serde_json::to_vec(&body).unwrap()
    }

    /// The reconciler's settings for tests: nothing left to settle, short waits.
    pub fn config(&self) -> ReconcilerConfig {
        ReconcilerConfig {
            interval: Duration::from_millis(200),
            settle: Duration::ZERO,
            policy: RedeliveryPolicy {
                arrival_timeout: Duration::from_secs(60),
                max_attempts: 3,
                ..RedeliveryPolicy::default()
            },
            projection_wait: Duration::from_secs(10),
            lock_retry: Duration::from_millis(100),
            ..ReconcilerConfig::new(APP_ID)
        }
    }

    pub fn client(&self) -> AppClient {
        AppClient::new(&self.github.app_config()).unwrap()
    }

    pub fn reconciler(&self, config: ReconcilerConfig) -> Reconciler {
        Reconciler {
            config,
            pool: self.backends.pool.clone(),
            bus: self.bus.clone(),
            js: self.backends.js.clone(),
            client: Arc::new(self.client()),
        }
    }

    /// One pass with `config`, then every redelivery it caused has been posted.
    pub async fn pass_with(&self, config: &ReconcilerConfig) -> PassReport {
        let report = hooklog_reconciler::run_pass(
            config,
            &self.backends.pool,
            &self.bus,
            &self.backends.js,
            &self.client(),
        )
        .await
        .expect("the pass succeeds");
        self.github.redeliveries_settled().await;
        report
    }

    pub async fn pass(&self) -> PassReport {
        self.pass_with(&self.config()).await
    }

    /// The events of one type stored for `guid`'s `GithubDelivery`.
    pub async fn events(&self, guid: &str, event_type: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_type = 'GithubDelivery' \
             AND aggregate_id = $1 AND event_type = $2",
        )
        .bind(guid)
        .bind(event_type)
        .fetch_one(&self.backends.pool)
        .await
        .unwrap()
    }

    /// Messages on GITHUB_DELIVERIES carrying `guid`, per the deliveries read model, once it
    /// has at least one (waits up to 10 s; 0 when none came).
    pub async fn stored(&self, guid: &str) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let count: i64 =
                sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE delivery_id = $1")
                    .bind(guid)
                    .fetch_one(&self.backends.pool)
                    .await
                    .unwrap();
            if count > 0 || Instant::now() > deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The read model row's status, once the projector has it (waits up to 10 s for `want`).
    pub async fn read_status(&self, guid: &str, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM github_deliveries WHERE guid = $1")
                    .bind(guid)
                    .fetch_optional(&self.backends.pool)
                    .await
                    .unwrap();
            let status = status.unwrap_or_default();
            if status == want || Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
