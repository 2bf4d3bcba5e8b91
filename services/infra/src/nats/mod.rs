//! Connecting to NATS, checking that the server can carry GitHub's largest deliveries, and the
//! loop of a durable pull consumer (`durable`).
//!
//! **Credentials.** hooklog logs in to every server it uses: the embedded one requires the
//! password generated for its data directory ([`EmbeddedNats`]), an external one takes
//! `HOOKLOG_NATS_USER`/`HOOKLOG_NATS_PASSWORD`, `HOOKLOG_NATS_TOKEN`, `HOOKLOG_NATS_CREDS_FILE`
//! or the URL's own `user:password@` or `token@` ([`NatsAuth`]). Credentials are never shown:
//! URLs are logged and reported through [`redact_url`], and errors name the setting, not the
//! value.

pub mod durable;
mod embedded;

use std::time::Duration;

use std::path::PathBuf;

use async_nats::{Client, ConnectOptions, Event};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Settings;

pub use embedded::{find_nats_server, EmbeddedNats, EmbeddedNatsError, EMBEDDED_USER, NATS_CONF};

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
    #[error("cannot read the NATS credentials file {path} (HOOKLOG_NATS_CREDS_FILE): {source}")]
    CredsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the NATS server's max_payload is {actual} bytes, below the {required} bytes GitHub's \
         25 MiB deliveries need; set `max_payload: 32MB` in its configuration (see nats.conf)"
    )]
    MaxPayloadTooSmall { actual: usize, required: usize },
}

/// How hooklog logs in to a NATS server.
#[derive(Clone, Debug, Default)]
pub enum NatsAuth {
    /// Nothing beyond what the URL itself carries.
    #[default]
    None,
    UserPassword {
        user: String,
        password: SecretString,
    },
    Token(SecretString),
    /// A NATS `.creds` file (user JWT and NKey seed).
    CredsFile(PathBuf),
}

impl NatsAuth {
    /// The credentials of an external server from the settings (checked by
    /// `Settings::validate`: at most one kind, a password with its user).
    pub fn from_settings(settings: &Settings) -> Self {
        if let (Some(user), Some(password)) = (&settings.nats_user, &settings.nats_password) {
            return Self::UserPassword {
                user: user.clone(),
                password: password.clone(),
            };
        }
        if let Some(token) = &settings.nats_token {
            return Self::Token(token.clone());
        }
        if let Some(path) = &settings.nats_creds_file {
            return Self::CredsFile(path.clone());
        }
        Self::None
    }

    async fn apply(self, options: ConnectOptions) -> Result<ConnectOptions, NatsError> {
        Ok(match self {
            Self::None => options,
            Self::UserPassword { user, password } => {
                options.user_and_password(user, password.expose_secret().to_owned())
            }
            Self::Token(token) => options.token(token.expose_secret().to_owned()),
            Self::CredsFile(path) => options
                .credentials_file(&path)
                .await
                .map_err(|source| NatsError::CredsFile { path, source })?,
        })
    }
}

/// Takes `user:password@` or `token@` out of each of the comma-separated URLs: the URL without
/// them, and the credentials of the first that had any.
pub(crate) fn split_credentials(urls: &str) -> (String, NatsAuth) {
    let mut auth = NatsAuth::None;
    let bare = urls
        .split(',')
        .map(|url| {
            let url = url.trim();
            let (scheme, rest) = match url.split_once("://") {
                Some((scheme, rest)) => (Some(scheme), rest),
                None => (None, url),
            };
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let Some(at) = rest[..authority_end].rfind('@') else {
                return url.to_owned();
            };
            if matches!(auth, NatsAuth::None) {
                let userinfo = &rest[..at];
                auth = match userinfo.split_once(':') {
                    Some((user, password)) => NatsAuth::UserPassword {
                        user: percent_decode(user),
                        password: percent_decode(password).into(),
                    },
                    None => NatsAuth::Token(percent_decode(userinfo).into()),
                };
            }
            match scheme {
                Some(scheme) => format!("{scheme}://{}", &rest[at + 1..]),
                None => rest[at + 1..].to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    (bare, auth)
}

/// Decodes `%XX` escapes (a password may hold `@` or `:` written as `%40`, `%3A`).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| value.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Connects with the credentials the URL carries, if any; see [`connect_with`].
pub async fn connect(url: &str, name: &str) -> Result<Client, NatsError> {
    connect_with(url, NatsAuth::None, name).await
}

/// Connects with hooklog's settings: endless reconnects with a short capped backoff, so a
/// restarted server is picked up within about a second, and connection changes logged. `auth`
/// comes first; without it, the URL's own credentials are used.
pub async fn connect_with(url: &str, auth: NatsAuth, name: &str) -> Result<Client, NatsError> {
    let shown_url = redact_url(url);
    let logged_url = shown_url.clone();
    let (url, in_url) = split_credentials(url);
    let auth = match auth {
        NatsAuth::None => in_url,
        given => given,
    };
    let options = auth.apply(ConnectOptions::new()).await?;
    options
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
        // A comma-separated list: every server of a cluster, tried in turn.
        .connect(url.split(',').map(str::trim).collect::<Vec<_>>())
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

/// Hides the user-info part of each URL (`nats://user:pass@host` becomes `nats://***@host`).
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|url| match (url.find("://"), url.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                format!("{}***{}", &url[..scheme_end + 3], &url[at..])
            }
            (None, Some(at)) => format!("***{}", &url[at..]),
            _ => url.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_hidden() {
        assert_eq!(redact_url("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(
            redact_url("nats://u:p@a:4222,nats://u:p@b:4222"),
            "nats://***@a:4222,nats://***@b:4222"
        );
        assert_eq!(redact_url("token@h:4222"), "***@h:4222");
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn credentials_are_taken_out_of_urls() {
        let (bare, auth) =
            split_credentials("nats://hooklog:p%40ss@h:4222, nats://hooklog:p%40ss@g:4223");
        assert_eq!(bare, "nats://h:4222,nats://g:4223");
        let NatsAuth::UserPassword { user, password } = auth else {
            panic!("user and password expected, got {auth:?}");
        };
        assert_eq!(
            (user.as_str(), password.expose_secret()),
            ("hooklog", "p@ss")
        );
        let (bare, auth) = split_credentials("tls://s3cr3t@h:4222");
        assert_eq!(bare, "tls://h:4222");
        assert!(matches!(auth, NatsAuth::Token(t) if t.expose_secret() == "s3cr3t"));
        let (bare, auth) = split_credentials("nats://127.0.0.1:4222");
        assert_eq!(bare, "nats://127.0.0.1:4222");
        assert!(matches!(auth, NatsAuth::None));
    }
}
