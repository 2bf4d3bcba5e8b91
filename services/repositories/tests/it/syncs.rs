//! A connection's branch is synced like an App target's: its webhook's creation tracks the
//! branch (the process manager), its pushes request syncs (the worker), the syncer reads the
//! repository with the connection's token from the vault (GitHub's API; a GitLab project over
//! git's smart HTTP, the token in a header), and a disconnect removes the target.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hooklog_domain::ids::TargetId;
use hooklog_domain::repository_connection::ConnectionId;
use hooklog_syncer::source::github::GithubApp;
use hooklog_syncer::source::local::LocalGit;
use hooklog_syncer::source::Sources;
use hooklog_syncer::sync::SyncLimits;
use hooklog_syncer::testing::{FakeGithub, TestRepo};
use hooklog_syncer::{Executor, ReconcileConfig, SyncerConfig};
use serde_json::{json, Value};

use crate::support::*;

/// The connection's world plus the process manager and the syncer's consumer (no reconcile
/// loop: a sync here is a push's, or a reconcile pass the test runs), reading GitHub's
/// repository data from `github`.
struct Syncing {
    world: World,
    github: FakeGithub,
    executor: Executor,
    _cache: tempfile::TempDir,
}

impl Syncing {
    async fn start(repo: &TestRepo) -> Self {
        let world = World::start().await;
        let github = FakeGithub::start_for(repo).await;
        github.add_repository_token(TOKEN);
        let app = GithubApp::new(github.app_config())
            .unwrap()
            .with_vault(Some(world.vault.clone()));
        let cache = tempfile::tempdir().unwrap();
        // Nothing is allowed as a source by the setting: a GitLab connection's project is read
        // because it is on the configured GitLab.
        let local = LocalGit::new(cache.path().to_path_buf(), Default::default())
            .with_connections(Some(world.vault.clone()), &world.hosts.gitlab_api_url());
        let sources = Sources {
            github: Arc::new(app),
            local: Arc::new(local),
        };
        let executor = Executor::new(world.bus.clone(), sources, SyncLimits::default());
        tokio::spawn(hooklog_process_manager::run(
            hooklog_process_manager::ProcessManagerConfig::default(),
            world.bus.clone(),
            world.backends.js.clone(),
            world.shutdown.clone(),
        ));
        tokio::spawn(hooklog_syncer::consumer::run(
            SyncerConfig::default(),
            executor.clone(),
            world.backends.js.clone(),
            world.shutdown.clone(),
        ));
        Syncing {
            world,
            github,
            executor,
            _cache: cache,
        }
    }

