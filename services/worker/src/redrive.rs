//! Redriving a dead letter: an operator has the worker decide a stored delivery again, once
//! what made it a dead letter is fixed (a webhook secret added after a rotation, a newer
//! hooklog that reads the payload). The delivery is read back from `GITHUB_DELIVERIES` by its
//! stream sequence, exactly as stored, and goes the worker's whole way again:
//! - the dead letter is reopened first (`DeliveryRedriven`, with who asked), so the next
//!   decision is an event of its own, and only a dead letter can be reopened;
//! - the digest and signature are checked again (`crate::authenticity`; a repository
//!   connection's delivery with that connection's secret, which must open from the vault before
//!   the dead letter is reopened), then the payload is run with the delivery's own metadata (a
//!   connection's read as its webhook's), so commands it already sent are not sent twice;
//! - what comes of it is decided as any delivery is: processed, ignored, or dead letter again,
//!   with the new reason. A redrive that stops half way (the store unavailable) leaves the
//!   delivery reopened and undecided; redriving it again finishes it.

use async_nats::jetstream;
use async_nats::jetstream::stream::RawMessageErrorKind;
use hooklog_domain::delivery::{
    DecideDelivery, Decision, DeliveryError, DeliveryEvent, DeliveryKey, Outcome, StreamPosition,
};
use hooklog_domain::github::WebhookSecret;
use hooklog_domain::metadata::CommandMetadata;
use hooklog_infra::streams::{delivery_headers, DELIVERIES_STREAM};
use hooklog_write::vault::Vault;
use hooklog_write::CommandError;

use crate::authenticity::ConnectionKeys;
use crate::process::{Delivery, Failure, OutcomeKind, Processor};

/// What a redrive decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redriven {
    pub delivery_id: String,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// No message at that sequence.
    #[error("GITHUB_DELIVERIES has no message at sequence {0}")]
    NotFound(u64),
    /// Not a dead letter (or not decided yet by the worker).
    #[error("{0}")]
    Refused(String),
    /// NATS or the store: try again (the delivery stays reopened until then).
    #[error("{0}")]
    Unavailable(String),
    /// An App delivery, and no App webhook secret to check it with.
    #[error(
        "a redriven delivery is checked again with the webhook secret: set \
         HOOKLOG_GITHUB_WEBHOOK_SECRET on the admin role too"
    )]
    NoWebhookSecret,
}

