//! Syncs through the executor and the target aggregate, from a real git repository: first a
//! repository with nested plugins, skills and binary files, then commits that add, change,
//! delete and rename files; counts, files and tombstones after each. Run once with the git
//! source and once through the fake GitHub.

use std::sync::Arc;

use hooklog_domain::connector_target::SyncStatus;
use hooklog_domain::ids::TargetId;
use hooklog_domain::source::AllowedSources;
use hooklog_syncer::source::github::{GithubApp, GithubAppConfig};
use hooklog_syncer::testing::{FakeGithub, Fault, TestRepo};
use hooklog_syncer::{Executor, Settled};

use crate::support::{Harness, ZERO};

const MARKETPLACE: &str = r#"{"name": "tools", "owner": {"name": "octo"},
  "plugins": [{"name": "hello", "source": "./plugins/hello"}]}"#;
const PLUGIN: &str = r#"{"name": "hello", "version": "1.0.0"}"#;
const SKILL: &str = "---\nname: greet\ndescription: Greets\n---\nSay hello.\n";
const BINARY: &[u8] = &[0, 159, 146, 150, 255, 0, 1, 2];

/// Runs the sync `push` requested to its end; what it reported.
async fn sync_push(
    h: &Harness,
    executor: &Executor,
    target: TargetId,
    before: &str,
    repo: &TestRepo,
) -> [u64; 4] {
    let head = repo.head();
    let sync = h
        .push(target, before, &head)
        .await
        .expect("a sync requested");
    match executor.execute(target, sync, "test").await.unwrap() {
        Settled::Completed(result) => {
            assert_eq!(result.status, SyncStatus::Completed, "{result:?}");
            [
                result.created,
                result.updated,
                result.deleted,
                result.skipped,
            ]
        }
        other => panic!("sync of {head} ended {other:?}"),
    }
}

async fn paths(h: &Harness, target: TargetId) -> Vec<String> {
    h.live_files(target)
        .await
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}