    /// Waits for the read model's row of the connection's target of `main` to satisfy `done`.
    async fn target_row(&self, id: ConnectionId, done: impl Fn(&Value) -> bool) -> Value {
        let target = TargetId::for_connection(id, &"main".parse_branch());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let row: Option<Value> =
                sqlx::query_scalar("SELECT to_jsonb(t) FROM targets t WHERE target_id = $1")
                    .bind(target.0)
                    .fetch_optional(&self.world.backends.pool)
                    .await
                    .unwrap();
            if let Some(row) = row.filter(&done) {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "target {target} of connection {id} never got there"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The target's sync runs in the read model, oldest first, as (reason, head, status).
    async fn runs(&self, id: ConnectionId) -> Vec<(String, String, String)> {
        let target = TargetId::for_connection(id, &"main".parse_branch());
        sqlx::query_as(
            "SELECT reason, head_sha, status FROM sync_runs WHERE target_id = $1 ORDER BY position",
        )
        .bind(target.0)
        .fetch_all(&self.world.backends.pool)
        .await
        .unwrap()
    }

    async fn synced_paths(&self, id: ConnectionId) -> Vec<String> {
        let target = TargetId::for_connection(id, &"main".parse_branch());
        sqlx::query_scalar(
            "SELECT path FROM synced_files WHERE target_id = $1 AND NOT deleted ORDER BY path",
        )
        .bind(target.0)
        .fetch_all(&self.world.backends.pool)
        .await
        .unwrap()
    }
}

trait ParseBranch {
    fn parse_branch(&self) -> hooklog_domain::ids::Branch;
}

impl ParseBranch for str {
    fn parse_branch(&self) -> hooklog_domain::ids::Branch {
        hooklog_domain::ids::Branch::parse(self).unwrap()
    }
}

/// GitHub's push example as a repository webhook sends it (no installation), moved to the
/// connection's repository.
fn push(git_ref: &str, before: &str, after: &str) -> Vec<u8> {
    let mut body = hooklog_infra::testing::octokit_example("push", |x| {
        x["ref"] == "refs/heads/master" && x["deleted"] == false
    });
    if let Some(fields) = body.as_object_mut() {
        fields.remove("installation");
    }
    body["ref"] = json!(git_ref);
    body["before"] = json!(before);
    body["after"] = json!(after);
    body["forced"] = json!(false);
    body["repository"]["id"] = json!(REPO_ID);
    body["repository"]["full_name"] = json!(REPO);
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test]
async fn a_github_connections_pushes_sync_its_branch_with_its_token_until_it_disconnects() {
    let repo = TestRepo::new();
    repo.write("README.md", "# docs\n")
        .write("guide/intro.md", "hello\n");
    let first = repo.commit("first");
    let syncing = Syncing::start(&repo).await;
    let world = &syncing.world;
    let connected = world.connect("github", REPO, TOKEN).await;
    let id = connected.connection;
    world.pass().await;
    world.directory_says(id, true).await;

    // The webhook's creation tracked the branch, under the connection and no installation.
    let tracked = syncing.target_row(id, |t| t["status"] == "idle").await;
    assert_eq!(tracked["connection_id"], id.to_string());
    assert_eq!(tracked["installation_id"], Value::Null, "{tracked}");
    assert_eq!(tracked["instance_id"], Value::Null, "{tracked}");
    assert_eq!(tracked["repository"], REPO);
    assert_eq!(tracked["repository_id"], REPO_ID);
    assert!(
        syncing.runs(id).await.is_empty(),
        "nothing synced before a push"
    );
    // The targets' read model finds it by its connection, and only it.
    let by_connection = |connection| hooklog_projections::query::TargetFilter {
        connection: Some(connection),
        ..Default::default()
    };
    let page = hooklog_projections::query::targets(
        &world.backends.pool,
        &by_connection(id.0),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].connection_id, Some(id.0));
    let none = hooklog_projections::query::targets(
        &world.backends.pool,
        &by_connection(uuid::Uuid::new_v4()),
        &Default::default(),
    )
    .await
    .unwrap();
    assert!(none.items.is_empty());

    // A push of the branch requests a sync of its head, read with the connection's token.
    let hook = world.hosts.github_hooks(REPO)[0].id;
    let zero = "0".repeat(40);
    let (code, guid) = world
        .hosts
        .send_github(
            REPO,
            hook,
            "push",
            push("refs/heads/main", &zero, first.as_str()),
        )
        .await;
    assert_eq!(code, 202, "a connection's push is acted on");
    let (event, body) = world.decided(&guid).await;
    assert_eq!(event, "DeliveryProcessed", "{body}");
    let synced = syncing
        .target_row(id, |t| t["last_synced_sha"] == first.as_str())
        .await;
    assert_eq!(synced["status"], "idle", "{synced}");
    assert_eq!(
        syncing.runs(id).await,
        [("push".to_owned(), first.to_string(), "completed".to_owned())]
    );
    assert_eq!(
        syncing.synced_paths(id).await,
        ["README.md", "guide/intro.md"]
    );
    let reads = syncing.github.repository_token_uses(TOKEN);
    assert!(
        reads > 0,
        "the sync did not read with the connection's token"
    );

    // The same push again (GitHub's redelivery) requests nothing; a push of another branch
    // has no target.
    let again = world
        .hosts
        .send_github(
            REPO,
            hook,
            "push",
            push("refs/heads/main", &zero, first.as_str()),
        )
        .await;
    let (event, _) = world.decided(&again.1).await;
    assert_eq!(event, "DeliveryProcessed");
    let other = world
        .hosts
        .send_github(
            REPO,
            hook,
            "push",
            push("refs/heads/dev", &zero, first.as_str()),
        )
        .await;
    let (event, body) = world.decided(&other.1).await;
    assert_eq!(event, "DeliveryIgnored", "{body}");
    assert!(body.contains("no target tracks branch dev"), "{body}");

    // A commit no push announced is found by a reconcile pass, which reads the branch head
    // with the connection's token too.
    repo.remove("guide/intro.md").write("CHANGELOG.md", "1.0\n");
    let second = repo.commit("second");
    let config = ReconcileConfig::default();
    let pass = hooklog_syncer::reconcile::pass(&config, &syncing.executor, true)
        .await
        .unwrap();
    assert_eq!(pass.head_moved, 1, "{pass:?}");
    syncing
        .target_row(id, |t| t["last_synced_sha"] == second.as_str())
        .await;
    assert_eq!(
        syncing.synced_paths(id).await,
        ["CHANGELOG.md", "README.md"]
    );
    assert_eq!(
        syncing.runs(id).await.len(),
        2,
        "the redelivery requested nothing"
    );

    // Disconnecting removes the target at once; its token leaves the vault with the webhook.
    hooklog_write::repositories::disconnect(&world.bus, id, &World::meta())
        .await
        .unwrap();
    let removed = syncing.target_row(id, |t| t["status"] == "removed").await;
    assert_eq!(removed["removed_reason"], "connection_disconnected");
}

#[tokio::test]
async fn a_connections_sync_fails_naming_the_token_when_github_refuses_it() {
    let repo = TestRepo::new();
    repo.write("README.md", "# docs\n");
    let head = repo.commit("first");
    let syncing = Syncing::start(&repo).await;
    let world = &syncing.world;
    let id = world.connect("github", REPO, TOKEN).await.connection;
    world.pass().await;
    world.directory_says(id, true).await;
    syncing.target_row(id, |t| t["status"] == "idle").await;
    // The admin revoked the token at GitHub: the repository's data refuses it.
    syncing.github.revoke_repository_token(TOKEN);
    let hook = world.hosts.github_hooks(REPO)[0].id;
    let (code, _) = world
        .hosts
        .send_github(
            REPO,
            hook,
            "push",
            push("refs/heads/main", &"0".repeat(40), head.as_str()),
        )
        .await;
    assert_eq!(code, 202);
    let failed = syncing.target_row(id, |t| t["status"] == "failed").await;
    let error = failed["last_error"].as_str().unwrap();
    assert!(error.contains("authentication failed"), "{error}");
    assert!(!error.contains(TOKEN), "the token was echoed: {error}");
}

/// GitLab's Push Hook, as its docs show it, for the connection's project.
fn gitlab_push(git_ref: &str, before: &str, after: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object_kind": "push", "event_name": "push",
        "before": before, "after": after, "ref": git_ref,
        "checkout_sha": after, "user_name": "Jane", "project_id": PROJECT_ID,
        "project": {"id": PROJECT_ID, "name": "handbook", "path_with_namespace": PROJECT,
                    "web_url": "http://example.com/group/sub/handbook"},
        "commits": [], "total_commits_count": 0,
    }))
    .unwrap()
}

