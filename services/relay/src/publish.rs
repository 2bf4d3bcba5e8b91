//! The NATS side of the relay: publishing one event to `HOOKLOG_EVENTS` until JetStream
//! acknowledges it, and asking the stream whether an event is already there.
//!
//! A publish is never fire-and-forget and never given up: a failed or unacknowledged attempt is
//! retried with the same `Nats-Msg-Id` after a short backoff, for as long as it takes (the
//! caller cancels the future to stop). A missing stream is retried like any other failure: the
//! caller of [`run`](crate::run) creates it, and it may just not be there yet.

use std::time::Duration;

use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, context::PublishAckFuture};
use hooklog_infra::streams::{event_headers, EVENTS_STREAM};

use crate::message::EventMessage;

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What became of an event handed to [`Publisher::publish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Published {
    /// JetStream acknowledged it (`duplicate` when it already held that message id).
    Stored { stream_seq: u64, duplicate: bool },
    /// The stream already holds this event or a later one of the aggregate.
    AlreadyOnStream { last_sequence: u64 },
}

pub(crate) struct Publisher {
    js: jetstream::Context,
    publish_timeout: Duration,
}

impl Publisher {
    pub fn new(js: jetstream::Context, publish_timeout: Duration) -> Self {
        Self {
            js,
            publish_timeout,
        }
    }

    /// Publishes `message` and resolves once JetStream has it. With `check_stream`, and after
    /// any failed attempt (which may have been stored all the same), it first asks the stream
    /// for the aggregate's last event, so that an event stored earlier is not stored again even
    /// when the duplicate window has passed.
    pub async fn publish(&self, message: &EventMessage, mut check_stream: bool) -> Published {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt: u64 = 0;
        loop {
            attempt += 1;
            if check_stream {
                match self.last_sequence(&message.subject).await {
                    Ok(Some(last_sequence)) if last_sequence >= message.sequence => {
                        return Published::AlreadyOnStream { last_sequence };
                    }
                    Ok(_) => check_stream = false,
                    Err(error) => {
                        tracing::warn!(%error, attempt, "cannot read the aggregate's last event from the stream; retrying");
                    }
                }
            }
            if !check_stream {
                match self.attempt(message).await {
                    Ok(ack) => {
                        return Published::Stored {
                            stream_seq: ack.sequence,
                            duplicate: ack.duplicate,
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, attempt, "publishing the event failed; retrying with the same message id");
                        check_stream = true;
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Publishes `messages`, at most one per aggregate, with their PubAcks awaited together
    /// (one round trip for all of them rather than one each), and resolves once JetStream has
    /// every one. A message whose attempt fails, or is not acknowledged within
    /// `publish_timeout`, goes through [`publish`](Self::publish), checked against the stream,
    /// until stored. Being one per aggregate, no message of the wave can overtake another event
    /// of its aggregate.
    pub async fn publish_wave(&self, messages: &[&EventMessage]) {
        let deadline = tokio::time::Instant::now() + self.publish_timeout;
        let mut sent = Vec::with_capacity(messages.len());
        for message in messages {
            let attempt = tokio::time::timeout_at(
                deadline,
                self.js
                    .send_publish(message.subject.clone(), message.to_publish()),
            )
            .await;
            sent.push(attempt);
        }
        for (message, attempt) in messages.iter().zip(sent) {
            let acked = match attempt {
                Ok(Ok(ack)) => match tokio::time::timeout_at(deadline, ack).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(_) => Err(format!("no PubAck within {:?}", self.publish_timeout)),
                },
                Ok(Err(err)) => Err(err.to_string()),
                Err(_) => Err(format!("not sent within {:?}", self.publish_timeout)),
            };
            if let Err(error) = acked {
                tracing::warn!(%error, subject = %message.subject, sequence = message.sequence, "publishing the event failed; retrying with the same message id");
                self.publish(message, true).await;
            }
        }
        tracing::debug!(events = messages.len(), "wave of events published");
    }

    /// One publish, waiting at most `publish_timeout` for the PubAck.
    async fn attempt(
        &self,
        message: &EventMessage,
    ) -> Result<jetstream::publish::PublishAck, String> {
        let publish = async {
            let ack: PublishAckFuture = self
                .js
                .send_publish(message.subject.clone(), message.to_publish())
                .await?;
            ack.await
        };
        match tokio::time::timeout(self.publish_timeout, publish).await {
            Ok(result) => result.map_err(|err| err.to_string()),
            Err(_) => Err(format!("no PubAck within {:?}", self.publish_timeout)),
        }
    }

    /// The sequence (`Hooklog-Sequence`) of the last event on `subject`, `None` when there is
    /// none. A message without a readable sequence header was not written by a relay; it
    /// counts as none, and the event is published (and de-duplicated by message id).
    async fn last_sequence(&self, subject: &str) -> Result<Option<u64>, String> {
        let stream = self
            .js
            .get_stream_no_info(EVENTS_STREAM)
            .await
            .map_err(|err| err.to_string())?;
        let last = tokio::time::timeout(
            self.publish_timeout,
            stream.get_last_raw_message_by_subject(subject),
        )
        .await
        .map_err(|_| format!("no answer within {:?}", self.publish_timeout))?;
        match last {
            Ok(message) => Ok(sequence_of(&message)),
            Err(err) if matches!(err.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(None),
            Err(err) => Err(err.to_string()),
        }
    }
}

fn sequence_of(message: &StreamMessage) -> Option<u64> {
    let sequence = message
        .headers
        .get(event_headers::SEQUENCE)
        .and_then(|value| value.as_str().parse().ok());
    if sequence.is_none() {
        tracing::warn!(
            stream_seq = message.sequence,
            "the last message on the subject has no Hooklog-Sequence header"
        );
    }
    sequence
}
