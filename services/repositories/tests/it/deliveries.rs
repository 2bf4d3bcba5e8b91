//! Deliveries of a connection's webhook: verified with that connection's secret alone, stored
//! and decided by the worker, which acts on nothing a repository webhook may not speak for.

use hooklog_domain::github::{Signature, WebhookSecret};
use hooklog_infra::streams::{delivery_headers as h, delivery_subject};
use sha2::{Digest, Sha256};

use crate::support::*;

#[tokio::test]
async fn a_connections_delivery_is_taken_only_with_its_own_secret_and_decided_by_the_worker() {
    let world = World::start().await;
    let first = world.connect("github", REPO, TOKEN).await;
    world
        .hosts
        .add_github_repository("octo-org/other", 8_100_003, TOKEN);
    let second = world.connect("github", "octo-org/other", TOKEN).await;
    world.pass().await;
    world.directory_says(first.connection, true).await;
    world.directory_says(second.connection, true).await;
    let hook = world.hosts.github_hooks(REPO)[0].id;

    let ping = serde_json::to_vec(&serde_json::json!({
        "zen": "Keep it logically awesome.",
        "hook_id": hook,
        "hook": {"type": "Repository", "id": hook},
    }))
    .unwrap();
    let (code, guid) = world
        .hosts
        .send_github(REPO, hook, "ping", ping.clone())
        .await;
    assert_eq!(code, 202);
    let (event, body) = world.decided(&guid).await;
    assert_eq!(event, "DeliveryProcessed", "{body}");
    assert!(body.contains(&first.connection.to_string()), "{body}");

    // Signed with the other connection's secret, posted to the first one's URL: refused
    // before anything is stored.
    let other_secret = world.secret(second.connection).await.unwrap();
    let signature = Signature::sign(&WebhookSecret::new(&other_secret), &ping).to_string();
    let client = hooklog_infra::http::client().unwrap();
    let post = |url: String, signature: String, event: &'static str, body: Vec<u8>| {
        let client = client.clone();
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .header("x-github-event", event)
                .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(first.hook_url.clone(), signature, "ping", ping.clone()).await,
        401
    );
    // An id no connection has is 404, before the body is read.
    let unknown = format!(
        "{}/v1/webhooks/repositories/{}",
        world.public_url,
        uuid::Uuid::new_v4()
    );
    let own = world.secret(first.connection).await.unwrap();
    let signed = Signature::sign(&WebhookSecret::new(&own), &ping).to_string();
    assert_eq!(post(unknown, signed, "ping", ping.clone()).await, 404);
    assert_eq!(
        post(
            format!("{}/v1/webhooks/repositories/not-a-uuid", world.public_url),
            String::new(),
            "ping",
            vec![]
        )
        .await,
        404
    );

    // An App event signed with the connection's own secret (its repository's admins can set
    // it) is stored and never acted on.
    let deleted = serde_json::to_vec(&serde_json::json!({
        "action": "deleted",
        "installation": {"id": 1, "account": {"login": "octo-org", "id": 1}},
    }))
    .unwrap();
    let signed = Signature::sign(&WebhookSecret::new(&own), &deleted).to_string();
    let guid = uuid::Uuid::new_v4().to_string();
    let status = client
        .post(&first.hook_url)
        .header("content-type", "application/json")
        .header("x-github-event", "installation")
        .header("x-github-delivery", &guid)
        .header("x-hub-signature-256", signed)
        .body(deleted)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200, "recorded, not acted on");
    let (event, body) = world.decided(&guid).await;
    assert_eq!(event, "DeliveryIgnored", "{body}");
    assert!(body.contains("speaks for its repository only"), "{body}");
}

#[tokio::test]
async fn a_message_put_on_the_stream_with_a_connection_id_but_not_its_signature_is_a_dead_letter() {
    let world = World::start().await;
    let connected = world.connect("github", REPO, TOKEN).await;
    world.pass().await;
    let body = br#"{"zen":"forged","hook_id":1}"#.to_vec();
    let forged = Signature::sign(&WebhookSecret::new("a guess"), &body).to_string();
    let guid = uuid::Uuid::new_v4().to_string();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(h::EVENT, "ping");
    headers.insert(h::DELIVERY, guid.as_str());
    headers.insert(h::SIGNATURE_256, forged.as_str());
    headers.insert(h::CONTENT_TYPE, "application/json");
    headers.insert(h::BODY_SHA256, hex::encode(Sha256::digest(&body)).as_str());
    headers.insert(h::CONNECTION_ID, connected.connection.to_string().as_str());
    world
        .backends
        .js
        .publish_with_headers(delivery_subject("ping"), headers, body.into())
        .await
        .unwrap()
        .await
        .unwrap();
    let (event, body) = world.decided(&guid).await;
    assert_eq!(event, "DeliveryDeadLettered", "{body}");
    assert!(body.contains("not acted on"), "{body}");
}

