//! [`VerifiedDelivery`]: the extractor that turns a webhook request into a verified, typed
//! delivery or the right error status. Handlers never see anything else.
//!
//! Order matters and is fixed, and the cheap refusals come before the body is read:
//! 1. secret configured (404);
//! 2. the client address admitted ([`crate::admission`]): allowed network (403), uploads at once
//!    from the address (429);
//! 3. declared size (413) and a signature header that is present and well formed (401);
//! 4. the body read within the size limit (413) and at the minimum upload rate (408);
//! 5. the signature checked on the raw bytes (401, or 429 for an address out of failure tokens);
//! 6. headers (400), body format (400).
//!
//! Every refusal from 3 on counts as a failure of the address. Nothing is parsed before the
//! signature holds. The upload's admission ends once the signature is checked.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{header, HeaderMap};
use bytes::BytesMut;
use hooklog_domain::github::{
    signature, DeliveryEnvelope, EnvelopeError, PayloadFormat, RawEnvelope, SecretId, Signature,
    SignatureError, DELIVERY_HEADER, EVENT_HEADER, HOOK_ID_HEADER, TARGET_ID_HEADER,
    TARGET_TYPE_HEADER,
};
use hooklog_domain::gitlab;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::admission::{Refusal, UploadPermit};
use crate::error::IngressError;
use crate::IngressState;

/// Room reserved up front for a body, whatever its declared length: an unverified client must
/// not make hooklog allocate what it only announced.
const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

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
    /// The repository connection whose secret verified it (`None`: the App's webhook).
    pub connection: Option<uuid::Uuid>,
    /// GitLab's `X-Gitlab-Event` as sent, for a GitLab hook's delivery; its `signature` is then
    /// the ingress's own HMAC of the body under the connection's secret (GitLab signs nothing).
    pub gitlab_event: Option<String>,
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
        Self::verify(request, state, &state.secrets, None).await
    }
}

