//! Discovery (pure): what a synced file is, the way plugin marketplaces lay repositories out,
//! and its parsed manifest or front matter.
//!
//! - `.claude-plugin/marketplace.json` (at the root or in any directory): a marketplace;
//! - `.claude-plugin/plugin.json`: a plugin;
//! - `SKILL.md`: a skill (front matter with `name` and `description`);
//! - a `.md` file under an `agents` directory: an agent (same front matter);
//! - a `.md` file under a `commands` directory: a command (front matter optional);
//! - anything else: a plain file, which may be binary.
//!
//! A file that looks like one of these but does not parse is a per-file failure of the sync,
//! never a failed sync; the reason says what is wrong.
//!
//! `front_matter` reads the YAML front matter of Markdown files into JSON.

mod front_matter;

use serde_json::{Map, Value};

use self::front_matter::front_matter;

/// What a file is, for readers of `synced_files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Marketplace,
    Plugin,
    Skill,
    Agent,
    Command,
    File,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marketplace => "marketplace",
            Self::Plugin => "plugin",
            Self::Skill => "skill",
            Self::Agent => "agent",
            Self::Command => "command",
            Self::File => "file",
        }
    }
}

/// A file's kind and, for all but plain files, its manifest or front matter as a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub kind: Kind,
    pub metadata: Option<Value>,
}

/// The kind a path stands for, before its content is read.
pub fn kind_of(path: &str) -> Kind {
    let mut segments: Vec<&str> = path.split('/').collect();
    let name = segments.pop().unwrap_or_default();
    let parent = segments.last().copied();
    match name {
        "marketplace.json" if parent == Some(".claude-plugin") => return Kind::Marketplace,
        "plugin.json" if parent == Some(".claude-plugin") => return Kind::Plugin,
        "SKILL.md" => return Kind::Skill,
        _ => {}
    }
    if !name.ends_with(".md") {
        return Kind::File;
    }
    // The nearest `agents` or `commands` directory decides, so `commands/agents/x.md` is an agent.
    match segments
        .iter()
        .rev()
        .find(|s| matches!(**s, "agents" | "commands"))
    {
        Some(&"agents") => Kind::Agent,
        Some(_) => Kind::Command,
        None => Kind::File,
    }
}

/// Classifies `path` and checks and parses `content` as its kind requires; the error is the
/// per-file failure reason.
pub fn classify(path: &str, content: &[u8]) -> Result<Classified, String> {
    let kind = kind_of(path);
    if kind == Kind::File {
        return Ok(Classified {
            kind,
            metadata: None,
        });
    }
    let text = std::str::from_utf8(content).map_err(|_| "not valid UTF-8".to_owned())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let metadata = match kind {
        Kind::Marketplace => marketplace(text)?,
        Kind::Plugin => manifest("plugin.json", text)?,
        Kind::Skill | Kind::Agent => {
            let front = front_matter(text)?.ok_or_else(|| {
                "no front matter (a `---` line, a YAML mapping, a `---` line)".to_owned()
            })?;
            required_string(&front, "name")?;
            required_string(&front, "description")?;
            front
        }
        Kind::Command => {
            let mut front = front_matter(text)?.unwrap_or_default();
            if !front.contains_key("name") {
                let stem = path.rsplit('/').next().unwrap_or(path);
                let stem = stem.strip_suffix(".md").unwrap_or(stem);
                front.insert("name".into(), Value::String(stem.into()));
            }
            front
        }
        Kind::File => unreachable!("returned above"),
    };
    Ok(Classified {
        kind,
        metadata: Some(Value::Object(metadata)),
    })
}

/// A JSON manifest: an object with a string `name`.
fn manifest(file: &str, text: &str) -> Result<Map<String, Value>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|err| format!("{file} is not valid JSON: {err}"))?;
    let Value::Object(object) = value else {
        return Err(format!("{file} is not a JSON object"));
    };
    if !object.get("name").is_some_and(Value::is_string) {
        return Err(format!("{file} has no string `name`"));
    }
    Ok(object)
}

/// A marketplace manifest: a `manifest` with an array `plugins` of objects with a string `name`.
fn marketplace(text: &str) -> Result<Map<String, Value>, String> {
    const FILE: &str = "marketplace.json";
    let object = manifest(FILE, text)?;
    let Some(plugins) = object.get("plugins").and_then(Value::as_array) else {
        return Err(format!("{FILE} has no array `plugins`"));
    };
    for (i, plugin) in plugins.iter().enumerate() {
        let Some(plugin) = plugin.as_object() else {
            return Err(format!("{FILE} `plugins[{i}]` is not an object"));
        };
        if !plugin.get("name").is_some_and(Value::is_string) {
            return Err(format!("{FILE} `plugins[{i}]` has no string `name`"));
        }
    }
    Ok(object)
}

