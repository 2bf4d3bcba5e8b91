//! A repository connection's world: real NATS and PostgreSQL; the relay, projector and worker;
//! the ingress with its connection directory kept from the vault; the fake providers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hooklog_domain::clock::SystemClock;
use hooklog_domain::metadata::CommandMetadata;
use hooklog_domain::repository_connection::{ConnectionId, ConnectionStatus};
use hooklog_infra::config::Settings;
use hooklog_infra::testing::Backends;
use hooklog_ingress::{ConnectionSecrets, IngressConfig};
use hooklog_repositories::{HookApi, PassReport};
use hooklog_syncer::testing::FakeRepoHosts;
use hooklog_write::repositories::{self, ConnectRepository, Connected};
use hooklog_write::vault::{SecretKind, SecretsKey, Vault, VaultKeys};
use hooklog_write::CommandBus;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "ghp_test-token-of-the-admin-0123456789";
pub const GITLAB_TOKEN: &str = "glpat-test-project-token-0123456789";
pub const REPO: &str = "octo-org/docs";
pub const REPO_ID: u64 = 8_100_001;
pub const PROJECT: &str = "group/sub/handbook";
pub const PROJECT_ID: u64 = 4_200_017;

pub fn key(byte: u8) -> SecretsKey {
    SecretsKey::new(&[byte; 32])
}

pub struct World {
    pub backends: Backends,
    pub hosts: FakeRepoHosts,
    pub bus: CommandBus,
    pub vault: Vault,
    pub api: HookApi,
    pub directory: ConnectionSecrets,
    /// `http://127.0.0.1:<ingress port>`: what the connections' webhooks post under.
    pub public_url: String,
    pub shutdown: CancellationToken,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl World {
    pub async fn start() -> World {
        let backends = Backends::start("hooklog-repositories-test").await;
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
        let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
        let vault = Vault::new(
            pool.clone(),
            VaultKeys {
                current: key(7),
                previous: None,
            },
        );
        // The App's webhook has no secret here: only connections' deliveries are taken.
        let config = IngressConfig::from_settings(&Settings::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let public_url = format!("http://{}", listener.local_addr().unwrap());
        let directory = ConnectionSecrets::default();
        tokio::spawn(hooklog_repositories::directory::keep(
            bus.clone(),
            vault.clone(),
            backends.client.clone(),
            directory.clone(),
            Duration::from_secs(30),
            shutdown.clone(),
        ));
        tokio::spawn(hooklog_ingress::run(
            config,
            backends.client.clone(),
            listener,
            directory.clone(),
            shutdown.clone(),
        ));
        let worker = hooklog_worker::WorkerConfig {
            vault: Some(vault.clone()),
            ..hooklog_worker::WorkerConfig::default()
        };
        tokio::spawn(hooklog_worker::run(
            worker,
            hooklog_worker::Processor::new(bus.clone()),
            js.clone(),
            shutdown.clone(),
        ));
        let hosts = FakeRepoHosts::start().await;
        hosts.add_github_repository(REPO, REPO_ID, TOKEN);
        hosts.add_gitlab_project(PROJECT, PROJECT_ID, GITLAB_TOKEN);
        let api = HookApi::new(&hosts.url(), &hosts.gitlab_api_url()).unwrap();
        World {
            backends,
            hosts,
            bus,
            vault,
            api,
            directory,
            public_url,
            shutdown,
        }
    }

    pub fn meta() -> CommandMetadata {
        CommandMetadata::from_operator("test", &uuid::Uuid::new_v4().to_string())
    }

    pub async fn connect(&self, provider: &str, repository: &str, token: &str) -> Connected {
        repositories::connect(
            &self.bus,
            Some(&self.vault),
            Some(&self.public_url),
            ConnectRepository {
                provider: provider.to_owned(),
                repository: repository.to_owned(),
                branch: "main".to_owned(),
                token: SecretString::from(token.to_owned()),
            },
            &Self::meta(),
        )
        .await
        .expect("connected")
    }

    /// `PROJECT` connected, its hook created by a pass and the ingress taking its deliveries;
    /// the hook as the fake GitLab keeps it.
    pub async fn gitlab_connected(&self) -> (Connected, hooklog_syncer::testing::FakeHook) {
        let connected = self.connect("gitlab", PROJECT, GITLAB_TOKEN).await;
        self.pass().await;
        self.directory_says(connected.connection, true).await;
        let hook = self.hosts.gitlab_hooks(PROJECT).remove(0);
        (connected, hook)
    }

    /// Every message on `GITHUB_DELIVERIES`, its headers and payload as text.
    pub async fn stored_messages(&self) -> Vec<String> {
        let stream = hooklog_infra::streams::DELIVERIES_STREAM;
        let mut stream = self.backends.js.get_stream(stream).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut stored = Vec::new();
        for sequence in 1..=last {
            let message = stream.direct_get(sequence).await.unwrap();
            let payload = String::from_utf8_lossy(&message.payload);
            stored.push(format!("{:?} {payload}", message.headers));
        }
        stored
    }

    /// A pass that leaves webhook health alone (last checked within the hour).
    pub async fn pass(&self) -> PassReport {
        self.pass_with(Duration::from_secs(3600)).await
    }

    /// A pass that reads the health of every active connection not checked for `interval`.
    pub async fn pass_with(&self, health_interval: Duration) -> PassReport {
        hooklog_repositories::run_pass(&self.bus, &self.vault, &self.api, health_interval, None)
            .await
            .expect("the pass runs")
    }

    pub async fn status(&self, id: ConnectionId) -> ConnectionStatus {
        self.bus.load_connection(id).await.unwrap().status()
    }

    /// The connection's webhook secret, from the vault.
    pub async fn secret(&self, id: ConnectionId) -> Option<String> {
        self.vault
            .get(&id.to_string(), SecretKind::WebhookSecret)
            .await
            .unwrap()
            .map(|s| s.expose_secret().to_owned())
    }

    /// Waits until the ingress's directory says `taking` about `id`.
    pub async fn directory_says(&self, id: ConnectionId, taking: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.directory.get(id.0).is_some() != taking {
            assert!(
                Instant::now() < deadline,
                "the ingress's directory never said {taking} for {id}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the read model's row of `id` to have `status`; the row as JSON.
    pub async fn row_with(&self, id: ConnectionId, status: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let row: Option<serde_json::Value> = sqlx::query_scalar(
                "SELECT to_jsonb(c) FROM repository_connections c WHERE connection_id = $1",
            )
            .bind(id.0)
            .fetch_optional(&self.backends.pool)
            .await
            .unwrap();
            if let Some(row) = row.filter(|r| r["status"] == status) {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "connection {id} never reached {status} in the read model"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the worker decided about delivery `guid`, once it has.
    pub async fn decided(&self, guid: &str) -> (String, String) {
        use cqrs_es::DomainEvent;
        use hooklog_domain::delivery::DeliveryKey;
        let key = DeliveryKey::for_delivery(guid);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let events = self.bus.delivery_events(&key).await.unwrap();
            if let Some(event) = events.last() {
                let body = serde_json::to_string(&event.payload).unwrap();
                return (event.payload.event_type(), body);
            }
            assert!(
                Instant::now() < deadline,
                "delivery {guid} was never decided"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
