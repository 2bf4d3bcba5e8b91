//! GitLab's signing token: the `webhook-signature` a GitLab project hook with a signing token
//! sends beside `webhook-id` and `webhook-timestamp`, in the Standard Webhooks form.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is
//! `v1,` and the base64 of its HMAC-SHA256 under the token's key; the token is `whsec_` and
//! the base64 of a 32-byte key (GitLab takes no other length). The header may list several
//! signatures separated by spaces (for rotation); one `v1` that matches is enough, and others
//! (`v1a`, an asymmetric scheme) are skipped. Comparison is constant-time (`hmac`'s
//! `verify_slice`).
//!
//! *Why the key is derived.* GitLab sends a hook's secret token in clear in `X-Gitlab-Token` on
//! every request, so a signing key equal to it would sign nothing a reader of one request could
//! not forge. hooklog keeps one secret per connection and gives GitLab the token and, as the
//! signing token, a key derived from that secret under a label of its own ([`SigningKey::of`]):
//! knowing the token says nothing of the key.
//!
//! *Freshness.* A timestamp more than [`TIMESTAMP_TOLERANCE`] from now either way is refused,
//! so a captured request cannot be replayed later with its signature. The worker, which checks
//! a stored delivery again long after it arrived, checks the ingress's own signature instead.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::github::WebhookSecret;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying the message id (GitLab: the `Idempotency-Key`).
pub const ID_HEADER: &str = "webhook-id";
/// The header carrying the send time, in seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header carrying the signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// How far `webhook-timestamp` may be from the receiver's clock, either way: the Standard
/// Webhooks reference libraries' five minutes.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const TOKEN_PREFIX: &str = "whsec_";
const SCHEME: &str = "v1";
const KEY_LEN: usize = 32;
const LABEL: &[u8] = b"hooklog gitlab signing token v1";

/// Why a signed GitLab delivery was refused. None of these mention the key or the expected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("a webhook-signature needs its webhook-id and webhook-timestamp headers")]
    Incomplete,
    #[error("the webhook-id header is empty or has a `.` (it is part of the signed content)")]
    BadId,
    #[error("the webhook-timestamp header must be whole seconds since the Unix epoch")]
    BadTimestamp,
    #[error("the webhook-timestamp header is more than 5 minutes from now")]
    Stale,
    #[error("the webhook-signature header has no well-formed `v1,<base64>` signature")]
    Malformed,
    #[error("no webhook-signature matches the body for this connection's signing token")]
    Mismatch,
    #[error("a signing token is `whsec_` followed by the base64 of 32 bytes")]
    BadToken,
}

/// A signing token's key.
#[derive(Clone)]
pub struct SigningKey([u8; KEY_LEN]);

impl SigningKey {
    /// The key hooklog gives a connection's hook, derived from the connection's secret.
    pub fn of(secret: &WebhookSecret) -> Self {
        Self(secret.derive(LABEL))
    }

