//! Connect, adopt, fail and retry, disconnect with a failing delete: what the provider ends up
//! with, what the aggregate and the read model say, and that no secret is in any of them.

use hooklog_domain::repository_connection::ConnectionStatus;
use hooklog_write::repositories::{self, ConnectRepository};
use secrecy::SecretString;

use crate::support::*;

#[tokio::test]
async fn connecting_a_github_repository_creates_its_webhook_with_a_secret_of_its_own() {
    let world = World::start().await;
    let connected = world.connect("github", REPO, TOKEN).await;
    let id = connected.connection;
    assert_eq!(world.status(id).await, ConnectionStatus::Pending);
    assert_eq!(
        connected.hook_url,
        format!("{}/v1/webhooks/repositories/{id}", world.public_url)
    );

    let report = world.pass().await;
    assert_eq!(report.created, 1, "{report:?}");
    assert_eq!(world.status(id).await, ConnectionStatus::Active);
    let hooks = world.hosts.github_hooks(REPO);
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let secret = world.secret(id).await.expect("the secret is in the vault");
    assert!(secret.len() >= 64, "at least 32 random bytes as hex");
    assert_eq!(hooks[0].url, connected.hook_url);
    assert_eq!(hooks[0].secret.as_deref(), Some(secret.as_str()));
    assert_eq!(hooks[0].events, ["push", "workflow_run", "pull_request"]);
    assert!(hooks[0].active);

    let row = world.row_with(id, "active").await;
    assert_eq!(row["hook_id"], hooks[0].id);
    assert_eq!(row["repository_id"], REPO_ID);
    assert_eq!(row["adopted"], false);

    // A second pass has nothing to do; a second connect of the branch is refused, naming it.
    assert!(nothing_done(&world.pass().await));
    let again = repositories::connect(
        &world.bus,
        Some(&world.vault),
        Some(&world.public_url),
        ConnectRepository {
            provider: "github".into(),
            repository: "OCTO-ORG/docs".into(),
            branch: "main".into(),
            token: SecretString::from(TOKEN.to_owned()),
        },
        &World::meta(),
    )
    .await
    .unwrap_err();
    assert_eq!(again.code, "already_connected");
    assert!(again.message.contains(&id.to_string()), "{}", again.message);

    // Neither the secret nor the token is in any event or read-model row.
    let events: Vec<String> =
        sqlx::query_scalar("SELECT payload::text || metadata::text FROM events")
            .fetch_all(&world.backends.pool)
            .await
            .unwrap();
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT to_jsonb(c)::text FROM repository_connections c")
            .fetch_all(&world.backends.pool)
            .await
            .unwrap();
    for text in events.iter().chain(&rows) {
        assert!(!text.contains(&secret), "a secret leaked: {text}");
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
    }
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT ciphertext FROM vault_secrets")
        .fetch_all(&world.backends.pool)
        .await
        .unwrap();
    assert_eq!(sealed.len(), 2);
    for bytes in sealed {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&secret) && !text.contains(TOKEN));
    }
}

#[tokio::test]
async fn a_webhook_already_there_for_our_url_is_adopted_and_given_the_new_secret() {
    let world = World::start().await;
    let connected = world.connect("github", REPO, TOKEN).await;
    let id = connected.connection;
    // As if an earlier pass created it and its report was lost.
    let existing = world
        .hosts
        .add_github_hook(REPO, &connected.hook_url, Some("an-old-secret"));
    let other = world
        .hosts
        .add_github_hook(REPO, "https://ci.example.com/hook", Some("theirs"));

    let report = world.pass().await;
    assert_eq!(report.adopted, 1, "{report:?}");
    let hooks = world.hosts.github_hooks(REPO);
    assert_eq!(hooks.len(), 2, "nothing created: {hooks:?}");
    let ours = hooks.iter().find(|h| h.id == existing).unwrap();
    assert_eq!(ours.secret, world.secret(id).await);
    let theirs = hooks.iter().find(|h| h.id == other).unwrap();
    assert_eq!(
        theirs.secret.as_deref(),
        Some("theirs"),
        "another webhook is left alone"
    );
    let row = world.row_with(id, "active").await;
    assert_eq!(row["adopted"], true);
    assert_eq!(row["hook_id"], existing);
}

