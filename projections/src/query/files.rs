//! The syncer's copy of each tracked branch (`synced_files`) as the admin API shows it: a
//! target's files by path, one file with its bytes, and discovery: the marketplaces, plugins,
//! skills, agents and commands the branch holds, read from their parsed manifests and front
//! matter.
//!
//! These rows are the syncer's output, not a projection of a stream, so they carry no stream
//! position: lists page by path (the cursor is the last path returned). Paths are compared
//! byte-wise (`COLLATE "C"`), the order git and Rust give them, whatever the database's collation.

use hooklog_domain::ids::TargetId;
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{one_of, Page, PageRequest, QueryError};

pub const FILE_KINDS: &[&str] = &["marketplace", "plugin", "skill", "agent", "command", "file"];

#[derive(Debug, Default, Clone)]
pub struct FileFilter {
    /// One of [`FILE_KINDS`].
    pub kind: Option<String>,
    /// Only paths that start with this.
    pub prefix: Option<String>,
    /// Tombstones too (paths gone from the branch).
    pub include_deleted: bool,
}

/// A synced file without its content.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct SyncedFileView {
    pub path: String,
    /// Git blob SHA of the content synced last (of the last content, for a tombstone).
    pub blob_sha: String,
    pub size: i64,
    /// marketplace, plugin, skill, agent, command or file.
    pub kind: String,
    /// The parsed manifest (marketplace, plugin) or YAML front matter (skill, agent, command).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Json<Value>>,
    /// A tombstone: the path is gone from the branch (or filtered out) and has no content.
    pub deleted: bool,
    /// The sync that last changed the file.
    pub sync_id: Uuid,
    /// The head that sync read.
    pub head_sha: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub synced_at: OffsetDateTime,
}

/// A synced file with its bytes (none for a tombstone).
#[derive(Debug, sqlx::FromRow)]
pub struct SyncedFile {
    #[sqlx(flatten)]
    pub file: SyncedFileView,
    pub content: Option<Vec<u8>>,
}

const FILE_COLUMNS: &str =
    "path, blob_sha, size, kind, metadata, deleted, sync_id, head_sha, synced_at";

/// A target's files in path order.
pub async fn files(
    pool: &PgPool,
    target: TargetId,
    filter: &FileFilter,
    page: &PageRequest,
) -> Result<Page<SyncedFileView>, QueryError> {
    one_of("kind", &filter.kind, FILE_KINDS)?;
    let limit = page.limit()?;
    let rows = sqlx::query_as::<_, SyncedFileView>(&format!(
        "SELECT {FILE_COLUMNS} FROM synced_files WHERE target_id = $1 \
         AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR starts_with(path, $3)) \
         AND ($4 OR NOT deleted) AND ($5::text IS NULL OR path COLLATE \"C\" > $5) \
         ORDER BY path COLLATE \"C\" LIMIT $6"
    ))
    .bind(target.0)
    .bind(&filter.kind)
    .bind(&filter.prefix)
    .bind(filter.include_deleted)
    .bind(&page.cursor)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::of(rows, limit, |f| f.path.clone()))
}

/// One file of a target, tombstone or not.
pub async fn file(
    pool: &PgPool,
    target: TargetId,
    path: &str,
) -> Result<Option<SyncedFile>, QueryError> {
    Ok(sqlx::query_as::<_, SyncedFile>(&format!(
        "SELECT {FILE_COLUMNS}, content FROM synced_files WHERE target_id = $1 AND path = $2"
    ))
    .bind(target.0)
    .bind(path)
    .fetch_optional(pool)
    .await?)
}

/// What a branch holds, by kind, each list in path order. Names and descriptions come from the
/// manifests and front matter as the syncer parsed them: one a file lacks is null.
#[derive(Debug, Serialize, ToSchema)]
pub struct Discovery {
    pub target_id: Uuid,
    /// The newest head among the target's files, tombstones included (a sync that only deleted
    /// files still read that head); null before the first sync.
    pub head_sha: Option<String>,
    pub marketplaces: Vec<MarketplaceEntry>,
    pub plugins: Vec<PluginEntry>,
    pub skills: Vec<ComponentEntry>,
    pub agents: Vec<ComponentEntry>,
    pub commands: Vec<ComponentEntry>,
}

/// A marketplace manifest (`.claude-plugin/marketplace.json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct MarketplaceEntry {
    pub path: String,
    pub name: Option<String>,
    /// As the manifest gives it (`{"name", "email"?}`).
    #[schema(value_type = Option<Object>)]
    pub owner: Option<Value>,
    pub plugins: Vec<ListedPlugin>,
}

/// A plugin a marketplace lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedPlugin {
    pub name: Option<String>,
    /// As the manifest gives it: a path relative to the marketplace, or a source object.
    pub source: Option<Value>,
    pub description: Option<String>,
}

/// A plugin manifest (`.claude-plugin/plugin.json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginEntry {
    pub path: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
}

/// A skill, agent or command: its front matter's name and description.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentEntry {
    pub path: String,
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct DiscoveryRow {
    path: String,
    kind: String,
    metadata: Option<Json<Value>>,
}

