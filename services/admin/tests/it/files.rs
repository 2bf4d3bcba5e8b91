//! What the syncer holds of a tracked branch, through the admin API: `/files` pages by path and
//! filters by kind, prefix and tombstones; `/file` answers one file with its content; and
//! `/discovery` reads the manifests and front matter of what is not deleted.
//!
//! The syncer that writes `synced_files` (`services/syncer`) is being built elsewhere; until it
//! lands, these tests write its rows directly with SQL, in the shape its migration
//! (`20261125000001_syncer.sql`) defines.

use reqwest::Url;
use serde_json::{json, Value};
use sqlx::types::Json;

use crate::routes::UNKNOWN_TARGET;
use crate::support::{answer, code, App, WRITE_TOKEN};

const INSTALLATION: u64 = 5151;
const OLD_HEAD: &str = "1111111111111111111111111111111111111111";
const NEW_HEAD: &str = "2222222222222222222222222222222222222222";
const OLD_SYNC: &str = "6f1c1a6e-0000-4000-8000-000000000001";
const NEW_SYNC: &str = "6f1c1a6e-0000-4000-8000-000000000002";

/// Tracks a branch through the API; its target id and the position to read it at.
async fn tracked(app: &App) -> (String, u64) {
    let (status, body) = app
        .post(
            "/v1/admin/targets",
            json!({
                "installation_id": INSTALLATION,
                "repository_id": 77,
                "repository": "octo/plugins",
                "branch": "main",
            }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["published"], true, "{body}");
    (
        body["target_id"].as_str().unwrap().to_owned(),
        body["position"].as_u64().unwrap(),
    )
}

/// One `synced_files` row as the syncer would write it.
struct Row {
    path: &'static str,
    kind: &'static str,
    content: Option<&'static [u8]>,
    metadata: Option<Value>,
    /// A tombstone (no content).
    deleted: bool,
    /// Written by the newer sync (`NEW_HEAD`, now) rather than the older (`OLD_HEAD`, a minute ago).
    newest: bool,
}

fn row(path: &'static str, kind: &'static str, content: &'static [u8]) -> Row {
    Row {
        path,
        kind,
        content: Some(content),
        metadata: None,
        deleted: false,
        newest: false,
    }
}

impl Row {
    fn meta(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    fn tombstone(mut self) -> Self {
        self.deleted = true;
        self.content = None;
        self.newest = true;
        self
    }

    fn newest(mut self) -> Self {
        self.newest = true;
        self
    }
}

async fn insert(app: &App, target: &str, rows: Vec<Row>) {
    for (n, row) in rows.into_iter().enumerate() {
        let (sync, head, age) = match row.newest {
            true => (NEW_SYNC, NEW_HEAD, 0.0),
            false => (OLD_SYNC, OLD_HEAD, 60.0),
        };
        sqlx::query(
            "INSERT INTO synced_files (target_id, path, blob_sha, size, content, kind, metadata, \
             deleted, sync_id, head_sha, synced_at) \
             VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9::uuid, $10, \
             now() - make_interval(secs => $11))",
        )
        .bind(target)
        .bind(row.path)
        .bind(format!("{:040x}", n + 1))
        .bind(row.content.map_or(0, |c| c.len() as i64))
        .bind(row.content)
        .bind(row.kind)
        .bind(row.metadata.map(Json))
        .bind(row.deleted)
        .bind(sync)
        .bind(head)
        .bind(age)
        .execute(&app.pool)
        .await
        .unwrap();
    }
}

/// A plugin marketplace repository: 10 files on the branch and 2 tombstones.
fn branch() -> Vec<Row> {
    vec![
        row("skills/zeta/SKILL.md", "skill", b"---\nname: zeta\n---\n")
            .meta(json!({"name": "zeta", "description": "Last letter"})),
        row("README.md", "file", b"# Tools\n"),
        row(".claude-plugin/marketplace.json", "marketplace", b"{}").meta(json!({
            "name": "octo-tools",
            "owner": {"name": "Octo", "email": "octo@example.com"},
            "plugins": [
                {"name": "lint", "source": "./plugins/lint", "description": "Lints prose"},
                {"name": "old", "source": "./plugins/old"},
            ],
        })),
        row("logo.png", "file", b"\x89PNG\r\n\x1a\n\xff\x00"),
        row("plugins/lint/.claude-plugin/plugin.json", "plugin", b"{}").meta(json!({
            "name": "lint", "description": "Lints prose", "version": "1.4.0",
        })),
        row("plugins/lint/skills/style/SKILL.md", "skill", b"---\n---\n")
            .meta(json!({"name": "style", "description": "House style"})),
        row("plugins/lint/agents/fixer.md", "agent", b"---\n---\n")
            .meta(json!({"name": "fixer", "description": "Fixes what lint finds"})),
        row("plugins/lint/commands/run.md", "command", b"---\n---\n")
            .meta(json!({"name": "run"}))
            .newest(),
        row("skills/alpha/SKILL.md", "skill", b"---\n---\n")
            .meta(json!({"name": "alpha", "description": "First letter"})),
        row("docs/guide.md", "file", b"Guide\n"),
        row("plugins/old/.claude-plugin/plugin.json", "plugin", b"")
            .meta(json!({"name": "old"}))
            .tombstone(),
        row("skills/gone/SKILL.md", "skill", b"")
            .meta(json!({"name": "gone", "description": "Deleted"}))
            .tombstone(),
    ]
}

/// The branch's paths in byte order, tombstones only when asked for.
fn paths(tombstones: bool) -> Vec<&'static str> {
    let mut paths: Vec<_> = branch()
        .into_iter()
        .filter(|r| tombstones || !r.deleted)
        .map(|r| r.path)
        .collect();
    paths.sort_unstable();
    paths
}

/// Every page of a `/files` query, `limit` at a time; the paths listed.
async fn all_pages(app: &App, target: &str, query: &str, limit: u32) -> Vec<String> {
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = vec![("limit".to_owned(), limit.to_string())];
        params.extend(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap())
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        if let Some(cursor) = &cursor {
            params.push(("cursor".to_owned(), cursor.clone()));
        }
        let (status, page) =
            get_with(app, &format!("/v1/admin/targets/{target}/files"), &params).await;
        assert_eq!(status, 200, "{query}: {page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize, "{page}");
        for item in items {
            assert!(
                item.get("content").is_none(),
                "no content in a list: {item}"
            );
            listed.push(item["path"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), listed.last().map(String::as_str), "{page}");
                cursor = Some(next.to_owned());
            }
            None => return listed,
        }
    }
}

