//! [`DeliveryLog`]: where verified deliveries are stored, and its JetStream implementation.
//!
//! A delivery is published to `github.deliveries.<event>` with `Nats-Msg-Id` set, so JetStream
//! stores each delivery once however often it is sent. The ingress answers only after the PubAck;
//! a publish whose ack did not come in time is retried with the same message id until the
//! deadline, since the first attempt may have been stored.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use async_nats::connection::State;
use async_nats::header::{HeaderMap, HeaderName, NATS_MESSAGE_ID};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, Context};
use hooklog_infra::streams::{self, delivery_headers as h};
use tokio::time::Instant;

use crate::VerifiedDelivery;

/// Where a delivery landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Sequence of the delivery in `GITHUB_DELIVERIES` (the first copy's, for a duplicate).
    pub stream_seq: u64,
    /// True when the delivery id had already been stored within the duplicate window.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not connected to NATS")]
    Disconnected,
    #[error("JetStream did not acknowledge the delivery within {0:?}")]
    TimedOut(Duration),
    #[error("JetStream refused the delivery: {0}")]
    Refused(String),
}

pub type StoreFuture<'a> = Pin<Box<dyn Future<Output = Result<Stored, StoreError>> + Send + 'a>>;

/// The durable log of verified deliveries.
pub trait DeliveryLog: Send + Sync + 'static {
    /// Stores `delivery` and resolves once it is durably stored.
    fn store<'a>(&'a self, delivery: &'a VerifiedDelivery) -> StoreFuture<'a>;
}

pub struct JetStreamDeliveryLog {
    client: async_nats::Client,
    js: Context,
    publish_timeout: Duration,
    duplicate_window: Duration,
    replicas: usize,
}

impl JetStreamDeliveryLog {
    /// `replicas`: the stream's replica count, should it have to be created again.
    pub fn new(
        client: async_nats::Client,
        publish_timeout: Duration,
        duplicate_window: Duration,
        replicas: usize,
    ) -> Self {
        // One attempt may take a third of the budget, leaving room to retry after a lost ack.
        let attempt_timeout = (publish_timeout / 3).max(Duration::from_millis(100));
        let js = jetstream::ContextBuilder::new()
            .timeout(attempt_timeout)
            .build(client.clone());
        Self {
            client,
            js,
            publish_timeout,
            duplicate_window,
            replicas,
        }
    }

    async fn publish(&self, delivery: &VerifiedDelivery) -> Result<Stored, StoreError> {
        if self.client.connection_state() != State::Connected {
            return Err(StoreError::Disconnected);
        }
        let subject = streams::delivery_subject(delivery.envelope.event.as_str());
        let deadline = Instant::now() + self.publish_timeout;
        let mut stream_checked = false;
        loop {
            let attempt = async {
                // Built for each attempt rather than cloned: the first, nearly always the
                // only one, builds its headers once.
                let message = PublishMessage::build()
                    .payload(delivery.body.clone())
                    .headers(headers_of(delivery));
                let ack = self.js.send_publish(subject.clone(), message).await?;
                ack.await
            };
            let error = match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(ack)) => {
                    return Ok(Stored {
                        stream_seq: ack.sequence,
                        duplicate: ack.duplicate,
                    })
                }
                Ok(Err(error)) => error,
                Err(_) => return Err(StoreError::TimedOut(self.publish_timeout)),
            };
            match error.kind() {
                PublishErrorKind::MaxPayloadExceeded
                | PublishErrorKind::WrongLastMessageId
                | PublishErrorKind::WrongLastSequence => {
                    return Err(StoreError::Refused(error.to_string()))
                }
                // The stream is gone (a server started on an empty store): recreate it once.
                PublishErrorKind::StreamNotFound if !stream_checked => {
                    stream_checked = true;
                    let config = async_nats::jetstream::stream::Config {
                        num_replicas: self.replicas,
                        ..streams::deliveries_stream_config(self.duplicate_window)
                    };
                    if let Err(err) = self.js.create_or_update_stream(config).await {
                        tracing::warn!(error = %err, "could not recreate the deliveries stream");
                    }
                }
                _ => {
                    tracing::debug!(error = %error, "publish attempt failed; retrying with the same message id");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            if Instant::now() >= deadline || self.client.connection_state() != State::Connected {
                return Err(StoreError::TimedOut(self.publish_timeout));
            }
        }
    }
}

impl DeliveryLog for JetStreamDeliveryLog {
    fn store<'a>(&'a self, delivery: &'a VerifiedDelivery) -> StoreFuture<'a> {
        Box::pin(self.publish(delivery))
    }
}

/// The delivery message headers of the stream contract. The names are the contract's
/// constants, taken as they are (no copy, no check at run time).
fn headers_of(delivery: &VerifiedDelivery) -> HeaderMap {
    let name = HeaderName::from_static;
    let envelope = &delivery.envelope;
    let mut headers = HeaderMap::new();
    headers.insert(NATS_MESSAGE_ID, envelope.message_id());
    headers.insert(name(h::EVENT), envelope.event.as_str());
    headers.insert(name(h::DELIVERY), envelope.delivery_id.as_str());
    if let Some(hook_id) = &envelope.hook_id {
        headers.insert(name(h::HOOK_ID), hook_id.as_str());
    }
    if let Some(target) = &envelope.installation_target {
        headers.insert(name(h::TARGET_TYPE), target.kind.as_str());
        headers.insert(name(h::TARGET_ID), target.id.as_str());
    }
    match &delivery.gitlab_event {
        None => headers.insert(name(h::SIGNATURE_256), delivery.signature.as_str()),
        Some(event) => {
            headers.insert(name(h::GITLAB_EVENT), event.as_str());
            headers.insert(name(h::INGRESS_SIGNATURE_256), delivery.signature.as_str());
        }
    }
    if let Some(content_type) = &delivery.content_type {
        headers.insert(name(h::CONTENT_TYPE), content_type.as_str());
    }
    headers.insert(name(h::RECEIVED_AT), rfc3339(delivery.received_at));
    headers.insert(name(h::SECRET_ID), delivery.secret_id.as_str());
    headers.insert(name(h::BODY_SHA256), delivery.body_sha256.as_str());
    if let Some(connection) = &delivery.connection {
        headers.insert(name(h::CONNECTION_ID), connection.to_string());
    }
    headers
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_micros(time).to_string()
}
