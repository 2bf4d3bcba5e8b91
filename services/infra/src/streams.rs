//! The JetStream stream contracts: names, subjects, settings and message headers. Writers and
//! readers of a stream both use these, so the contract lives in one place.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

/// Every verified GitHub delivery, raw body bytes exactly as received.
pub const DELIVERIES_STREAM: &str = "GITHUB_DELIVERIES";
/// Deliveries are published to `github.deliveries.<event>`.
pub const DELIVERIES_SUBJECT_PREFIX: &str = "github.deliveries";

/// Headers of a message on `GITHUB_DELIVERIES`. GitHub's own headers keep their names; what
/// hooklog adds is prefixed `Hooklog-`.
pub mod delivery_headers {
    pub const EVENT: &str = "X-GitHub-Event";
    pub const DELIVERY: &str = "X-GitHub-Delivery";
    pub const HOOK_ID: &str = "X-GitHub-Hook-ID";
    pub const TARGET_TYPE: &str = "X-GitHub-Hook-Installation-Target-Type";
    pub const TARGET_ID: &str = "X-GitHub-Hook-Installation-Target-ID";
    /// The signature as GitHub sent it, so an auditor holding the secret can re-verify.
    pub const SIGNATURE_256: &str = "X-Hub-Signature-256";
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// RFC 3339 time at which the ingress finished reading the body.
    pub const RECEIVED_AT: &str = "Hooklog-Received-At";
    /// Id (never the value) of the secret that verified the signature.
    pub const SECRET_ID: &str = "Hooklog-Secret-Id";
    /// Lowercase hex SHA-256 of the body.
    pub const BODY_SHA256: &str = "Hooklog-Body-Sha256";
}

pub fn delivery_subject(event: &str) -> String {
    format!("{DELIVERIES_SUBJECT_PREFIX}.{event}")
}

/// `GITHUB_DELIVERIES`: file storage, no age limit, deletes and purges denied, de-duplication
/// on `Nats-Msg-Id` over `duplicate_window`.
pub fn deliveries_stream_config(duplicate_window: Duration) -> stream::Config {
    stream::Config {
        name: DELIVERIES_STREAM.to_owned(),
        description: Some("Verified GitHub webhook deliveries, raw bytes as received".to_owned()),
        subjects: vec![format!("{DELIVERIES_SUBJECT_PREFIX}.>")],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: Duration::ZERO,
        duplicate_window,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// Creates `GITHUB_DELIVERIES`, or brings an existing one to the settings above.
pub async fn ensure_deliveries_stream(
    js: &jetstream::Context,
    duplicate_window: Duration,
) -> Result<stream::Info, jetstream::context::CreateStreamError> {
    js.create_or_update_stream(deliveries_stream_config(duplicate_window))
        .await
}
