//! Deliveries to decide: a real GitHub example of each acted-on event with the fields hooklog
//! decides on redrawn (installation, ids, names, ref, SHAs, default branch, flags, action), in
//! either body encoding; and, for decoding alone, those bodies cut or padded, sent as another
//! event, or any bytes at all.

use std::sync::LazyLock;

use hooklog_worker::process::Delivery;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

pub const ACTED_ON: [&str; 6] = [
    "push",
    "installation",
    "installation_repositories",
    "repository",
    "installation_target",
    "ping",
];

const FORM: &str = "application/x-www-form-urlencoded";

/// The vendored examples of each acted-on event, plus one `installation_target.renamed` (the
/// examples have none).
static EXAMPLES: LazyLock<Vec<(String, Value)>> = LazyLock::new(|| {
    let mut examples: Vec<(String, Value)> = hooklog_infra::testing::octokit_examples()
        .into_iter()
        .filter(|(name, _)| ACTED_ON.contains(&name.as_str()))
        .collect();
    examples.push((
        "installation_target".to_owned(),
        json!({"action": "renamed", "account": {"login": "octo-renamed"},
            "changes": {"login": {"from": "octo-org"}}, "installation": {"id": 2311213},
            "target_type": "Organization"}),
    ));
    examples
});

/// One delivery as the worker reads it from `GITHUB_DELIVERIES`, with the payload it was made
/// from (before encoding and any cut).
#[derive(Debug, Clone)]
pub struct Drawn {
    pub event: String,
    pub payload: Value,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub delivery_id: String,
}

impl Drawn {
    pub fn delivery(&self) -> Delivery<'_> {
        Delivery {
            delivery_id: &self.delivery_id,
            event: &self.event,
            content_type: self.content_type.as_deref(),
            body: &self.body,
        }
    }
}

fn id() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (1u64..4).prop_map(Value::from),
        2 => any::<u64>().prop_map(Value::from),
        1 => Just(json!(u64::MAX)),
        1 => Just(json!(0)),
    ]
}

fn repository_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9-]{1,8}/[a-z0-9._-]{1,10}",
        1 => Just("octo-org/hello-world".to_owned()),
        1 => prop::sample::select(vec!["nope", "a/b/c", "a b/c", "/x", "x/", "a/\u{7}"])
            .prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
}

fn branch() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => "[a-z0-9][a-z0-9._/-]{0,15}",
        2 => Just("main".to_owned()),
        1 => prop::sample::select(vec!["", "a..b", "refs/x", "with space", "tab\t", "ü/🦀"])
            .prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ]
}

fn sha() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "[0-9a-f]{40}",
        2 => "[0-9a-f]{64}",
        1 => Just("0".repeat(40)),
        1 => "[0-9A-F]{40}",
        1 => "[0-9a-f]{39}",
        1 => "\\PC{0,6}",
    ]
}

fn repositories() -> impl Strategy<Value = Value> {
    prop::collection::vec((id(), repository_name()), 0..3).prop_map(|repos| {
        Value::Array(
            repos
                .into_iter()
                .map(|(id, full_name)| json!({"id": id, "full_name": full_name, "private": false}))
                .collect(),
        )
    })
}

/// `installation`: present with an id (usually), absent, or null.
fn installation() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => id().prop_map(|id| Some(json!({ "id": id, "node_id": "MDIz" }))),
        1 => Just(None),
        1 => Just(Some(Value::Null)),
    ]
}

fn action(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(known.to_vec()).prop_map(str::to_owned),
        1 => "[a-z_]{1,12}",
    ]
}

