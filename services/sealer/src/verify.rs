//! `hooklog audit verify`: everything an auditor can check about both logs from the streams,
//! `HOOKLOG_AUDIT`, the event store and the stored tiles, without trusting any of them. Each
//! problem is a [`Finding`] naming the log, the stream sequence where there is one, and what is
//! wrong; the report lists the checks that passed too.
//!
//! Per log:
//! - **immutable**: the stream denies deletes and purges and has no limit that evicts
//!   (`max_age`, `max_msgs`, `max_bytes`, `max_msgs_per_subject`);
//! - **contiguous**: messages at every sequence from 1 to the last, none deleted;
//! - **bodies** (deliveries): each body's SHA-256 is its `Hooklog-Body-Sha256` header, and with
//!   secrets, its `X-Hub-Signature-256` verifies under one of them;
//! - **checkpoints**: each one on `HOOKLOG_AUDIT` is signed by the given public key for this
//!   log's origin, names a tree no larger than the stream, no smaller than the one before, and
//!   its root is the root of the stream's first `size` leaves, computed here from the messages
//!   (so any two checkpoints that pass are consistent, and a pair that is not is found at the
//!   later one); the stored tiles give the latest checkpoint's root too;
//! - **event store** (events): every row of `events` is on `HOOKLOG_EVENTS` exactly once with the
//!   same payload bytes and event type, each aggregate's events in sequence order, and every
//!   event on the stream is in the store.

use std::collections::{BTreeSet, HashMap};

use async_nats::jetstream::{self, consumer::pull, consumer::DeliverPolicy};
use futures::StreamExt;
use hooklog_audit::note::unverified_text;
use hooklog_audit::tiles::{tiles_for_subtrees, TileHashes};
use hooklog_audit::tree::{root_from, root_subtrees};
use hooklog_audit::{Checkpoint, Frontier, Log, VerifierKey};
use hooklog_domain::github::{Signature, WebhookSecret};
use hooklog_infra::streams::{
    audit_checkpoint_subject, delivery_headers, event_headers, AUDIT_STREAM,
};

use crate::message::{stream_message, stream_name};
use crate::store;

/// What `verify` checks against.
#[derive(Default)]
pub struct Options {
    /// The checkpoints must be signed by this key; `None`: signatures are not checked (said so).
    pub public_key: Option<VerifierKey>,
    /// Webhook secrets: each delivery's signature must verify under one of them.
    pub secrets: Vec<WebhookSecret>,
}

