//! Every way a webhook request can fail, mapped to its HTTP answer in one place. Bodies are JSON
//! `{"code","message"}`; internal details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hooklog_domain::github::{EnvelopeError, PayloadError, SignatureError};
use serde_json::json;

use crate::log::StoreError;

/// Seconds a client is told to wait after a 503.
const RETRY_AFTER_SECS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// No webhook secret configured: the endpoint does not exist (fail closed).
    #[error("not found")]
    NotConfigured,
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the request body could not be read")]
    BodyUnreadable,
    #[error(transparent)]
    Signature(SignatureError),
    #[error("too many failed signature checks from this address; try again later")]
    RateLimited,
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("the delivery could not be stored right now; it was not accepted, send it again")]
    Unavailable(#[from] StoreError),
}

impl IngressError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotConfigured => (StatusCode::NOT_FOUND, "not_found"),
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::BodyUnreadable => (StatusCode::BAD_REQUEST, "body_unreadable"),
            Self::Signature(_) => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            Self::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Envelope(_) => (StatusCode::BAD_REQUEST, "invalid_headers"),
            Self::Payload(_) => (StatusCode::BAD_REQUEST, "invalid_payload"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
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
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}
