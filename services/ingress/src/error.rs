//! Every way a webhook request can fail, mapped to its HTTP answer in one place. Bodies are JSON
//! `{"code","message"}`; internal details are logged, never sent.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hooklog_domain::github::{EnvelopeError, PayloadError, SignatureError};
use serde_json::json;

use crate::log::StoreError;

/// Seconds a client is told to wait after a 503.
const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// No webhook secret configured: the endpoint does not exist (fail closed).
    #[error("not found")]
    NotConfigured,
    /// Any path but the webhook's.
    #[error("not found; webhooks are posted to /v1/webhooks/connectors/github")]
    NoRoute,
    /// No repository connection takes deliveries under this id (never one, or disconnected).
    #[error("not found: no repository connection takes deliveries here")]
    UnknownConnection,
    #[error("method not allowed; webhooks are posted with POST")]
    MethodNotAllowed,
    /// The client address is outside `HOOKLOG_INGRESS_ALLOWED_NETWORKS`.
    #[error("this address may not send webhooks here")]
    Network,
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The address already has as many unverified uploads in flight as it may have.
    #[error("too many uploads at once from this address; try again later")]
    TooManyUploads,
    /// The body came in below the minimum upload rate.
    #[error("the body arrived slower than {min_rate} bytes per second")]
    TooSlow { min_rate: u64 },
    #[error("the request body could not be read")]
    BodyUnreadable,
    #[error(transparent)]
    Signature(SignatureError),
    /// A GitLab hook's token is missing or not the connection's.
    #[error("{0}")]
    Token(&'static str),
    /// A GitLab hook's `webhook-signature` (its signing token) does not hold.
    #[error(transparent)]
    Signing(hooklog_domain::gitlab::SigningError),
    #[error("too many failed signature checks from this address; try again later")]
    RateLimited { retry_after: Duration },
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("the delivery could not be stored right now; it was not accepted, send it again")]
    Unavailable(#[from] StoreError),
    /// Every in-flight slot stayed taken for `HOOKLOG_INGRESS_QUEUE_TIMEOUT`.
    #[error("the ingress is at capacity; the delivery was not accepted, send it again")]
    Overloaded,
}

impl IngressError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotConfigured | Self::NoRoute => (StatusCode::NOT_FOUND, "not_found"),
            Self::UnknownConnection => (StatusCode::NOT_FOUND, "unknown_connection"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Network => (StatusCode::FORBIDDEN, "address_not_allowed"),
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::TooManyUploads => (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads"),
            Self::TooSlow { .. } => (StatusCode::REQUEST_TIMEOUT, "upload_too_slow"),
            Self::BodyUnreadable => (StatusCode::BAD_REQUEST, "body_unreadable"),
            Self::Signature(_) => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            Self::Token(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            Self::Signing(_) => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Envelope(_) => (StatusCode::BAD_REQUEST, "invalid_headers"),
            Self::Payload(_) => (StatusCode::BAD_REQUEST, "invalid_payload"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        }
    }

    /// Seconds a client is told to wait, for the answers that say "later".
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } => Some(retry_after.as_secs().max(1)),
            Self::TooManyUploads => Some(1),
            Self::Unavailable(_) | Self::Overloaded => Some(RETRY_AFTER_SECS),
            _ => None,
        }
    }
}

impl IntoResponse for IngressError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Unavailable(cause) = &self {
            tracing::error!(error = %cause, "delivery not stored; answering 503");
        }
        let body = Json(json!({ "code": code, "message": self.to_string() }));
        let mut response = (status, body).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