impl VerifiedDelivery {
    /// The checks above against `secrets` (the App's, or one connection's: `connection`).
    pub(crate) async fn verify(
        request: Request,
        state: &IngressState,
        secrets: &[hooklog_domain::github::WebhookSecret],
        connection: Option<uuid::Uuid>,
    ) -> Result<Self, IngressError> {
        let (upload, peer) = admitted(peer_of(&request, state), state).await?;
        let refuse = |err: IngressError| refused(&upload, peer, err);

        let declared_length = declared_length(&request).map_err(refuse)?;
        let signature_header = header_str(request.headers(), SIGNATURE_HEADER).map(str::to_owned);
        match signature_header.as_deref() {
            None => return Err(refuse(IngressError::Signature(SignatureError::Missing))),
            Some(value) => {
                Signature::parse(value).map_err(|err| refuse(IngressError::Signature(err)))?;
            }
        }
        let (parts, body) = request.into_parts();
        let body = read_body(
            body,
            declared_length,
            state.min_upload_rate,
            state.upload_grace,
        )
        .await
        .map_err(refuse)?;
        let received_at = SystemTime::now();
        let headers = &parts.headers;

        let secret = signature::verify(signature_header.as_deref(), &body, secrets)
            .map_err(|err| refuse(IngressError::Signature(err)))?;
        drop(upload);

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
            signature: signature_header.unwrap_or_default(),
            content_type,
            format,
            secret_id: secret.id().clone(),
            received_at,
            body_sha256: hex::encode(Sha256::digest(&body)),
            body,
            connection,
            gitlab_event: None,
        })
    }

    /// A GitLab project hook's delivery, in the same order: admission, declared size, a token
    /// header present (401) and, when the hook signs (`webhook-signature`), its `webhook-id` and
    /// a `webhook-timestamp` within five minutes (401), before the body is read; the body at the
    /// minimum rate; the token compared with the connection's secret in constant time and the
    /// signature checked under the connection's signing key (401, see
    /// [`hooklog_domain::gitlab`]); then `X-Gitlab-Event` and the delivery id
    /// (`Idempotency-Key`, else `webhook-id`, else `X-Gitlab-Event-UUID`) (400) and a JSON body
    /// (400). The event is stored as `gitlab_<event in snake case>` (`Push Hook`:
    /// `gitlab_push_hook`), and the token never: the stored signature is the ingress's HMAC.
    pub(crate) async fn verify_gitlab(
        request: Request,
        state: &IngressState,
        secret: &hooklog_domain::github::WebhookSecret,
        connection: uuid::Uuid,
    ) -> Result<Self, IngressError> {
        let (upload, peer) = admitted(peer_of(&request, state), state).await?;
        let refuse = |err: IngressError| refused(&upload, peer, err);
        let declared_length = declared_length(&request).map_err(refuse)?;
        // The headers stay with `parts` while the body is read, so nothing is copied out.
        let (parts, body) = request.into_parts();
        let Some(token) = header_str(&parts.headers, GITLAB_TOKEN_HEADER) else {
            return Err(refuse(IngressError::Token(
                "the X-Gitlab-Token header is missing",
            )));
        };
        let signed = gitlab::SignedHeaders::from_parts(
            header_str(&parts.headers, gitlab::ID_HEADER),
            header_str(&parts.headers, gitlab::TIMESTAMP_HEADER),
            header_str(&parts.headers, gitlab::SIGNATURE_HEADER),
        )
        .and_then(|signed| match signed {
            Some(headers) => headers
                .check_fresh(SystemTime::now())
                .map(|()| Some(headers)),
            None => Ok(None),
        })
        .map_err(|err| refuse(IngressError::Signing(err)))?;
        let body = read_body(
            body,
            declared_length,
            state.min_upload_rate,
            state.upload_grace,
        )
        .await
        .map_err(refuse)?;
        let received_at = SystemTime::now();
        if !secret.matches_token(token.as_bytes()) {
            return Err(refuse(IngressError::Token(
                "the X-Gitlab-Token header is not this connection's token",
            )));
        }
        if let Some(signed) = signed {
            let key = gitlab::SigningKey::of(secret);
            key.verify(signed, &body, received_at)
                .map_err(|err| refuse(IngressError::Signing(err)))?;
        }
        drop(upload);

        let headers = &parts.headers;
        let gitlab_event = header_str(headers, GITLAB_EVENT_HEADER)
            .ok_or(EnvelopeError::Missing(GITLAB_EVENT_HEADER))?
            .to_owned();
        let event = gitlab_event_name(&gitlab_event).ok_or(EnvelopeError::Invalid {
            header: GITLAB_EVENT_HEADER,
            expected: "1 to 56 ASCII letters, digits and spaces",
        })?;
        let delivery_id = header_str(headers, "Idempotency-Key")
            .or_else(|| header_str(headers, gitlab::ID_HEADER))
            .or_else(|| header_str(headers, "X-Gitlab-Event-UUID"))
            .ok_or(EnvelopeError::Missing(
                "Idempotency-Key (or webhook-id, or X-Gitlab-Event-UUID)",
            ))?;
        let envelope = DeliveryEnvelope::parse(RawEnvelope {
            event: Some(&event),
            delivery_id: Some(delivery_id),
            hook_id: None,
            target_type: None,
            target_id: None,
        })
        .inspect_err(
            |err| tracing::warn!(reason = %err, "GitLab delivery with bad headers refused"),
        )?;
        let content_type = header_str(headers, header::CONTENT_TYPE.as_str()).map(str::to_owned);
        let format = PayloadFormat::check(content_type.as_deref(), &body).inspect_err(|err| {
            tracing::warn!(delivery_id = %envelope.delivery_id, reason = %err, "GitLab delivery with a bad body refused")
        })?;
        Ok(Self {
            envelope,
            signature: Signature::sign(secret, &body).to_string(),
            content_type,
            format,
            secret_id: secret.id().clone(),
            received_at,
            body_sha256: hex::encode(Sha256::digest(&body)),
            body,
            connection: Some(connection),
            gitlab_event: Some(gitlab_event),
        })
    }
}

const GITLAB_TOKEN_HEADER: &str = "X-Gitlab-Token";
const GITLAB_EVENT_HEADER: &str = "X-Gitlab-Event";

/// `gitlab_` and GitLab's event name in snake case (`Merge Request Hook`:
/// `gitlab_merge_request_hook`); None for a name that is not letters, digits and spaces.
pub fn gitlab_event_name(header: &str) -> Option<String> {
    let ok = !header.trim().is_empty()
        && header.len() <= 56
        && header
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ');
    ok.then(|| {
        let words: Vec<String> = header
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        format!("gitlab_{}", words.join("_"))
    })
}

/// The client's address, when the listener recorded it: the TCP peer, or behind a trusted
/// proxy the client its `X-Forwarded-For` names ([`crate::admission::client_address`]).
fn peer_of(request: &Request, state: &IngressState) -> Option<std::net::IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(|value| value.to_str().unwrap_or(""));
    crate::admission::client_address(peer, forwarded, &state.trusted_proxies)
}