/// Redrives the dead letter at `sequence` as an operator, with the connections' secrets from
/// `vault` and no App secret.
async fn redrive(
    world: &World,
    vault: Option<&hooklog_write::vault::Vault>,
    sequence: u64,
) -> Result<hooklog_worker::redrive::Redriven, hooklog_worker::redrive::RedriveError> {
    hooklog_worker::redrive::redrive(
        &hooklog_worker::Processor::new(world.bus.clone()),
        &world.backends.js,
        &[],
        vault,
        sequence,
        &World::meta(),
    )
    .await
}

#[tokio::test]
async fn a_connections_dead_letter_is_redriven_with_its_own_secret_and_read_as_its_webhooks() {
    use hooklog_worker::redrive::RedriveError;
    let world = World::start().await;
    let id = world.connect("github", REPO, TOKEN).await.connection;
    world.pass().await;
    world.directory_says(id, true).await;
    let hook = world.hosts.github_hooks(REPO)[0].id;
    // A pull request in a state no pull request has: a dead letter.
    let mut body =
        hooklog_infra::testing::octokit_example("pull_request", |e| e["action"] == "opened");
    body["repository"]["id"] = serde_json::json!(REPO_ID);
    body["pull_request"]["state"] = serde_json::json!("draft");
    let (_, guid) = world
        .hosts
        .send_github(
            REPO,
            hook,
            "pull_request",
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    let (event, decided) = world.decided(&guid).await;
    assert_eq!(event, "DeliveryDeadLettered", "{decided}");
    let decided: serde_json::Value = serde_json::from_str(&decided).unwrap();
    let sequence = decided["DeliveryDeadLettered"]["stream_sequence"]
        .as_u64()
        .unwrap();
    let events = || async {
        world
            .bus
            .delivery_events(&hooklog_domain::delivery::DeliveryKey::for_delivery(&guid))
            .await
            .unwrap()
            .len()
    };

    // Without the vault its signature cannot be checked: refused, and not reopened.
    let refused = redrive(&world, None, sequence).await.unwrap_err();
    assert!(matches!(refused, RedriveError::Refused(_)), "{refused:?}");
    assert!(
        refused.to_string().contains("HOOKLOG_SECRETS_KEY"),
        "{refused}"
    );
    assert_eq!(events().await, 1, "reopened though refused");

    // With it, checked with the connection's secret and read as its webhook's delivery (the
    // App's reading would merely record a `pull_request`): the same poison, decided again.
    let again = redrive(&world, Some(&world.vault), sequence).await.unwrap();
    assert_eq!(again.outcome.as_str(), "dead_letter", "{again:?}");
    assert!(
        again.detail.contains("neither open nor closed"),
        "{again:?}"
    );
    assert_eq!(events().await, 3, "reopened, then decided again");
}

/// A real `workflow_run.completed` example, made the run `number` of workflow 161335 on
/// `main` of the connection's repository, with `conclusion`.
fn workflow_run(number: u64, conclusion: &str) -> Vec<u8> {
    let mut body = hooklog_infra::testing::octokit_example("workflow_run", |e| {
        e["action"] == "completed" && e["workflow_run"]["conclusion"] == "success"
    });
    body["repository"]["id"] = serde_json::json!(REPO_ID);
    let run = &mut body["workflow_run"];
    run["id"] = serde_json::json!(90_000 + number);
    run["workflow_id"] = serde_json::json!(161_335);
    run["name"] = serde_json::json!("CI");
    run["head_branch"] = serde_json::json!("main");
    run["head_sha"] = serde_json::json!(format!("{number:040x}"));
    run["run_number"] = serde_json::json!(number);
    run["conclusion"] = serde_json::json!(conclusion);
    run["html_url"] = serde_json::json!(format!(
        "https://github.com/{REPO}/actions/runs/{}",
        90_000 + number
    ));
    run["updated_at"] = serde_json::json!(format!("2026-12-01T10:{number:02}:00Z"));
    serde_json::to_vec(&body).unwrap()
}

/// Waits for the incidents of the read model to be `expected` (status, failures) in order.
async fn incidents_are(world: &World, expected: &[(&str, i64)]) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let rows: Vec<serde_json::Value> =
            sqlx::query_scalar("SELECT to_jsonb(i) FROM incidents i ORDER BY position")
                .fetch_all(&world.backends.pool)
                .await
                .unwrap();
        let got: Vec<(String, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r["status"].as_str().unwrap().to_owned(),
                    r["failures"].as_i64().unwrap(),
                )
            })
            .collect();
        if got
            .iter()
            .map(|(s, f)| (s.as_str(), *f))
            .eq(expected.iter().copied())
        {
            return rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "incidents are {got:?}, not {expected:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failing_workflow_run_opens_an_incident_and_a_later_success_resolves_it() {
    let world = World::start().await;
    let id = world.connect("github", REPO, TOKEN).await.connection;
    world.pass().await;
    world.directory_says(id, true).await;
    let hook = world.hosts.github_hooks(REPO)[0].id;
    let send = |body: Vec<u8>| world.hosts.send_github(REPO, hook, "workflow_run", body);

    let (code, failed) = send(workflow_run(3, "failure")).await;
    assert_eq!(code, 202, "a connection's workflow_run is acted on");
    let (event, body) = world.decided(&failed).await;
    assert_eq!(event, "DeliveryProcessed", "{body}");
    let rows = incidents_are(&world, &[("open", 1)]).await;
    assert_eq!(rows[0]["repository"], REPO);
    assert_eq!(rows[0]["branch"], "main");
    assert_eq!(rows[0]["workflow"], "CI");
    assert_eq!(rows[0]["head_sha"], format!("{:040x}", 3));
    assert!(rows[0]["run_url"]
        .as_str()
        .unwrap()
        .ends_with("/runs/90003"));

    // The same delivery again, and an older run's late success, change nothing; the next
    // failure counts; then a success resolves it.
    assert_eq!(world.hosts.resend_github(REPO, hook, &failed).await, 202);
    let (_, late) = send(workflow_run(2, "success")).await;
    world.decided(&late).await;
    let (_, again) = send(workflow_run(4, "timed_out")).await;
    world.decided(&again).await;
    incidents_are(&world, &[("open", 2)]).await;
    let (_, fixed) = send(workflow_run(5, "success")).await;
    world.decided(&fixed).await;
    let rows = incidents_are(&world, &[("resolved", 2)]).await;
    assert_eq!(rows[0]["conclusion"], "timed_out");
    assert!(rows[0]["resolved_by_run_url"]
        .as_str()
        .unwrap()
        .ends_with("/runs/90005"));
    // A run of another branch opens nothing.
    let mut other: serde_json::Value = serde_json::from_slice(&workflow_run(6, "failure")).unwrap();
    other["workflow_run"]["head_branch"] = serde_json::json!("feature");
    let (_, elsewhere) = send(serde_json::to_vec(&other).unwrap()).await;
    world.decided(&elsewhere).await;
    incidents_are(&world, &[("resolved", 2)]).await;
}