async fn file(app: &App, target: &str, path: &str) -> (u16, Value) {
    let path = [("path".to_owned(), path.to_owned())];
    get_with(app, &format!("/v1/admin/targets/{target}/file"), &path).await
}

/// A GET with these query parameters, encoded.
async fn get_with(app: &App, path: &str, params: &[(String, String)]) -> (u16, Value) {
    let mut url = Url::parse(&format!("{}{path}", app.url)).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    answer(app.http.get(url).bearer_auth(WRITE_TOKEN)).await
}

#[tokio::test]
async fn files_are_paged_by_path_and_filtered_by_kind_prefix_and_tombstones() {
    let app = App::start().await;
    let (target, at) = tracked(&app).await;
    let (status, empty) = app
        .get(&format!(
            "/v1/admin/targets/{target}/files?min_position={at}"
        ))
        .await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty, json!({"items": [], "next_cursor": null}));
    insert(&app, &target, branch()).await;

    assert_eq!(all_pages(&app, &target, "", 3).await, paths(false));
    assert_eq!(all_pages(&app, &target, "", 50).await, paths(false));
    assert_eq!(
        all_pages(&app, &target, "include_deleted=true", 5).await,
        paths(true)
    );
    assert_eq!(
        all_pages(&app, &target, "include_deleted=false", 500).await,
        paths(false)
    );
    assert_eq!(
        all_pages(&app, &target, "kind=skill", 2).await,
        [
            "plugins/lint/skills/style/SKILL.md",
            "skills/alpha/SKILL.md",
            "skills/zeta/SKILL.md"
        ]
    );
    assert_eq!(
        all_pages(&app, &target, "kind=skill&include_deleted=true", 2).await,
        [
            "plugins/lint/skills/style/SKILL.md",
            "skills/alpha/SKILL.md",
            "skills/gone/SKILL.md",
            "skills/zeta/SKILL.md"
        ]
    );
    assert_eq!(
        all_pages(&app, &target, "prefix=plugins/", 2).await,
        [
            "plugins/lint/.claude-plugin/plugin.json",
            "plugins/lint/agents/fixer.md",
            "plugins/lint/commands/run.md",
            "plugins/lint/skills/style/SKILL.md"
        ]
    );
    assert_eq!(
        all_pages(
            &app,
            &target,
            "prefix=plugins/&kind=plugin&include_deleted=true",
            50
        )
        .await,
        [
            "plugins/lint/.claude-plugin/plugin.json",
            "plugins/old/.claude-plugin/plugin.json"
        ]
    );
    assert!(all_pages(&app, &target, "prefix=nothing/", 50)
        .await
        .is_empty());

    // An item as listed: everything but the content.
    let (status, page) = app
        .get(&format!(
            "/v1/admin/targets/{target}/files?kind=plugin&include_deleted=true"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let [lint, old] = page["items"].as_array().unwrap().as_slice() else {
        panic!("two plugins: {page}");
    };
    assert_eq!(lint["kind"], "plugin");
    assert_eq!(lint["size"], 2);
    assert_eq!(lint["deleted"], false);
    assert_eq!(lint["metadata"]["version"], "1.4.0");
    assert_eq!(lint["sync_id"], OLD_SYNC);
    assert_eq!(lint["head_sha"], OLD_HEAD);
    assert_eq!(lint["blob_sha"].as_str().unwrap().len(), 40);
    assert!(lint["synced_at"].as_str().unwrap().contains('T'), "{lint}");
    assert_eq!(old["deleted"], true);
    assert_eq!(old["head_sha"], NEW_HEAD);
    assert_eq!(page["next_cursor"], Value::Null);

    for bad in ["limit=0", "limit=501"] {
        let (status, body) = app
            .get(&format!("/v1/admin/targets/{target}/files?{bad}"))
            .await;
        assert_eq!((status, code(&body)), (400, "bad_filter"), "{bad}: {body}");
    }
}

#[tokio::test]
async fn one_file_is_read_with_its_content_as_text_or_base64() {
    let app = App::start().await;
    let (target, at) = tracked(&app).await;
    insert(&app, &target, branch()).await;

    let (status, readme) = app
        .get(&format!(
            "/v1/admin/targets/{target}/file?path=README.md&min_position={at}"
        ))
        .await;
    assert_eq!(status, 200, "{readme}");
    assert_eq!(readme["path"], "README.md");
    assert_eq!(readme["kind"], "file");
    assert_eq!(readme["size"], 8);
    assert_eq!(readme["content"], "# Tools\n");
    assert!(readme.get("content_base64").is_none(), "{readme}");

    let (status, logo) = file(&app, &target, "logo.png").await;
    assert_eq!(status, 200, "{logo}");
    assert_eq!(logo["content_base64"], "iVBORw0KGgr/AA==");
    assert!(logo.get("content").is_none(), "{logo}");

    let (status, manifest) = file(&app, &target, ".claude-plugin/marketplace.json").await;
    assert_eq!(status, 200, "{manifest}");
    assert_eq!(manifest["content"], "{}");
    assert_eq!(manifest["metadata"]["name"], "octo-tools");

    let (status, gone) = file(&app, &target, "skills/gone/SKILL.md").await;
    assert_eq!(status, 200, "{gone}");
    assert_eq!(gone["deleted"], true);
    assert!(gone.get("content").is_none() && gone.get("content_base64").is_none());

    let (status, body) = file(&app, &target, "no/such/file.md").await;
    assert_eq!((status, code(&body)), (404, "file_not_found"), "{body}");
    let (status, body) = app.get(&format!("/v1/admin/targets/{target}/file")).await;
    assert_eq!((status, code(&body)), (400, "bad_query"), "{body}");
}

#[tokio::test]
async fn discovery_lists_what_the_branch_holds_by_kind_in_path_order_without_tombstones() {
    let app = App::start().await;
    let (target, at) = tracked(&app).await;
    let (status, nothing) = app
        .get(&format!(
            "/v1/admin/targets/{target}/discovery?min_position={at}"
        ))
        .await;
    assert_eq!(status, 200, "{nothing}");
    assert_eq!(
        nothing,
        json!({
            "target_id": target, "head_sha": null, "marketplaces": [], "plugins": [],
            "skills": [], "agents": [], "commands": [],
        })
    );
    insert(&app, &target, branch()).await;

    let (status, found) = app
        .get(&format!("/v1/admin/targets/{target}/discovery"))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found,
        json!({
            "target_id": target,
            "head_sha": NEW_HEAD,
            "marketplaces": [{
                "path": ".claude-plugin/marketplace.json",
                "name": "octo-tools",
                "owner": {"name": "Octo", "email": "octo@example.com"},
                "plugins": [
                    {"name": "lint", "source": "./plugins/lint", "description": "Lints prose"},
                    {"name": "old", "source": "./plugins/old", "description": null},
                ],
            }],
            "plugins": [{
                "path": "plugins/lint/.claude-plugin/plugin.json",
                "name": "lint", "description": "Lints prose", "version": "1.4.0",
            }],
            "skills": [
                {"path": "plugins/lint/skills/style/SKILL.md", "name": "style",
                 "description": "House style"},
                {"path": "skills/alpha/SKILL.md", "name": "alpha", "description": "First letter"},
                {"path": "skills/zeta/SKILL.md", "name": "zeta", "description": "Last letter"},
            ],
            "agents": [{"path": "plugins/lint/agents/fixer.md", "name": "fixer",
                        "description": "Fixes what lint finds"}],
            "commands": [{"path": "plugins/lint/commands/run.md", "name": "run",
                          "description": null}],
        })
    );
}

