//! hooklog's GitHub webhook receiver: `POST /v1/webhooks/connectors/github` for the App, and
//! `POST /v1/webhooks/repositories/{connection_id}` for the repository webhooks hooklog
//! created for repositories connected without the App (each verified with its connection's
//! own secret, [`ConnectionSecrets`]).
//!
//! A request takes one of `max_in_flight` slots (or is answered 503 with `Retry-After` when none
//! frees up within `queue_timeout`: an overloaded ingress says so in time, before GitHub's 10 s
//! run out), goes through [`VerifiedDelivery`] (secret configured, the address's admission, size,
//! signature header, body at the minimum rate, signature, headers, body format, in that order,
//! nothing parsed before the signature holds), then through a [`DeliveryLog`] that stores it in
//! JetStream. GitHub hears 2xx only after the PubAck. No PostgreSQL on this path: the ingress
//! keeps accepting while the database is down.
//!
//! Why GitHub's deliveries get through while others attack ([`admission`]): an unverified upload
//! holds a slot only while it keeps up the minimum rate, an address holds at most
//! `uploads_per_address` of them, and an address whose requests keep failing verification holds
//! one. So slow or forged uploads from a few addresses hold a bounded share of the slots, and
//! each is dropped within `upload_grace` plus its size at the minimum rate.
#![forbid(unsafe_code)]

pub mod admission;
mod connections;
mod delivery;
mod error;
mod log;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use hooklog_domain::github::{Disposition, WebhookSecret};
use hooklog_domain::repository_connection::Provider;
use hooklog_infra::config::Settings;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

pub use admission::Admission;
pub use connections::ConnectionSecrets;
pub use delivery::{VerifiedDelivery, MAX_BODY_BYTES};
pub use error::IngressError;
pub use log::{DeliveryLog, JetStreamDeliveryLog, StoreError, Stored};

/// The path GitHub posts to.
pub const WEBHOOK_PATH: &str = "/v1/webhooks/connectors/github";
/// The path a repository connection's GitHub webhook posts to, followed by `/<connection id>`.
pub const REPOSITORY_WEBHOOK_PATH: &str = "/v1/webhooks/repositories";
/// The path a repository connection's GitLab project hook posts to, followed by
/// `/<connection id>`.
pub const GITLAB_WEBHOOK_PATH: &str = "/v1/webhooks/gitlab";

/// What the ingress needs from the settings.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    /// Current secret first, then previous ones. Empty: every request answers 404.
    pub secrets: Vec<WebhookSecret>,
    /// Requests handled at once; more wait up to `queue_timeout` for a slot, then get 503.
    pub max_in_flight: usize,
    pub queue_timeout: Duration,
    pub request_timeout: Duration,
    pub publish_timeout: Duration,
    pub failed_auth_per_minute: u32,
    pub duplicate_window: Duration,
    /// Unset: any address may send. Set: only these networks, others get 403.
    pub allowed_networks: Option<Vec<ipnet::IpNet>>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see
    /// [`admission::client_address`]). Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Unverified uploads at once from one address.
    pub uploads_per_address: usize,
    /// Bytes per second a body must keep up after `upload_grace`.
    pub min_upload_rate: u64,
    pub upload_grace: Duration,
    /// Connection limits of the listener.
    pub server: hooklog_infra::serve::ServerLimits,
    /// `GITHUB_DELIVERIES`'s replica count, should the stream have to be created again.
    pub stream_replicas: usize,
}

impl IngressConfig {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            secrets: settings.webhook_secrets(),
            max_in_flight: settings.ingress_max_in_flight,
            queue_timeout: settings.ingress_queue_timeout,
            request_timeout: settings.ingress_request_timeout,
            publish_timeout: settings.ingress_publish_timeout,
            failed_auth_per_minute: settings.ingress_failed_auth_per_minute,
            duplicate_window: settings.deliveries_duplicate_window,
            allowed_networks: settings.ingress_allowed_networks(),
            trusted_proxies: settings.ingress_trusted_proxies(),
            uploads_per_address: settings.ingress_uploads_per_address,
            min_upload_rate: settings.ingress_min_upload_rate,
            upload_grace: settings.ingress_upload_grace,
            server: settings.server_limits(),
            stream_replicas: settings.stream_replicas,
        }
    }
}

/// What every request shares, behind one `Arc`: extractors and layers clone the state for
/// each request, and one reference count is cheaper than one per handle.
#[derive(Clone)]
pub struct IngressState(Arc<Shared>);

impl std::ops::Deref for IngressState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The handles in an [`IngressState`].
#[derive(Clone)]
pub struct Shared {
    pub(crate) secrets: Arc<[WebhookSecret]>,
    pub(crate) log: Arc<dyn DeliveryLog>,
    pub(crate) admission: Arc<Admission>,
    pub(crate) trusted_proxies: Arc<[ipnet::IpNet]>,
    pub(crate) connections: ConnectionSecrets,
    pub(crate) min_upload_rate: u64,
    pub(crate) upload_grace: Duration,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    request_timeout: Duration,
}

