//! `X-Hub-Signature-256`: any header value parses to a signature or a `SignatureError`, exactly
//! when it has GitHub's shape; what `Signature::sign` makes verifies with its secret and with no
//! other, over its body and no other.

use hooklog_domain::github::signature::verify;
use hooklog_domain::github::{Signature, SignatureError, WebhookSecret};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::mutate::{apply_cut, Cut};
use crate::support::{body, config};

/// The shape, written out independently of the parser: `sha256=` and 64 hex digits.
fn well_formed(header: &str) -> bool {
    header
        .strip_prefix("sha256=")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Header values near the accepted shape as well as anywhere else.
fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        "sha256=[0-9a-fA-F]{64}",
        "sha256=[0-9a-fA-F]{0,70}",
        "(sha256|SHA256|sha1|sha512)?[=: ]?[0-9a-fA-FxX ]{60,68}",
        "sha256=[0-9a-f]{63}\\PC",
        "\\PC*",
        any::<String>(),
        (0usize..100_000).prop_map(|n| format!("sha256={}", "a".repeat(n))),
    ]
}

/// Two secrets that are different HMAC keys. HMAC pads a key of up to one block (64 bytes) with
/// zeros, so `k` and `k` + NUL bytes sign alike: that is the algorithm, not hooklog's choice.
fn other_key(a: &[u8], b: &[u8]) -> bool {
    let trim = |k: &[u8]| -> Vec<u8> {
        let end = k.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
        k[..end].to_vec()
    };
    a.len() > 64 || b.len() > 64 || trim(a) != trim(b)
}

proptest! {
    #![proptest_config(config())]

    /// Parsing never panics; it succeeds exactly for `sha256=` + 64 hex digits, and what it
    /// parsed prints back as the same value in lowercase.
    #[test]
    fn any_header_value_parses_exactly_when_it_has_githubs_shape(header in header()) {
        match Signature::parse(&header) {
            Ok(signature) => {
                prop_assert!(well_formed(&header), "{header:?} accepted");
                prop_assert_eq!(signature.to_string(), header.to_ascii_lowercase());
            }
            Err(err) => {
                prop_assert!(!well_formed(&header), "{header:?} refused");
                prop_assert_eq!(err, SignatureError::Malformed);
            }
        }
    }

    /// `verify` never panics and tells its three refusals apart: no header is `Missing`, a bad
    /// shape `Malformed`, and a well-formed header that no secret made is `Mismatch`.
    #[test]
    fn verify_classifies_any_header_and_body(
        header in prop::option::weighted(0.9, header()),
        body in prop::collection::vec(any::<u8>(), 0..512),
        keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..3),
    ) {
        let secrets: Vec<WebhookSecret> = keys.iter().map(WebhookSecret::new).collect();
        let made_by_one = |h: &str| {
            secrets.iter().any(|s| Signature::sign(s, &body).to_string() == h.to_ascii_lowercase())
        };
        match (verify(header.as_deref(), &body, &secrets), header.as_deref()) {
            (Err(SignatureError::Missing), None) => {}
            (Err(SignatureError::Malformed), Some(h)) => prop_assert!(!well_formed(h)),
            (Err(SignatureError::Mismatch), Some(h)) => {
                prop_assert!(well_formed(h) && !made_by_one(h));
            }
            (Ok(secret), Some(h)) => {
                prop_assert!(Signature::sign(secret, &body).to_string() == h.to_ascii_lowercase());
            }
            (result, header) => prop_assert!(false, "{header:?} gave {result:?}"),
        }
    }

    /// A signature made over any body (a real, edited GitHub payload in either encoding, or raw
    /// bytes) verifies with its secret, in either hex case and wherever the secret is in the
    /// list, and names that secret; it fails with any other secret and over any changed body.
    #[test]
    fn a_signature_verifies_with_its_secret_over_its_body_and_nothing_else(
        body in prop_oneof![
            body(&[]).prop_map(|b| b.bytes),
            prop::collection::vec(any::<u8>(), 0..2048),
        ],
        key in prop::collection::vec(any::<u8>(), 0..100),
        other in prop::collection::vec(any::<u8>(), 0..100),
        change in prop_oneof![
            any::<Index>().prop_map(Cut::Truncate),
            prop::collection::vec(any::<u8>(), 1..8).prop_map(Cut::Append),
            (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
                .prop_map(|(at, b)| Cut::Insert(at, b)),
            (any::<Index>(), 1u8..=255).prop_map(|(at, x)| Cut::Flip(at, x)),
        ],
        first in any::<bool>(),
    ) {
        prop_assume!(other_key(&key, &other));
        let secret = WebhookSecret::new(&key);
        let wrong = WebhookSecret::new(&other);
        let header = Signature::sign(&secret, &body).to_string();
        let upper = format!("sha256={}", header["sha256=".len()..].to_ascii_uppercase());

        let secrets = if first {
            [secret.clone(), wrong.clone()]
        } else {
            [wrong.clone(), secret.clone()]
        };
        for h in [&header, &upper] {
            let verified = verify(Some(h), &body, &secrets).expect("its own secret verifies");
            prop_assert_eq!(verified.id(), secret.id());
        }
        prop_assert_ne!(secret.id(), wrong.id());
        prop_assert_eq!(
            verify(Some(&header), &body, std::slice::from_ref(&wrong)).unwrap_err(),
            SignatureError::Mismatch
        );

        let changed = apply_cut(body.clone(), &change);
        if changed != body {
            prop_assert_eq!(
                verify(Some(&header), &changed, &secrets).unwrap_err(),
                SignatureError::Mismatch
            );
        }
    }
}
