//! The admin listener served on port 0 against its own `nats-server` and a fresh PostgreSQL
//! database, with the rest of the pipeline running in-process (relay, projector, worker) so
//! commands reach `HOOKLOG_EVENTS` and reads see them. Requests carry the write token unless a
//! test says otherwise.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use hooklog_admin::{AdminState, Tokens, Waits};
use hooklog_domain::clock::SystemClock;
use hooklog_domain::github_delivery::RedeliveryPolicy;
use hooklog_domain::source::AllowedSources;
use hooklog_infra::streams::{self, delivery_headers};
use hooklog_infra::testing::Backends;
use hooklog_syncer::source::github::GithubAppConfig;
use hooklog_worker::{Processor, WorkerConfig};
use hooklog_write::CommandBus;
use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub const WRITE_TOKEN: &str = "test-write-token";
pub const READ_TOKEN: &str = "test-read-token";

pub struct App {
    pub url: String,
    pub http: reqwest::Client,
    pub pool: PgPool,
    pub js: jetstream::Context,
    pub nats: async_nats::Client,
    pub bus: CommandBus,
    shutdown: CancellationToken,
    _backends: Backends,
}

impl Drop for App {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// How an app is started.
pub struct Options {
    pub tokens: Tokens,
    /// Run the relay, projector and worker.
    pub pipeline: bool,
    pub waits: Waits,
    /// Serve this verifier key at `/v1/audit/key`.
    pub audit_key: Option<hooklog_audit::VerifierKey>,
    /// The git sources targets may name (`HOOKLOG_SYNCER_ALLOWED_SOURCES`); none by default.
    pub allowed_sources: AllowedSources,
    /// Ask GitHub for redeliveries through the App of this configuration (a fake GitHub's
    /// `app_config()`), under this policy; none by default.
    pub github_app: Option<(GithubAppConfig, RedeliveryPolicy)>,
    /// The webhook secrets the admin listener checks redriven dead letters with.
    pub webhook_secrets: Vec<hooklog_domain::github::WebhookSecret>,
    /// Seal repository connections' secrets under this key (`HOOKLOG_SECRETS_KEY`); none by
    /// default, and connecting is refused naming it.
    pub secrets_key: Option<[u8; 32]>,
    /// `HOOKLOG_PUBLIC_URL`.
    pub public_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tokens: Tokens::new(Some(&WRITE_TOKEN.into()), Some(&READ_TOKEN.into())),
            pipeline: true,
            waits: Waits::default(),
            audit_key: None,
            allowed_sources: AllowedSources::default(),
            github_app: None,
            webhook_secrets: vec![hooklog_domain::github::WebhookSecret::new(WEBHOOK_SECRET)],
            secrets_key: None,
            public_url: None,
        }
    }
}

impl App {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let backends = Backends::start("hooklog-admin-test").await;
        let (js, nats, pool) = (
            backends.js.clone(),
            backends.client.clone(),
            backends.pool.clone(),
        );
        let shutdown = CancellationToken::new();
        if options.pipeline {
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
            let worker = WorkerConfig {
                retry_delay: Duration::from_millis(100),
                max_retry_delay: Duration::from_millis(500),
                secrets: vec![hooklog_domain::github::WebhookSecret::new(WEBHOOK_SECRET)],
                ..WorkerConfig::default()
            };
            let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
            tokio::spawn(hooklog_worker::run(
                worker,
                Processor::new(bus.clone()),
                js.clone(),
                shutdown.clone(),
            ));
            tokio::spawn(hooklog_process_manager::run(
                hooklog_process_manager::ProcessManagerConfig::default(),
                bus,
                js.clone(),
                shutdown.clone(),
            ));
        }
        let mut state = AdminState::new(pool.clone(), nats.clone(), options.tokens)
            .unwrap()
            .waits(options.waits)
            .allowed_sources(options.allowed_sources)
            .webhook_secrets(options.webhook_secrets.clone());
        let vault = options.secrets_key.map(|key| {
            let keys = hooklog_write::vault::VaultKeys {
                current: hooklog_write::vault::SecretsKey::new(&key),
                previous: None,
            };
            hooklog_write::vault::Vault::new(pool.clone(), keys)
        });
        state = state.repositories(vault, options.public_url.as_deref());
        if let Some(key) = options.audit_key {
            state = state.audit_key(key);
        }
        if let Some((config, policy)) = options.github_app {
            let client = hooklog_syncer::source::github::AppClient::new(&config).unwrap();
            let source = hooklog_syncer::source::github::GithubApp::new(config).unwrap();
            state = state
                .github_app(Arc::new(client), policy)
                .github_source(Arc::new(source))
                .github_install_page("https://github.com", "hooklog-test");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(hooklog_admin::run(
            state,
            listener,
            hooklog_infra::config::Settings::default().server_limits(),
            shutdown.clone(),
        ));
        Self {
            url: format!("http://{addr}"),
            http: hooklog_infra::http::client().unwrap(),
            bus: CommandBus::new(pool.clone(), Arc::new(SystemClock)),
            pool,
            js,
            nats,
            shutdown,
            _backends: backends,
        }
    }

    /// Stops the listener and the pipeline, as SIGTERM does in `hooklog serve`.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    /// A request with the write token.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(WRITE_TOKEN)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Stores a delivery the way the ingress does; returns its stream sequence.
    pub async fn deliver(
        &self,
        event: &str,
        delivery_id: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> u64 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(delivery_headers::EVENT, event);
        headers.insert(delivery_headers::DELIVERY, delivery_id);
        headers.insert(delivery_headers::CONTENT_TYPE, content_type);
        headers.insert(delivery_headers::RECEIVED_AT, "2026-01-31T12:00:00Z");
        headers.insert("Nats-Msg-Id", delivery_id);
        let secret = hooklog_domain::github::WebhookSecret::new(WEBHOOK_SECRET);
        let signature = hooklog_domain::github::Signature::sign(&secret, &body).to_string();
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
        headers.insert(delivery_headers::SIGNATURE_256, signature.as_str());
        headers.insert(delivery_headers::BODY_SHA256, digest.as_str());
        self.js
            .publish_with_headers(streams::delivery_subject(event), headers, body.into())
            .await
            .unwrap()
            .await
            .unwrap()
            .sequence
    }
}

/// The webhook secret deliveries are signed with, as the ingress verified them.
pub const WEBHOOK_SECRET: &str = "admin test webhook secret";

/// Status and JSON body (`Null` when the body is not JSON).
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The stable error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
