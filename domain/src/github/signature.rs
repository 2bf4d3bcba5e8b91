//! `X-Hub-Signature-256`: `sha256=` followed by the lowercase hex HMAC-SHA256 of the raw body,
//! keyed with the webhook secret.
//!
//! Comparison is constant-time (`hmac`'s `verify_slice`, built on `subtle`), so a caller cannot
//! learn how many leading bytes of a forged signature were right.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "sha256=";
const DIGEST_LEN: usize = 32;

/// Why a signature header was refused. None of these mention the secret or the expected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header must be `sha256=` followed by 64 hex digits")]
    Malformed,
    #[error("the X-Hub-Signature-256 header does not match the body for any configured secret")]
    Mismatch,
}

/// A parsed `X-Hub-Signature-256` value: the 32 digest bytes it claims.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature([u8; DIGEST_LEN]);

impl Signature {
    /// Parses the header value. Hex digits may be in either case; anything else is `Malformed`.
    pub fn parse(header: &str) -> Result<Self, SignatureError> {
        let hex_digits = header
            .strip_prefix(PREFIX)
            .ok_or(SignatureError::Malformed)?;
        let mut digest = [0u8; DIGEST_LEN];
        hex::decode_to_slice(hex_digits, &mut digest).map_err(|_| SignatureError::Malformed)?;
        Ok(Self(digest))
    }

    /// Signs `body` with `secret` the way GitHub does.
    pub fn sign(secret: &WebhookSecret, body: &[u8]) -> Self {
        let mut mac = secret.mac();
        mac.update(body);
        Self(mac.finalize().into_bytes().into())
    }

    /// Whether this signature is `secret`'s HMAC of `body`, compared in constant time.
    pub fn matches(&self, secret: &WebhookSecret, body: &[u8]) -> bool {
        let mut mac = secret.mac();
        mac.update(body);
        mac.verify_slice(&self.0).is_ok()
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

/// A webhook secret. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
    id: SecretId,
}

impl WebhookSecret {
    pub fn new(value: impl AsRef<[u8]>) -> Self {
        let key = value.as_ref().to_vec();
        let id = SecretId::of(&key);
        Self { key, id }
    }

    /// A stable, non-reversible name for this secret, stored with each delivery it verified.
    pub fn id(&self) -> &SecretId {
        &self.id
    }

    /// Whether `presented` is this secret itself (GitLab sends its hook's token in
    /// `X-Gitlab-Token`), compared in constant time: both are HMAC'd under a fixed label and the
    /// tags compared, so neither the length nor the first differing byte shows in the timing.
    pub fn matches_token(&self, presented: &[u8]) -> bool {
        const LABEL: &[u8] = b"hooklog token comparison v1";
        let mut expected = self.mac();
        expected.update(LABEL);
        let expected = expected.finalize().into_bytes();
        let mut given =
            HmacSha256::new_from_slice(presented).expect("HMAC accepts keys of any length");
        given.update(LABEL);
        given.verify_slice(&expected).is_ok()
    }

    /// A key of its own for `label`, derived from this secret (HMAC-SHA256 of the label), so one
    /// secret can stand behind several uses without any of them revealing another.
    pub(crate) fn derive(&self, label: &[u8]) -> [u8; DIGEST_LEN] {
        let mut mac = self.mac();
        mac.update(label);
        mac.finalize().into_bytes().into()
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSecret")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Names a secret without revealing it: `hs256:` and the first 16 hex digits of the secret's own
/// HMAC over a fixed label. An auditor holding a secret can compute its id and find the deliveries
/// it verified; the id tells nothing a stored signature does not already tell.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretId(String);

impl SecretId {
    const LABEL: &'static [u8] = b"hooklog webhook secret id v1";

    fn of(key: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
        mac.update(Self::LABEL);
        let digest = mac.finalize().into_bytes();
        Self(format!("hs256:{}", hex::encode(&digest[..8])))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretId({})", self.0)
    }
}

/// Checks `header` against each secret in order and returns the one that signed `body`.
pub fn verify<'a>(
    header: Option<&str>,
    body: &[u8],
    secrets: &'a [WebhookSecret],
) -> Result<&'a WebhookSecret, SignatureError> {
    let signature = Signature::parse(header.ok_or(SignatureError::Missing)?)?;
    // Every secret is tried even after a match would be found, so the time taken does not say
    // which secret (current or previous) was used.
    let mut verified = None;
    for secret in secrets {
        if signature.matches(secret, body) && verified.is_none() {
            verified = Some(secret);
        }
    }
    verified.ok_or(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's documented test vector ("Validating webhook deliveries").
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const EXPECTED: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_documented_test_vector_is_reproduced() {
        let secret = WebhookSecret::new(SECRET);
        assert_eq!(Signature::sign(&secret, BODY).to_string(), EXPECTED);
        assert_eq!(
            verify(Some(EXPECTED), BODY, std::slice::from_ref(&secret))
                .unwrap()
                .id(),
            secret.id()
        );
    }

    #[test]
    fn uppercase_hex_digits_are_accepted() {
        let secret = WebhookSecret::new(SECRET);
        let upper = format!("sha256={}", EXPECTED[7..].to_uppercase());
        assert!(verify(Some(&upper), BODY, &[secret]).is_ok());
    }

    #[test]
    fn malformed_headers_are_told_apart_from_mismatches() {
        let secrets = [WebhookSecret::new(SECRET)];
        let non_hex = format!("sha256={}", "zz".repeat(32));
        let cases = [
            ("", SignatureError::Malformed),
            ("sha256=", SignatureError::Malformed),
            ("sha256=abc", SignatureError::Malformed),
            (non_hex.as_str(), SignatureError::Malformed),
            (
                "sha1=0123456789abcdef0123456789abcdef01234567",
                SignatureError::Malformed,
            ),
            (&EXPECTED[7..], SignatureError::Malformed),
        ];
        for (header, expected) in cases {
            assert_eq!(
                verify(Some(header), BODY, &secrets).unwrap_err(),
                expected,
                "{header:?}"
            );
        }
        let odd = format!("{EXPECTED}0");
        assert_eq!(
            verify(Some(&odd), BODY, &secrets).unwrap_err(),
            SignatureError::Malformed
        );
        assert_eq!(
            verify(None, BODY, &secrets).unwrap_err(),
            SignatureError::Missing
        );
        assert_eq!(
            verify(Some(EXPECTED), b"Hello, World?", &secrets).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn the_previous_secret_verifies_and_is_named() {
        let current = WebhookSecret::new("new secret");
        let previous = WebhookSecret::new(SECRET);
        let secrets = [current.clone(), previous.clone()];
        assert_eq!(
            verify(Some(EXPECTED), BODY, &secrets).unwrap().id(),
            previous.id()
        );
        assert_ne!(current.id(), previous.id());
    }

    #[test]
    fn no_secret_verifies_nothing() {
        assert_eq!(
            verify(Some(EXPECTED), BODY, &[]).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let secret = WebhookSecret::new(SECRET);
        let shown = format!("{secret:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("hs256:"), "{shown}");
    }
}