/// Which check found a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Immutable,
    Contiguous,
    BodyDigest,
    Signature,
    Checkpoint,
    CheckpointSignature,
    Tiles,
    EventStore,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Immutable => "immutable",
            Check::Contiguous => "contiguous",
            Check::BodyDigest => "body digest",
            Check::Signature => "webhook signature",
            Check::Checkpoint => "checkpoint",
            Check::CheckpointSignature => "checkpoint signature",
            Check::Tiles => "stored tiles",
            Check::EventStore => "event store",
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub log: Log,
    pub check: Check,
    /// The stream sequence it is about, when it is about one message.
    pub sequence: Option<u64>,
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", stream_name(self.log), self.check.name())?;
        if let Some(sequence) = self.sequence {
            write!(f, " at sequence {sequence}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What `verify` found and what it checked.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// One line per check that ran, with what it covered.
    pub passed: Vec<String>,
    /// Checks that could not run, and why (no public key given, no secret given).
    pub skipped: Vec<String>,
}

/// Why verifying could not be done at all (a finding is not an error).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the stream {0} is not there")]
    NoStream(&'static str),
    #[error("cannot read {what}: {reason}")]
    Unavailable { what: String, reason: String },
}

/// The events read from `HOOKLOG_EVENTS`, by (aggregate type, id, sequence): their stream
/// sequence, payload bytes and event type.
type Streamed = HashMap<(String, String, i64), (u64, Vec<u8>, String)>;

fn unavailable(what: impl Into<String>, err: impl std::fmt::Display) -> VerifyError {
    VerifyError::Unavailable {
        what: what.into(),
        reason: err.to_string(),
    }
}

/// Verifies both logs; `progress(log, done, total)` is called as messages are read.
pub async fn verify(
    pool: &sqlx::PgPool,
    js: &jetstream::Context,
    options: &Options,
    progress: &mut (dyn FnMut(Log, u64, u64) + Send),
) -> Result<Report, VerifyError> {
    let mut report = Report::default();
    if options.public_key.is_none() {
        report
            .skipped
            .push("checkpoint signatures: no --public-key given".into());
    }
    if options.secrets.is_empty() {
        report
            .skipped
            .push("webhook signatures: no --secret given".into());
    }
    for log in [Log::Deliveries, Log::Events] {
        verify_log(pool, js, options, log, &mut report, progress).await?;
    }
    Ok(report)
}

async fn verify_log(
    pool: &sqlx::PgPool,
    js: &jetstream::Context,
    options: &Options,
    log: Log,
    report: &mut Report,
    progress: &mut (dyn FnMut(Log, u64, u64) + Send),
) -> Result<(), VerifyError> {
    let name = stream_name(log);
    let mut stream = js
        .get_stream(name)
        .await
        .map_err(|_| VerifyError::NoStream(name))?;
    let info = stream
        .info()
        .await
        .map_err(|err| unavailable(name, err))?
        .clone();
    let finding = |check, sequence, detail: String| Finding {
        log,
        check,
        sequence,
        detail,
    };

    // Immutable.
    let config = &info.config;
    let mut loose = Vec::new();
    if !config.deny_delete {
        loose.push("deny_delete is off".to_string());
    }
    if !config.deny_purge {
        loose.push("deny_purge is off".to_string());
    }
    if !config.max_age.is_zero() {
        loose.push(format!("max_age {:?} evicts old messages", config.max_age));
    }
    if config.max_messages > 0 {
        loose.push(format!(
            "max_msgs {} evicts old messages",
            config.max_messages
        ));
    }
    if config.max_bytes > 0 {
        loose.push(format!(
            "max_bytes {} evicts old messages",
            config.max_bytes
        ));
    }
    if config.max_messages_per_subject > 0 {
        loose.push(format!(
            "max_msgs_per_subject {} evicts old messages",
            config.max_messages_per_subject
        ));
    }
    let before = report.findings.len();
    for detail in loose {
        report
            .findings
            .push(finding(Check::Immutable, None, detail));
    }
    if report.findings.len() == before {
        report.passed.push(format!(
            "{name}: immutable (deletes and purges denied, no limit that evicts)"
        ));
    }

    // Checkpoints, in the order they were published.
    let checkpoints = read_checkpoints(js, log, options, report).await?;
    let mut pending_checkpoints = checkpoints.iter().peekable();

    // Every message, in order.
    let state = &info.state;
    let last = state.last_sequence;
    let mut frontier = Frontier::new();
    let mut store_events = Streamed::new();
    let mut next_in_aggregate: HashMap<(String, String), i64> = HashMap::new();
    let (mut digests_ok, mut signatures_ok) = (0u64, 0u64);
    let mut connection_deliveries = 0u64;
    let findings_before = report.findings.len();
    if state.first_sequence > 1 || state.messages == 0 && last > 0 {
        report.findings.push(finding(
            Check::Contiguous,
            Some(1),
            format!(
                "the stream starts at sequence {}: sequences 1 to {} are gone",
                state.first_sequence,
                state.first_sequence - 1
            ),
        ));
    }
    if last > 0 {
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|err| unavailable(name, err))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|err| unavailable(name, err))?;
        let mut expected = 1u64;
        while expected <= last {
            let Some(message) = messages.next().await else {
                break;
            };
            let message = message.map_err(|err| unavailable(name, err))?;
            let entry = stream_message(&message).map_err(|err| unavailable(name, err))?;
            let sequence = entry.sequence;
            if sequence > last {
                break;
            }
            if sequence != expected {
                report.findings.push(finding(
                    Check::Contiguous,
                    Some(expected),
                    match sequence - expected {
                        1 => format!("sequence {expected} is missing"),
                        _ => format!("sequences {expected} to {} are missing", sequence - 1),
                    },
                ));
                // The tree of leaves after a gap is not the log's: stop comparing checkpoints.
                pending_checkpoints = [].iter().peekable();
                expected = sequence;
            }
            expected += 1;
            progress(log, sequence, last);
            let header = |name: &str| {
                message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_string())
            };
            if log == Log::Deliveries {
                let digest = hex::encode(entry.body_sha256);
                match header(delivery_headers::BODY_SHA256) {
                    Some(stated) if stated.eq_ignore_ascii_case(&digest) => digests_ok += 1,
                    Some(stated) => report.findings.push(finding(
                        Check::BodyDigest,
                        Some(sequence),
                        format!("the body hashes to {digest}, its header says {stated}"),
                    )),
                    None => report.findings.push(finding(
                        Check::BodyDigest,
                        Some(sequence),
                        format!("no {} header", delivery_headers::BODY_SHA256),
                    )),
                }
                if !options.secrets.is_empty() && header(delivery_headers::CONNECTION_ID).is_some()
                {
                    connection_deliveries += 1;
                } else if !options.secrets.is_empty() {
                    let signature = header(delivery_headers::SIGNATURE_256).unwrap_or_default();
                    if signed_by_one_of(&options.secrets, &message.payload, &signature) {
                        signatures_ok += 1;
                    } else {
                        report.findings.push(finding(
                            Check::Signature,
                            Some(sequence),
                            "X-Hub-Signature-256 does not verify under any --secret".into(),
                        ));
                    }
                }
            } else {
                let key = (
                    header(event_headers::AGGREGATE_TYPE).unwrap_or_default(),
                    header(event_headers::AGGREGATE_ID).unwrap_or_default(),
                );
                let number: i64 = header(event_headers::SEQUENCE)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(-1);
                let next = next_in_aggregate.entry(key.clone()).or_insert(1);
                if number != *next {
                    report.findings.push(finding(
                        Check::EventStore,
                        Some(sequence),
                        format!(
                            "event {} of {}/{} where event {} was next: out of order or repeated",
                            number, key.0, key.1, next
                        ),
                    ));
                }
                *next = (*next).max(number + 1);
                let event_type = header(event_headers::EVENT_TYPE).unwrap_or_default();
                let full = (key.0, key.1, number);
                // A repeat was reported above as out of order; the last copy is compared.
                store_events.insert(full, (sequence, message.payload.to_vec(), event_type));
            }
            let leaf = entry.leaf_hash().map_err(|err| unavailable(name, err))?;
            let mut full = Vec::new();
            frontier.push(leaf, &mut full);
            while let Some(checkpoint) =
                pending_checkpoints.next_if(|c| c.size() == frontier.size())
            {
                if checkpoint.root() != frontier.root() {
                    report.findings.push(finding(
                        Check::Checkpoint,
                        Some(checkpoint.size()),
                        format!(
                            "the checkpoint of {} leaves has root {}; the stream's first {} messages make {}",
                            checkpoint.size(),
                            checkpoint.root(),
                            checkpoint.size(),
                            frontier.root()
                        ),
                    ));
                }
            }
        }
        if expected <= last {
            report.findings.push(finding(
                Check::Contiguous,
                Some(expected),
                format!(
                    "the stream ended at {} before its last sequence {last}",
                    expected - 1
                ),
            ));
        }
    }
    for checkpoint in pending_checkpoints {
        if checkpoint.size() > frontier.size() {
            report.findings.push(finding(
                Check::Checkpoint,
                Some(checkpoint.size()),
                format!(
                    "a checkpoint names {} leaves; the stream holds {}",
                    checkpoint.size(),
                    frontier.size()
                ),
            ));
        }
    }
    if report.findings[findings_before..]
        .iter()
        .all(|f| f.check != Check::Contiguous)
    {
        report
            .passed
            .push(format!("{name}: contiguous, sequences 1 to {last}"));
    }
    if log == Log::Deliveries {
        report.passed.push(format!(
            "{name}: {digests_ok} of {last} bodies match their Hooklog-Body-Sha256"
        ));
        if !options.secrets.is_empty() {
            report.passed.push(format!(
                "{name}: {signatures_ok} of {} X-Hub-Signature-256 verify",
                last - connection_deliveries
            ));
        }
        if connection_deliveries > 0 {
            report.skipped.push(format!(
                "{name}: the signatures of {connection_deliveries} repository connections' \
                 deliveries (signed with their connections' own secrets, which --secret does \
                 not hold)"
            ));
        }
    }
    if report.findings[findings_before..]
        .iter()
        .all(|f| f.check != Check::Checkpoint)
    {
        report.passed.push(format!(
            "{name}: {} checkpoints, each the root of the stream's first leaves (so each consistent with the one before)",
            checkpoints.len()
        ));
    }
    if let Some(latest) = checkpoints.last() {
        check_tiles(pool, log, latest, report).await?;
    }
    if log == Log::Events {
        compare_event_store(pool, store_events, report).await?;
    }
    Ok(())
}

