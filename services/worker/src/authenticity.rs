//! Nothing on `GITHUB_DELIVERIES` is acted on just because it is there.
//!
//! The ingress stores only deliveries whose signature verified, but the stream is reachable by
//! anything holding NATS credentials, so before a delivery's commands run the worker checks it
//! again, on the stored bytes:
//! - the body's SHA-256 equals the `Hooklog-Body-Sha256` the ingress recorded, and
//! - `X-Hub-Signature-256` is GitHub's HMAC of the body under the current or the previous
//!   webhook secret (the same check, constant-time, as the ingress's).
//!
//! A repository connection's delivery (`Hooklog-Connection-Id`) is checked the same way with
//! that connection's own webhook secret, read from the vault, and with nothing else: a
//! delivery signed with the App's secret or another connection's does not pass as it.
//!
//! A message that fails either was not verified by hooklog's ingress: it is decided as a dead
//! letter with the reason (so it is on record, and an operator sees it) and never acted on. The
//! check is the same for a first delivery and a redelivery, and for the batch and the
//! one-at-a-time paths of [`crate::consumer`].

use std::collections::HashMap;

use hooklog_domain::github::{signature, WebhookSecret};
use hooklog_infra::nats::durable::Delivered;
use hooklog_infra::streams::delivery_headers;
use hooklog_write::vault::{SecretKind, Vault};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::process::Failure;

/// The repository connection a stored delivery names, if any.
pub fn connection_of(delivered: &Delivered) -> Option<String> {
    delivered.header(delivery_headers::CONNECTION_ID)
}

/// The webhook secrets of the connections a batch names, read from the vault once per batch.
pub struct ConnectionKeys {
    keys: HashMap<String, Result<Vec<WebhookSecret>, Failure>>,
}

impl ConnectionKeys {
    pub async fn load(vault: Option<&Vault>, batch: &[Delivered]) -> Self {
        let mut keys = HashMap::new();
        for connection in batch.iter().filter_map(connection_of) {
            if keys.contains_key(&connection) {
                continue;
            }
            let secret = Self::secrets_of(vault, &connection).await;
            keys.insert(connection, secret);
        }
        Self { keys }
    }

    /// The secrets one connection's deliveries are checked with, from the vault: a `Retry`
    /// when the vault cannot be read now, a `Poison` when it never will (no key, no secret).
    pub async fn secrets_of(
        vault: Option<&Vault>,
        connection: &str,
    ) -> Result<Vec<WebhookSecret>, Failure> {
        match vault {
            None => Err(Failure::Poison(format!(
                "the delivery came from repository connection {connection}, and \
                 HOOKLOG_SECRETS_KEY is not set: its signature cannot be checked; not acted on"
            ))),
            Some(vault) => match vault.get(connection, SecretKind::WebhookSecret).await {
                Ok(Some(secret)) => Ok(vec![WebhookSecret::new(secret.expose_secret())]),
                Ok(None) => Err(Failure::Poison(format!(
                    "repository connection {connection} has no webhook secret in the vault \
                     (never connected, or disconnected since): not acted on"
                ))),
                Err(hooklog_write::vault::VaultError::Database(err)) => {
                    Err(Failure::Retry(err.to_string()))
                }
                Err(err) => Err(Failure::Poison(format!("{err}: not acted on"))),
            },
        }
    }

    /// The secrets `connection`'s deliveries are checked with, or why there are none.
    pub fn secrets(&self, connection: &str) -> Result<&[WebhookSecret], Failure> {
        match self.keys.get(connection) {
            Some(Ok(secrets)) => Ok(secrets),
            Some(Err(Failure::Retry(reason))) => Err(Failure::Retry(reason.clone())),
            Some(Err(Failure::Poison(reason))) => Err(Failure::Poison(reason.clone())),
            None => Err(Failure::Retry(format!(
                "the secrets of repository connection {connection} were not loaded"
            ))),
        }
    }
}

