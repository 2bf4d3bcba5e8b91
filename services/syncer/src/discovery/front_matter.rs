//! Front matter (pure): the YAML between the `---` lines that open a Markdown file, read into
//! the JSON object that discovery stores as a skill's, agent's or command's metadata.

use serde_json::{Map, Value};

/// The YAML front matter of a Markdown file (BOM already stripped; LF or CRLF), as a JSON object:
/// `None` when the text does not start with a `---` line, an empty object when it is empty.
pub(super) fn front_matter(text: &str) -> Result<Option<Map<String, Value>>, String> {
    let mut lines = text.split_inclusive('\n');
    let Some(first) = lines.next() else {
        return Ok(None);
    };
    if first.trim_end() != "---" {
        return Ok(None);
    }
    let start = first.len();
    let mut end = start;
    let mut closed = false;
    for line in lines {
        if line.trim_end() == "---" {
            closed = true;
            break;
        }
        end += line.len();
    }
    if !closed {
        return Err("front matter is not closed (no second `---` line)".into());
    }
    let yaml: serde_norway::Value = serde_norway::from_str(&text[start..end])
        .map_err(|err| format!("front matter is not valid YAML: {err}"))?;
    match yaml_to_json(yaml) {
        Value::Null => Ok(Some(Map::new())),
        Value::Object(map) => Ok(Some(map)),
        _ => Err("front matter is not a YAML mapping".into()),
    }
}

/// YAML to JSON: tags are dropped, non-finite floats become strings (`.nan`, `.inf`), and
/// mapping keys that are not strings are written as their JSON text (`1`, `true`, `null`, `[1,2]`).
fn yaml_to_json(yaml: serde_norway::Value) -> Value {
    use serde_norway::Value as Yaml;
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| Value::String(n.to_string()), Value::Number)
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Yaml::Mapping(mapping) => Value::Object(
            mapping
                .into_iter()
                .map(|(key, value)| {
                    let key = match yaml_to_json(key) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, yaml_to_json(value))
                })
                .collect(),
        ),
        Yaml::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn metadata(text: &str) -> Value {
        let front = front_matter(text).expect("parsed").expect("front matter");
        Value::Object(front)
    }

    fn failure(text: &str) -> String {
        front_matter(text).expect_err("a failure")
    }

    #[test]
    fn front_matter_closed_on_the_last_line_without_a_newline_is_read() {
        let meta = metadata("---\nname: a\ndescription: b\n---");
        assert_eq!(meta, json!({"name": "a", "description": "b"}));
    }

    #[test]
    fn yaml_values_are_converted_to_json_faithfully() {
        let text = "---\nname: s\ndescription: d\ncount: 3\nneg: -2\nratio: 0.5\n\
                    on: true\nnothing: ~\nnan: .nan\ntags: [a, 1]\n\
                    nested: {k: v}\n1: one\ntrue: yes\ntagged: !thing x\n---\n";
        let meta = metadata(text);
        assert_eq!(
            meta,
            json!({
                "name": "s", "description": "d", "count": 3, "neg": -2, "ratio": 0.5,
                "on": true, "nothing": null, "nan": ".nan", "tags": ["a", 1],
                "nested": {"k": "v"}, "1": "one", "true": "yes", "tagged": "x",
            })
        );
    }

    #[test]
    fn front_matter_that_is_not_a_yaml_mapping_fails() {
        let bad = failure("---\nname: [unclosed\n---\n");
        assert!(bad.starts_with("front matter is not valid YAML: "), "{bad}");
        let list = failure("---\n- a\n- b\n---\n");
        assert_eq!(list, "front matter is not a YAML mapping");
        let open = failure("---\nname: a\n");
        assert_eq!(open, "front matter is not closed (no second `---` line)");
    }
}