    /// The key of a `whsec_…` token.
    pub fn from_token(token: &str) -> Result<Self, SigningError> {
        let encoded = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(SigningError::BadToken)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SigningError::BadToken)?;
        key.try_into().map(Self).map_err(|_| SigningError::BadToken)
    }

    /// The token to give GitLab (`signing_token` of the project hooks API): a secret, never
    /// logged.
    pub fn token(&self) -> String {
        format!("{TOKEN_PREFIX}{}", STANDARD.encode(self.0))
    }

    /// The `webhook-signature` value for `id`, `timestamp` and `body`.
    pub fn sign(&self, id: &str, timestamp: &str, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("{SCHEME},{}", STANDARD.encode(tag))
    }

    /// Checks the three headers and the body, the timestamp against `now`.
    pub fn verify(
        &self,
        headers: SignedHeaders<'_>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), SigningError> {
        headers.check_fresh(now)?;
        // The body's HMAC is computed once, for the first well-formed `v1`, and each listed
        // signature compared with a copy of it.
        let mut expected: Option<HmacSha256> = None;
        for signature in headers.signature.split(' ').filter(|s| !s.is_empty()) {
            let Some((scheme, encoded)) = signature.split_once(',') else {
                continue;
            };
            if scheme != SCHEME {
                continue;
            }
            let Ok(tag) = STANDARD.decode(encoded) else {
                continue;
            };
            let mac = expected.get_or_insert_with(|| self.mac(headers.id, headers.timestamp, body));
            if mac.clone().verify_slice(&tag).is_ok() {
                return Ok(());
            }
        }
        Err(match expected {
            Some(_) => SigningError::Mismatch,
            None => SigningError::Malformed,
        })
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// The three headers of a signed delivery, as sent.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

impl<'a> SignedHeaders<'a> {
    /// The headers when `webhook-signature` is sent (`None` when it is not: an unsigned hook);
    /// a signature without its id or timestamp is [`SigningError::Incomplete`].
    pub fn from_parts(
        id: Option<&'a str>,
        timestamp: Option<&'a str>,
        signature: Option<&'a str>,
    ) -> Result<Option<Self>, SigningError> {
        let Some(signature) = signature else {
            return Ok(None);
        };
        match (id, timestamp) {
            (Some(id), Some(timestamp)) => Ok(Some(Self {
                id,
                timestamp,
                signature,
            })),
            _ => Err(SigningError::Incomplete),
        }
    }

    /// The id and timestamp are well formed and the timestamp within [`TIMESTAMP_TOLERANCE`]
    /// of `now`: what can be checked before the body is read.
    pub fn check_fresh(&self, now: SystemTime) -> Result<(), SigningError> {
        if self.id.is_empty() || self.id.contains('.') {
            return Err(SigningError::BadId);
        }
        // Digits only: `u64`'s parser would also take a leading `+`.
        let seconds: u64 = Some(self.timestamp)
            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
            .ok_or(SigningError::BadTimestamp)?;
        let sent = UNIX_EPOCH
            .checked_add(Duration::from_secs(seconds))
            .ok_or(SigningError::BadTimestamp)?;
        let skew = match now.duration_since(sent) {
            Ok(behind) => behind,
            Err(ahead) => ahead.duration(),
        };
        match skew <= TIMESTAMP_TOLERANCE {
            true => Ok(()),
            false => Err(SigningError::Stale),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's published example, computed by its reference
    // implementation, not by this one.
    const TOKEN: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn headers(signature: &str) -> SignedHeaders<'_> {
        SignedHeaders {
            id: ID,
            timestamp: TIMESTAMP,
            signature,
        }
    }

    /// The reference vector's key is 24 bytes, which GitLab would not take. HMAC pads a short
    /// key with zeros to its block size, so the same bytes followed by eight zeros are the same
    /// HMAC key.
    fn vector_key() -> SigningKey {
        let short = STANDARD.decode(&TOKEN[TOKEN_PREFIX.len()..]).unwrap();
        let mut key = [0u8; KEY_LEN];
        key[..short.len()].copy_from_slice(&short);
        SigningKey(key)
    }

    #[test]
    fn signs_and_verifies_the_standards_example() {
        let key = vector_key();
        assert_eq!(key.sign(ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(
            key.verify(headers(SIGNATURE), BODY, at(1_614_265_330)),
            Ok(())
        );
    }

    #[test]
    fn a_changed_body_id_or_timestamp_does_not_verify() {
        let key = vector_key();
        let now = at(1_614_265_330);
        let changed = br#"{"test": 2432232315}"#;
        assert_eq!(
            key.verify(headers(SIGNATURE), changed, now),
            Err(SigningError::Mismatch)
        );
        let other_id = SignedHeaders {
            id: "msg_other",
            ..headers(SIGNATURE)
        };
        assert_eq!(key.verify(other_id, BODY, now), Err(SigningError::Mismatch));
        let later = SignedHeaders {
            timestamp: "1614265331",
            ..headers(SIGNATURE)
        };
        assert_eq!(key.verify(later, BODY, now), Err(SigningError::Mismatch));
    }

    #[test]
    fn one_matching_v1_among_several_is_enough_and_other_schemes_are_skipped() {
        let key = vector_key();
        let now = at(1_614_265_330);
        let list = format!("v1a,AAAA v1,bm90IGl0 {SIGNATURE}");
        assert_eq!(key.verify(headers(&list), BODY, now), Ok(()));
        assert_eq!(
            key.verify(headers("v1,bm90IGl0 v1a,AAAA"), BODY, now),
            Err(SigningError::Mismatch)
        );
        for malformed in ["", " ", "v1", "v1,!!!", "v1a,AAAA", "g0hM9SsE+OTPJTGt"] {
            assert_eq!(
                key.verify(headers(malformed), BODY, now),
                Err(SigningError::Malformed),
                "{malformed:?}"
            );
        }
    }

    #[test]
    fn a_timestamp_outside_five_minutes_either_way_is_stale() {
        let key = vector_key();
        let sent = 1_614_265_330;
        for now in [sent - 300, sent + 300] {
            assert_eq!(key.verify(headers(SIGNATURE), BODY, at(now)), Ok(()));
        }
        for now in [sent - 301, sent + 301, 0] {
            assert_eq!(
                key.verify(headers(SIGNATURE), BODY, at(now)),
                Err(SigningError::Stale)
            );
        }
        let odd = |id, timestamp| SignedHeaders {
            id,
            timestamp,
            signature: SIGNATURE,
        };
        let cases = [
            ("", SigningError::BadTimestamp),
            ("-1", SigningError::BadTimestamp),
            ("+1614265330", SigningError::BadTimestamp),
            ("1614265330.5", SigningError::BadTimestamp),
            ("99999999999999999999", SigningError::BadTimestamp),
        ];
        for (timestamp, error) in cases {
            let headers = odd(ID, timestamp);
            assert_eq!(headers.check_fresh(at(sent)), Err(error), "{timestamp:?}");
        }
        for id in ["", "a.b"] {
            let headers = odd(id, TIMESTAMP);
            assert_eq!(
                headers.check_fresh(at(sent)),
                Err(SigningError::BadId),
                "{id:?}"
            );
        }
    }

    #[test]
    fn a_signature_needs_its_id_and_timestamp() {
        let parts = SignedHeaders::from_parts;
        assert!(matches!(parts(None, None, None), Ok(None)));
        assert!(matches!(parts(Some(ID), Some(TIMESTAMP), None), Ok(None)));
        assert!(parts(Some(ID), Some(TIMESTAMP), Some(SIGNATURE))
            .unwrap()
            .is_some());
        assert_eq!(
            parts(None, Some(TIMESTAMP), Some(SIGNATURE)).unwrap_err(),
            SigningError::Incomplete
        );
        assert_eq!(
            parts(Some(ID), None, Some(SIGNATURE)).unwrap_err(),
            SigningError::Incomplete
        );
    }

    #[test]
    fn the_derived_key_is_a_32_byte_token_of_its_own() {
        let secret = WebhookSecret::new("the connection's secret");
        let key = SigningKey::of(&secret);
        let token = key.token();
        assert!(token.starts_with("whsec_"), "{token}");
        assert_eq!(STANDARD.decode(&token[6..]).unwrap().len(), 32);
        assert!(!token.contains("the connection"));
        let again = SigningKey::from_token(&token).unwrap();
        assert_eq!(again.0, key.0);
        let other = SigningKey::of(&WebhookSecret::new("another connection's secret"));
        assert_ne!(other.0, key.0);
        assert_eq!(format!("{key:?}"), "SigningKey(..)");
        for bad in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            TOKEN,
            "whsec_!!",
        ] {
            assert!(SigningKey::from_token(bad).is_err(), "{bad:?}");
        }
    }
}