/// Redrives the dead letter stored at `stream_sequence`, as `by` (`operator:<name>`). The App's
/// deliveries are checked with `secrets`; a repository connection's with its own secret from
/// `vault`, which must open before anything is reopened.
pub async fn redrive(
    processor: &Processor,
    js: &jetstream::Context,
    secrets: &[WebhookSecret],
    vault: Option<&Vault>,
    stream_sequence: u64,
    by: &CommandMetadata,
) -> Result<Redriven, RedriveError> {
    let unavailable = |err: &dyn std::fmt::Display| RedriveError::Unavailable(err.to_string());
    let stream = js
        .get_stream_no_info(DELIVERIES_STREAM)
        .await
        .map_err(|e| unavailable(&e))?;
    let message = match stream.get_raw_message(stream_sequence).await {
        Ok(message) => message,
        Err(err) if matches!(err.kind(), RawMessageErrorKind::NoMessageFound) => {
            return Err(RedriveError::NotFound(stream_sequence))
        }
        Err(err) => return Err(unavailable(&err)),
    };
    let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_owned());
    let delivery_id = header(delivery_headers::DELIVERY)
        .unwrap_or_else(|| format!("stream-seq-{stream_sequence}"));
    let event = header(delivery_headers::EVENT).unwrap_or_default();
    let key = DeliveryKey::for_delivery(&delivery_id);
    let position = StreamPosition {
        event: event.clone(),
        stream_sequence,
        attempts: 0,
    };
    let decide = |decision: Decision| DecideDelivery {
        delivery_id: delivery_id.clone(),
        position: position.clone(),
        decision,
    };
    let connection = header(delivery_headers::CONNECTION_ID);
    let connection_secrets = match &connection {
        None if secrets.is_empty() => return Err(RedriveError::NoWebhookSecret),
        None => None,
        Some(connection) => match ConnectionKeys::secrets_of(vault, connection).await {
            Ok(secrets) => Some(secrets),
            Err(Failure::Retry(reason)) => return Err(RedriveError::Unavailable(reason)),
            Err(Failure::Poison(reason)) => {
                return Err(RedriveError::Refused(format!(
                    "delivery {delivery_id} cannot be checked again: {reason}"
                )))
            }
        },
    };
    let secrets = connection_secrets.as_deref().unwrap_or(secrets);
    let bus = processor.bus();
    let actor = by
        .to_map()
        .get(hooklog_domain::metadata::keys::ACTOR)
        .cloned()
        .unwrap_or_else(|| "operator".to_owned());
    let state = bus.load_delivery(&key).await.map_err(|e| unavailable(&e))?;
    match state.decided() {
        Some(Outcome::DeadLetter) => {
            bus.delivery(&key, decide(Decision::Redriven { by: actor }), by)
                .await
                .map_err(|err| match err {
                    CommandError::Rejected(refusal) => RedriveError::Refused(refusal.to_string()),
                    other => unavailable(&other),
                })?;
        }
        // Reopened by a redrive that stopped before deciding: finish it.
        None if bus
            .delivery_events(&key)
            .await
            .map_err(|e| unavailable(&e))?
            .iter()
            .last()
            .is_some_and(|e| matches!(e.payload, DeliveryEvent::DeliveryRedriven { .. })) => {}
        decided => {
            return Err(RedriveError::Refused(
                DeliveryError::NotDeadLettered(
                    delivery_id.clone(),
                    decided.map_or("not decided", Outcome::as_str),
                )
                .to_string(),
            ))
        }
    }
    let meta = CommandMetadata::from_delivery(&delivery_id);
    let ran = match crate::authenticity::check_stored(
        Some(&message.headers),
        &message.payload,
        secrets,
    ) {
        Err(failure) => Err(failure),
        Ok(()) if event.is_empty() => Err(Failure::Poison(
            "the message has no X-GitHub-Event header".to_owned(),
        )),
        Ok(()) => {
            let content_type = header(delivery_headers::CONTENT_TYPE);
            let delivery = Delivery {
                delivery_id: &delivery_id,
                event: &event,
                content_type: content_type.as_deref(),
                body: &message.payload,
            };
            let parsed = match &connection {
                None => crate::process::Parsed::parse(delivery),
                Some(connection) => crate::process::Parsed::for_connection(connection, delivery),
            };
            match parsed {
                Ok(parsed) => processor.process(&delivery_id, parsed).await,
                Err(failure) => Err(failure),
            }
        }
    };
    let (outcome, detail, decision) = match ran {
        Ok(done) => match done.kind {
            OutcomeKind::Processed => (
                Outcome::Processed,
                done.detail.clone(),
                Decision::Processed {
                    detail: done.detail,
                    commands: done.commands,
                },
            ),
            OutcomeKind::Ignored => (
                Outcome::Ignored,
                done.detail.clone(),
                Decision::Ignored {
                    reason: done.detail,
                },
            ),
        },
        Err(Failure::Poison(reason)) => (
            Outcome::DeadLetter,
            reason.clone(),
            Decision::DeadLettered { reason },
        ),
        Err(Failure::Retry(reason)) => return Err(RedriveError::Unavailable(reason)),
    };
    bus.delivery(&key, decide(decision), &meta)
        .await
        .map_err(|e| unavailable(&e))?;
    tracing::info!(delivery_id = %delivery_id, stream_sequence, outcome = outcome.as_str(), "dead letter redriven");
    Ok(Redriven {
        delivery_id,
        outcome,
        detail,
    })
}