#[tokio::test]
async fn a_failed_creation_leaves_the_connection_failed_with_the_reason_until_retried() {
    let world = World::start().await;
    world
        .hosts
        .add_token_without_hook_rights("ghp_read-only-token");
    world
        .hosts
        .add_github_repository("octo-org/handbook", 8_100_002, TOKEN);
    let connected = world
        .connect("github", "octo-org/handbook", "ghp_read-only-token")
        .await;
    let id = connected.connection;
    assert_eq!(world.pass().await.failed, 1);
    assert_eq!(world.status(id).await, ConnectionStatus::Failed);
    let row = world.row_with(id, "failed").await;
    let reason = row["last_error"].as_str().unwrap();
    assert!(reason.contains("403"), "{reason}");
    assert!(!reason.contains("ghp_read-only-token"), "{reason}");
    // A failed connection is not retried by itself.
    assert!(nothing_done(&world.pass().await));

    // The provider fails once more (a bad gateway), then the retry after that holds.
    let failed = world.connect("github", REPO, TOKEN).await.connection;
    world.hosts.fail("/hooks", 502, 1);
    world.pass().await;
    assert_eq!(world.status(failed).await, ConnectionStatus::Failed);
    // Both are retried: the read-only token's fails again.
    repositories::retry(&world.bus, connected.connection, &World::meta())
        .await
        .unwrap();
    repositories::retry(&world.bus, failed, &World::meta())
        .await
        .unwrap();
    let again = repositories::retry(&world.bus, failed, &World::meta())
        .await
        .unwrap_err();
    assert_eq!(again.code, "not_failed", "{again:?}");
    let report = world.pass().await;
    assert_eq!(report.created, 1, "{report:?}");
    assert_eq!(
        report.failed, 1,
        "the read-only token fails again: {report:?}"
    );
    assert_eq!(world.status(failed).await, ConnectionStatus::Active);
    let row = world.row_with(failed, "active").await;
    assert_eq!(row["attempt"], 2);
    assert_eq!(row["last_error"], serde_json::Value::Null);
}

#[tokio::test]
async fn disconnecting_refuses_deliveries_at_once_and_retries_a_failed_delete_until_it_holds() {
    let world = World::start().await;
    let connected = world.connect("github", REPO, TOKEN).await;
    let id = connected.connection;
    world.pass().await;
    world.directory_says(id, true).await;

    let status = repositories::disconnect(&world.bus, id, &World::meta())
        .await
        .unwrap();
    assert_eq!(status, ConnectionStatus::Disconnecting);
    world.directory_says(id, false).await;
    let hook = world.hosts.github_hooks(REPO)[0].id;
    let (code, _) = world
        .hosts
        .send_github(
            REPO,
            hook,
            "ping",
            br#"{"zen":"late","hook_id":1}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 404, "a disconnecting connection takes no delivery");

    world.hosts.fail_method("DELETE", "/hooks/", 500, 1);
    assert_eq!(world.pass().await.delete_failed, 1);
    assert_eq!(world.status(id).await, ConnectionStatus::DeleteFailed);
    let row = world.row_with(id, "delete_failed").await;
    assert_eq!(row["delete_attempts"], 1);
    assert!(row["last_error"].as_str().unwrap().contains("500"));
    assert_eq!(world.hosts.github_hooks(REPO).len(), 1, "still there");

    assert_eq!(world.pass().await.deleted, 1);
    assert!(world.hosts.github_hooks(REPO).is_empty());
    assert_eq!(world.status(id).await, ConnectionStatus::Disconnected);
    assert_eq!(world.secret(id).await, None, "its secrets leave the vault");
    world.row_with(id, "disconnected").await;
    let again = repositories::disconnect(&world.bus, id, &World::meta())
        .await
        .unwrap_err();
    assert_eq!(again.code, "already_disconnected");
    // Once disconnected the branch may be connected again.
    world.connect("github", REPO, TOKEN).await;
}

#[tokio::test]
async fn a_gitlab_project_gets_a_project_hook_with_push_and_pipeline_events_and_the_token() {
    let world = World::start().await;
    let connected = world.connect("gitlab", PROJECT, GITLAB_TOKEN).await;
    let id = connected.connection;
    assert_eq!(
        connected.hook_url,
        format!("{}/v1/webhooks/gitlab/{id}", world.public_url)
    );
    assert_eq!(world.pass().await.created, 1);
    let hooks = world.hosts.gitlab_hooks(PROJECT);
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].url, connected.hook_url);
    assert_eq!(hooks[0].secret, world.secret(id).await);
    for events in ["push_events", "pipeline_events"] {
        assert!(hooks[0].events.iter().any(|e| e == events), "{hooks:?}");
    }
    let row = world.row_with(id, "active").await;
    assert_eq!(row["repository_id"], PROJECT_ID);

    repositories::disconnect(&world.bus, id, &World::meta())
        .await
        .unwrap();
    assert_eq!(world.pass().await.deleted, 1);
    assert!(world.hosts.gitlab_hooks(PROJECT).is_empty());
}

