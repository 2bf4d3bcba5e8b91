//! hooklog's GitHub webhook receiver, `POST /v1/webhooks/connectors/github`.
//!
//! A request goes through [`VerifiedDelivery`] (secret configured, size, signature, headers, body
//! format, in that order, nothing parsed before the signature holds), then through a
//! [`DeliveryLog`] that stores it in JetStream. GitHub hears 2xx only after the PubAck.
//! No PostgreSQL on this path: the ingress keeps accepting while the database is down.
#![forbid(unsafe_code)]

mod delivery;
mod error;
mod limiter;
mod log;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use hooklog_domain::github::{Disposition, WebhookSecret};
use hooklog_infra::config::Settings;
use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use delivery::{VerifiedDelivery, MAX_BODY_BYTES};
pub use error::IngressError;
pub use limiter::FailedAuthLimiter;
pub use log::{DeliveryLog, JetStreamDeliveryLog, StoreError, Stored};

/// The path GitHub posts to.
pub const WEBHOOK_PATH: &str = "/v1/webhooks/connectors/github";

/// What the ingress needs from the settings.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    /// Current secret first, then previous ones. Empty: every request answers 404.
    pub secrets: Vec<WebhookSecret>,
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    pub publish_timeout: Duration,
    pub failed_auth_per_minute: u32,
    pub duplicate_window: Duration,
}

impl IngressConfig {
    pub fn from_settings(settings: &Settings) -> Self {
        let secrets = [
            &settings.github_webhook_secret,
            &settings.github_webhook_secret_previous,
        ]
        .into_iter()
        .flatten()
        .map(|secret| WebhookSecret::new(secret.expose_secret()))
        .collect();
        Self {
            secrets,
            max_in_flight: settings.ingress_max_in_flight,
            request_timeout: settings.ingress_request_timeout,
            publish_timeout: settings.ingress_publish_timeout,
            failed_auth_per_minute: settings.ingress_failed_auth_per_minute,
            duplicate_window: settings.deliveries_duplicate_window,
        }
    }
}

/// Cheap handles shared by every request.
#[derive(Clone)]
pub struct IngressState {
    pub(crate) secrets: Arc<[WebhookSecret]>,
    pub(crate) log: Arc<dyn DeliveryLog>,
    pub(crate) failed_auth: Arc<FailedAuthLimiter>,
    max_in_flight: usize,
    request_timeout: Duration,
}

impl IngressState {
    pub fn new(config: &IngressConfig, log: Arc<dyn DeliveryLog>) -> Self {
        Self {
            secrets: config.secrets.clone().into(),
            log,
            failed_auth: Arc::new(FailedAuthLimiter::per_minute(config.failed_auth_per_minute)),
            max_in_flight: config.max_in_flight,
            request_timeout: config.request_timeout,
        }
    }
}

/// The answer to a stored delivery, the same for the first copy and any duplicate.
#[derive(Debug, Serialize)]
pub struct Receipt {
    pub delivery_id: String,
    pub event: String,
    pub stream_seq: u64,
    pub duplicate: bool,
}

/// The webhook route with its global in-flight limit and whole-request deadline.
pub fn router(state: IngressState) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .layer(GlobalConcurrencyLimitLayer::new(state.max_in_flight))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.request_timeout,
        ))
        .layer(axum::middleware::from_fn(record_metrics))
        .with_state(state)
}

/// Records every answer's status and latency (`hooklog_ingress_*`), rejections and timeouts
/// included.
async fn record_metrics(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use hooklog_infra::metrics::{INGRESS_DELIVERIES, INGRESS_REQUEST_DURATION};
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(INGRESS_REQUEST_DURATION, "status" => status.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(INGRESS_DELIVERIES, "status" => status).increment(1);
    response
}

#[tracing::instrument(
    name = "delivery",
    skip_all,
    fields(delivery_id = %delivery.envelope.delivery_id, event = %delivery.envelope.event, stream_seq)
)]
async fn receive(
    State(state): State<IngressState>,
    delivery: VerifiedDelivery,
) -> Result<(StatusCode, Json<Receipt>), IngressError> {
    let stored = state.log.store(&delivery).await?;
    tracing::Span::current().record("stream_seq", stored.stream_seq);
    let status = match delivery.envelope.event.disposition() {
        Disposition::ActedOn => StatusCode::ACCEPTED,
        Disposition::Recorded => StatusCode::OK,
    };
    tracing::info!(
        duplicate = stored.duplicate,
        status = status.as_u16(),
        bytes = delivery.body.len(),
        "delivery stored"
    );
    let receipt = Receipt {
        delivery_id: delivery.envelope.delivery_id.to_string(),
        event: delivery.envelope.event.to_string(),
        stream_seq: stored.stream_seq,
        duplicate: stored.duplicate,
    };
    Ok((status, Json(receipt)))
}

/// Serves the ingress on `listener` until `shutdown` fires, then finishes in-flight requests.
pub async fn run(
    config: IngressConfig,
    nats: async_nats::Client,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if config.secrets.is_empty() {
        tracing::warn!(
            "HOOKLOG_GITHUB_WEBHOOK_SECRET is not set: the webhook ingress answers 404 to every request"
        );
    }
    let log = JetStreamDeliveryLog::new(nats, config.publish_timeout, config.duplicate_window);
    let app = router(IngressState::new(&config, Arc::new(log)));
    tracing::info!(addr = %listener.local_addr()?, "ingress listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}
