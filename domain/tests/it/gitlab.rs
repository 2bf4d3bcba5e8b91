//! GitLab's `webhook-signature`: any three header values and body give `Ok` or a
//! `SigningError`, never a panic; what `SigningKey::sign` makes verifies with its key over its
//! id, timestamp and body, and with nothing else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hooklog_domain::github::WebhookSecret;
use hooklog_domain::gitlab::{SignedHeaders, SigningError, SigningKey, TIMESTAMP_TOLERANCE};
use proptest::prelude::*;

use crate::mutate::{apply_cut, Cut};
use crate::support::config;

/// Header values near the accepted shapes as well as anywhere else.
fn signature_header() -> impl Strategy<Value = String> {
    prop_oneof![
        "v1,[A-Za-z0-9+/]{43}=",
        "(v1|v1a|v2)?,?[A-Za-z0-9+/=]{0,90}( (v1|v1a),[A-Za-z0-9+/=]{0,90}){0,3}",
        "\\PC*",
        any::<String>(),
    ]
}

fn timestamp_header() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..4_000_000_000).prop_map(|s| s.to_string()),
        "[0-9+\\-. ]{0,24}",
        any::<String>(),
    ]
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

proptest! {
    #![proptest_config(config())]

    /// `from_parts` and `verify` never panic; `verify` is `Ok` only for a signature the key made
    /// over these headers and body, with the timestamp within the tolerance.
    #[test]
    fn any_headers_and_body_give_a_typed_answer(
        id in prop::option::weighted(0.9, "\\PC{0,40}"),
        timestamp in prop::option::weighted(0.9, timestamp_header()),
        signature in prop::option::weighted(0.9, signature_header()),
        body in prop::collection::vec(any::<u8>(), 0..512),
        key in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let key = SigningKey::of(&WebhookSecret::new(&key));
        match SignedHeaders::from_parts(id.as_deref(), timestamp.as_deref(), signature.as_deref()) {
            Ok(None) => prop_assert!(signature.is_none()),
            Err(err) => {
                prop_assert_eq!(err, SigningError::Incomplete);
                prop_assert!(id.is_none() || timestamp.is_none());
            }
            Ok(Some(headers)) => {
                if key.verify(headers, &body, now()).is_ok() {
                    let made = key.sign(headers.id, headers.timestamp, &body);
                    prop_assert!(headers.signature.split(' ').any(|s| s == made));
                    prop_assert!(headers.check_fresh(now()).is_ok());
                }
            }
        }
    }

    /// A signature made now verifies with its key; with another key, over another body, or
    /// outside the tolerance it does not, and a token round-trips to the same key.
    #[test]
    fn a_signature_verifies_with_its_key_over_its_content_and_nothing_else(
        id in "[A-Za-z0-9_-]{1,40}",
        body in prop::collection::vec(any::<u8>(), 0..2048),
        key in prop::collection::vec(any::<u8>(), 1..64),
        other in prop::collection::vec(any::<u8>(), 1..64),
        skew in 0u64..=TIMESTAMP_TOLERANCE.as_secs(),
        late in any::<bool>(),
        change in prop_oneof![
            prop::collection::vec(any::<u8>(), 1..8).prop_map(Cut::Append),
            (any::<proptest::sample::Index>(), 1u8..=255).prop_map(|(at, x)| Cut::Flip(at, x)),
        ],
    ) {
        prop_assume!(key != other);
        let key = SigningKey::of(&WebhookSecret::new(&key));
        let again = SigningKey::from_token(&key.token()).expect("its own token");
        let wrong = SigningKey::of(&WebhookSecret::new(&other));
        let sent = 1_800_000_000u64;
        let timestamp = sent.to_string();
        let signature = key.sign(&id, &timestamp, &body);
        let headers = SignedHeaders { id: &id, timestamp: &timestamp, signature: &signature };
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        let within = if late { at(sent + skew) } else { at(sent - skew) };
        prop_assert_eq!(key.verify(headers, &body, within), Ok(()));
        prop_assert_eq!(again.verify(headers, &body, within), Ok(()));
        prop_assert_eq!(wrong.verify(headers, &body, within), Err(SigningError::Mismatch));
        let outside = TIMESTAMP_TOLERANCE.as_secs() + 1;
        let stale = if late { at(sent + outside) } else { at(sent - outside) };
        prop_assert_eq!(key.verify(headers, &body, stale), Err(SigningError::Stale));
        let changed = apply_cut(body.clone(), &change);
        if changed != body {
            prop_assert_eq!(key.verify(headers, &changed, within), Err(SigningError::Mismatch));
        }
    }
}
