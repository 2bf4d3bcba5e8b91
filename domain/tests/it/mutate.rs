//! Strategies that change a real GitHub payload where mistakes hide: values of another type or
//! size in any field (numbers over `u64::MAX`, unicode, long strings), removed and added keys,
//! then the serialized bytes cut short, padded, flipped or repeated.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

use crate::support::EXAMPLES;

/// A number no JSON parser here holds exactly (over `u64::MAX`, or out of `f64`'s range). It is
/// written into the serialized bytes in place of [`HUGE_MARK`].
const HUGE_NUMBERS: [&str; 5] = [
    "18446744073709551616",
    "-9223372036854775809",
    "1e400",
    "123456789012345678901234567890123456789",
    "0.0000000000000000000000000000000000000000001e-400",
];
const HUGE_MARK: &str = "\u{1}hooklog-huge-number\u{1}";

/// A value of a type or size a field does not expect.
pub fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1.5)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        Just(Value::String(HUGE_MARK.to_owned())),
        "\\PC{0,24}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        "[a-f0-9]{40}".prop_map(Value::String),
        Just(json!("refs/heads/main")),
        Just(json!("octo-org/hello-world")),
        Just(Value::String(
            "\u{0}\u{feff}\u{10ffff}🦀 ü \\ \"".to_owned()
        )),
        (1usize..20_000).prop_map(|n| Value::String("x".repeat(n))),
        Just(json!([])),
        Just(json!({})),
        Just(json!([{"id": 1}])),
        Just(json!({"id": "1"})),
    ]
}

/// One edit at the node that `path` reaches: each step picks a child of an object or array.
#[derive(Debug, Clone)]
pub enum Edit {
    Replace(Value),
    Remove,
    Insert(String, Value),
}

fn edit() -> impl Strategy<Value = (Vec<Index>, Edit)> {
    let edit = prop_oneof![
        4 => odd_value().prop_map(Edit::Replace),
        2 => Just(Edit::Remove),
        1 => ("[a-z_]{1,12}", odd_value()).prop_map(|(key, value)| Edit::Insert(key, value)),
    ];
    (prop::collection::vec(any::<Index>(), 0..6), edit)
}

/// Applies `edit` to the node at `path` (stopping early at a leaf). Removing the root empties it.
pub fn apply(root: &mut Value, path: &[Index], edit: &Edit) {
    let mut node = root;
    for (depth, step) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        let len = match &*node {
            Value::Object(map) => map.len(),
            Value::Array(items) => items.len(),
            _ => 0,
        };
        if len == 0 {
            break;
        }
        let i = step.index(len);
        if last && matches!(edit, Edit::Remove) {
            match node {
                Value::Object(map) => {
                    let key = map.keys().nth(i).cloned().expect("in range");
                    map.remove(&key);
                }
                Value::Array(items) => {
                    items.remove(i);
                }
                _ => unreachable!("only containers have children"),
            }
            return;
        }
        node = match node {
            Value::Object(map) => map.values_mut().nth(i).expect("in range"),
            Value::Array(items) => &mut items[i],
            _ => unreachable!("only containers have children"),
        };
    }
    match edit {
        Edit::Replace(value) => *node = value.clone(),
        Edit::Remove => *node = Value::Null,
        Edit::Insert(key, value) => match node {
            Value::Object(map) => {
                map.insert(key.clone(), value.clone());
            }
            other => *other = json!({ key.clone(): value.clone() }),
        },
    }
}

/// What happens to the bytes of a serialized document.
#[derive(Debug, Clone)]
pub enum Cut {
    Keep,
    Truncate(Index),
    Append(Vec<u8>),
    Insert(Index, Vec<u8>),
    Flip(Index, u8),
    Repeat,
}

fn cut() -> impl Strategy<Value = Cut> {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..16),
        Just(b"}".to_vec()),
        Just(b",".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\u".to_vec()),
        Just(b" \n\t\r\x0c".to_vec()),
        Just(b"{\"x\":[[[[[[[[[[[[[[[[".to_vec()),
    ];
    prop_oneof![
        6 => Just(Cut::Keep),
        2 => any::<Index>().prop_map(Cut::Truncate),
        1 => bytes.clone().prop_map(Cut::Append),
        1 => (any::<Index>(), bytes).prop_map(|(at, b)| Cut::Insert(at, b)),
        1 => (any::<Index>(), 1u8..=255).prop_map(|(at, x)| Cut::Flip(at, x)),
        1 => Just(Cut::Repeat),
    ]
}

pub fn apply_cut(mut bytes: Vec<u8>, cut: &Cut) -> Vec<u8> {
    match cut {
        Cut::Keep => {}
        Cut::Truncate(at) => bytes.truncate(at.index(bytes.len() + 1)),
        Cut::Append(extra) => bytes.extend_from_slice(extra),
        Cut::Insert(at, extra) => {
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, extra.iter().copied());
        }
        Cut::Flip(at, x) if !bytes.is_empty() => {
            let at = at.index(bytes.len());
            bytes[at] ^= x;
        }
        Cut::Flip(..) => {}
        Cut::Repeat => bytes.extend_from_within(..),
    }
    bytes
}

/// Serializes `value` (compact or pretty) with every [`HUGE_MARK`] replaced by a huge number.
pub fn serialize(value: &Value, pretty: bool, huge: &Index) -> Vec<u8> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .expect("a Value serializes");
    let mark = serde_json::to_string(HUGE_MARK).expect("a string serializes");
    let number = HUGE_NUMBERS[huge.index(HUGE_NUMBERS.len())];
    text.replace(&mark, number).into_bytes()
}

/// A document made from one real example of one of `events`: zero to three edits, then perhaps a
/// cut. About a third of the draws are the example unchanged or only re-spaced (`pristine`).
#[derive(Debug, Clone)]
pub struct Mutated {
    pub event: String,
    pub json: Vec<u8>,
    /// No edit and no cut: the example as GitHub sent it, perhaps pretty-printed.
    pub pristine: bool,
}

pub fn mutated(events: &'static [&'static str]) -> impl Strategy<Value = Mutated> {
    let pool: Vec<(String, Value)> = EXAMPLES
        .iter()
        .filter(|(name, _)| events.is_empty() || events.contains(&name.as_str()))
        .cloned()
        .collect();
    assert!(!pool.is_empty(), "no examples of {events:?}");
    (
        prop::sample::select(pool),
        prop::collection::vec(edit(), 0..4),
        cut(),
        any::<bool>(),
        any::<Index>(),
    )
        .prop_map(|((event, mut payload), edits, cut, pretty, huge)| {
            for (path, edit) in &edits {
                apply(&mut payload, path, edit);
            }
            let pristine = edits.is_empty() && matches!(cut, Cut::Keep);
            let json = apply_cut(serialize(&payload, pretty, &huge), &cut);
            Mutated {
                event,
                json,
                pristine,
            }
        })
}