/// The story both sources must tell the same way.
async fn add_change_delete_rename(
    h: &Harness,
    executor: &Executor,
    target: TargetId,
    repo: &TestRepo,
) {
    repo.write(".claude-plugin/marketplace.json", MARKETPLACE)
        .write("plugins/hello/.claude-plugin/plugin.json", PLUGIN)
        .write("plugins/hello/skills/greet/SKILL.md", SKILL)
        .write("plugins/hello/skills/greet/assets/icon.bin", BINARY)
        .write(
            "plugins/hello/agents/reviewer.md",
            "---\nname: r\ndescription: d\n---\n",
        )
        .write("README.md", "# tools\n");
    let first = repo.commit("first");
    assert_eq!(
        sync_push(h, executor, target, ZERO, repo).await,
        [6, 0, 0, 0]
    );
    assert_eq!(paths(h, target).await.len(), 6);

    // Add one file, change one.
    repo.write("docs/usage.md", "Use it.\n")
        .write("README.md", "# tools, changed\n");
    let second = repo.commit("add and change");
    assert_eq!(
        sync_push(h, executor, target, first.as_str(), repo).await,
        [1, 1, 0, 5]
    );

    // Delete one file.
    repo.remove("plugins/hello/skills/greet/assets/icon.bin");
    let third = repo.commit("delete");
    assert_eq!(
        sync_push(h, executor, target, second.as_str(), repo).await,
        [0, 0, 1, 6]
    );
    assert_eq!(
        h.tombstones(target).await,
        ["plugins/hello/skills/greet/assets/icon.bin"]
    );

    // Rename one: a deletion and a creation of the same blob.
    repo.rename("docs/usage.md", "docs/guide.md");
    repo.commit("rename");
    assert_eq!(
        sync_push(h, executor, target, third.as_str(), repo).await,
        [1, 0, 1, 5]
    );
    assert_eq!(
        h.tombstones(target).await,
        [
            "docs/usage.md",
            "plugins/hello/skills/greet/assets/icon.bin"
        ]
    );
    let live = paths(h, target).await;
    assert!(live.contains(&"docs/guide.md".to_owned()), "{live:?}");
    assert!(!live.contains(&"docs/usage.md".to_owned()), "{live:?}");

    // What is stored is what git has, byte for byte.
    let content: Vec<u8> = sqlx::query_scalar(
        "SELECT content FROM synced_files WHERE target_id = $1 AND path = 'README.md'",
    )
    .bind(target.0)
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(content, b"# tools, changed\n");
    let kinds: Vec<(String, String)> = sqlx::query_as(
        "SELECT path, kind FROM synced_files WHERE target_id = $1 AND kind <> 'file' \
         ORDER BY path COLLATE \"C\"",
    )
    .bind(target.0)
    .fetch_all(&h.pool)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        [
            (
                ".claude-plugin/marketplace.json".to_owned(),
                "marketplace".to_owned()
            ),
            (
                "plugins/hello/.claude-plugin/plugin.json".to_owned(),
                "plugin".to_owned()
            ),
            (
                "plugins/hello/agents/reviewer.md".to_owned(),
                "agent".to_owned()
            ),
            (
                "plugins/hello/skills/greet/SKILL.md".to_owned(),
                "skill".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn a_git_source_syncs_adds_changes_deletions_and_renames_with_exact_counts_and_tombstones() {
    let h = Harness::start().await;
    let repo = TestRepo::new();
    let target = h.track(Some(&repo.path().display().to_string())).await;
    let unused = Arc::new(GithubApp::new(GithubAppConfig::default()).unwrap());
    let executor = h.executor(h.sources(unused));
    add_change_delete_rename(&h, &executor, target, &repo).await;
}

#[tokio::test]
async fn the_github_app_source_syncs_adds_changes_deletions_and_renames_with_exact_counts() {
    let h = Harness::start().await;
    let repo = TestRepo::new();
    let github = FakeGithub::start_for(&repo).await;
    let target = h.track(None).await;
    let executor = h.executor(h.sources(Arc::new(github.app())));
    add_change_delete_rename(&h, &executor, target, &repo).await;
    // Only what changed was fetched: 6 + 2 + 0 + 1 blobs over the four syncs.
    assert_eq!(github.blob_fetches(), 9);
}

#[tokio::test]
async fn a_sync_interrupted_after_its_commit_is_reported_once_with_its_first_figures() {
    let h = Harness::start().await;
    let repo = TestRepo::new();
    repo.write("a.md", "a").write("b.md", "b");
    let head = repo.commit("first");
    let target = h.track(Some(&repo.path().display().to_string())).await;
    let unused = Arc::new(GithubApp::new(GithubAppConfig::default()).unwrap());
    let sources = h.sources(unused);
    let executor = h.executor(sources.clone());
    let sync = h.push(target, ZERO, &head).await.unwrap();

    // The first run started the sync and committed its files, then "crashed" before reporting.
    h.bus
        .target(
            target,
            hooklog_domain::connector_target::TargetCommand::StartSync { sync_id: sync },
            &crate::support::operator(),
        )
        .await
        .unwrap();
    let state = h.bus.load_target(target).await.unwrap();
    let job = hooklog_syncer::sync::SyncJob {
        target_id: target,
        sync_id: sync,
        head_sha: head.clone(),
        repo: hooklog_syncer::source::RepoRef {
            owner: state.owner().unwrap(),
            repository_id: state.repository_id().unwrap(),
            repository: state.repository().unwrap().clone(),
            source: state.source().cloned(),
        },
        filters: Default::default(),
    };
    let limits = hooklog_syncer::sync::SyncLimits::default();
    let first = hooklog_syncer::sync::run(&h.pool, &sources, &limits, &job)
        .await
        .unwrap();
    assert_eq!(first.created, 2);

    // Run again (a redelivery): reported with the first run's figures, not a second diff's.
    let Settled::Completed(again) = executor.execute(target, sync, "test").await.unwrap() else {
        panic!("the sync should complete");
    };
    assert_eq!(again, first);
    // And a third time: the sync is no longer in flight, nothing is reported.
    assert_eq!(
        executor.execute(target, sync, "test").await.unwrap(),
        Settled::NotInFlight
    );
    let types = h.event_types(target).await;
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    assert_eq!(
        (count("SyncStarted"), count("SyncCompleted")),
        (1, 1),
        "{types:?}"
    );
}

#[tokio::test]
async fn a_sync_survives_a_rate_limit_a_bad_gateway_and_a_truncated_tree_from_github() {
    let h = Harness::start().await;
    let repo = TestRepo::new();
    repo.write(".claude-plugin/marketplace.json", MARKETPLACE)
        .write("plugins/hello/.claude-plugin/plugin.json", PLUGIN)
        .write("plugins/hello/skills/greet/SKILL.md", SKILL)
        .write("plugins/hello/skills/greet/assets/icon.bin", BINARY);
    repo.commit("first");
    let github = FakeGithub::start_for(&repo).await;
    github.set_truncated(true);
    github.fail_next("/git/trees/", Fault::BadGateway, 1);
    github.fail_next("/git/blobs/", Fault::RateLimit403 { reset_in_secs: 1 }, 1);
    github.fail_next("/git/blobs/", Fault::BadGateway, 2);
    let target = h.track(None).await;
    let executor = h.executor(h.sources(Arc::new(github.app())));
    assert_eq!(
        sync_push(&h, &executor, target, ZERO, &repo).await,
        [4, 0, 0, 0]
    );
    let stored: Vec<u8> = sqlx::query_scalar(
        "SELECT content FROM synced_files WHERE target_id = $1 AND path LIKE '%icon.bin'",
    )
    .bind(target.0)
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(stored, BINARY);
}

#[tokio::test]
async fn files_that_cannot_be_taken_make_a_partial_sync_that_lists_each_with_its_reason() {
    let h = Harness::start().await;
    let repo = TestRepo::new();
    repo.write("ok.md", "fine\n")
        .write("skills/bad/SKILL.md", "no front matter\n")
        .write("agents/latin1.md", [0x2d, 0x2d, 0x2d, 0x0a, 0xe9, 0x0a])
        .write("big.bin", vec![7u8; 2 * 1024 * 1024]);
    repo.commit("first");
    let target = h.track(Some(&repo.path().display().to_string())).await;
    let unused = Arc::new(GithubApp::new(GithubAppConfig::default()).unwrap());
    let executor = h.executor(h.sources(unused));
    let sync = h.push(target, ZERO, &repo.head()).await.unwrap();
    let Settled::Completed(result) = executor.execute(target, sync, "test").await.unwrap() else {
        panic!("the sync should complete");
    };
    assert_eq!(result.status, SyncStatus::Partial);
    assert_eq!(
        [
            result.created,
            result.updated,
            result.deleted,
            result.skipped
        ],
        [1, 0, 0, 0]
    );
    let failed: Vec<(&str, &str)> = result
        .failures
        .iter()
        .map(|f| (f.path.as_str(), f.reason.as_str()))
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert_eq!(failed[0].0, "agents/latin1.md");
    assert!(failed[0].1.contains("UTF-8"), "{failed:?}");
    assert_eq!(failed[1].0, "big.bin");
    assert!(failed[1].1.contains("too large"), "{failed:?}");
    assert_eq!(failed[2].0, "skills/bad/SKILL.md");
    assert!(failed[2].1.contains("front matter"), "{failed:?}");
    // Failed files are not materialized: only ok.md is there.
    assert_eq!(
        h.live_files(target).await.len(),
        1,
        "{:?}",
        h.live_files(target).await
    );
    h.until_run(sync, "partial").await;
}

#[tokio::test]
async fn a_target_stored_with_a_source_no_longer_allowed_fails_its_sync_naming_the_setting_and_fetches_nothing(
) {
    let h = Harness::start().await;
    let repo = TestRepo::new();
    let head = repo.write("a.md", "a").commit("first");
    // Tracked through the bus, as an earlier hooklog (or an earlier setting) let it be.
    let target = h
        .track(Some(&format!("file://{}", repo.path().display())))
        .await;
    let sync = h.push(target, ZERO, &head).await.unwrap();
    let unused = Arc::new(GithubApp::new(GithubAppConfig::default()).unwrap());
    let today = AllowedSources::parse("/srv/git").unwrap();
    let executor = h.executor(h.sources_allowing(unused, today));

    let settled = executor.execute(target, sync, "test").await.unwrap();

    let Settled::Failed { error, retryable } = settled else {
        panic!("the sync should fail: {settled:?}");
    };
    assert!(error.contains("HOOKLOG_SYNCER_ALLOWED_SOURCES"), "{error}");
    assert!(!retryable, "only a changed setting (and a retry) can help");
    h.until_run(sync, "failed").await;
    let shown: Option<String> =
        sqlx::query_scalar("SELECT error FROM sync_runs WHERE sync_id = $1")
            .bind(sync.0)
            .fetch_one(&h.pool)
            .await
            .unwrap();
    assert_eq!(shown.as_deref(), Some(error.as_str()));
    assert!(h.live_files(target).await.is_empty());
    let mirrors = std::fs::read_dir(h.cache.path()).unwrap().count();
    assert_eq!(mirrors, 0, "the source was never fetched");
}
