//! What every property here draws on: the case count, GitHub's own example payloads, and both of
//! GitHub's body encodings around a document (`mutate` changes the documents themselves).

use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::mutate::{mutated, Mutated};

/// `HOOKLOG_PROPTEST_CASES` cases per property (10,000 unless set).
pub fn config() -> ProptestConfig {
    let cases = std::env::var("HOOKLOG_PROPTEST_CASES").map_or(10_000, |value| {
        value
            .parse()
            .expect("HOOKLOG_PROPTEST_CASES is a number of cases")
    });
    ProptestConfig::with_cases(cases)
}

/// The events hooklog acts on, in the order of `EventName::disposition`.
pub const ACTED_ON: [&str; 6] = [
    "push",
    "installation",
    "installation_repositories",
    "repository",
    "installation_target",
    "ping",
];

pub const FORM: &str = "application/x-www-form-urlencoded";

/// Every example payload of the vendored `@octokit/webhooks-examples`, with its event name, plus
/// one `installation_target.renamed` (the examples have none), shaped as GitHub documents it.
pub static EXAMPLES: LazyLock<Vec<(String, Value)>> = LazyLock::new(|| {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/ingress/tests/fixtures/octokit-webhooks-examples/api.github.com.json"
    );
    let all: Vec<Value> =
        serde_json::from_slice(&std::fs::read(path).expect("the vendored examples")).expect("JSON");
    let mut examples: Vec<(String, Value)> = all
        .iter()
        .flat_map(|event| {
            let name = event["name"].as_str().expect("event name").to_owned();
            let payloads = event["examples"].as_array().expect("examples").clone();
            payloads
                .into_iter()
                .map(move |payload| (name.clone(), payload))
        })
        .collect();
    examples.push((
        "installation_target".to_owned(),
        json!({
            "action": "renamed",
            "account": {"login": "octo-renamed", "id": 21031067, "type": "Organization"},
            "changes": {"login": {"from": "octo-org"}},
            "installation": {"id": 2311213, "node_id": "MDIzOkludGVncmF0aW9uMjMxMTIxMw=="},
            "target_type": "Organization"
        }),
    ));
    examples
});

/// The examples of `event`.
pub fn examples_of(event: &str) -> Vec<Value> {
    EXAMPLES
        .iter()
        .filter(|(name, _)| name == event)
        .map(|(_, payload)| payload.clone())
        .collect()
}

/// How a JSON document is put in a body.
#[derive(Debug, Clone)]
pub enum Wrap {
    /// As is, `application/json` (or no content type, or any other).
    Json,
    /// `payload=<urlencoded JSON>` between other fields.
    Form {
        before: Vec<(String, String)>,
        after: Vec<(String, String)>,
    },
    /// A form with no `payload` key.
    FormWithoutPayload(Vec<(String, String)>),
    /// The JSON after `payload=` without urlencoding it.
    FormRaw,
}

pub fn wrap() -> impl Strategy<Value = Wrap> {
    let fields = prop::collection::vec(
        (
            prop_oneof!["[a-z]{1,8}", "\\PC{0,8}", Just("Payload".to_owned())],
            "\\PC{0,12}",
        ),
        0..3,
    );
    prop_oneof![
        3 => Just(Wrap::Json),
        3 => (fields.clone(), fields.clone())
            .prop_map(|(before, after)| Wrap::Form { before, after }),
        1 => fields.prop_map(Wrap::FormWithoutPayload),
        1 => Just(Wrap::FormRaw),
    ]
}

/// The body of `json` wrapped as `wrap` says. Form fields named `payload` are left out of
/// `before` and `after`, so that the one `payload` is the document.
pub fn wrapped(json: &[u8], wrap: &Wrap) -> Vec<u8> {
    let form = |fields: &[(String, String)], payload: Option<&[u8]>| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (key, value) in fields.iter().filter(|(key, _)| key != "payload") {
            out.append_pair(key, value);
        }
        let mut body = out.finish().into_bytes();
        if let Some(payload) = payload {
            if !body.is_empty() {
                body.push(b'&');
            }
            body.extend_from_slice(b"payload=");
            body.extend(form_urlencoded::byte_serialize(payload).flat_map(str::bytes));
        }
        body
    };
    match wrap {
        Wrap::Json => json.to_vec(),
        Wrap::Form { before, after } => {
            let mut body = form(before, Some(json));
            let rest = form(after, None);
            if !rest.is_empty() {
                body.push(b'&');
                body.extend_from_slice(&rest);
            }
            body
        }
        Wrap::FormWithoutPayload(fields) => form(fields, None),
        Wrap::FormRaw => [b"payload=".as_slice(), json].concat(),
    }
}

/// A `Content-Type` for a wrapped body: usually the one that matches, sometimes another.
pub fn content_type(wrap: &Wrap) -> impl Strategy<Value = Option<String>> {
    let matching = match wrap {
        Wrap::Json => prop_oneof![
            Just(Some("application/json".to_owned())),
            Just(Some("application/json; charset=utf-8".to_owned())),
            Just(None),
        ]
        .boxed(),
        _ => prop_oneof![
            Just(Some(FORM.to_owned())),
            Just(Some(
                "Application/X-WWW-Form-Urlencoded ; charset=UTF-8".to_owned()
            )),
        ]
        .boxed(),
    };
    prop_oneof![
        4 => matching,
        1 => any_content_type(),
    ]
}

/// Any `Content-Type`, GitHub's two, look-alikes and garbage.
pub fn any_content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(FORM.to_owned())),
        Just(Some("application/json".to_owned())),
        Just(Some(format!("{FORM}x"))),
        Just(Some(format!(" {FORM} ;;"))),
        Just(Some("text/plain".to_owned())),
        Just(Some(String::new())),
        "\\PC{0,40}".prop_map(Some),
    ]
}

/// A body as GitHub might send one for a mutated example, with its content type.
#[derive(Debug, Clone)]
pub struct Body {
    pub document: Mutated,
    pub wrap: Wrap,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

pub fn body(events: &'static [&'static str]) -> impl Strategy<Value = Body> {
    (mutated(events), wrap())
        .prop_flat_map(|(document, wrap)| {
            let bytes = wrapped(&document.json, &wrap);
            (
                Just(document),
                Just(wrap.clone()),
                content_type(&wrap),
                Just(bytes),
            )
        })
        .prop_map(|(document, wrap, content_type, bytes)| Body {
            document,
            wrap,
            content_type,
            bytes,
        })
}

/// Whether `content_type` names GitHub's form encoding, written out independently of the
/// domain's check: the media type before any `;`, trimmed, compared without ASCII case.
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case(FORM)
    })
}
