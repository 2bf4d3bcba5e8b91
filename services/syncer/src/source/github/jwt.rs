//! The App's own credential: a short-lived RS256 JSON web token signed with the App's private key,
//! which GitHub accepts only on the `/app/...` endpoints, here to exchange for installation tokens.

use std::fmt;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use time::OffsetDateTime;

use crate::source::SourceError;

/// GitHub rejects an `iat` in its future; backdating covers clock drift between us and GitHub.
const BACKDATE_SECS: i64 = 60;
/// GitHub refuses tokens that live longer than 10 minutes; 9 leaves room for drift.
const LIFETIME_SECS: i64 = 9 * 60;

/// The claims GitHub reads from an App JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Claims {
    pub iat: i64,
    pub exp: i64,
    /// The App id, as a string (GitHub accepts a string or a number).
    pub iss: String,
}

impl Claims {
    pub(super) fn at(app_id: u64, now: OffsetDateTime) -> Self {
        let now = now.unix_timestamp();
        Self {
            iat: now - BACKDATE_SECS,
            exp: now + LIFETIME_SECS,
            iss: app_id.to_string(),
        }
    }
}

/// The App id and its private key, ready to sign.
pub(super) struct AppKey {
    app_id: u64,
    key: EncodingKey,
}

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppKey")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl AppKey {
    /// Parses the PEM and signs once, so a key that parses but cannot sign is refused at start-up
    /// rather than on the first sync. Errors name the setting, never the key.
    pub(super) fn new(app_id: u64, pem: &SecretString) -> Result<Self, SourceError> {
        let key =
            EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes()).map_err(|_| invalid_key())?;
        let app_key = Self { app_id, key };
        app_key.sign(OffsetDateTime::now_utc())?;
        Ok(app_key)
    }

    /// A JWT for the App, valid from a minute ago for nine minutes.
    pub(super) fn sign(&self, now: OffsetDateTime) -> Result<SecretString, SourceError> {
        let claims = Claims::at(self.app_id, now);
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(SecretString::from)
            .map_err(|_| invalid_key())
    }
}

fn invalid_key() -> SourceError {
    SourceError::Invalid(
        "HOOKLOG_GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM form (the .pem file \
         GitHub gives when generating an App private key)"
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_backdated_a_minute_and_expire_nine_minutes_ahead_with_the_id_as_a_string() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let claims = Claims::at(42, now);
        assert_eq!(
            claims,
            Claims {
                iat: 1_700_000_000 - 60,
                exp: 1_700_000_000 + 540,
                iss: "42".to_owned(),
            }
        );
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["iss"], serde_json::json!("42"));
    }

    #[test]
    fn a_key_that_is_not_pem_is_refused_without_echoing_it() {
        let pem = SecretString::from("not-a-key-hunter2");
        let err = AppKey::new(1, &pem).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, SourceError::Invalid(_)), "{err:?}");
        assert!(text.contains("HOOKLOG_GITHUB_APP_PRIVATE_KEY"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn a_pem_that_is_not_an_rsa_key_is_refused() {
        let pem = SecretString::from(
            "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n",
        );
        assert!(matches!(AppKey::new(1, &pem), Err(SourceError::Invalid(_))));
    }
}