/// Every checkpoint of `log` in publish order; signatures checked, sizes never shrinking.
async fn read_checkpoints(
    js: &jetstream::Context,
    log: Log,
    options: &Options,
    report: &mut Report,
) -> Result<Vec<Checkpoint>, VerifyError> {
    let audit = js
        .get_stream(AUDIT_STREAM)
        .await
        .map_err(|_| VerifyError::NoStream(AUDIT_STREAM))?;
    let subject = audit_checkpoint_subject(log.name());
    let mut consumer = audit
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject.clone(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|err| unavailable(AUDIT_STREAM, err))?;
    let mut pending = consumer
        .info()
        .await
        .map_err(|err| unavailable(AUDIT_STREAM, err))?
        .num_pending;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|err| unavailable(AUDIT_STREAM, err))?;
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    let mut signed_ok = 0;
    while pending > 0 {
        let Some(message) = messages.next().await else {
            break;
        };
        let message = message.map_err(|err| unavailable(AUDIT_STREAM, err))?;
        let info = message
            .info()
            .map_err(|err| unavailable(AUDIT_STREAM, err))?;
        pending = info.pending;
        let audit_seq = info.stream_sequence;
        let note = String::from_utf8_lossy(&message.payload).into_owned();
        let finding = |check, detail: String| Finding {
            log,
            check,
            sequence: None,
            detail: format!("HOOKLOG_AUDIT message {audit_seq}: {detail}"),
        };
        let parsed = match &options.public_key {
            Some(key) => match Checkpoint::open(&note, key, &log.origin(key.name())) {
                Ok(checkpoint) => {
                    signed_ok += 1;
                    Some(checkpoint)
                }
                Err(err) => {
                    report.findings.push(finding(
                        Check::CheckpointSignature,
                        format!("not a checkpoint signed by {}: {err}", key.name()),
                    ));
                    Checkpoint::parse(unverified_text(&note)).ok()
                }
            },
            None => Checkpoint::parse(unverified_text(&note)).ok(),
        };
        let Some(checkpoint) = parsed else {
            report
                .findings
                .push(finding(Check::Checkpoint, "not a checkpoint".into()));
            continue;
        };
        if let Some(previous) = checkpoints.last() {
            if checkpoint.size() < previous.size() {
                report.findings.push(finding(
                    Check::Checkpoint,
                    format!(
                        "names {} leaves after a checkpoint of {}: a log never shrinks",
                        checkpoint.size(),
                        previous.size()
                    ),
                ));
            }
        }
        checkpoints.push(checkpoint);
    }
    if let Some(key) = &options.public_key {
        if signed_ok == checkpoints.len() {
            report.passed.push(format!(
                "{}: all {signed_ok} checkpoints signed by {key}",
                stream_name(log)
            ));
        }
    }
    // Sorted by size for the walk over the leaves (a shrinking one is already a finding).
    checkpoints.sort_by_key(Checkpoint::size);
    Ok(checkpoints)
}