#[tokio::test]
async fn the_files_of_an_unknown_target_are_not_found() {
    let app = App::start().await;
    for route in ["files", "file?path=README.md", "discovery"] {
        let (status, body) = app
            .get(&format!("/v1/admin/targets/{UNKNOWN_TARGET}/{route}"))
            .await;
        assert_eq!(
            (status, code(&body)),
            (404, "target_not_found"),
            "{route}: {body}"
        );
        let (status, body) = app
            .get(&format!("/v1/admin/targets/not-a-target/{route}"))
            .await;
        assert_eq!((status, code(&body)), (400, "bad_id"), "{route}: {body}");
    }
}

#[tokio::test]
async fn an_unknown_kind_or_parameter_is_a_bad_request() {
    let app = App::start().await;
    let (target, at) = tracked(&app).await;
    let (status, body) = app
        .get(&format!(
            "/v1/admin/targets/{target}/files?kind=skills&min_position={at}"
        ))
        .await;
    assert_eq!((status, code(&body)), (400, "bad_filter"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"skills\"") && message.contains("marketplace, plugin, skill"),
        "{message}"
    );
    let (status, body) = app
        .get(&format!("/v1/admin/targets/{target}/files?deleted=true"))
        .await;
    assert_eq!((status, code(&body)), (400, "bad_query"), "{body}");
    let (status, body) = app
        .get(&format!(
            "/v1/admin/targets/{target}/files?include_deleted=maybe"
        ))
        .await;
    assert_eq!((status, code(&body)), (400, "bad_query"), "{body}");
}