/// Checks the stored delivery's digest and signature; a failure is poison, with the reason.
pub fn check(delivered: &Delivered, secrets: &[WebhookSecret]) -> Result<(), Failure> {
    // A GitLab hook's delivery carries the ingress's HMAC instead of the provider's.
    let signature = delivered
        .header(delivery_headers::SIGNATURE_256)
        .or_else(|| delivered.header(delivery_headers::INGRESS_SIGNATURE_256));
    check_parts(
        delivered.header(delivery_headers::BODY_SHA256).as_deref(),
        signature.as_deref(),
        &delivered.message.payload,
        secrets,
    )
}

/// The same check on a message read back from the stream by sequence (a redrive).
pub fn check_stored(
    headers: Option<&async_nats::HeaderMap>,
    body: &[u8],
    secrets: &[WebhookSecret],
) -> Result<(), Failure> {
    let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
    check_parts(
        header(delivery_headers::BODY_SHA256),
        header(delivery_headers::SIGNATURE_256),
        body,
        secrets,
    )
}

fn check_parts(
    recorded_digest: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    secrets: &[WebhookSecret],
) -> Result<(), Failure> {
    let not_acted_on = "not stored by hooklog's ingress; not acted on";
    let Some(recorded) = recorded_digest else {
        return Err(Failure::Poison(format!(
            "the message has no {} header: {not_acted_on}",
            delivery_headers::BODY_SHA256
        )));
    };
    let actual = hex::encode(Sha256::digest(body));
    if !recorded.eq_ignore_ascii_case(&actual) {
        return Err(Failure::Poison(format!(
            "the body's SHA-256 is {actual}, not the {recorded} recorded in {}: {not_acted_on}",
            delivery_headers::BODY_SHA256
        )));
    }
    signature::verify(signature_header, body, secrets)
        .map(|_| ())
        .map_err(|err| {
            Failure::Poison(format!(
                "{err} (current and previous secret tried): {not_acted_on}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use hooklog_domain::github::Signature;

    use super::*;

    const BODY: &[u8] = br#"{"action":"deleted","installation":{"id":1}}"#;

    fn digest(body: &[u8]) -> String {
        hex::encode(Sha256::digest(body))
    }

    fn poison(result: Result<(), Failure>) -> String {
        match result {
            Err(Failure::Poison(reason)) => reason,
            other => panic!("expected poison, got {other:?}"),
        }
    }

    #[test]
    fn a_delivery_signed_with_the_current_or_previous_secret_passes() {
        let (current, previous) = (WebhookSecret::new("now"), WebhookSecret::new("before"));
        let secrets = [current.clone(), previous.clone()];
        for secret in [&current, &previous] {
            let signature = Signature::sign(secret, BODY).to_string();
            check_parts(Some(&digest(BODY)), Some(&signature), BODY, &secrets).unwrap();
        }
    }

    #[test]
    fn a_made_up_signature_is_poison_and_says_why() {
        let secrets = [WebhookSecret::new("now")];
        let forged = Signature::sign(&WebhookSecret::new("guess"), BODY).to_string();
        let reason = poison(check_parts(
            Some(&digest(BODY)),
            Some(&forged),
            BODY,
            &secrets,
        ));
        assert!(reason.contains("does not match"), "{reason}");
        assert!(reason.contains("not acted on"), "{reason}");
        let reason = poison(check_parts(Some(&digest(BODY)), None, BODY, &secrets));
        assert!(reason.contains("missing"), "{reason}");
    }

    #[test]
    fn a_body_that_is_not_the_one_digested_is_poison_even_if_signed() {
        let secret = WebhookSecret::new("now");
        let other = br#"{"action":"created"}"#;
        let signature = Signature::sign(&secret, other).to_string();
        let reason = poison(check_parts(
            Some(&digest(BODY)),
            Some(&signature),
            other,
            std::slice::from_ref(&secret),
        ));
        assert!(reason.contains("SHA-256"), "{reason}");
        let reason = poison(check_parts(None, Some(&signature), other, &[secret]));
        assert!(reason.contains("Hooklog-Body-Sha256"), "{reason}");
    }

    #[test]
    fn with_no_secret_nothing_passes() {
        let signature = Signature::sign(&WebhookSecret::new("now"), BODY).to_string();
        poison(check_parts(
            Some(&digest(BODY)),
            Some(&signature),
            BODY,
            &[],
        ));
    }
}