/// The discovery of a target from its files that are not tombstones.
pub async fn discovery(pool: &PgPool, target: TargetId) -> Result<Discovery, QueryError> {
    let head_sha: Option<String> = sqlx::query_scalar(
        "SELECT head_sha FROM synced_files WHERE target_id = $1 \
         ORDER BY synced_at DESC LIMIT 1",
    )
    .bind(target.0)
    .fetch_optional(pool)
    .await?;
    let rows = sqlx::query_as::<_, DiscoveryRow>(
        "SELECT path, kind, metadata FROM synced_files \
         WHERE target_id = $1 AND NOT deleted AND kind <> 'file' ORDER BY path COLLATE \"C\"",
    )
    .bind(target.0)
    .fetch_all(pool)
    .await?;
    Ok(discover(target, head_sha, rows))
}

/// `rows` are in path order; so are the lists.
fn discover(target: TargetId, head_sha: Option<String>, rows: Vec<DiscoveryRow>) -> Discovery {
    let mut found = Discovery {
        target_id: target.0,
        head_sha,
        marketplaces: Vec::new(),
        plugins: Vec::new(),
        skills: Vec::new(),
        agents: Vec::new(),
        commands: Vec::new(),
    };
    for row in rows {
        let meta = row.metadata.map(|Json(value)| value).unwrap_or_default();
        let path = row.path;
        match row.kind.as_str() {
            "marketplace" => found.marketplaces.push(MarketplaceEntry {
                path,
                name: text(&meta, "name"),
                owner: meta.get("owner").filter(|o| !o.is_null()).cloned(),
                plugins: meta
                    .get("plugins")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|p| p.is_object())
                    .map(|p| ListedPlugin {
                        name: text(p, "name"),
                        source: p.get("source").filter(|s| !s.is_null()).cloned(),
                        description: text(p, "description"),
                    })
                    .collect(),
            }),
            "plugin" => found.plugins.push(PluginEntry {
                path,
                name: text(&meta, "name"),
                description: text(&meta, "description"),
                version: text(&meta, "version"),
            }),
            kind => {
                let entry = ComponentEntry {
                    path,
                    name: text(&meta, "name"),
                    description: text(&meta, "description"),
                };
                match kind {
                    "skill" => found.skills.push(entry),
                    "agent" => found.agents.push(entry),
                    "command" => found.commands.push(entry),
                    // `file`s are not selected; the table allows no other kind.
                    _ => {}
                }
            }
        }
    }
    found
}

/// A string field of a manifest; anything else (absent, a number, a list) is none.
fn text(meta: &Value, key: &str) -> Option<String> {
    meta.get(key)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(path: &str, kind: &str, metadata: Option<Value>) -> DiscoveryRow {
        DiscoveryRow {
            path: path.to_owned(),
            kind: kind.to_owned(),
            metadata: metadata.map(Json),
        }
    }

    #[test]
    fn manifests_and_front_matter_become_discovery_entries_by_kind() {
        let target = TargetId(Uuid::nil());
        let rows = vec![
            row(
                ".claude-plugin/marketplace.json",
                "marketplace",
                Some(json!({
                    "name": "tools",
                    "owner": {"name": "Octo"},
                    "plugins": [
                        {"name": "lint", "source": "./plugins/lint", "description": "Lints"},
                        {"name": "remote", "source": {"source": "github", "repo": "o/r"}},
                        "not a plugin",
                    ],
                })),
            ),
            row(
                "plugins/lint/.claude-plugin/plugin.json",
                "plugin",
                Some(json!({"name": "lint", "version": "1.2.0"})),
            ),
            row(
                "plugins/lint/agents/fix.md",
                "agent",
                Some(json!({"name": "fix", "description": "Fixes"})),
            ),
            row(
                "plugins/lint/commands/run.md",
                "command",
                Some(json!({"name": "run"})),
            ),
            row(
                "skills/a/SKILL.md",
                "skill",
                Some(json!({"name": "a", "description": 3})),
            ),
            row("skills/b/SKILL.md", "skill", None),
        ];
        let found = discover(target, Some("abc".into()), rows);
        let value = serde_json::to_value(&found).unwrap();
        assert_eq!(
            value,
            json!({
                "target_id": Uuid::nil(),
                "head_sha": "abc",
                "marketplaces": [{
                    "path": ".claude-plugin/marketplace.json",
                    "name": "tools",
                    "owner": {"name": "Octo"},
                    "plugins": [
                        {"name": "lint", "source": "./plugins/lint", "description": "Lints"},
                        {"name": "remote", "source": {"source": "github", "repo": "o/r"},
                         "description": null},
                    ],
                }],
                "plugins": [{"path": "plugins/lint/.claude-plugin/plugin.json", "name": "lint",
                             "description": null, "version": "1.2.0"}],
                "skills": [
                    {"path": "skills/a/SKILL.md", "name": "a", "description": null},
                    {"path": "skills/b/SKILL.md", "name": null, "description": null},
                ],
                "agents": [{"path": "plugins/lint/agents/fix.md", "name": "fix",
                            "description": "Fixes"}],
                "commands": [{"path": "plugins/lint/commands/run.md", "name": "run",
                              "description": null}],
            })
        );
    }

    #[test]
    fn a_marketplace_without_plugins_lists_none() {
        let target = TargetId(Uuid::nil());
        let rows = vec![row(
            "m.json",
            "marketplace",
            Some(json!({"name": "m", "plugins": {"not": "a list"}})),
        )];
        let found = discover(target, None, rows);
        assert!(found.marketplaces[0].plugins.is_empty());
        assert_eq!(found.marketplaces[0].owner, None);
    }
}