#[tokio::test]
async fn bad_input_and_missing_settings_are_refused_naming_them() {
    let world = World::start().await;
    let request = |provider: &str, repository: &str, token: &str| ConnectRepository {
        provider: provider.into(),
        repository: repository.into(),
        branch: "main".into(),
        token: SecretString::from(token.to_owned()),
    };
    let connect = |vault, url, request| {
        let world = &world;
        async move {
            repositories::connect(&world.bus, vault, url, request, &World::meta())
                .await
                .unwrap_err()
        }
    };
    let url = Some(world.public_url.as_str());
    let err = connect(Some(&world.vault), url, request("bitbucket", REPO, TOKEN)).await;
    assert_eq!(
        (err.code, err.field),
        ("invalid_provider", Some("provider"))
    );
    let err = connect(
        Some(&world.vault),
        url,
        request("github", "octo/../x", TOKEN),
    )
    .await;
    assert_eq!(err.code, "invalid_repository");
    let err = connect(
        Some(&world.vault),
        url,
        request("github", REPO, "has space"),
    )
    .await;
    assert_eq!(err.code, "invalid_token");
    assert!(!err.message.contains("has space"), "{}", err.message);
    let err = connect(None, url, request("github", REPO, TOKEN)).await;
    assert_eq!(err.code, "secrets_key_not_set");
    assert!(
        err.message.contains("HOOKLOG_SECRETS_KEY"),
        "{}",
        err.message
    );
    let err = connect(Some(&world.vault), None, request("github", REPO, TOKEN)).await;
    assert_eq!(err.code, "public_url_not_set");
    assert!(
        err.message.contains("HOOKLOG_PUBLIC_URL"),
        "{}",
        err.message
    );
    // Nothing was recorded or sealed by any of them.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&world.backends.pool)
        .await
        .unwrap();
    let sealed: i64 = sqlx::query_scalar("SELECT count(*) FROM vault_secrets")
        .fetch_one(&world.backends.pool)
        .await
        .unwrap();
    assert_eq!((events, sealed), (0, 0));
}

#[tokio::test]
async fn health_reads_the_webhooks_delivery_log_and_reports_webhooks_no_connection_owns() {
    let world = World::start().await;
    let connected = world.connect("github", REPO, TOKEN).await;
    let id = connected.connection;
    world.pass().await;
    world.directory_says(id, true).await;
    let hook = world.hosts.github_hooks(REPO)[0].id;
    let ping = br#"{"zen":"Design for failure.","hook_id":1}"#.to_vec();
    let (code, _) = world.hosts.send_github(REPO, hook, "ping", ping).await;
    assert_eq!(code, 202);
    // Left behind under our path by a connection that is no more; and someone else's.
    let prefix = connected.hook_url.rsplit_once('/').unwrap().0.to_owned();
    let stray = format!("{prefix}/{}", uuid::Uuid::new_v4());
    let orphan = world.hosts.add_github_hook(REPO, &stray, None);
    world
        .hosts
        .add_github_hook(REPO, "https://ci.example.com/hook", None);

    let report = world.pass_with(std::time::Duration::ZERO).await;
    assert_eq!((report.checked, report.orphans), (1, 1), "{report:?}");
    let row: serde_json::Value =
        sqlx::query_scalar("SELECT to_jsonb(h) FROM webhook_health h WHERE connection_id = $1")
            .bind(id.0)
            .fetch_one(&world.backends.pool)
            .await
            .unwrap();
    assert_eq!(row["log_read"], true);
    assert_eq!(row["attempts"], 1);
    assert_eq!(row["failures"], 0);
    assert_eq!(row["last_status_code"], 202);
    assert_eq!(row["error"], serde_json::Value::Null);
    assert_eq!(
        row["orphan_hooks"],
        serde_json::json!([{"hook_id": orphan, "url": stray}])
    );
    assert!(
        world
            .hosts
            .github_hooks(REPO)
            .iter()
            .any(|h| h.id == orphan),
        "reported, not deleted"
    );
    // Checked within the interval: not read again.
    assert_eq!(world.pass().await.checked, 0);
}

fn nothing_done(report: &hooklog_repositories::PassReport) -> bool {
    (
        report.created,
        report.adopted,
        report.failed,
        report.deleted,
        report.delete_failed,
    ) == (0, 0, 0, 0, 0)
}

#[tokio::test]
async fn a_gitlab_hooks_health_is_read_from_its_events_page_by_page() {
    let world = World::start().await;
    let (connected, hook) = world.gitlab_connected().await;
    let push = |n: u32| {
        serde_json::to_vec(&serde_json::json!({
            "object_kind": "push", "ref": "refs/heads/elsewhere",
            "before": "0".repeat(40), "after": format!("{n:040x}"),
            "project": {"id": PROJECT_ID, "path_with_namespace": PROJECT},
        }))
        .unwrap()
    };
    // More than one page of GitLab's 20 events; the newest is refused (not JSON).
    for n in 1..=22 {
        let (code, _) = world
            .hosts
            .send_gitlab(PROJECT, hook.id, "Push Hook", push(n))
            .await;
        assert_eq!(code, 202);
    }
    let (code, _) = world
        .hosts
        .send_gitlab(PROJECT, hook.id, "Push Hook", b"not json".to_vec())
        .await;
    assert_eq!(code, 400);

    let report = world.pass_with(std::time::Duration::ZERO).await;
    assert_eq!((report.checked, report.orphans), (1, 0), "{report:?}");
    let row: serde_json::Value =
        sqlx::query_scalar("SELECT to_jsonb(h) FROM webhook_health h WHERE connection_id = $1")
            .bind(connected.connection.0)
            .fetch_one(&world.backends.pool)
            .await
            .unwrap();
    assert_eq!(row["error"], serde_json::Value::Null, "{row}");
    assert_eq!(row["log_read"], true);
    assert_eq!(row["attempts"], 23);
    assert_eq!(row["failures"], 1);
    assert_eq!(row["last_status_code"], 400);
    assert_eq!(row["last_status"], "400");
    assert!(row["last_failure_at"].is_string(), "{row}");
}
