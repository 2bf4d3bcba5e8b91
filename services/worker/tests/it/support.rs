//! A worker (or two) running in-process on its own `nats-server` and database, and the GitHub
//! payloads the tests send, built from the vendored octokit examples.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use hooklog_domain::clock::SystemClock;
use hooklog_domain::connector_instance::InstanceCommand;
use hooklog_domain::connector_target::{TargetCommand, TargetOwner};
use hooklog_domain::ids::{
    Branch, InstallationId, InstanceId, RepositoryId, RepositoryName, TargetId,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_infra::streams::{self, delivery_headers, DELIVERIES_STREAM};
use hooklog_infra::testing::{octokit_example, Backends, TcpOutage};
use hooklog_worker::{Processor, WorkerConfig};
use hooklog_write::CommandBus;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub const INSTALLATION: u64 = 4242;
pub const REPOSITORY: u64 = 1296269;

pub struct Harness {
    pub js: jetstream::Context,
    pub pool: PgPool,
    pub bus: CommandBus,
    /// In front of PostgreSQL for the workers, when the test cuts it.
    pub outage: Option<TcpOutage>,
    shutdown: CancellationToken,
    _backends: Backends,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The webhook secret deliveries are signed with, as the ingress verified them.
pub const SECRET: &str = "worker test secret";

pub fn config() -> WorkerConfig {
    WorkerConfig {
        retry_delay: Duration::from_millis(100),
        max_retry_delay: Duration::from_millis(500),
        secrets: vec![hooklog_domain::github::WebhookSecret::new(SECRET)],
        ..WorkerConfig::default()
    }
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(1, false).await
    }

    /// `workers` worker tasks sharing one durable consumer; `behind_outage`: the workers reach
    /// PostgreSQL through a proxy the test can cut.
    pub async fn start_with(workers: usize, behind_outage: bool) -> Self {
        let backends = Backends::start("hooklog-worker-test").await;
        let (js, pool) = (backends.js.clone(), backends.pool.clone());
        let name = &backends.database;
        let outage = match behind_outage {
            true => Some(TcpOutage::start("127.0.0.1:5432").await),
            false => None,
        };
        let worker_pool = match &outage {
            Some(proxy) => sqlx::postgres::PgPoolOptions::new()
                .acquire_timeout(Duration::from_secs(2))
                .connect_lazy(&format!("postgres://postgres@{}/{name}", proxy.addr()))
                .unwrap(),
            None => pool.clone(),
        };
        let shutdown = CancellationToken::new();
        // Cascades are the process manager's: it reads the events the relay publishes.
        tokio::spawn(hooklog_relay::run(
            hooklog_relay::RelayConfig::default(),
            pool.clone(),
            js.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(hooklog_process_manager::run(
            hooklog_process_manager::ProcessManagerConfig::default(),
            CommandBus::new(pool.clone(), Arc::new(SystemClock)),
            js.clone(),
            shutdown.clone(),
        ));
        for _ in 0..workers {
            spawn_worker(&worker_pool, &js, &shutdown);
        }
        Self {
            js,
            bus: CommandBus::new(pool.clone(), Arc::new(SystemClock)),
            pool,
            outage,
            shutdown,
            _backends: backends,
        }
    }

    /// Starts one more worker, on the harness's database.
    pub fn spawn_worker(&self) {
        spawn_worker(&self.pool, &self.js, &self.shutdown);
    }

    /// Stores a delivery the way the ingress does; `msg_id` defaults to the delivery id.
    pub async fn publish(&self, event: &str, delivery_id: &str, body: &Value) -> u64 {
        self.publish_as(event, delivery_id, delivery_id, body).await
    }

    pub async fn publish_as(
        &self,
        event: &str,
        delivery_id: &str,
        msg_id: &str,
        body: &Value,
    ) -> u64 {
        let body = serde_json::to_vec(body).unwrap();
        let secret = hooklog_domain::github::WebhookSecret::new(SECRET);
        let signature = hooklog_domain::github::Signature::sign(&secret, &body).to_string();
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
        self.publish_signed(
            event,
            delivery_id,
            msg_id,
            body,
            Some(&signature),
            Some(&digest),
        )
        .await
    }

    /// Stores a message with exactly this signature and digest header (or none), the way
    /// anyone with NATS credentials could.
    pub async fn publish_signed(
        &self,
        event: &str,
        delivery_id: &str,
        msg_id: &str,
        body: Vec<u8>,
        signature: Option<&str>,
        digest: Option<&str>,
    ) -> u64 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(delivery_headers::EVENT, event);
        headers.insert(delivery_headers::DELIVERY, delivery_id);
        headers.insert(delivery_headers::CONTENT_TYPE, "application/json");
        headers.insert("Nats-Msg-Id", msg_id);
        if let Some(signature) = signature {
            headers.insert(delivery_headers::SIGNATURE_256, signature);
        }
        if let Some(digest) = digest {
            headers.insert(delivery_headers::BODY_SHA256, digest);
        }
        let ack = self
            .js
            .publish_with_headers(streams::delivery_subject(event), headers, body.into())
            .await
            .unwrap()
            .await
            .unwrap();
        ack.sequence
    }

    /// What the worker decided about `delivery_id` (its `Delivery` event: `processed`,
    /// `ignored` or `dead_letter`, and the detail or reason), waiting for it.
    pub async fn outcome(&self, delivery_id: &str) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some((kind, payload)) = self.decision(delivery_id).await {
                let (outcome, field) = match kind.as_str() {
                    "DeliveryProcessed" => ("processed", "detail"),
                    "DeliveryIgnored" => ("ignored", "reason"),
                    "DeliveryDeadLettered" => ("dead_letter", "reason"),
                    other => panic!("{other} is not a decision"),
                };
                let detail = payload[&kind][field]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                return (outcome.to_owned(), detail);
            }
            assert!(
                Instant::now() < deadline,
                "no outcome for {delivery_id} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The decision event about `delivery_id`, if any: its type and payload.
    pub async fn decision(&self, delivery_id: &str) -> Option<(String, Value)> {
        let key = hooklog_domain::delivery::DeliveryKey::for_delivery(delivery_id);
        let events = self.events("Delivery", &key.0).await;
        assert!(events.len() <= 1, "decided more than once: {events:?}");
        events
            .into_iter()
            .next()
            .map(|(kind, payload, _)| (kind, payload))
    }

    /// Every decision event's payload, in commit order.
    pub async fn decisions(&self) -> Vec<Value> {
        sqlx::query_scalar::<_, sqlx::types::Json<Value>>(
            "SELECT payload FROM events WHERE aggregate_type = 'Delivery' ORDER BY aggregate_id",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.0)
        .collect()
    }

    /// Waits until the worker acked everything on the stream.
    pub async fn drained(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stream = self.js.get_stream(DELIVERIES_STREAM).await.unwrap();
            if let Ok(mut consumer) = stream
                .get_consumer::<jetstream::consumer::pull::Config>("hooklog-worker")
                .await
            {
                let info = consumer.info().await.unwrap();
                if info.num_pending == 0 && info.num_ack_pending == 0 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "worker did not drain within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `(event_type, payload, metadata)` of an aggregate's events, in order.
    pub async fn events(&self, aggregate_type: &str, id: &str) -> Vec<(String, Value, Value)> {
        sqlx::query_as::<_, (String, sqlx::types::Json<Value>, sqlx::types::Json<Value>)>(
            "SELECT event_type, payload, metadata FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(t, p, m)| (t, p.0, m.0))
        .collect()
    }

    /// An aggregate's events once its last one is `kind`: what the process manager's cascade
    /// committed, waiting for it.
    pub async fn events_ending_with(
        &self,
        aggregate_type: &str,
        id: &str,
        kind: &str,
    ) -> Vec<(String, Value, Value)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let events = self.events(aggregate_type, id).await;
            if events.last().is_some_and(|(t, _, _)| t == kind) {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "{aggregate_type} {id} has no {kind} last within 30 s: {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn target_events(&self, target: TargetId) -> Vec<String> {
        self.events("ConnectorTarget", &target.to_string())
            .await
            .into_iter()
            .map(|(t, _, _)| t)
            .collect()
    }

    /// GitHub's `installation.created` for the test installation, granting `repository`,
    /// processed.
    pub async fn connect(&self, repository: &str) {
        self.publish("installation", "created", &installation_created(repository))
            .await;
        let (outcome, detail) = self.outcome("created").await;
        assert_eq!(outcome, "processed", "{detail}");
    }

    /// Tracks a branch the way `hooklog targets track` does.
    pub async fn track(&self, repository: &str, branch: &str) -> TargetId {
        let meta = CommandMetadata::from_operator("test", &uuid::Uuid::new_v4().to_string());
        let (installation, repo) = (InstallationId(INSTALLATION), RepositoryId(REPOSITORY));
        let branch = Branch::parse(branch).unwrap();
        let name = RepositoryName::parse(repository).unwrap();
        let attach = InstanceCommand::AttachTarget {
            installation_id: installation,
            repository_id: repo,
            repository: name.clone(),
            branch: branch.clone(),
        };
        self.bus
            .instance(InstanceId(installation), attach, &meta)
            .await
            .unwrap();
        let track = TargetCommand::Track {
            owner: TargetOwner::Installation(installation),
            repository_id: repo,
            repository: name,
            branch: branch.clone(),
            auto_sync: true,
            source: None,
            path_filters: Default::default(),
        };
        let target = TargetId::for_branch(installation, repo, &branch);
        self.bus.target(target, track, &meta).await.unwrap();
        // The process manager's reaction to the tracking (attach: nothing to do here) is done
        // before the test goes on, so a later delivery's cascade is the one the test sees.
        self.cascades_done().await;
        target
    }

    /// Waits until the relay published every committed event and the process manager handled
    /// every one of them.
    pub async fn cascades_done(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM event_outbox")
                .fetch_one(&self.pool)
                .await
                .unwrap();
            let stream = self.js.get_stream(streams::EVENTS_STREAM).await.unwrap();
            let idle = match stream.consumer_info("hooklog-process-manager").await {
                Ok(info) => info.num_pending == 0 && info.num_ack_pending == 0,
                Err(_) => false,
            };
            if outbox == 0 && idle {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the process manager did not settle within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn spawn_worker(pool: &PgPool, js: &jetstream::Context, shutdown: &CancellationToken) {
    let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
    tokio::spawn(hooklog_worker::run(
        config(),
        Processor::new(bus),
        js.clone(),
        shutdown.clone(),
    ));
}

pub fn sha(n: u64) -> String {
    format!("{n:040x}")
}

/// GitHub's push example, moved to our installation and repository.
pub fn push(repository: &str, git_ref: &str, before: &str, after: &str) -> Value {
    let mut body = octokit_example("push", |x| {
        x["installation"].is_object() && x["ref"] == "refs/heads/master"
    });
    body["ref"] = json!(git_ref);
    body["before"] = json!(before);
    body["after"] = json!(after);
    body["installation"]["id"] = json!(INSTALLATION);
    body["repository"]["id"] = json!(REPOSITORY);
    body["repository"]["full_name"] = json!(repository);
    body
}

pub fn installation(action: &str) -> Value {
    let mut body = octokit_example("installation", |x| x["action"] == action);
    body["installation"]["id"] = json!(INSTALLATION);
    body
}

pub fn installation_created(repository: &str) -> Value {
    let mut body = installation("created");
    body["repositories"] = json!([{ "id": REPOSITORY, "full_name": repository, "name": "x", "node_id": "x", "private": false }]);
    body
}

pub fn installation_repositories_removed(repository: &str) -> Value {
    let mut body = octokit_example("installation_repositories", |x| x["action"] == "removed");
    body["installation"]["id"] = json!(INSTALLATION);
    body["repositories_removed"] = json!([{ "id": REPOSITORY, "full_name": repository, "name": "x", "node_id": "x", "private": false }]);
    body
}

pub fn repository(action: &str, full_name: &str) -> Value {
    let mut body = octokit_example("repository", |x| {
        x["action"] == action && x["installation"].is_object()
    });
    body["installation"]["id"] = json!(INSTALLATION);
    body["repository"]["id"] = json!(REPOSITORY);
    body["repository"]["full_name"] = json!(full_name);
    body
}
