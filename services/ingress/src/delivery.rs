//! [`VerifiedDelivery`]: the extractor that turns a webhook request into a verified, typed
//! delivery or the right error status. Handlers never see anything else.
//!
//! Order matters and is fixed: secret configured (404), size (413), signature on the raw bytes
//! (401, or 429 for an address with repeated failures), headers (400), body format (400).

use std::net::SocketAddr;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{header, HeaderMap};
use hooklog_domain::github::{
    signature, DeliveryEnvelope, PayloadFormat, RawEnvelope, SecretId, DELIVERY_HEADER,
    EVENT_HEADER, HOOK_ID_HEADER, TARGET_ID_HEADER, TARGET_TYPE_HEADER,
};
use http_body_util::LengthLimitError;
use sha2::{Digest, Sha256};

use crate::error::IngressError;
use crate::IngressState;

/// GitHub caps webhook payloads at 25 MiB.
pub const MAX_BODY_BYTES: usize = hooklog_infra::nats::MAX_DELIVERY_BYTES;
const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// A delivery whose signature verified against a configured secret, with valid headers and a
/// JSON (or GitHub form-encoded) body. The body is kept exactly as received.
#[derive(Debug, Clone)]
pub struct VerifiedDelivery {
    pub envelope: DeliveryEnvelope,
    pub body: Bytes,
    /// `X-Hub-Signature-256` as sent.
    pub signature: String,
    pub content_type: Option<String>,
    pub format: PayloadFormat,
    pub secret_id: SecretId,
    pub received_at: SystemTime,
    /// Lowercase hex SHA-256 of `body`.
    pub body_sha256: String,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

impl FromRequest<IngressState> for VerifiedDelivery {
    type Rejection = IngressError;

    async fn from_request(request: Request, state: &IngressState) -> Result<Self, Self::Rejection> {
        if state.secrets.is_empty() {
            return Err(IngressError::NotConfigured);
        }
        let too_large = || IngressError::TooLarge {
            limit: MAX_BODY_BYTES,
        };
        let declared_length = header_str(request.headers(), header::CONTENT_LENGTH.as_str())
            .and_then(|value| value.parse::<u64>().ok());
        if declared_length.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
            return Err(too_large());
        }
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|err| {
                if std::error::Error::source(&err)
                    .is_some_and(|source| source.is::<LengthLimitError>())
                {
                    too_large()
                } else {
                    IngressError::BodyUnreadable
                }
            })?;
        let received_at = SystemTime::now();
        let headers = &parts.headers;

        let signature_header = header_str(headers, SIGNATURE_HEADER);
        let secret = match signature::verify(signature_header, &body, &state.secrets) {
            Ok(secret) => secret,
            Err(err) => {
                let limited = peer.is_some_and(|ip| !state.failed_auth.allow_failure(ip));
                // Once an address is limited its further failures are logged at debug, so a
                // flood of forged requests cannot flood the logs too.
                if limited {
                    tracing::debug!(peer = ?peer, reason = %err, "webhook signature rejected; address rate-limited");
                    return Err(IngressError::RateLimited);
                }
                tracing::warn!(peer = ?peer, reason = %err, "webhook signature rejected");
                return Err(IngressError::Signature(err));
            }
        };

        let envelope = DeliveryEnvelope::parse(RawEnvelope {
            event: header_str(headers, EVENT_HEADER),
            delivery_id: header_str(headers, DELIVERY_HEADER),
            hook_id: header_str(headers, HOOK_ID_HEADER),
            target_type: header_str(headers, TARGET_TYPE_HEADER),
            target_id: header_str(headers, TARGET_ID_HEADER),
        })
        .inspect_err(
            |err| tracing::warn!(reason = %err, "signed delivery with bad headers refused"),
        )?;
        let content_type = header_str(headers, header::CONTENT_TYPE.as_str()).map(str::to_owned);
        let format = PayloadFormat::check(content_type.as_deref(), &body).inspect_err(|err| {
            tracing::warn!(delivery_id = %envelope.delivery_id, reason = %err, "signed delivery with a bad body refused")
        })?;

        Ok(Self {
            envelope,
            signature: signature_header.unwrap_or_default().to_owned(),
            content_type,
            format,
            secret_id: secret.id().clone(),
            received_at,
            body_sha256: hex::encode(Sha256::digest(&body)),
            body,
        })
    }
}
