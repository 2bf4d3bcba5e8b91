//! `spawn_app()`: the real ingress router on port 0 against its own `nats-server`.

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::jetstream::{self, message::StreamMessage};
use hooklog_domain::github::{Signature, WebhookSecret};
use hooklog_infra::nats::{self, EmbeddedNats};
use hooklog_infra::streams::{self, DELIVERIES_STREAM};
use hooklog_infra::testing::nats_server_bin;
use hooklog_ingress::{IngressConfig, WEBHOOK_PATH};
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "test webhook secret";

pub struct TestApp {
    pub addr: SocketAddr,
    pub url: String,
    pub http: reqwest::Client,
    pub secret: WebhookSecret,
    pub nats: EmbeddedNats,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

pub fn config() -> IngressConfig {
    IngressConfig {
        secrets: vec![WebhookSecret::new(SECRET)],
        max_in_flight: 256,
        queue_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(8),
        publish_timeout: Duration::from_secs(2),
        failed_auth_per_minute: 1000,
        duplicate_window: Duration::from_secs(3600),
        allowed_networks: None,
        trusted_proxies: vec![],
        uploads_per_address: 64,
        min_upload_rate: 16 * 1024,
        upload_grace: Duration::from_secs(2),
        server: hooklog_infra::config::Settings::default().server_limits(),
        stream_replicas: 1,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(config()).await
}

pub async fn spawn_app_with(config: IngressConfig) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = nats_server_bin();
    let server = EmbeddedNats::start(&bin, dir.path())
        .await
        .expect("nats-server starts");
    let client = nats::connect(&server.url(), "hooklog-test")
        .await
        .expect("connect");
    nats::check_max_payload(&client).expect("max_payload");
    let js = jetstream::new(client.clone());
    streams::ensure_deliveries_stream(&js, config.duplicate_window)
        .await
        .expect("stream");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(hooklog_ingress::run(
        config.clone(),
        client.clone(),
        listener,
        Default::default(),
        shutdown.clone(),
    ));
    let secret = config
        .secrets
        .first()
        .cloned()
        .unwrap_or_else(|| WebhookSecret::new(SECRET));
    TestApp {
        addr,
        url: format!("http://{addr}{WEBHOOK_PATH}"),
        http: hooklog_infra::http::client().unwrap(),
        secret,
        nats: server,
        client,
        js,
        shutdown,
        _dir: dir,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn new_delivery_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl TestApp {
    /// Posts `body` as GitHub would: signed with the app's secret, JSON content type.
    pub async fn deliver(
        &self,
        event: &str,
        delivery_id: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let signature = Signature::sign(&self.secret, &body).to_string();
        self.post(
            &[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", delivery_id),
                ("X-Hub-Signature-256", &signature),
                ("Content-Type", "application/json"),
            ],
            body,
        )
        .await
    }

    /// Posts `body` with exactly these headers.
    pub async fn post(&self, headers: &[(&str, &str)], body: Vec<u8>) -> reqwest::Response {
        let mut request = self.http.post(&self.url).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request sent")
    }

    pub async fn stored_count(&self) -> u64 {
        let stream = self.js.get_stream(DELIVERIES_STREAM).await.expect("stream");
        stream.get_info().await.expect("stream info").state.messages
    }

    pub async fn stored(&self, sequence: u64) -> StreamMessage {
        let stream = self.js.get_stream(DELIVERIES_STREAM).await.expect("stream");
        stream
            .get_raw_message(sequence)
            .await
            .expect("stored message")
    }
}

pub fn header<'a>(message: &'a StreamMessage, name: &str) -> Option<&'a str> {
    message.headers.get(name).map(|value| value.as_str())
}

/// Receipt fields of a successful answer.
pub async fn receipt(response: reqwest::Response) -> serde_json::Value {
    response.json().await.expect("JSON receipt")
}