#[tokio::test]
async fn a_gitlab_connections_pushes_sync_its_project_over_git_with_the_token_in_a_header() {
    let repo = TestRepo::new();
    repo.write("handbook.md", "# handbook\n");
    let first = repo.commit("first");
    let syncing = Syncing::start(&repo).await;
    let world = &syncing.world;
    world
        .hosts
        .serve_gitlab_repository(PROJECT, repo.to_path_buf());
    let id = world
        .connect("gitlab", PROJECT, GITLAB_TOKEN)
        .await
        .connection;
    world.pass().await;
    world.directory_says(id, true).await;

    // Tracked under its project path, read from the configured GitLab with git.
    let tracked = syncing.target_row(id, |t| t["status"] == "idle").await;
    assert_eq!(tracked["repository"], PROJECT);
    assert_eq!(tracked["repository_id"], PROJECT_ID);
    assert_eq!(
        tracked["source"],
        format!("{}/{PROJECT}.git", world.hosts.url()),
        "{tracked}"
    );
    let hook = world.hosts.gitlab_hooks(PROJECT)[0].id;
    let (code, sent) = world
        .hosts
        .send_gitlab(
            PROJECT,
            hook,
            "Push Hook",
            gitlab_push("refs/heads/main", &"0".repeat(40), first.as_str()),
        )
        .await;
    assert_eq!(code, 202);
    let (event, body) = world.decided(&sent.idempotency_key).await;
    assert_eq!(event, "DeliveryProcessed", "{body}");
    syncing
        .target_row(id, |t| t["last_synced_sha"] == first.as_str())
        .await;
    assert_eq!(syncing.synced_paths(id).await, ["handbook.md"]);

    // A second push fetches the mirror again.
    repo.write("policies/leave.md", "30 days\n");
    let second = repo.commit("second");
    world
        .hosts
        .send_gitlab(
            PROJECT,
            hook,
            "Push Hook",
            gitlab_push("refs/heads/main", first.as_str(), second.as_str()),
        )
        .await;
    syncing
        .target_row(id, |t| t["last_synced_sha"] == second.as_str())
        .await;
    assert_eq!(
        syncing.synced_paths(id).await,
        ["handbook.md", "policies/leave.md"]
    );
    assert_eq!(
        syncing
            .runs(id)
            .await
            .iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        ["push", "push"]
    );

    // git asked without credentials first (GitLab answers 401), then sent the token in its
    // Authorization header, never in a URL; nothing hooklog wrote holds it.
    let requests = world.hosts.git_requests();
    assert!(
        requests
            .iter()
            .any(|r| r.token.as_deref() == Some(GITLAB_TOKEN) && r.status == 200),
        "{requests:?}"
    );
    assert!(requests
        .iter()
        .all(|r| !r.path_and_query.contains(GITLAB_TOKEN)));
    assert!(
        requests
            .iter()
            .all(|r| r.token.is_none() || r.token.as_deref() == Some(GITLAB_TOKEN)),
        "{requests:?}"
    );
    let mirrors = std::fs::read_dir(syncing._cache.path()).unwrap();
    for mirror in mirrors {
        let config = mirror.unwrap().path().join("config");
        let config = std::fs::read_to_string(config).unwrap();
        assert!(!config.contains(GITLAB_TOKEN), "{config}");
        assert!(!config.to_lowercase().contains("extraheader"), "{config}");
    }
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT payload::text FROM events WHERE aggregate_id = ANY($1)")
            .bind(vec![
                id.to_string(),
                TargetId::for_connection(id, &"main".parse_branch()).to_string(),
            ])
            .fetch_all(&world.backends.pool)
            .await
            .unwrap();
    assert!(!stored.is_empty());
    assert!(stored.iter().all(|e| !e.contains(GITLAB_TOKEN)));
}

