//! The loop of a durable pull consumer, shared by the roles that own one (the worker on
//! `GITHUB_DELIVERIES`, the syncer on `HOOKLOG_EVENTS`): get or create the consumer, hand its
//! messages to `handle` with bounded concurrency until shutdown, and when NATS is away, wait and
//! start again. What a message means, and how it is acked, is the role's.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::{self, AckKind, Message};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// A message handed out by a durable consumer, with where it stands on its stream.
pub struct Delivered {
    pub message: Message,
    pub stream_sequence: u64,
    /// How often JetStream has handed it out (1 the first time).
    pub attempts: i64,
}

impl Delivered {
    /// The value of header `name`, when the message has it.
    pub fn header(&self, name: &str) -> Option<String> {
        self.message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    }
}

/// Consumes `stream` through the durable consumer `config` until `shutdown`, `concurrency`
/// messages at a time; the messages in hand finish first. A message without JetStream metadata
/// (never seen on a consumer) is logged and left to redelivery.
pub async fn consume<F, Fut>(
    jetstream: &jetstream::Context,
    stream: &str,
    config: pull::Config,
    concurrency: usize,
    shutdown: CancellationToken,
    handle: F,
) where
    F: Fn(Delivered) -> Fut,
    Fut: Future<Output = ()>,
{
    let name = config.durable_name.clone().unwrap_or_default();
    while let Some(messages) = messages(jetstream, stream, &config, &shutdown).await {
        tracing::info!(consumer = %name, stream, "consuming");
        messages
            .take_until(shutdown.cancelled())
            .for_each_concurrent(concurrency, |message| async {
                if let Some(delivered) = delivered(&name, message) {
                    handle(delivered).await;
                }
            })
            .await;
    }
}

/// Consumes like `consume`, but hands `handle` every message that has arrived, up to
/// `max_batch` at once, one batch at a time: under load the batches grow (what arrived while
/// the last one ran), and a lone message is handed out at once, never held back to fill one.
pub async fn consume_batches<F, Fut>(
    jetstream: &jetstream::Context,
    stream: &str,
    config: pull::Config,
    max_batch: usize,
    shutdown: CancellationToken,
    handle: F,
) where
    F: Fn(Vec<Delivered>) -> Fut,
    Fut: Future<Output = ()>,
{
    let name = config.durable_name.clone().unwrap_or_default();
    while let Some(messages) = messages(jetstream, stream, &config, &shutdown).await {
        tracing::info!(consumer = %name, stream, max_batch, "consuming");
        let batches = messages
            .take_until(shutdown.cancelled())
            .ready_chunks(max_batch.max(1));
        tokio::pin!(batches);
        while let Some(batch) = batches.next().await {
            let batch: Vec<Delivered> = batch
                .into_iter()
                .filter_map(|message| delivered(&name, message))
                .collect();
            if !batch.is_empty() {
                handle(batch).await;
            }
        }
    }
}

/// The message with where it stands, or `None` (logged) for a pull error or a message without
/// JetStream metadata, which is left to redelivery.
fn delivered(
    name: &str,
    message: Result<Message, async_nats::jetstream::consumer::pull::MessagesError>,
) -> Option<Delivered> {
    let message = match message {
        Ok(message) => message,
        Err(err) => {
            tracing::warn!(consumer = %name, error = %err, "pull failed");
            return None;
        }
    };
    let Ok(info) = message.info() else {
        tracing::error!(consumer = %name, "message without JetStream metadata; leaving it to redelivery");
        return None;
    };
    let (stream_sequence, attempts) = (info.stream_sequence, info.delivered);
    Some(Delivered {
        message,
        stream_sequence,
        attempts,
    })
}

/// The consumer's message stream, once it can be had (NATS away: retried every second);
/// `None` on shutdown.
async fn messages(
    jetstream: &jetstream::Context,
    stream: &str,
    config: &pull::Config,
    shutdown: &CancellationToken,
) -> Option<pull::Stream> {
    let name = config.durable_name.clone().unwrap_or_default();
    while !shutdown.is_cancelled() {
        let opened = async {
            let consumer = jetstream
                .get_stream(stream)
                .await
                .map_err(|e| e.to_string())?
                .get_or_create_consumer(&name, config.clone())
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        };
        match opened.await {
            Ok(messages) => return Some(messages),
            Err(err) => {
                tracing::warn!(consumer = %name, stream, error = %err, "cannot consume yet; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    None
}

/// Runs `work`, telling JetStream every `interval` that `message` is still in hand
/// (`AckKind::Progress`), so a long handling is not mistaken for a lost one and handed to a
/// second consumer after `ack_wait`. Pick `interval` well below the consumer's `ack_wait`.
pub async fn with_progress<F: Future>(message: &Message, interval: Duration, work: F) -> F::Output {
    with_progress_all(&[message], interval, work).await
}

/// Runs `work` like `with_progress`, for every message of a batch at once.
pub async fn with_progress_all<F: Future>(
    messages: &[&Message],
    interval: Duration,
    work: F,
) -> F::Output {
    tokio::pin!(work);
    let mut progress = first_progress_after(interval);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = progress.tick() => {
                for message in messages {
                    if let Err(err) = message.ack_with(AckKind::Progress).await {
                        tracing::warn!(error = %err, "in-progress ack failed");
                    }
                }
            }
        }
    }
}

/// Ticks every `interval`, the first one `interval` from now. (`tokio::time::interval`'s first
/// tick is due at once, but awaiting it still waits for the timer's next millisecond: a
/// millisecond on every message handled.)
fn first_progress_after(interval: Duration) -> tokio::time::Interval {
    tokio::time::interval_at(tokio::time::Instant::now() + interval, interval)
}

/// The delay before a message's next attempt: `first`, doubling with each delivery so far, at
/// most `max`.
pub fn retry_delay(first: Duration, attempts: i64, max: Duration) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).max(0))
        .unwrap_or(u32::MAX)
        .min(16);
    first.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_limit() {
        let (first, max) = (Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(retry_delay(first, 1, max), Duration::from_millis(500));
        assert_eq!(retry_delay(first, 2, max), Duration::from_secs(1));
        assert_eq!(retry_delay(first, 4, max), Duration::from_secs(4));
        assert_eq!(retry_delay(first, 50, max), max);
        assert_eq!(retry_delay(first, i64::MAX, max), max);
        assert_eq!(retry_delay(first, 0, max), first);
    }
}