/// The stored tiles must give the latest checkpoint's root.
async fn check_tiles(
    pool: &sqlx::PgPool,
    log: Log,
    latest: &Checkpoint,
    report: &mut Report,
) -> Result<(), VerifyError> {
    let size = latest.size();
    let needed: BTreeSet<_> = tiles_for_subtrees(&root_subtrees(size), size).unwrap_or_default();
    let tiles = store::read_tiles(pool, log, &needed)
        .await
        .map_err(|err| unavailable("the stored tiles", err))?;
    match root_from(&mut TileHashes::new(size, tiles), size) {
        Ok(root) if root == latest.root() => report.passed.push(format!(
            "{}: the stored tiles give the latest checkpoint's root ({size} leaves)",
            stream_name(log)
        )),
        Ok(root) => report.findings.push(Finding {
            log,
            check: Check::Tiles,
            sequence: None,
            detail: format!(
                "the stored tiles of {size} leaves give root {root}, the latest checkpoint {}",
                latest.root()
            ),
        }),
        Err(err) => report.findings.push(Finding {
            log,
            check: Check::Tiles,
            sequence: None,
            detail: format!("the stored tiles cannot give the latest checkpoint's root: {err}"),
        }),
    }
    Ok(())
}

/// Every stored event on the stream with the same bytes, and every streamed event stored.
async fn compare_event_store(
    pool: &sqlx::PgPool,
    mut streamed: Streamed,
    report: &mut Report,
) -> Result<(), VerifyError> {
    let rows: Vec<(String, String, i64, String, String)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, payload::text
         FROM events ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .fetch_all(pool)
    .await
    .map_err(|err| unavailable("the event store", err))?;
    let before = report.findings.len();
    let total = rows.len();
    let finding = |sequence, detail: String| Finding {
        log: Log::Events,
        check: Check::EventStore,
        sequence,
        detail,
    };
    // Rows the relay has not published yet are still in the outbox: not a finding.
    let unpublished: BTreeSet<(String, String, i64)> =
        sqlx::query_as("SELECT aggregate_type, aggregate_id, sequence FROM event_outbox")
            .fetch_all(pool)
            .await
            .map_err(|err| unavailable("the outbox", err))?
            .into_iter()
            .collect();
    for (kind, id, sequence, event_type, payload) in rows {
        let key = (kind, id, sequence);
        match streamed.remove(&key) {
            Some((stream_seq, bytes, streamed_type)) => {
                if bytes != payload.as_bytes() {
                    report.findings.push(finding(
                        Some(stream_seq),
                        format!(
                            "event {} of {}/{} differs between the event store and the stream (payload)",
                            key.2, key.0, key.1
                        ),
                    ));
                } else if streamed_type != event_type {
                    report.findings.push(finding(
                        Some(stream_seq),
                        format!(
                            "event {} of {}/{} is {event_type} in the store and {streamed_type} on the stream",
                            key.2, key.0, key.1
                        ),
                    ));
                }
            }
            None if unpublished.contains(&key) => {}
            None => report.findings.push(finding(
                None,
                format!(
                    "event {} of {}/{} is in the event store but not on HOOKLOG_EVENTS",
                    key.2, key.0, key.1
                ),
            )),
        }
    }
    let mut missing: Vec<_> = streamed.into_iter().collect();
    missing.sort_by_key(|(_, (stream_seq, _, _))| *stream_seq);
    for ((kind, id, sequence), (stream_seq, _, _)) in missing {
        report.findings.push(finding(
            Some(stream_seq),
            format!(
                "event {sequence} of {kind}/{id} is on HOOKLOG_EVENTS but not in the event store"
            ),
        ));
    }
    if report.findings.len() == before {
        report.passed.push(format!(
            "HOOKLOG_EVENTS: equals the event store ({total} events, payloads byte for byte)"
        ));
    }
    Ok(())
}

/// Whether `signature` (an `X-Hub-Signature-256` value) is the HMAC of `body` under one of
/// `secrets`, each compared in constant time by the domain's own check.
fn signed_by_one_of(secrets: &[WebhookSecret], body: &[u8], signature: &str) -> bool {
    Signature::parse(signature)
        .is_ok_and(|signature| secrets.iter().any(|secret| signature.matches(secret, body)))
}
