//! The JetStream stream contracts: names, subjects, settings and message headers. Writers and
//! readers of a stream both use these, so the contract lives in one place.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

/// Every verified GitHub delivery, raw body bytes exactly as received.
pub const DELIVERIES_STREAM: &str = "GITHUB_DELIVERIES";
/// Deliveries are published to `github.deliveries.<event>`.
pub const DELIVERIES_SUBJECT_PREFIX: &str = "github.deliveries";
/// The worker's durable consumer on `GITHUB_DELIVERIES`, shared by every worker process.
pub const WORKER_CONSUMER: &str = "hooklog-worker";

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
    /// The repository connection whose webhook sent it (absent: the GitHub App's webhook).
    pub const CONNECTION_ID: &str = "Hooklog-Connection-Id";
    /// GitLab's event header as sent (the event header above then holds
    /// `gitlab_<it in snake case>`).
    pub const GITLAB_EVENT: &str = "X-Gitlab-Event";
    /// For a delivery whose provider signs nothing (GitLab sends its hook's token, which is
    /// never stored): `sha256=` and the ingress's HMAC-SHA256 of the body under the
    /// connection's secret, checked again by the worker as `X-Hub-Signature-256` is.
    pub const INGRESS_SIGNATURE_256: &str = "Hooklog-Signature-256";
}

pub fn delivery_subject(event: &str) -> String {
    format!("{DELIVERIES_SUBJECT_PREFIX}.{event}")
}

/// `GITHUB_DELIVERIES`: file storage, no age limit, deletes and purges denied, de-duplication
/// on `Nats-Msg-Id` over `duplicate_window`.
pub fn deliveries_stream_config(duplicate_window: Duration) -> stream::Config {
    append_only_stream(
        DELIVERIES_STREAM,
        "Verified GitHub webhook deliveries, raw bytes as received",
        DELIVERIES_SUBJECT_PREFIX,
        duplicate_window,
    )
}

/// What both streams are: a record that is only ever appended to. File storage, no age or size
/// limit, deletes and purges denied, direct gets allowed (auditors and the relay read single
/// messages), de-duplication on `Nats-Msg-Id` over `duplicate_window`.
fn append_only_stream(
    name: &str,
    description: &str,
    subject_prefix: &str,
    duplicate_window: Duration,
) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        description: Some(description.to_owned()),
        subjects: vec![format!("{subject_prefix}.>")],
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

/// A stream `serve` could not create or bring to its settings.
#[derive(Debug, thiserror::Error)]
#[error("cannot create or update the {stream} stream with {replicas} replica(s): {source}")]
pub struct EnsureError {
    pub stream: &'static str,
    pub replicas: usize,
    #[source]
    pub source: jetstream::context::CreateStreamError,
}

