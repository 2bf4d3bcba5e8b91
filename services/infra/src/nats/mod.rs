//! Connecting to NATS, checking that the server can carry GitHub's largest deliveries, and the
//! loop of a durable pull consumer (`durable`).

pub mod durable;
mod embedded;

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};

pub use embedded::{find_nats_server, EmbeddedNats, EmbeddedNatsError};

/// GitHub caps webhook payloads at 25 MiB.
pub const MAX_DELIVERY_BYTES: usize = 25 * 1024 * 1024;
/// Room for the delivery headers and protocol overhead on top of the largest body.
pub const PAYLOAD_HEADROOM: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error(
        "the NATS server's max_payload is {actual} bytes, below the {required} bytes GitHub's \
         25 MiB deliveries need; set `max_payload: 32MB` in its configuration (see nats.conf)"
    )]
    MaxPayloadTooSmall { actual: usize, required: usize },
}

/// Connects with hooklog's settings: endless reconnects with a short capped backoff, so a
/// restarted server is picked up within about a second, and connection changes logged.
pub async fn connect(url: &str, name: &str) -> Result<Client, NatsError> {
    let shown_url = redact_url(url);
    let logged_url = shown_url.clone();
    ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(50 * 2u64.saturating_pow(attempts.min(5) as u32))
                .min(Duration::from_secs(1))
        })
        .event_callback(move |event| {
            let url = logged_url.clone();
            async move {
                match event {
                    Event::Connected => tracing::info!(nats_url = %url, "connected to NATS"),
                    Event::Disconnected => {
                        tracing::warn!(nats_url = %url, "disconnected from NATS")
                    }
                    other => tracing::info!(nats_url = %url, event = %other, "NATS event"),
                }
            }
        })
        .connect(url)
        .await
        .map_err(|source| NatsError::Connect {
            url: shown_url,
            source,
        })
}

/// Refuses a server whose `max_payload` cannot carry a 25 MiB delivery plus headers.
pub fn check_max_payload(client: &Client) -> Result<(), NatsError> {
    let actual = client.server_info().max_payload;
    let required = MAX_DELIVERY_BYTES + PAYLOAD_HEADROOM;
    if actual < required {
        return Err(NatsError::MaxPayloadTooSmall { actual, required });
    }
    Ok(())
}

/// Hides the user-info part of a URL (`nats://user:pass@host` becomes `nats://***@host`).
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        (None, Some(at)) => format!("***{}", &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn credentials_in_urls_are_hidden() {
        assert_eq!(redact_url("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(redact_url("token@h:4222"), "***@h:4222");
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
