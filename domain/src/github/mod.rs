//! The GitHub webhook delivery envelope: what a delivery says about itself in its headers, how its
//! signature is checked, and which body formats GitHub sends.
//!
//! Nothing here reads a body before [`signature::verify`] has accepted it; the ingress enforces
//! that order and these types make it easy to follow.

mod envelope;
pub mod events;
mod payload;
pub mod signature;

pub use envelope::{
    DeliveryEnvelope, DeliveryId, Disposition, EnvelopeError, EventName, HookId,
    InstallationTarget, RawEnvelope, DELIVERY_HEADER, EVENT_HEADER, HOOK_ID_HEADER,
    TARGET_ID_HEADER, TARGET_TYPE_HEADER,
};
pub use payload::{PayloadError, PayloadFormat};
pub use signature::{SecretId, Signature, SignatureError, WebhookSecret};