impl IngressState {
    pub fn new(config: &IngressConfig, log: Arc<dyn DeliveryLog>) -> Self {
        Self(Arc::new(Shared {
            secrets: config.secrets.clone().into(),
            log,
            admission: Arc::new(Admission::new(
                config.allowed_networks.clone(),
                config.uploads_per_address,
                config.failed_auth_per_minute,
                config.queue_timeout,
            )),
            trusted_proxies: config.trusted_proxies.clone().into(),
            connections: ConnectionSecrets::default(),
            min_upload_rate: config.min_upload_rate,
            upload_grace: config.upload_grace,
            slots: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            queue_timeout: config.queue_timeout,
            request_timeout: config.request_timeout,
        }))
    }
}

impl IngressState {
    /// Takes repository connections' deliveries, verified with `connections`' secrets.
    pub fn with_connections(self, connections: ConnectionSecrets) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.connections = connections;
        Self(Arc::new(shared))
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
        .route(
            &format!("{REPOSITORY_WEBHOOK_PATH}/{{connection_id}}"),
            post(receive_repository),
        )
        .route(
            &format!("{GITLAB_WEBHOOK_PATH}/{{connection_id}}"),
            post(receive_gitlab),
        )
        .fallback(|| async { IngressError::NoRoute })
        .method_not_allowed_fallback(|| async { IngressError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            take_slot,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.request_timeout,
        ))
        .layer(axum::middleware::from_fn(record_metrics))
        .with_state(state)
}

/// Holds one of the `max_in_flight` slots for the whole request, waiting at most
/// `queue_timeout` for one: past that the answer is 503 with `Retry-After`, in time for the
/// client to hear it.
async fn take_slot(
    State(state): State<IngressState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let slot = tokio::time::timeout(state.queue_timeout, state.slots.clone().acquire_owned()).await;
    let Ok(Ok(_slot)) = slot else {
        return IngressError::Overloaded.into_response();
    };
    next.run(request).await
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
    let status = status_label(response.status());
    metrics::histogram!(INGRESS_REQUEST_DURATION, "status" => status.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(INGRESS_DELIVERIES, "status" => status).increment(1);
    response
}

/// The `status` label: the ingress's own answers without an allocation, any other as text.
fn status_label(status: StatusCode) -> metrics::SharedString {
    let known = match status.as_u16() {
        200 => "200",
        202 => "202",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        429 => "429",
        500 => "500",
        503 => "503",
        other => return other.to_string().into(),
    };
    known.into()
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
    stored(&state, delivery).await
}

/// A repository connection's delivery: the connection in the path selects the one secret it
/// must be signed with; an unknown or disconnected connection is 404 before the body is read.
#[tracing::instrument(name = "repository_delivery", skip_all, fields(connection = %connection, stream_seq))]
async fn receive_repository(
    State(state): State<IngressState>,
    axum::extract::Path(connection): axum::extract::Path<String>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<Receipt>), IngressError> {
    let (id, secret) = connection_secret(&state, &connection, Provider::Github)?;
    let delivery =
        VerifiedDelivery::verify(request, &state, std::slice::from_ref(&secret), Some(id)).await?;
    stored(&state, delivery).await
}

/// A GitLab project hook's delivery: `X-Gitlab-Token` must be the connection's secret
/// (compared in constant time), the delivery id is `Idempotency-Key` (stable across GitLab's
/// retries) or else `X-Gitlab-Event-UUID`; see [`VerifiedDelivery::verify_gitlab`].
#[tracing::instrument(name = "gitlab_delivery", skip_all, fields(connection = %connection, stream_seq))]
async fn receive_gitlab(
    State(state): State<IngressState>,
    axum::extract::Path(connection): axum::extract::Path<String>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<Receipt>), IngressError> {
    let (id, secret) = connection_secret(&state, &connection, Provider::Gitlab)?;
    let delivery = VerifiedDelivery::verify_gitlab(request, &state, &secret, id).await?;
    stored(&state, delivery).await
}

/// The secret of the connection a path names, if it takes `provider`'s deliveries now.
fn connection_secret(
    state: &IngressState,
    connection: &str,
    provider: Provider,
) -> Result<(uuid::Uuid, WebhookSecret), IngressError> {
    let id = uuid::Uuid::parse_str(connection).map_err(|_| IngressError::UnknownConnection)?;
    match state.connections.get(id) {
        Some((at, secret)) if at == provider => Ok((id, secret)),
        _ => Err(IngressError::UnknownConnection),
    }
}

async fn stored(
    state: &IngressState,
    delivery: VerifiedDelivery,
) -> Result<(StatusCode, Json<Receipt>), IngressError> {
    let stored = state.log.store(&delivery).await?;
    tracing::Span::current().record("stream_seq", stored.stream_seq);
    let disposition = match delivery.connection {
        Some(_) => delivery.envelope.event.connection_disposition(),
        None => delivery.envelope.event.disposition(),
    };
    let status = match disposition {
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
    connections: ConnectionSecrets,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if config.secrets.is_empty() {
        tracing::warn!(
            "HOOKLOG_GITHUB_WEBHOOK_SECRET is not set: the App's webhook path answers 404 to every request"
        );
    }
    let log = JetStreamDeliveryLog::new(
        nats,
        config.publish_timeout,
        config.duplicate_window,
        config.stream_replicas,
    );
    let app = router(IngressState::new(&config, Arc::new(log)).with_connections(connections));
    tracing::info!(addr = %listener.local_addr()?, "ingress listening");
    hooklog_infra::serve::serve(listener, app, config.server, shutdown).await
}
