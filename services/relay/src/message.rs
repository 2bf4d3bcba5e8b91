//! Turning an outbox row into the `HOOKLOG_EVENTS` message of the stream contract
//! (`hooklog_infra::streams`): subject, `Nats-Msg-Id`, headers and payload bytes.

use std::str::FromStr;

use async_nats::header::{HeaderMap, HeaderName, HeaderValue, NATS_MESSAGE_ID};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use hooklog_infra::streams::{self, event_headers as h};

use crate::outbox::OutboxRow;
use crate::RelayError;

/// One event, ready to publish (and to publish again, with the same message id).
#[derive(Clone, Debug)]
pub(crate) struct EventMessage {
    pub subject: String,
    pub sequence: u64,
    pub headers: HeaderMap,
    pub payload: Bytes,
}

impl EventMessage {
    /// Builds the message of `row`, or says why it can never be published as it is.
    pub fn from_row(row: &OutboxRow) -> Result<Self, RelayError> {
        let unpublishable = |reason: String| RelayError::Unpublishable {
            outbox_id: row.id,
            reason,
        };
        streams::check_subject_token(&row.aggregate_type)
            .map_err(|err| unpublishable(format!("aggregate type: {err}")))?;
        streams::check_subject_token(&row.aggregate_id)
            .map_err(|err| unpublishable(format!("aggregate id: {err}")))?;
        let sequence = u64::try_from(row.sequence)
            .map_err(|_| unpublishable(format!("negative sequence {}", row.sequence)))?;

        let msg_id = streams::event_msg_id(&row.aggregate_type, &row.aggregate_id, sequence);
        let mut headers = HeaderMap::new();
        // Type and id passed the token check, so they hold no line breaks; the event type and
        // version come from the domain's enums but are checked all the same, since an invalid
        // header value would make async-nats panic.
        headers.insert(NATS_MESSAGE_ID, msg_id.as_str());
        headers.insert(h::AGGREGATE_TYPE, row.aggregate_type.as_str());
        headers.insert(h::AGGREGATE_ID, row.aggregate_id.as_str());
        headers.insert(h::SEQUENCE, sequence.to_string());
        for (name, value) in [
            (h::EVENT_TYPE, &row.event_type),
            (h::EVENT_VERSION, &row.event_version),
        ] {
            let value = HeaderValue::from_str(value)
                .map_err(|_| unpublishable(format!("{name} contains a line break")))?;
            headers.insert(name, value);
        }
        insert_metadata(&mut headers, row.id, &row.metadata);

        Ok(Self {
            subject: streams::event_subject(&row.aggregate_type, &row.aggregate_id),
            sequence,
            headers,
            payload: Bytes::from(row.payload.clone().into_bytes()),
        })
    }

    pub fn to_publish(&self) -> PublishMessage {
        PublishMessage::build()
            .payload(self.payload.clone())
            .headers(self.headers.clone())
    }
}

/// Adds `Hooklog-Meta-<key>` for each entry of the metadata object. String values are copied as
/// they are; other values, and strings with a line break (which a header cannot carry), as
/// their JSON text. A key that cannot be part of a header name is left out with a warning: the
/// event store keeps the full metadata either way.
fn insert_metadata(headers: &mut HeaderMap, outbox_id: i64, metadata: &str) {
    let entries = match serde_json::from_str::<serde_json::Value>(metadata) {
        Ok(serde_json::Value::Object(entries)) => entries,
        Ok(_) | Err(_) => {
            tracing::warn!(
                outbox_id,
                "event metadata is not a JSON object; no metadata headers"
            );
            return;
        }
    };
    for (key, value) in entries {
        let Ok(name) = HeaderName::from_str(&format!("{}{key}", h::METADATA_PREFIX)) else {
            tracing::warn!(
                outbox_id,
                key,
                "metadata key cannot be a header name; left out"
            );
            continue;
        };
        let text = match value {
            serde_json::Value::String(text) if !text.contains(['\r', '\n']) => text,
            other => other.to_string(),
        };
        // JSON text never holds a raw line break, so this cannot fail.
        if let Ok(value) = HeaderValue::from_str(&text) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> OutboxRow {
        OutboxRow {
            id: 7,
            aggregate_type: "ConnectorInstance".to_owned(),
            aggregate_id: "github-installation-42".to_owned(),
            sequence: 3,
            event_type: "Connected".to_owned(),
            event_version: "1.0".to_owned(),
            payload: r#"{"Connected": {"installation_id": 42}}"#.to_owned(),
            metadata: r#"{"delivery_id": "d-1", "actor": "github", "attempt": 2, "note": "a\nb"}"#
                .to_owned(),
        }
    }

    fn header<'a>(message: &'a EventMessage, name: &str) -> Option<&'a str> {
        message.headers.get(name).map(HeaderValue::as_str)
    }

    #[test]
    fn a_row_becomes_the_contract_message_with_its_payload_bytes_untouched() {
        let message = EventMessage::from_row(&row()).unwrap();
        assert_eq!(
            message.subject,
            "hooklog.events.ConnectorInstance.github-installation-42"
        );
        assert_eq!(message.sequence, 3);
        assert_eq!(
            header(&message, "Nats-Msg-Id"),
            Some("ConnectorInstance:github-installation-42:3")
        );
        assert_eq!(
            header(&message, h::AGGREGATE_TYPE),
            Some("ConnectorInstance")
        );
        assert_eq!(
            header(&message, h::AGGREGATE_ID),
            Some("github-installation-42")
        );
        assert_eq!(header(&message, h::SEQUENCE), Some("3"));
        assert_eq!(header(&message, h::EVENT_TYPE), Some("Connected"));
        assert_eq!(header(&message, h::EVENT_VERSION), Some("1.0"));
        assert_eq!(&message.payload[..], row().payload.as_bytes());
    }

    #[test]
    fn metadata_entries_become_headers_and_values_a_header_cannot_carry_are_json_encoded() {
        let message = EventMessage::from_row(&row()).unwrap();
        assert_eq!(header(&message, "Hooklog-Meta-delivery_id"), Some("d-1"));
        assert_eq!(header(&message, "Hooklog-Meta-actor"), Some("github"));
        assert_eq!(header(&message, "Hooklog-Meta-attempt"), Some("2"));
        assert_eq!(header(&message, "Hooklog-Meta-note"), Some(r#""a\nb""#));
    }

    #[test]
    fn a_row_whose_id_is_not_a_subject_token_is_unpublishable() {
        let bad = OutboxRow {
            aggregate_id: "a.b".to_owned(),
            ..row()
        };
        assert!(matches!(
            EventMessage::from_row(&bad),
            Err(RelayError::Unpublishable { outbox_id: 7, .. })
        ));
        let bad = OutboxRow {
            event_type: "Connected\r\nX: y".to_owned(),
            ..row()
        };
        assert!(EventMessage::from_row(&bad).is_err());
    }
}
