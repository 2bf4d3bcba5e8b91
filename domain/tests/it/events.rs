//! The payloads of the events hooklog acts on: any body gives the typed event or a
//! `EventPayloadError`, never a guess. A required field that is missing or of another type is
//! refused; an optional one may be absent or null; every field read comes out as it was sent.

use hooklog_domain::github::events::{self as gh, json_document, EventPayloadError, RepositoryRef};
use hooklog_domain::github::PayloadError;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use crate::mutate::{odd_value, serialize};
use crate::support::{body, config, examples_of, is_form, wrapped, Wrap, ACTED_ON, FORM};

fn repository(r: &RepositoryRef) -> Value {
    json!({"id": r.id, "full_name": r.full_name, "default_branch": r.default_branch})
}
fn repositories(rs: &[RepositoryRef]) -> Vec<Value> {
    rs.iter().map(repository).collect()
}
fn installation(id: Option<u64>) -> Value {
    id.map_or(Value::Null, |id| json!({ "id": id }))
}

/// Parses `body` as the payload of `event` and shows the fields hooklog reads as JSON, at the
/// pointers they came from.
fn typed(event: &str, ct: Option<&str>, body: &[u8]) -> Result<Value, EventPayloadError> {
    Ok(match event {
        "push" => {
            let e: gh::PushEvent = gh::parse(event, ct, body)?;
            json!({"ref": e.git_ref, "before": e.before, "after": e.after, "created": e.created,
                "deleted": e.deleted, "forced": e.forced, "repository": repository(&e.repository),
                "installation": installation(e.installation.map(|i| i.id))})
        }
        "installation" => {
            let e: gh::InstallationEvent = gh::parse(event, ct, body)?;
            let i = e.installation;
            json!({"action": e.action, "installation": {"id": i.id,
                "account": {"login": i.account.login},
                "repository_selection": i.repository_selection, "permissions": i.permissions},
                "repositories": e.repositories.as_deref().map(repositories)})
        }
        "installation_repositories" => {
            let e: gh::InstallationRepositoriesEvent = gh::parse(event, ct, body)?;
            json!({"action": e.action, "installation": installation(Some(e.installation.id)),
                "repositories_added": repositories(&e.repositories_added),
                "repositories_removed": repositories(&e.repositories_removed)})
        }
        "repository" => {
            let e: gh::RepositoryEvent = gh::parse(event, ct, body)?;
            json!({"action": e.action, "repository": repository(&e.repository),
                "installation": installation(e.installation.map(|i| i.id))})
        }
        "installation_target" => {
            let e: gh::InstallationTargetEvent = gh::parse(event, ct, body)?;
            json!({"action": e.action, "account": {"login": e.account.login},
                "installation": installation(Some(e.installation.id))})
        }
        "ping" => {
            let e: gh::PingEvent = gh::parse(event, ct, body)?;
            json!({"hook_id": e.hook_id, "zen": e.zen,
                "installation": installation(e.installation.map(|i| i.id))})
        }
        other => unreachable!("{other} is not acted on"),
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    U64,
    Str,
    /// `#[serde(default)]`: may be absent, but a present value must be a boolean.
    Bool,
    OptU64,
    OptStr,
}

/// The scalar fields hooklog reads, by event: (JSON pointer, kind, required).
const FIELDS: &[(&str, &str, Kind, bool)] = &[
    ("push", "/ref", Kind::Str, true),
    ("push", "/before", Kind::Str, true),
    ("push", "/after", Kind::Str, true),
    ("push", "/created", Kind::Bool, false),
    ("push", "/deleted", Kind::Bool, false),
    ("push", "/forced", Kind::Bool, false),
    ("push", "/repository/id", Kind::U64, true),
    ("push", "/repository/full_name", Kind::Str, true),
    ("push", "/repository/default_branch", Kind::OptStr, false),
    ("push", "/installation/id", Kind::U64, true),
    ("installation", "/action", Kind::Str, true),
    ("installation", "/installation/id", Kind::U64, true),
    (
        "installation",
        "/installation/account/login",
        Kind::Str,
        true,
    ),
    (
        "installation",
        "/installation/repository_selection",
        Kind::OptStr,
        false,
    ),
    ("installation_repositories", "/action", Kind::Str, true),
    (
        "installation_repositories",
        "/installation/id",
        Kind::U64,
        true,
    ),
    ("repository", "/action", Kind::Str, true),
    ("repository", "/repository/id", Kind::U64, true),
    ("repository", "/repository/full_name", Kind::Str, true),
    ("repository", "/installation/id", Kind::U64, true),
    ("installation_target", "/action", Kind::Str, true),
    ("installation_target", "/account/login", Kind::Str, true),
    ("installation_target", "/installation/id", Kind::U64, true),
    ("ping", "/hook_id", Kind::OptU64, false),
    ("ping", "/zen", Kind::OptStr, false),
    ("ping", "/installation/id", Kind::U64, true),
];

fn fits(kind: Kind, value: &Value) -> bool {
    match kind {
        Kind::U64 => value.as_u64().is_some(),
        Kind::Str => value.is_string(),
        Kind::Bool => value.is_boolean(),
        Kind::OptU64 => value.is_null() || value.as_u64().is_some(),
        Kind::OptStr => value.is_null() || value.is_string(),
    }
}

/// One field of one unedited example, replaced by any value or removed.
#[derive(Debug, Clone)]
struct FieldEdit {
    event: &'static str,
    pointer: &'static str,
    kind: Kind,
    required: bool,
    example: Value,
    /// `None`: the field is removed.
    value: Option<Value>,
}

fn field_edit() -> impl Strategy<Value = FieldEdit> {
    let choices: Vec<(usize, Value)> = FIELDS
        .iter()
        .enumerate()
        .flat_map(|(i, (event, pointer, ..))| {
            let parent = &pointer[..pointer.rfind('/').expect("a pointer")];
            examples_of(event)
                .into_iter()
                .filter(move |x| x.pointer(parent).is_some_and(Value::is_object))
                .map(move |x| (i, x))
        })
        .collect();
    (
        prop::sample::select(choices),
        prop::option::weighted(0.85, odd_value()),
    )
        .prop_map(|((i, example), value)| {
            let (event, pointer, kind, required) = FIELDS[i];
            FieldEdit {
                event,
                pointer,
                kind,
                required,
                example,
                value,
            }
        })
}

proptest! {
    #![proptest_config(config())]

    /// Any body (a real example edited, cut, padded, in either encoding, with any content type),
    /// parsed as any acted-on event: the typed event, or a `Shape` error naming the event, or a
    /// `Format` error exactly when a form body has no `payload`. When it parses, every field
    /// hooklog reads is the one in the document; an untouched example of that event, encoded as
    /// its content type says, always parses.
    #[test]
    fn any_body_gives_the_typed_event_or_a_typed_error(
        body in body(&ACTED_ON),
        as_event in prop::sample::select(ACTED_ON.to_vec()),
    ) {
        let ct = body.content_type.as_deref();
        let document = json_document(ct, &body.bytes);
        let result = typed(as_event, ct, &body.bytes);
        // GitHub's payload, as its event, in the encoding its content type names, always parses.
        let encoded_as_said = match body.wrap {
            Wrap::Json => !is_form(ct),
            Wrap::Form { .. } => is_form(ct),
            _ => false,
        };
        if body.document.pristine && body.document.event == as_event && encoded_as_said {
            prop_assert!(result.is_ok(), "{as_event} example refused: {result:?}");
        }
        match (result, document) {
            (Ok(fields), Ok(document)) => {
                if let Ok(sent) = serde_json::from_slice::<Value>(&document) {
                    for (_, pointer, ..) in FIELDS.iter().filter(|(e, ..)| *e == as_event) {
                        if let Some(value) = sent.pointer(pointer) {
                            prop_assert_eq!(fields.pointer(pointer), Some(value), "{}", pointer);
                        }
                    }
                }
            }
            (Err(EventPayloadError::Shape { event, reason }), Ok(_)) => {
                prop_assert_eq!(event, as_event);
                prop_assert!(!reason.is_empty());
            }
            (Err(EventPayloadError::Format(PayloadError::MissingFormPayload)), Err(_)) => {}
            (got, document) => prop_assert!(false, "{got:?} with document {document:?}"),
        }
    }

    /// One field changed in a real payload: a value of the right type comes out as sent, a
    /// value of another type (or a number over `u64::MAX`) is a `Shape` error, and a removed
    /// field is an error exactly when it is required, named in the reason.
    #[test]
    fn a_field_of_the_wrong_type_or_missing_is_refused_and_a_right_one_kept(
        edit in field_edit(),
        pretty in any::<bool>(),
        huge in any::<Index>(),
        form in any::<bool>(),
    ) {
        let mut payload = edit.example.clone();
        let (parent, key) = edit.pointer.rsplit_once('/').expect("a pointer");
        let object = payload.pointer_mut(parent).and_then(Value::as_object_mut).expect("parent");
        match &edit.value {
            Some(value) => object.insert(key.to_owned(), value.clone()),
            None => object.remove(key),
        };
        let json = serialize(&payload, pretty, &huge);
        let (ct, bytes) = if form {
            (Some(FORM), wrapped(&json, &Wrap::Form { before: vec![], after: vec![] }))
        } else {
            (Some("application/json"), json.clone())
        };
        // What was sent, read back: a huge number was written in place of a marker, and one
        // out of `f64`'s range does not read back at all.
        let sent = serde_json::from_slice::<Value>(&json).ok();
        let sent = sent.as_ref().and_then(|s| s.pointer(edit.pointer));
        let right_type = sent.is_some_and(|sent| fits(edit.kind, sent));
        match (&edit.value, typed(edit.event, ct, &bytes)) {
            (None, Ok(_)) => prop_assert!(!edit.required, "{} removed yet parsed", edit.pointer),
            (None, Err(EventPayloadError::Shape { reason, .. })) => {
                prop_assert!(edit.required, "{}: {reason}", edit.pointer);
                prop_assert!(reason.contains(&format!("missing field `{key}`")), "{reason}");
            }
            (Some(value), Ok(fields)) => {
                prop_assert!(right_type, "{} = {value} accepted", edit.pointer);
                prop_assert_eq!(fields.pointer(edit.pointer), sent);
            }
            (Some(value), Err(EventPayloadError::Shape { event, .. })) => {
                prop_assert!(!right_type, "{} = {value} refused", edit.pointer);
                prop_assert_eq!(event, edit.event);
            }
            (_, Err(err)) => prop_assert!(false, "{err}"),
        }
    }
}

/// Positive, over every vendored example of an acted-on event: it parses, in both encodings.
#[test]
fn every_github_example_of_an_acted_on_event_parses() {
    for event in ACTED_ON {
        let examples = examples_of(event);
        assert!(!examples.is_empty(), "no {event} example");
        for example in examples {
            let json = serde_json::to_vec(&example).unwrap();
            let form = wrapped(
                &json,
                &Wrap::Form {
                    before: vec![],
                    after: vec![],
                },
            );
            for (ct, body) in [(Some("application/json"), &json), (Some(FORM), &form)] {
                if let Err(err) = typed(event, ct, body) {
                    panic!("{event} ({ct:?}): {err}");
                }
            }
        }
    }
}
