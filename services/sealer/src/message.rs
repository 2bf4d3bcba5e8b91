//! A JetStream message as the canonical entry of its log (`hooklog_audit::entry`): the sequence
//! and stored time from the message's metadata, its subject and headers as stored, and the
//! SHA-256 of its body, hashed here from the bytes (a `Hooklog-Body-Sha256` header is a claim
//! to check, never the digest itself).

use async_nats::jetstream;
use hooklog_audit::{Log, StreamMessage};
use hooklog_infra::streams::{DELIVERIES_STREAM, EVENTS_STREAM};

/// The stream behind a log.
pub fn stream_name(log: Log) -> &'static str {
    match log {
        Log::Deliveries => DELIVERIES_STREAM,
        Log::Events => EVENTS_STREAM,
    }
}

/// A log from its name in URLs and on the command line.
pub fn parse_log(name: &str) -> Option<Log> {
    match name {
        "deliveries" => Some(Log::Deliveries),
        "events" => Some(Log::Events),
        _ => None,
    }
}

/// Why a message has no entry.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not a JetStream message (no metadata reply subject).
    #[error("the message carries no JetStream metadata: {0}")]
    NoMetadata(String),
    /// Its stored time does not fit in i64 nanoseconds (after the year 2262).
    #[error("the message's stored time is out of range")]
    TimeOutOfRange,
}

/// The canonical form of `message`, delivered by a consumer of its stream.
pub fn stream_message(message: &jetstream::Message) -> Result<StreamMessage, MessageError> {
    let info = message
        .info()
        .map_err(|err| MessageError::NoMetadata(err.to_string()))?;
    let time = i64::try_from(info.published.unix_timestamp_nanos())
        .map_err(|_| MessageError::TimeOutOfRange)?;
    Ok(StreamMessage::from_body(
        info.stream_sequence,
        time,
        message.subject.as_str(),
        message
            .headers
            .as_ref()
            .map(header_pairs)
            .unwrap_or_default(),
        &message.payload,
    ))
}

/// The canonical form of a message read by sequence (`STREAM.MSG.GET`), which returns the
/// message as stored: the same entry its consumer delivery gives.
pub fn raw_stream_message(
    message: &jetstream::message::StreamMessage,
) -> Result<StreamMessage, MessageError> {
    let time = i64::try_from(message.time.unix_timestamp_nanos())
        .map_err(|_| MessageError::TimeOutOfRange)?;
    Ok(StreamMessage::from_body(
        message.sequence,
        time,
        message.subject.as_str(),
        header_pairs(&message.headers),
        &message.payload,
    ))
}

/// Every `(name, value)` of a header map, repeated names included.
fn header_pairs(headers: &async_nats::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .flat_map(|(name, values)| {
            let name: &str = name.as_ref();
            values
                .iter()
                .map(move |value| (name.to_owned(), value.as_str().to_owned()))
        })
        .collect()
}

/// Why entries could not be read from a stream.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {stream}: {reason}")]
    Nats {
        stream: &'static str,
        reason: String,
    },
    #[error("{stream} has no message at sequence {sequence} (the log is not contiguous)")]
    Missing { stream: &'static str, sequence: u64 },
    #[error("message {sequence} of {stream} has no entry: {reason}")]
    Entry {
        stream: &'static str,
        sequence: u64,
        reason: String,
    },
}

/// The canonical entries of the `count` messages of `log` from stream sequence `first`, in order.
pub async fn read_entries(
    js: &jetstream::Context,
    log: Log,
    first: u64,
    count: usize,
) -> Result<Vec<Vec<u8>>, ReadError> {
    use futures::StreamExt as _;
    let stream = stream_name(log);
    let nats = |err: &dyn std::fmt::Display| ReadError::Nats {
        stream,
        reason: err.to_string(),
    };
    let consumer = js
        .get_stream(stream)
        .await
        .map_err(|err| nats(&err))?
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: first,
            },
            ..Default::default()
        })
        .await
        .map_err(|err| nats(&err))?;
    let mut messages = consumer.messages().await.map_err(|err| nats(&err))?;
    let mut entries = Vec::with_capacity(count);
    while entries.len() < count {
        let sequence = first + entries.len() as u64;
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), messages.next())
            .await
            .map_err(|_| nats(&"timed out waiting for messages"))?;
        let message = match next {
            Some(message) => message.map_err(|err| nats(&err))?,
            None => return Err(ReadError::Missing { stream, sequence }),
        };
        let entry = stream_message(&message).map_err(|err| ReadError::Entry {
            stream,
            sequence,
            reason: err.to_string(),
        })?;
        if entry.sequence != sequence {
            return Err(ReadError::Missing { stream, sequence });
        }
        entries.push(entry.encode().map_err(|err| ReadError::Entry {
            stream,
            sequence,
            reason: err.to_string(),
        })?);
    }
    Ok(entries)
}