/// Creates the three streams (`GITHUB_DELIVERIES`, `HOOKLOG_EVENTS`, `HOOKLOG_AUDIT`) with
/// `replicas` copies each (`HOOKLOG_STREAM_REPLICAS`), or brings existing ones to these settings,
/// replica count included: JetStream moves a stream to a new count without losing a message.
/// More than one replica needs a JetStream cluster of at least that many servers.
///
/// A cluster that is still electing its meta leader, or busy with every process of a fleet
/// setting up the same streams at once, answers late or "temporarily unavailable": such an
/// answer is retried, with pauses doubling from 250 ms to 2 s, for up to [`ENSURE_PATIENCE`].
/// Any other error (replicas a single server cannot hold, a conflicting stream) is returned at
/// once.
pub async fn ensure_all(
    js: &jetstream::Context,
    deliveries_duplicate_window: Duration,
    events_duplicate_window: Duration,
    replicas: usize,
) -> Result<(), EnsureError> {
    let deadline = tokio::time::Instant::now() + ENSURE_PATIENCE;
    for (stream, config) in [
        (
            DELIVERIES_STREAM,
            deliveries_stream_config(deliveries_duplicate_window),
        ),
        (EVENTS_STREAM, events_stream_config(events_duplicate_window)),
        (AUDIT_STREAM, audit_stream_config()),
    ] {
        let config = stream::Config {
            num_replicas: replicas,
            ..config
        };
        let mut pause = Duration::from_millis(250);
        loop {
            match js.create_or_update_stream(config.clone()).await {
                Ok(_) => break,
                Err(source) if is_transient(&source) && tokio::time::Instant::now() < deadline => {
                    tracing::warn!(stream, error = %source, retry_in = ?pause, "JetStream cannot set up the stream yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(source) => {
                    return Err(EnsureError {
                        stream,
                        replicas,
                        source,
                    })
                }
            }
        }
    }
    Ok(())
}

/// How long [`ensure_all`] retries answers that say JetStream is not ready yet.
pub const ENSURE_PATIENCE: Duration = Duration::from_secs(60);

/// An answer that says JetStream (or its cluster) is not ready yet, rather than no.
fn is_transient(err: &jetstream::context::CreateStreamError) -> bool {
    use async_nats::jetstream::context::CreateStreamErrorKind as Kind;
    use async_nats::jetstream::ErrorCode;
    match err.kind() {
        Kind::TimedOut | Kind::JetStreamUnavailable => true,
        Kind::JetStream(err) => matches!(
            err.error_code(),
            ErrorCode::CLUSTER_NOT_AVAILABLE | ErrorCode::CLUSTER_NO_PEERS
        ),
        _ => false,
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

/// Every committed domain event, published by the relay from the Postgres outbox.
pub const EVENTS_STREAM: &str = "HOOKLOG_EVENTS";
/// Events are published to `hooklog.events.<aggregate_type>.<aggregate_id>`.
pub const EVENTS_SUBJECT_PREFIX: &str = "hooklog.events";

/// Headers of a message on `HOOKLOG_EVENTS`. The payload is the event's JSON exactly as stored
/// in the `events` table; these carry the rest of the row.
pub mod event_headers {
    /// The aggregate type, e.g. `ConnectorInstance`.
    pub const AGGREGATE_TYPE: &str = "Hooklog-Aggregate-Type";
    /// The aggregate id, e.g. `github-installation-42` or a UUID.
    pub const AGGREGATE_ID: &str = "Hooklog-Aggregate-Id";
    /// The event's sequence within its aggregate (decimal).
    pub const SEQUENCE: &str = "Hooklog-Sequence";
    pub const EVENT_TYPE: &str = "Hooklog-Event-Type";
    pub const EVENT_VERSION: &str = "Hooklog-Event-Version";
    /// Each metadata entry `k` of the event becomes a header `Hooklog-Meta-<k>`.
    pub const METADATA_PREFIX: &str = "Hooklog-Meta-";
}

/// The subject of an event: `hooklog.events.<aggregate_type>.<aggregate_id>`, one subject per
/// aggregate, so that "the last message on the subject" is the aggregate's latest event.
///
/// Both parts must be single subject tokens (see [`check_subject_token`]); this function does
/// not check, so that building a subject stays infallible for ids already checked.
pub fn event_subject(aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{EVENTS_SUBJECT_PREFIX}.{aggregate_type}.{aggregate_id}")
}

/// The `Nats-Msg-Id` of an event: `<aggregate_type>:<aggregate_id>:<sequence>`, unique per event,
/// so JetStream stores a re-published event once within the duplicate window.
pub fn event_msg_id(aggregate_type: &str, aggregate_id: &str, sequence: u64) -> String {
    format!("{aggregate_type}:{aggregate_id}:{sequence}")
}

/// An aggregate type or id that cannot be one token of a NATS subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{token:?} cannot be a NATS subject token: {reason}")]
pub struct SubjectTokenError {
    pub token: String,
    pub reason: &'static str,
}

/// Checks that an aggregate type or id can be one token of an event subject: not empty, and
/// without `.` (token separator), `*` or `>` (wildcards), whitespace or control characters.
/// hooklog's ids (`github-installation-<n>`, UUIDs) and types (`ConnectorInstance`,
/// `ConnectorTarget`) all pass; anything else must be made to pass before it is stored.
pub fn check_subject_token(token: &str) -> Result<(), SubjectTokenError> {
    let reason = if token.is_empty() {
        "it is empty"
    } else if token.contains('.') {
        "it contains `.`"
    } else if token.contains(['*', '>']) {
        "it contains a wildcard (`*` or `>`)"
    } else if token.contains(|c: char| c.is_whitespace() || c.is_control()) {
        "it contains whitespace or a control character"
    } else {
        return Ok(());
    };
    Err(SubjectTokenError {
        token: token.to_owned(),
        reason,
    })
}

/// `HOOKLOG_EVENTS`: file storage, limits retention without an age limit, deletes and purges
/// denied, direct gets allowed (the relay reads the last event of a subject), de-duplication on
/// `Nats-Msg-Id` over `duplicate_window`.
pub fn events_stream_config(duplicate_window: Duration) -> stream::Config {
    append_only_stream(
        EVENTS_STREAM,
        "Every committed hooklog domain event, in order per aggregate",
        EVENTS_SUBJECT_PREFIX,
        duplicate_window,
    )
}

/// Creates `HOOKLOG_EVENTS`, or brings an existing one to the settings above.
pub async fn ensure_events_stream(
    js: &jetstream::Context,
    duplicate_window: Duration,
) -> Result<stream::Info, jetstream::context::CreateStreamError> {
    js.create_or_update_stream(events_stream_config(duplicate_window))
        .await
}

/// `HOOKLOG_AUDIT`: the signed checkpoints of both logs, written by the sealer.
pub const AUDIT_STREAM: &str = "HOOKLOG_AUDIT";

pub const AUDIT_SUBJECT_PREFIX: &str = "hooklog.audit";

/// The subject of the checkpoints of one log (`deliveries` or `events`).
pub fn audit_checkpoint_subject(log: &str) -> String {
    format!("{AUDIT_SUBJECT_PREFIX}.{log}.checkpoint")
}

/// `HOOKLOG_AUDIT`: append-only like the other two, so no checkpoint is ever taken back.
/// Checkpoints are published with `Nats-Msg-Id` `<log>:<size>`; the window only has to outlast
/// a sealer's retry.
pub fn audit_stream_config() -> stream::Config {
    append_only_stream(
        AUDIT_STREAM,
        "Signed checkpoints of the deliveries and events transparency logs",
        AUDIT_SUBJECT_PREFIX,
        Duration::from_secs(600),
    )
}

/// Creates `HOOKLOG_AUDIT`, or brings an existing one to the settings above.
pub async fn ensure_audit_stream(
    js: &jetstream::Context,
) -> Result<stream::Info, jetstream::context::CreateStreamError> {
    js.create_or_update_stream(audit_stream_config()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_subjects_and_message_ids_follow_the_contract() {
        assert_eq!(
            event_subject("ConnectorInstance", "github-installation-42"),
            "hooklog.events.ConnectorInstance.github-installation-42"
        );
        assert_eq!(
            event_msg_id("ConnectorTarget", "8d1c7e0e-6f1e-5b8e-9a51-2f0c8f0f2d11", 7),
            "ConnectorTarget:8d1c7e0e-6f1e-5b8e-9a51-2f0c8f0f2d11:7"
        );
    }

    #[test]
    fn hooklog_ids_are_subject_tokens_and_separators_wildcards_and_spaces_are_not() {
        for good in [
            "ConnectorInstance",
            "github-installation-42",
            "8d1c7e0e-6f1e-5b8e-9a51-2f0c8f0f2d11",
        ] {
            assert_eq!(check_subject_token(good), Ok(()), "{good}");
        }
        for bad in ["", "a.b", "a*", ">", "a b", "a\tb", "a\r\nb"] {
            assert!(check_subject_token(bad).is_err(), "{bad:?}");
        }
    }
}
