//! The body formats: any body with any `Content-Type` is accepted as JSON or as GitHub's form
//! encoding, or refused with a `PayloadError`; the ingress's check and the worker's unwrapping
//! agree on every body; GitHub's own payloads pass in both encodings.

use hooklog_domain::github::events::json_document;
use hooklog_domain::github::{PayloadError, PayloadFormat};
use proptest::prelude::*;
use serde::de::IgnoredAny;

use crate::support::{any_content_type, body, config, is_form, wrapped, Wrap, EXAMPLES, FORM};

/// A JSON object document, written out independently of the check: it parses (numbers are not
/// range-checked, as JSON itself does not bound them) and its first token is `{`.
fn json_object(document: &[u8]) -> bool {
    let first = document.iter().find(|b| !b" \t\n\r".contains(b));
    first == Some(&b'{') && serde_json::from_slice::<IgnoredAny>(document).is_ok()
}

proptest! {
    #![proptest_config(config())]

    /// `check` never panics and answers by the content type: `Form` exactly when it names the
    /// form encoding and the `payload` field holds a JSON object, `Json` exactly when it does not
    /// and the body is one; a form without `payload` is `MissingFormPayload`. `json_document`
    /// (what the worker parses) fails exactly on those, and otherwise returns the very document
    /// that `check` accepted or refused.
    #[test]
    fn check_and_json_document_agree_on_any_body(
        body in prop_oneof![
            4 => body(&[]).prop_map(|b| (b.content_type, b.bytes)),
            1 => (any_content_type(), prop::collection::vec(any::<u8>(), 0..256)),
            1 => (
                any_content_type(),
                "\\PC{0,64}".prop_map(|s| format!("payload={s}").into_bytes()),
            ),
        ],
    ) {
        let (content_type, bytes) = body;
        let ct = content_type.as_deref();
        let checked = PayloadFormat::check(ct, &bytes);
        let document = json_document(ct, &bytes);
        match (&checked, &document) {
            (Err(PayloadError::MissingFormPayload), Err(PayloadError::MissingFormPayload)) => {
                prop_assert!(is_form(ct));
            }
            (Ok(PayloadFormat::Form), Ok(doc)) => prop_assert!(is_form(ct) && json_object(doc)),
            (Ok(PayloadFormat::Json), Ok(doc)) => {
                prop_assert!(!is_form(ct) && json_object(doc) && doc.as_ref() == bytes.as_slice());
            }
            (Err(PayloadError::InvalidFormJson(reason)), Ok(doc)) => {
                prop_assert!(is_form(ct) && !json_object(doc) && !reason.is_empty());
            }
            (Err(PayloadError::InvalidJson(reason)), Ok(doc)) => {
                prop_assert!(!is_form(ct) && !json_object(doc) && !reason.is_empty());
            }
            _ => prop_assert!(false, "check {checked:?} but json_document {document:?}"),
        }
    }

    /// Any JSON document survives GitHub's form encoding: wrapped as `payload=<urlencoded>` among
    /// other fields, the worker unwraps the same bytes, and the format follows the content type.
    #[test]
    fn form_encoding_round_trips_any_document(
        json in prop_oneof![
            body(&[]).prop_map(|b| b.document.json),
            "\\PC{0,200}".prop_map(String::into_bytes),
        ],
        wrap in crate::support::wrap()
            .prop_filter("a form with payload", |w| matches!(w, Wrap::Form { .. })),
    ) {
        // urlencoding carries UTF-8: other bytes come back as U+FFFD, as a browser would have it.
        let expected = String::from_utf8_lossy(&json).into_owned().into_bytes();
        let form = wrapped(&json, &wrap);
        let unwrapped = json_document(Some(FORM), &form).unwrap();
        prop_assert_eq!(unwrapped.as_ref(), expected.as_slice());
        prop_assert_eq!(
            PayloadFormat::check(Some(FORM), &form).is_ok(),
            json_object(&expected)
        );
    }
}

/// Positive, over every vendored example: each is a JSON object document and passes the check
/// both as JSON and form-encoded, compact and pretty.
#[test]
fn every_github_example_passes_in_both_encodings() {
    for (event, payload) in EXAMPLES.iter() {
        for json in [
            serde_json::to_vec(payload).unwrap(),
            serde_json::to_vec_pretty(payload).unwrap(),
        ] {
            assert_eq!(
                PayloadFormat::check(Some("application/json"), &json),
                Ok(PayloadFormat::Json),
                "{event}"
            );
            let form = wrapped(
                &json,
                &Wrap::Form {
                    before: vec![],
                    after: vec![],
                },
            );
            assert_eq!(
                PayloadFormat::check(Some(FORM), &form),
                Ok(PayloadFormat::Form),
                "{event}"
            );
            assert_eq!(
                json_document(Some(FORM), &form).unwrap().as_ref(),
                json.as_slice()
            );
        }
    }
}