#[tokio::test]
async fn pull_requests_are_kept_as_their_latest_change_left_them() {
    let world = World::start().await;
    let id = world.connect("github", REPO, TOKEN).await.connection;
    world.pass().await;
    world.directory_says(id, true).await;
    let hook = world.hosts.github_hooks(REPO)[0].id;
    let pr = |action: &str, state: &str, merged: bool, minute: u32| {
        let mut body =
            hooklog_infra::testing::octokit_example("pull_request", |e| e["action"] == "opened");
        body["action"] = serde_json::json!(action);
        body["repository"]["id"] = serde_json::json!(REPO_ID);
        body["pull_request"]["state"] = serde_json::json!(state);
        body["pull_request"]["merged"] = serde_json::json!(merged);
        body["pull_request"]["updated_at"] =
            serde_json::json!(format!("2026-12-01T11:{minute:02}:00Z"));
        serde_json::to_vec(&body).unwrap()
    };
    let (code, opened) = world
        .hosts
        .send_github(REPO, hook, "pull_request", pr("opened", "open", false, 1))
        .await;
    assert_eq!(code, 202);
    world.decided(&opened).await;
    let (_, merged) = world
        .hosts
        .send_github(REPO, hook, "pull_request", pr("closed", "closed", true, 9))
        .await;
    world.decided(&merged).await;
    // An older change arriving last does not undo the merge.
    let (_, late) = world
        .hosts
        .send_github(REPO, hook, "pull_request", pr("edited", "open", false, 5))
        .await;
    world.decided(&late).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT state, action FROM pull_requests")
            .fetch_all(&world.backends.pool)
            .await
            .unwrap();
        if rows == [("merged".to_owned(), "closed".to_owned())] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A Pipeline Hook body as GitLab documents it (Webhook events: Pipeline events).
fn pipeline(id: u64, status: &str, finished_minute: u32) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "object_kind": "pipeline",
        "object_attributes": {
            "id": id,
            "iid": id - 100,
            "name": "Pipeline for branch: main",
            "ref": "main",
            "tag": false,
            "sha": format!("{id:040x}"),
            "before_sha": "0000000000000000000000000000000000000000",
            "source": "push",
            "status": status,
            "detailed_status": status,
            "stages": ["build", "test"],
            "created_at": "2026-12-01 09:00:00 UTC",
            "finished_at": format!("2026-12-01 10:{finished_minute:02}:00 UTC"),
            "duration": 63,
            "url": format!("https://gitlab.example.com/{PROJECT}/-/pipelines/{id}"),
        },
        "project": {
            "id": PROJECT_ID,
            "name": "handbook",
            "path_with_namespace": PROJECT,
            "web_url": format!("https://gitlab.example.com/{PROJECT}"),
        },
        "builds": [],
    }))
    .unwrap()
}