fn required_string(front: &Map<String, Value>, key: &str) -> Result<(), String> {
    match front.get(key) {
        None | Some(Value::Null) => Err(format!("front matter has no `{key}`")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(format!("front matter `{key}` is empty"))
        }
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err(format!("front matter `{key}` is not a string")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn metadata(path: &str, content: &str) -> Value {
        let classified = classify(path, content.as_bytes()).expect("classified");
        assert_eq!(classified.kind, kind_of(path));
        classified.metadata.expect("metadata")
    }

    fn failure(path: &str, content: &[u8]) -> String {
        classify(path, content).expect_err("a failure")
    }

    const SKILL: &str = "---\nname: pdf\ndescription: Reads PDFs.\n---\n# PDF\n";

    #[test]
    fn paths_are_classified_by_their_place_in_the_repository() {
        let cases = [
            (".claude-plugin/marketplace.json", Kind::Marketplace),
            (
                "nested/dir/.claude-plugin/marketplace.json",
                Kind::Marketplace,
            ),
            ("marketplace.json", Kind::File),
            (".claude-plugin/plugin.json", Kind::Plugin),
            ("plugins/p/.claude-plugin/plugin.json", Kind::Plugin),
            ("plugin.json", Kind::File),
            ("SKILL.md", Kind::Skill),
            ("plugins/p/skills/pdf/SKILL.md", Kind::Skill),
            ("agents/SKILL.md", Kind::Skill),
            ("skill.md", Kind::File),
            ("agents/reviewer.md", Kind::Agent),
            ("plugins/p/agents/reviewer.md", Kind::Agent),
            ("agents/reviewer.txt", Kind::File),
            ("my-agents/reviewer.md", Kind::File),
            ("commands/deploy.md", Kind::Command),
            ("plugins/p/commands/ops/deploy.md", Kind::Command),
            ("commands/agents/x.md", Kind::Agent),
            ("agents/commands/x.md", Kind::Command),
            ("agents.md", Kind::File),
            ("README.md", Kind::File),
            ("logo.png", Kind::File),
        ];
        for (path, kind) in cases {
            assert_eq!(kind_of(path), kind, "{path}");
        }
        let names: Vec<_> = [
            Kind::Marketplace,
            Kind::Plugin,
            Kind::Skill,
            Kind::Agent,
            Kind::Command,
            Kind::File,
        ]
        .map(Kind::as_str)
        .into();
        assert_eq!(
            names,
            ["marketplace", "plugin", "skill", "agent", "command", "file"]
        );
    }

    #[test]
    fn a_plain_file_may_be_binary_and_has_no_metadata() {
        let classified = classify("img/logo.png", &[0x89, b'P', 0xff, 0x00]).unwrap();
        assert_eq!(
            classified,
            Classified {
                kind: Kind::File,
                metadata: None
            }
        );
    }

    #[test]
    fn a_marketplace_keeps_its_whole_manifest() {
        let manifest = json!({
            "name": "tools",
            "owner": {"name": "Ada"},
            "plugins": [{"name": "pdf", "source": "./plugins/pdf"}],
        });
        let text = manifest.to_string();
        assert_eq!(metadata(".claude-plugin/marketplace.json", &text), manifest);
        let with_bom = format!("\u{feff}{text}");
        assert_eq!(
            metadata("x/.claude-plugin/marketplace.json", &with_bom),
            manifest
        );
    }

    #[test]
    fn a_bad_marketplace_says_what_is_wrong() {
        let path = ".claude-plugin/marketplace.json";
        let cases = [
            ("{", "marketplace.json is not valid JSON: "),
            ("[]", "marketplace.json is not a JSON object"),
            (
                r#"{"plugins": []}"#,
                "marketplace.json has no string `name`",
            ),
            (
                r#"{"name": 1, "plugins": []}"#,
                "marketplace.json has no string `name`",
            ),
            (
                r#"{"name": "m"}"#,
                "marketplace.json has no array `plugins`",
            ),
            (
                r#"{"name": "m", "plugins": {}}"#,
                "marketplace.json has no array `plugins`",
            ),
            (
                r#"{"name": "m", "plugins": [{"name": "a"}, 3]}"#,
                "marketplace.json `plugins[1]` is not an object",
            ),
            (
                r#"{"name": "m", "plugins": [{"source": "./a"}]}"#,
                "marketplace.json `plugins[0]` has no string `name`",
            ),
        ];
        for (content, reason) in cases {
            let err = failure(path, content.as_bytes());
            assert!(err.starts_with(reason), "{content}: {err}");
        }
    }

    #[test]
    fn a_plugin_needs_a_string_name() {
        let path = "plugins/p/.claude-plugin/plugin.json";
        let manifest = json!({"name": "pdf", "version": "1.0.0"});
        assert_eq!(metadata(path, &manifest.to_string()), manifest);
        assert_eq!(failure(path, b"{}"), "plugin.json has no string `name`");
        assert_eq!(
            failure(path, b"\"pdf\""),
            "plugin.json is not a JSON object"
        );
        assert!(failure(path, b"{name: pdf}").starts_with("plugin.json is not valid JSON: "));
    }

    #[test]
    fn a_skill_front_matter_becomes_its_metadata() {
        let meta = metadata("skills/pdf/SKILL.md", SKILL);
        assert_eq!(meta, json!({"name": "pdf", "description": "Reads PDFs."}));
    }

    #[test]
    fn front_matter_tolerates_a_bom_and_crlf_line_ends() {
        let crlf = format!("\u{feff}{}", SKILL.replace('\n', "\r\n"));
        let meta = metadata("SKILL.md", &crlf);
        assert_eq!(meta, json!({"name": "pdf", "description": "Reads PDFs."}));
    }

    #[test]
    fn a_skill_or_agent_without_front_matter_fails() {
        for path in ["SKILL.md", "agents/a.md"] {
            let err = failure(path, b"# Title\n");
            assert!(err.starts_with("no front matter"), "{path}: {err}");
        }
    }

    #[test]
    fn a_skill_or_agent_needs_a_name_and_a_description() {
        for path in ["SKILL.md", "plugins/p/agents/a.md"] {
            let no_name = failure(path, b"---\ndescription: d\n---\n");
            assert_eq!(no_name, "front matter has no `name`", "{path}");
            let no_description = failure(path, b"---\nname: n\n---\n");
            assert_eq!(
                no_description, "front matter has no `description`",
                "{path}"
            );
            let number = failure(path, b"---\nname: n\ndescription: 3\n---\n");
            assert_eq!(
                number, "front matter `description` is not a string",
                "{path}"
            );
            let empty = failure(path, b"---\nname: ' '\ndescription: d\n---\n");
            assert_eq!(empty, "front matter `name` is empty", "{path}");
        }
    }

    #[test]
    fn text_kinds_must_be_utf8() {
        for path in [
            ".claude-plugin/marketplace.json",
            ".claude-plugin/plugin.json",
            "SKILL.md",
            "agents/a.md",
            "commands/c.md",
        ] {
            assert_eq!(
                failure(path, &[b'-', 0xff, 0xfe]),
                "not valid UTF-8",
                "{path}"
            );
        }
    }

    #[test]
    fn a_command_without_front_matter_is_named_after_its_file() {
        let meta = metadata("plugins/p/commands/ops/deploy.md", "Deploy $ARGUMENTS\n");
        assert_eq!(meta, json!({"name": "deploy"}));
        let empty = metadata("commands/x.md", "---\n---\nbody\n");
        assert_eq!(empty, json!({"name": "x"}));
    }

    #[test]
    fn a_command_front_matter_is_kept_and_its_name_wins_over_the_file_name() {
        let text = "---\ndescription: Ship it\nallowed-tools: [Bash]\n---\nbody\n";
        let meta = metadata("commands/deploy.md", text);
        assert_eq!(
            meta,
            json!({"name": "deploy", "description": "Ship it", "allowed-tools": ["Bash"]})
        );
        let named = metadata("commands/deploy.md", "---\nname: release\n---\n");
        assert_eq!(named, json!({"name": "release"}));
    }

    #[test]
    fn a_command_front_matter_must_still_be_a_yaml_mapping() {
        let err = failure("commands/c.md", b"---\njust text\n---\n");
        assert_eq!(err, "front matter is not a YAML mapping");
        let bad = failure("commands/c.md", b"---\na: [\n---\n");
        assert!(bad.starts_with("front matter is not valid YAML: "), "{bad}");
    }
}