#[tokio::test]
async fn a_gitlab_source_off_the_configured_gitlab_is_never_sent_the_token() {
    let repo = TestRepo::new();
    repo.write("a.md", "a\n");
    let head = repo.commit("first");
    let cache = tempfile::tempdir().unwrap();
    let world = World::start().await;
    let local = LocalGit::new(cache.path().to_path_buf(), Default::default()).with_connections(
        Some(world.vault.clone()),
        "https://gitlab.example.com/api/v4",
    );
    let id = ConnectionId(uuid::Uuid::new_v4());
    let elsewhere = hooklog_syncer::source::RepoRef {
        owner: hooklog_syncer::source::TargetOwner::Connection(id),
        repository_id: hooklog_domain::ids::RepositoryId(1),
        repository: hooklog_domain::ids::RepositoryName::parse_project_path(PROJECT).unwrap(),
        source: Some(
            hooklog_domain::ids::SourceLocation::parse(&format!(
                "{}/{PROJECT}.git",
                world.hosts.url()
            ))
            .unwrap(),
        ),
    };
    use hooklog_syncer::source::RepoSource;
    let err = local.tree(&elsewhere, &head).await.unwrap_err();
    assert!(err.to_string().contains("HOOKLOG_GITLAB_API_URL"), "{err}");
    assert!(
        world.hosts.git_requests().is_empty(),
        "git reached the other host"
    );
    // Without a vault (no HOOKLOG_SECRETS_KEY) a connection's project is not read at all.
    let keyless = LocalGit::new(cache.path().to_path_buf(), Default::default());
    let err = keyless.tree(&elsewhere, &head).await.unwrap_err();
    assert!(err.to_string().contains("HOOKLOG_SECRETS_KEY"), "{err}");
}