#[tokio::test]
async fn a_gitlab_hook_is_taken_with_its_token_only_and_its_failed_pipelines_are_incidents() {
    let world = World::start().await;
    let (connected, hook) = world.gitlab_connected().await;
    let hook = hook.id;

    let (code, sent) = world
        .hosts
        .send_gitlab(PROJECT, hook, "Pipeline Hook", pipeline(501, "failed", 5))
        .await;
    assert_eq!(code, 202);
    let (event, body) = world.decided(&sent.idempotency_key).await;
    assert_eq!(event, "DeliveryProcessed", "{body}");
    let rows = incidents_are(&world, &[("open", 1)]).await;
    assert_eq!(rows[0]["provider"], "gitlab");
    assert_eq!(rows[0]["repository"], PROJECT);
    assert!(rows[0]["run_url"]
        .as_str()
        .unwrap()
        .ends_with("/-/pipelines/501"));

    // GitLab's retry of that event carries the same Idempotency-Key: stored once.
    let (code, retried) = world
        .hosts
        .retry_gitlab(
            PROJECT,
            hook,
            &sent,
            "Pipeline Hook",
            pipeline(501, "failed", 5),
        )
        .await;
    assert_eq!(code, 202);
    assert_eq!(retried.idempotency_key, sent.idempotency_key);
    let stored: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT to_jsonb(d) FROM deliveries d WHERE delivery_id = $1 ORDER BY stream_sequence",
    )
    .bind(&sent.idempotency_key)
    .fetch_all(&world.backends.pool)
    .await
    .unwrap();
    assert!(!stored.is_empty());
    // The pipeline retried and passing (same id, finished later) resolves the incident.
    let (_, passed) = world
        .hosts
        .send_gitlab(PROJECT, hook, "Pipeline Hook", pipeline(501, "success", 9))
        .await;
    world.decided(&passed.idempotency_key).await;
    incidents_are(&world, &[("resolved", 1)]).await;

    // The token is checked before anything is stored; the token is never stored.
    let client = hooklog_infra::http::client().unwrap();
    let post = |token: Option<&str>| {
        let mut request = client
            .post(&connected.hook_url)
            .header("content-type", "application/json")
            .header("x-gitlab-event", "Pipeline Hook")
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .body(pipeline(502, "failed", 11));
        if let Some(token) = token {
            request = request.header("x-gitlab-token", token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None).await, 401);
    assert_eq!(post(Some("not-the-token")).await, 401);
    let own = world.secret(connected.connection).await.unwrap();
    assert_eq!(post(Some(&own)).await, 202);
    // A GitLab connection's id is no GitHub webhook's.
    let github_path = format!(
        "{}/v1/webhooks/repositories/{}",
        world.public_url, connected.connection
    );
    let status = client
        .post(github_path)
        .body("{}")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 404);
    let stored = world.stored_messages().await;
    assert!(stored.len() >= 3, "{} messages", stored.len());
    for text in stored {
        assert!(!text.contains(&own), "the token was stored: {text}");
        assert!(text.contains("Hooklog-Signature-256"), "{text}");
    }

    // A push is acted on: here no process manager tracked the branch, so no target takes it
    // (`syncs` has the whole path).
    let push = serde_json::to_vec(&serde_json::json!({
        "object_kind": "push", "ref": "refs/heads/main",
        "before": "0".repeat(40), "after": "a".repeat(40),
        "project": {"id": PROJECT_ID, "path_with_namespace": PROJECT},
    }))
    .unwrap();
    let (code, sent) = world
        .hosts
        .send_gitlab(PROJECT, hook, "Push Hook", push)
        .await;
    assert_eq!(code, 202);
    let (event, body) = world.decided(&sent.idempotency_key).await;
    assert_eq!(event, "DeliveryIgnored", "{body}");
    assert!(body.contains("no target tracks branch main"), "{body}");
}

