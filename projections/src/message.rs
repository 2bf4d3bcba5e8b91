//! A stream message as projections see it: sequence, stream timestamp, subject, headers and
//! payload, detached from the consumer that delivered it.

use async_nats::HeaderMap;
use bytes::Bytes;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct StreamMessage {
    pub sequence: u64,
    /// When the stream stored the message: the only clock projections read.
    pub published: OffsetDateTime,
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
    /// Messages the consumer had yet to deliver after this one (not part of the content).
    pub pending: u64,
}

impl StreamMessage {
    pub fn from_jetstream(
        message: &async_nats::jetstream::Message,
    ) -> Result<Self, async_nats::Error> {
        let info = message.info()?;
        Ok(Self {
            sequence: info.stream_sequence,
            published: info.published,
            subject: message.subject.to_string(),
            headers: message.headers.clone().unwrap_or_default(),
            payload: message.payload.clone(),
            pending: info.pending,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.as_str())
    }
}
