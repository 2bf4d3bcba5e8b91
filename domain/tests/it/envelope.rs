//! The delivery headers: any combination of present, missing, well-formed and malformed values
//! gives an envelope or the one `EnvelopeError` that names the first bad header, and a parsed
//! envelope holds exactly the values it was given.

use hooklog_domain::github::{
    DeliveryEnvelope, DeliveryId, EnvelopeError, EventName, HookId, RawEnvelope, DELIVERY_HEADER,
    EVENT_HEADER, HOOK_ID_HEADER, TARGET_ID_HEADER, TARGET_TYPE_HEADER,
};
use proptest::prelude::*;

use crate::support::{config, ACTED_ON};

/// The rules, written out independently of the parsers (`None`: the value is fine).
fn token_rule(value: &str, max: usize) -> bool {
    (1..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
fn digits_rule(value: &str) -> bool {
    (1..=20).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
}
fn delivery_rule(value: &str) -> bool {
    (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// Values at and around each rule's edges, and anything at all.
fn event() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(ACTED_ON.to_vec()).prop_map(str::to_owned),
        "[A-Za-z0-9_-]{1,64}",
        "[A-Za-z0-9_-]{63,66}",
        "[a-z]{1,10}[.*> \t/\u{0}][a-z]{0,10}",
        "\\PC{0,70}",
        any::<String>(),
    ]
}
fn delivery() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[!-~]{1,128}",
        "[!-~]{126,131}",
        "[!-~]{0,10}[ \t\n\u{7f}\u{80}é][!-~]{0,10}",
        "\\PC{0,140}",
        any::<String>(),
    ]
}
fn digits() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,20}",
        "[0-9]{19,22}",
        Just(u64::MAX.to_string()),
        Just("99999999999999999999".to_owned()),
        "-?[0-9]{1,5}[ .e+x]?[0-9]{0,5}",
        "[٠-٩]{1,5}",
        "\\PC{0,24}",
    ]
}
fn target_type() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "integration",
            "repository",
            "organization",
            "business"
        ])
        .prop_map(str::to_owned),
        "[A-Za-z0-9_-]{62,66}",
        "\\PC{0,70}",
    ]
}

/// What `DeliveryEnvelope::parse` must answer, from the rules, in the documented order.
fn expected(
    event: Option<&str>,
    delivery: Option<&str>,
    hook: Option<&str>,
    kind: Option<&str>,
    id: Option<&str>,
) -> Result<(), EnvelopeError> {
    let invalid = |header: &'static str| {
        Err(EnvelopeError::Invalid {
            header,
            expected: "",
        })
    };
    match event {
        None => return Err(EnvelopeError::Missing(EVENT_HEADER)),
        Some(e) if !token_rule(e, 64) => return invalid(EVENT_HEADER),
        _ => {}
    }
    match delivery {
        None => return Err(EnvelopeError::Missing(DELIVERY_HEADER)),
        Some(d) if !delivery_rule(d) => return invalid(DELIVERY_HEADER),
        _ => {}
    }
    if hook.is_some_and(|h| !digits_rule(h)) {
        return invalid(HOOK_ID_HEADER);
    }
    match (kind, id) {
        (None, None) => Ok(()),
        (None, _) => Err(EnvelopeError::Missing(TARGET_TYPE_HEADER)),
        (_, None) => Err(EnvelopeError::Missing(TARGET_ID_HEADER)),
        (Some(k), _) if !token_rule(k, 64) => invalid(TARGET_TYPE_HEADER),
        (_, Some(i)) if !digits_rule(i) => invalid(TARGET_ID_HEADER),
        _ => Ok(()),
    }
}

/// The header an error names, and whether it is `Missing`.
fn named(err: &EnvelopeError) -> (&'static str, bool) {
    match err {
        EnvelopeError::Missing(header) => (header, true),
        EnvelopeError::Invalid { header, .. } => (header, false),
    }
}

/// Characters that would change the meaning of a NATS subject token or of a message id.
fn safe_subject_token(value: &str) -> bool {
    !value.is_empty()
        && !value
            .chars()
            .any(|c| matches!(c, '.' | '*' | '>' | ':') || c.is_whitespace() || c.is_control())
}

proptest! {
    #![proptest_config(config())]

    /// Any set of header values parses to an envelope or to the error the rules name (the first
    /// bad header in the documented order); a parsed envelope holds the values exactly, its event
    /// is a safe subject token, and its message id is `<hook id>:<delivery id>` or the delivery
    /// id alone.
    #[test]
    fn any_headers_give_an_envelope_or_the_error_that_names_the_first_bad_one(
        event in prop::option::weighted(0.95, event()),
        delivery in prop::option::weighted(0.95, delivery()),
        hook in prop::option::of(digits()),
        kind in prop::option::of(target_type()),
        id in prop::option::of(digits()),
    ) {
        let raw = RawEnvelope {
            event: event.as_deref(),
            delivery_id: delivery.as_deref(),
            hook_id: hook.as_deref(),
            target_type: kind.as_deref(),
            target_id: id.as_deref(),
        };
        let want =
            expected(raw.event, raw.delivery_id, raw.hook_id, raw.target_type, raw.target_id);
        match (DeliveryEnvelope::parse(raw), want) {
            (Ok(envelope), Ok(())) => {
                prop_assert_eq!(Some(envelope.event.as_str()), raw.event);
                prop_assert_eq!(Some(envelope.delivery_id.as_str()), raw.delivery_id);
                prop_assert_eq!(envelope.hook_id.as_ref().map(HookId::as_str), raw.hook_id);
                prop_assert_eq!(
                    envelope.installation_target.as_ref().map(|t| (t.kind.as_str(), t.id.as_str())),
                    raw.target_type.zip(raw.target_id)
                );
                prop_assert!(safe_subject_token(envelope.event.as_str()));
                let message_id = envelope.message_id();
                match raw.hook_id {
                    Some(h) => prop_assert_eq!(message_id, format!("{h}:{}", envelope.delivery_id)),
                    None => prop_assert_eq!(message_id, envelope.delivery_id.to_string()),
                }
            }
            (Err(err), Err(want)) => {
                prop_assert_eq!(named(&err), named(&want));
                prop_assert!(err.to_string().contains(named(&err).0), "{err} names its header");
            }
            (got, want) => prop_assert!(false, "{raw:?}: got {got:?}, the rules say {want:?}"),
        }
    }

    /// Each id parser on its own: never a panic, success exactly by its rule, and the value kept
    /// as given.
    #[test]
    fn each_header_parser_accepts_exactly_its_rule_and_keeps_the_value(
        event in event(),
        delivery in delivery(),
        hook in digits(),
    ) {
        match EventName::parse(&event) {
            Ok(name) => prop_assert!(token_rule(&event, 64) && name.as_str() == event),
            Err(err) => {
                prop_assert!(!token_rule(&event, 64) && named(&err) == (EVENT_HEADER, false))
            }
        }
        match DeliveryId::parse(&delivery) {
            Ok(id) => prop_assert!(delivery_rule(&delivery) && id.to_string() == delivery),
            Err(err) => {
                prop_assert!(!delivery_rule(&delivery) && named(&err) == (DELIVERY_HEADER, false))
            }
        }
        match HookId::parse(&hook) {
            Ok(id) => prop_assert!(digits_rule(&hook) && id.as_str() == hook),
            Err(err) => prop_assert!(!digits_rule(&hook) && named(&err) == (HOOK_ID_HEADER, false)),
        }
    }
}