#[tokio::test]
async fn a_gitlab_hook_signs_with_a_key_of_its_own_and_a_wrong_or_stale_signature_is_refused() {
    use hooklog_domain::gitlab::SigningKey;
    let world = World::start().await;
    let (connected, hook) = world.gitlab_connected().await;
    let secret = world.secret(connected.connection).await.unwrap();

    // The hook was given a signing token: 32 bytes, not the secret GitLab sends in clear.
    let signing_token = hook.signing_token.clone().expect("a signing token");
    let key = SigningKey::from_token(&signing_token).expect("whsec_ and 32 bytes");
    assert_eq!(hook.secret.as_deref(), Some(secret.as_str()));
    assert!(!signing_token.contains(&secret));

    // The fake signs as GitLab's guide shows (its own HMAC, not hooklog's code): taken.
    let (code, sent) = world
        .hosts
        .send_gitlab(
            PROJECT,
            hook.id,
            "Pipeline Hook",
            pipeline(601, "failed", 5),
        )
        .await;
    assert_eq!(code, 202);
    world.decided(&sent.idempotency_key).await;

    let client = hooklog_infra::http::client().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let post = |id: String, timestamp: Option<u64>, signature: Option<String>, body: Vec<u8>| {
        let mut request = client
            .post(&connected.hook_url)
            .header("content-type", "application/json")
            .header("x-gitlab-event", "Pipeline Hook")
            .header("x-gitlab-token", &secret)
            .header("idempotency-key", &id)
            .header("webhook-id", &id)
            .body(body);
        if let Some(timestamp) = timestamp {
            request = request.header("webhook-timestamp", timestamp.to_string());
        }
        if let Some(signature) = signature {
            request = request.header("webhook-signature", signature);
        }
        async move {
            let answer = request.send().await.unwrap();
            let status = answer.status().as_u16();
            let body: serde_json::Value = answer.json().await.unwrap();
            (status, body["code"].as_str().unwrap_or_default().to_owned())
        }
    };
    let body = pipeline(602, "failed", 6);
    let other = SigningKey::of(&WebhookSecret::new("another connection's secret"));
    let mut ids = Vec::new();
    for case in [
        "other body",
        "other key",
        "stale",
        "no timestamp",
        "malformed",
    ] {
        let id = uuid::Uuid::new_v4().to_string();
        let (timestamp, signature) = match case {
            "other body" => (Some(now), key.sign(&id, &now.to_string(), b"{}")),
            "other key" => (Some(now), other.sign(&id, &now.to_string(), &body)),
            // Rightly signed, but ten minutes old: a replay.
            "stale" => (
                Some(now - 600),
                key.sign(&id, &(now - 600).to_string(), &body),
            ),
            "no timestamp" => (None, key.sign(&id, &now.to_string(), &body)),
            _ => (Some(now), "v1,not base64!".to_owned()),
        };
        let (status, code) = post(id.clone(), timestamp, Some(signature), body.clone()).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "invalid_signature"),
            "{case}"
        );
        ids.push(id);
    }
    // The same request rightly signed now is taken.
    let good = uuid::Uuid::new_v4().to_string();
    let signature = key.sign(&good, &now.to_string(), &body);
    let (status, _) = post(good.clone(), Some(now), Some(signature), body.clone()).await;
    assert_eq!(status, 202);
    world.decided(&good).await;

    // None of the refused ones was stored.
    for text in world.stored_messages().await {
        for id in &ids {
            assert!(!text.contains(id.as_str()), "{id} was stored");
        }
    }
}