/// The client address admitted ([`crate::admission`]): its upload permit and the address.
async fn admitted(
    peer: Option<std::net::IpAddr>,
    state: &IngressState,
) -> Result<(UploadPermit, Option<std::net::IpAddr>), IngressError> {
    let upload = state
        .admission
        .admit(peer)
        .await
        .map_err(|refusal| match refusal {
            Refusal::Network => IngressError::Network,
            Refusal::Uploads => IngressError::TooManyUploads,
        })?;
    Ok((upload, peer))
}

/// The declared `Content-Length`, refused when over [`MAX_BODY_BYTES`].
fn declared_length(request: &Request) -> Result<Option<u64>, IngressError> {
    let declared = header_str(request.headers(), header::CONTENT_LENGTH.as_str())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_BODY_BYTES as u64 => Err(too_large()),
        declared => Ok(declared),
    }
}

fn too_large() -> IngressError {
    IngressError::TooLarge {
        limit: MAX_BODY_BYTES,
    }
}

/// Counts a refusal of an unverified upload against its address and logs it; once the address
/// is out of failure tokens its signature failures answer 429 and are logged at debug, so a
/// flood of forged requests cannot flood the logs too.
fn refused(
    upload: &UploadPermit,
    peer: Option<std::net::IpAddr>,
    err: IngressError,
) -> IngressError {
    let limited = upload.failed();
    match err {
        IngressError::Signature(_) | IngressError::Token(_) if limited => {
            tracing::debug!(peer = ?peer, reason = %err, "webhook signature rejected; address rate-limited");
            IngressError::RateLimited {
                retry_after: upload.retry_after(),
            }
        }
        err if limited => {
            tracing::debug!(peer = ?peer, reason = %err, "webhook upload refused; address rate-limited");
            err
        }
        err => {
            tracing::warn!(peer = ?peer, reason = %err, "webhook upload refused");
            err
        }
    }
}

/// Reads the whole body, refusing one over [`MAX_BODY_BYTES`] or one that falls below
/// `min_rate` bytes per second after `grace`: each chunk must arrive before
/// `start + grace + received / min_rate`. A body that arrives in one chunk is kept as that
/// chunk ([`Received`]).
async fn read_body(
    mut body: Body,
    declared_length: Option<u64>,
    min_rate: u64,
    grace: Duration,
) -> Result<Bytes, IngressError> {
    let started = Instant::now();
    let capacity = declared_length.map_or(INITIAL_BODY_CAPACITY, |length| {
        usize::try_from(length).map_or(INITIAL_BODY_CAPACITY, |l| l.min(INITIAL_BODY_CAPACITY))
    });
    let mut received = Received::Nothing;
    loop {
        let allowance = Duration::from_secs_f64(received.len() as f64 / min_rate.max(1) as f64);
        let deadline = started + grace + allowance;
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(IngressError::TooSlow { min_rate }),
            Ok(None) => return Ok(received.into_bytes()),
            Ok(Some(frame)) => frame.map_err(|_| IngressError::BodyUnreadable)?,
        };
        if let Ok(data) = frame.into_data() {
            if received.len() + data.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            received = received.with(data, capacity);
        }
    }
}

/// The body so far: nothing, the one chunk it came in (kept as it is, no copy), or a buffer
/// the chunks are copied into once a second one arrives (`capacity` up front, sized by the
/// declared length but at most [`INITIAL_BODY_CAPACITY`]).
enum Received {
    Nothing,
    One(Bytes),
    Many(BytesMut),
}

impl Received {
    fn len(&self) -> usize {
        match self {
            Self::Nothing => 0,
            Self::One(chunk) => chunk.len(),
            Self::Many(buffer) => buffer.len(),
        }
    }

    fn with(self, data: Bytes, capacity: usize) -> Self {
        match self {
            Self::Nothing => Self::One(data),
            Self::One(first) => {
                let mut buffer = BytesMut::with_capacity(capacity.max(first.len() + data.len()));
                buffer.extend_from_slice(&first);
                buffer.extend_from_slice(&data);
                Self::Many(buffer)
            }
            Self::Many(mut buffer) => {
                buffer.extend_from_slice(&data);
                Self::Many(buffer)
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Self::Nothing => Bytes::new(),
            Self::One(chunk) => chunk,
            Self::Many(buffer) => buffer.freeze(),
        }
    }
}
