//! The syncer through `hooklog serve` with every role: a target reading a local git repository
//! (`"source"`), commits to it, signed push deliveries naming the new heads, and the synced
//! files, counts and discovery read back through the admin API.

use hooklog_syncer::testing::TestRepo;

use super::*;

/// Writes `files` (path, content; `None` removes the path) and commits; the new head.
pub(super) fn commit(repo: &TestRepo, files: &[(&str, Option<&[u8]>)]) -> String {
    for (path, content) in files {
        match content {
            Some(bytes) => repo.write(path, bytes),
            None => repo.remove(path),
        };
    }
    repo.commit("change").to_string()
}

const MARKETPLACE: &[u8] = br#"{"name": "tools", "owner": {"name": "Codertocat"},
  "plugins": [{"name": "hello", "source": "./plugins/hello", "description": "Says hello"}]}"#;
const PLUGIN: &[u8] = br#"{"name": "hello", "description": "Says hello", "version": "1.0.0"}"#;
const SKILL: &[u8] = b"---\nname: greet\ndescription: Greets the user\n---\nSay hello.\n";
const AGENT: &[u8] = b"---\nname: reviewer\ndescription: Reviews changes\n---\nReview.\n";
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0xfe,
];

/// A push of `head` (after `before`) to `main` of `REPO`, for `installation`.
pub(super) fn push_of(installation: u64, before: &str, head: &str) -> Value {
    let mut body = push(installation, "main", 1);
    body["before"] = json!(before);
    body["after"] = json!(head);
    body
}

/// Waits for the sync run of `head` to finish; the run.
pub(super) async fn finished_run(stack: &Stack, target: &str, head: &str) -> Value {
    let page = stack
        .until(&format!("/v1/admin/targets/{target}/syncs"), |page| {
            items(page).iter().any(|run| {
                run["head_sha"] == head
                    && ["completed", "partial", "failed"].contains(&run["status"].as_str().unwrap())
            })
        })
        .await;
    items(&page)
        .iter()
        .find(|run| run["head_sha"] == head)
        .unwrap()
        .clone()
}

fn counts(run: &Value) -> [u64; 4] {
    ["created", "updated", "deleted", "skipped"].map(|k| run[k].as_u64().unwrap())
}

#[tokio::test]
async fn a_local_git_target_syncs_each_pushed_head_and_shows_its_files_and_discovery() {
    let repo = TestRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let stack = Stack::start_with(
        &[],
        &[
            (
                "HOOKLOG_SYNCER_GIT_CACHE_DIR",
                cache.path().display().to_string(),
            ),
            (
                "HOOKLOG_SYNCER_ALLOWED_SOURCES",
                repo.path().display().to_string(),
            ),
        ],
    )
    .await;
    let installation = 4100;
    connect(&stack, installation).await;
    let source = json!({ "source": repo.path().display().to_string() });
    let (target, position) = track_with(&stack, installation, "main", source).await;
    let shown = stack
        .read(&format!(
            "/v1/admin/targets/{target}?min_position={position}"
        ))
        .await;
    assert_eq!(shown["source"], repo.path().display().to_string());

    // First head: a marketplace with a plugin, a skill, an agent, a README and a binary file.
    let first = commit(
        &repo,
        &[
            (".claude-plugin/marketplace.json", Some(MARKETPLACE)),
            ("plugins/hello/.claude-plugin/plugin.json", Some(PLUGIN)),
            ("plugins/hello/skills/greet/SKILL.md", Some(SKILL)),
            ("plugins/hello/agents/reviewer.md", Some(AGENT)),
            ("README.md", Some(b"# tools\n")),
            ("assets/logo.png", Some(PNG)),
        ],
    );
    stack
        .send(
            "push",
            "sync-push-1",
            &push_of(installation, &sha(0), &first),
        )
        .await;
    let run = finished_run(&stack, &target, &first).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(counts(&run), [6, 0, 0, 0], "{run}");
    assert_eq!(run["reason"], "push");
    assert_eq!(run["delivery_id"], "sync-push-1");

    let files = stack
        .read(&format!("/v1/admin/targets/{target}/files"))
        .await;
    let paths: Vec<&str> = items(&files)
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            ".claude-plugin/marketplace.json",
            "README.md",
            "assets/logo.png",
            "plugins/hello/.claude-plugin/plugin.json",
            "plugins/hello/agents/reviewer.md",
            "plugins/hello/skills/greet/SKILL.md",
        ]
    );
    let discovery = stack
        .read(&format!("/v1/admin/targets/{target}/discovery"))
        .await;
    assert_eq!(discovery["marketplaces"][0]["name"], "tools", "{discovery}");
    assert_eq!(discovery["marketplaces"][0]["plugins"][0]["name"], "hello");
    assert_eq!(discovery["plugins"][0]["name"], "hello");
    assert_eq!(discovery["skills"][0]["name"], "greet");
    assert_eq!(discovery["skills"][0]["description"], "Greets the user");
    assert_eq!(discovery["agents"][0]["name"], "reviewer");

    // Second head: one change, one deletion, one new file, one skill whose front matter breaks.
    let second = commit(
        &repo,
        &[
            ("README.md", Some(b"# tools, now with more\n")),
            ("assets/logo.png", None),
            ("docs/usage.md", Some(b"Use it.\n")),
            (
                "plugins/hello/skills/broken/SKILL.md",
                Some(b"---\nname: [unclosed\n---\n"),
            ),
        ],
    );
    stack
        .send(
            "push",
            "sync-push-2",
            &push_of(installation, &first, &second),
        )
        .await;
    let run = finished_run(&stack, &target, &second).await;
    assert_eq!(run["status"], "partial", "{run}");
    assert_eq!(counts(&run), [1, 1, 1, 4], "{run}");
    let failures = run["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{run}");
    assert_eq!(failures[0]["path"], "plugins/hello/skills/broken/SKILL.md");

    let with_tombstones = stack
        .read(&format!(
            "/v1/admin/targets/{target}/files?include_deleted=true&prefix=assets/"
        ))
        .await;
    let [logo] = items(&with_tombstones).as_slice() else {
        panic!("one tombstone expected: {with_tombstones}");
    };
    assert_eq!(logo["deleted"], true);
    let shown = stack
        .until(&format!("/v1/admin/targets/{target}"), |t| {
            t["last_synced_sha"] == second.as_str()
        })
        .await;
    assert_eq!(shown["status"], "idle", "{shown}");
}