/// A real example of `event` with the fields hooklog decides on redrawn.
fn decided(event: &'static str) -> BoxedStrategy<Value> {
    let bases: Vec<Value> = EXAMPLES
        .iter()
        .filter(|(name, _)| name == event)
        .map(|(_, payload)| payload.clone())
        .collect();
    let base = prop::sample::select(bases);
    let set = |mut payload: Value, key: &str, value: Option<Value>| {
        let object = payload.as_object_mut().expect("an object");
        match value {
            Some(value) => object.insert(key.to_owned(), value),
            None => object.remove(key),
        };
        payload
    };
    match event {
        "push" => (
            base,
            (
                prop_oneof![
                    6 => Just("refs/heads/"),
                    1 => Just("refs/tags/"),
                    1 => Just(""),
                    1 => Just("refs/heads"),
                ],
                branch(),
            ),
            (sha(), sha(), any::<bool>(), any::<bool>()),
            (id(), repository_name()),
            prop_oneof![3 => Just(None::<String>), 1 => branch().prop_map(Some)],
            prop::option::weighted(0.1, Just(Value::Null)),
            installation(),
        )
            .prop_map(
                move |(
                    p,
                    (prefix, branch),
                    (before, after, deleted, forced),
                    (rid, name),
                    default,
                    null_default,
                    inst,
                )| {
                    let mut p = set(p, "installation", inst);
                    let default =
                        null_default.unwrap_or_else(|| json!(default.unwrap_or(branch.clone())));
                    p["ref"] = json!(format!("{prefix}{branch}"));
                    p["before"] = json!(before);
                    p["after"] = json!(after);
                    p["deleted"] = json!(deleted);
                    p["forced"] = json!(forced);
                    p["repository"]["id"] = rid;
                    p["repository"]["full_name"] = json!(name);
                    p["repository"]["default_branch"] = default;
                    p
                },
            )
            .boxed(),
        "installation" => (
            base,
            action(&[
                "created",
                "deleted",
                "suspend",
                "unsuspend",
                "new_permissions_accepted",
            ]),
            id(),
            "\\PC{1,20}",
            prop::option::of(repositories()),
        )
            .prop_map(move |(p, action, iid, login, repos)| {
                let mut p = set(p, "repositories", repos);
                p["action"] = json!(action);
                p["installation"]["id"] = iid;
                p["installation"]["account"]["login"] = json!(login);
                p
            })
            .boxed(),
        "installation_repositories" => (
            base,
            action(&["added", "removed"]),
            id(),
            repositories(),
            repositories(),
        )
            .prop_map(move |(p, action, iid, added, removed)| {
                let mut p = p;
                p["action"] = json!(action);
                p["installation"]["id"] = iid;
                p["repositories_added"] = added;
                p["repositories_removed"] = removed;
                p
            })
            .boxed(),
        "repository" => (
            base,
            action(&[
                "renamed",
                "transferred",
                "deleted",
                "created",
                "edited",
                "archived",
            ]),
            (id(), repository_name()),
            installation(),
        )
            .prop_map(move |(p, action, (rid, name), inst)| {
                let mut p = set(p, "installation", inst);
                p["action"] = json!(action);
                p["repository"]["id"] = rid;
                p["repository"]["full_name"] = json!(name);
                p
            })
            .boxed(),
        "installation_target" => (base, action(&["renamed"]), id(), "\\PC{1,20}")
            .prop_map(move |(p, action, iid, login)| {
                let mut p = p;
                p["action"] = json!(action);
                p["installation"]["id"] = iid;
                p["account"]["login"] = json!(login);
                p
            })
            .boxed(),
        "ping" => (
            base,
            installation(),
            prop::option::of(any::<u64>()),
            prop::option::of("\\PC{0,30}"),
        )
            .prop_map(move |(p, inst, hook_id, zen)| {
                let mut p = set(p, "installation", inst);
                p["hook_id"] = json!(hook_id);
                p["zen"] = json!(zen);
                p
            })
            .boxed(),
        other => unreachable!("{other} is not acted on"),
    }
}

/// A decided delivery of any acted-on event (a push twice as often: it decides the most), JSON
/// or form-encoded as its content type says.
pub fn decided_delivery() -> impl Strategy<Value = Drawn> {
    let events = [&ACTED_ON[..], &["push"]].concat();
    prop::sample::select(events)
        .prop_flat_map(|event| (Just(event), decided(event), any::<bool>(), "[0-9a-f-]{36}"))
        .prop_map(|(event, payload, form, delivery_id)| {
            let json = serde_json::to_vec(&payload).expect("serializes");
            let (content_type, body) = if form {
                let encoded: String = form_urlencoded::byte_serialize(&json).collect();
                (FORM, format!("payload={encoded}").into_bytes())
            } else {
                ("application/json", json)
            };
            Drawn {
                event: event.to_owned(),
                payload,
                content_type: Some(content_type.to_owned()),
                body,
                delivery_id,
            }
        })
}

/// Anything the stream could hold: a decided delivery cut, padded or relabelled as another
/// event (acted on or not), with any content type, or any bytes.
pub fn any_delivery() -> impl Strategy<Value = Drawn> {
    let event = prop_oneof![
        4 => prop::sample::select(ACTED_ON.to_vec()).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["issues", "star", "check_run", "pull_request"])
            .prop_map(str::to_owned),
        1 => "[a-z_-]{1,20}",
    ];
    let content_type = prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some(FORM.to_owned())),
        "\\PC{0,20}".prop_map(Some),
    ];
    let cut = prop_oneof![
        3 => Just(None),
        1 => any::<Index>().prop_map(Some),
    ];
    (
        decided_delivery(),
        prop::option::weighted(0.3, event),
        prop::option::weighted(0.2, content_type),
        cut,
        prop::option::weighted(0.1, prop::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(|(mut drawn, event, content_type, cut, bytes)| {
            if let Some(event) = event {
                drawn.event = event;
            }
            if let Some(content_type) = content_type {
                drawn.content_type = content_type;
            }
            if let Some(at) = cut {
                drawn.body.truncate(at.index(drawn.body.len() + 1));
            }
            if let Some(bytes) = bytes {
                drawn.body = bytes;
            }
            drawn
        })
}
