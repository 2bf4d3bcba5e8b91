//! Commands through the admin API: each answers 202 with the events it committed and their
//! `HOOKLOG_EVENTS` position, and a read with that `min_position` sees the change.

use hooklog_domain::connector_target::TargetCommand;
use hooklog_domain::ids::{Branch, InstallationId, RepositoryId, SyncId, TargetId};
use hooklog_domain::metadata::CommandMetadata;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{code, App};

const INSTALLATION: u64 = 4242;

fn event_types(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {body}"))
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}

fn position(body: &Value) -> u64 {
    assert_eq!(body["published"], true, "{body}");
    body["position"]
        .as_u64()
        .unwrap_or_else(|| panic!("no position in {body}"))
}

fn target_of(repository: u64, branch: &str) -> String {
    TargetId::for_branch(
        InstallationId(INSTALLATION),
        RepositoryId(repository),
        &Branch::parse(branch).unwrap(),
    )
    .to_string()
}

async fn track(app: &App, repository: u64, branch: &str) -> (u16, Value) {
    app.post(
        "/v1/admin/targets",
        json!({
            "installation_id": INSTALLATION,
            "repository_id": repository,
            "repository": "octo/docs",
            "branch": branch,
            "path_filters": {"include": ["docs/**"]},
        }),
    )
    .await
}

#[tokio::test]
async fn an_instance_is_connected_updated_and_read_back_at_its_position() {
    let app = App::start().await;
    let (status, body) = app
        .post(
            "/v1/admin/instances",
            json!({"installation_id": INSTALLATION, "account": "octo", "auto_track": true}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["instance_id"], "github-installation-4242");
    assert_eq!(
        event_types(&body),
        ["InstanceConnected", "AutoTrackChanged"]
    );
    assert_eq!(body["events"][0]["aggregate_type"], "ConnectorInstance");
    let at = position(&body);

    let (status, instance) = app
        .get(&format!(
            "/v1/admin/instances/github-installation-4242?min_position={at}"
        ))
        .await;
    assert_eq!(status, 200, "{instance}");
    assert_eq!(instance["status"], "connected");
    assert_eq!(instance["account"], "octo");
    assert_eq!(instance["auto_track"], true);

    let (status, again) = app
        .post(
            "/v1/admin/instances",
            json!({"installation_id": INSTALLATION}),
        )
        .await;
    assert_eq!((status, code(&again)), (409, "command_rejected"), "{again}");

    let (status, body) = app
        .call(
            Method::PATCH,
            "/v1/admin/instances/4242",
            Some(json!({"auto_track": false})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(event_types(&body), ["AutoTrackChanged"]);
    let (status, same) = app
        .call(
            Method::PATCH,
            "/v1/admin/instances/4242",
            Some(json!({"auto_track": false})),
        )
        .await;
    assert_eq!(status, 202, "{same}");
    assert!(event_types(&same).is_empty());
    assert_eq!(
        same["position"], body["position"],
        "a no-op answers the current position"
    );

    let (status, page) = app
        .get(&format!(
            "/v1/admin/instances?status=connected&min_position={}",
            position(&body)
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["auto_track"], false);

    let (status, history) = app
        .get("/v1/admin/aggregates/ConnectorInstance/github-installation-4242/events?limit=2")
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["items"][0]["event_type"], "InstanceConnected");
    assert_eq!(history["items"][0]["metadata"]["actor"], "operator:admin");
    let cursor = history["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!("/v1/admin/aggregates/ConnectorInstance/github-installation-4242/events?cursor={cursor}"))
        .await;
    assert_eq!(rest["items"][0]["event_type"], "AutoTrackChanged");
}

#[tokio::test]
async fn a_target_is_tracked_updated_synced_retried_and_removed() {
    let app = App::start().await;
    let (status, body) = track(&app, 1, "main").await;
    assert_eq!(status, 202, "{body}");
    let target = target_of(1, "main");
    assert_eq!(body["target_id"], target);
    assert_eq!(
        event_types(&body),
        // Tracked with its filters in one command; the process manager attached it, and the
        // answer waited for that.
        ["TargetTracked", "TargetAttached"]
    );
    let at = position(&body);
    let (status, view) = app
        .get(&format!("/v1/admin/targets/{target}?min_position={at}"))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["auto_sync"], true);
    assert_eq!(view["path_filters"]["include"], json!(["docs/**"]));

    let (status, again) = track(&app, 1, "main").await;
    assert_eq!((status, code(&again)), (409, "already_tracked"), "{again}");

    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/v1/admin/targets/{target}"),
            Some(json!({"auto_sync": false})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(event_types(&body), ["AutoSyncChanged"]);

    // Nothing pushed yet: a sync needs a head.
    let (status, refused) = app
        .call(
            Method::POST,
            &format!("/v1/admin/targets/{target}/sync"),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&refused)),
        (409, "command_rejected"),
        "{refused}"
    );

    let head = "a".repeat(40);
    let (status, sync) = app
        .post(
            &format!("/v1/admin/targets/{target}/sync"),
            json!({"head_sha": head}),
        )
        .await;
    assert_eq!(status, 202, "{sync}");
    assert_eq!(event_types(&sync), ["SyncRequested"]);
    assert_eq!(sync["queued"], false);
    let sync_id = sync["sync_id"].as_str().unwrap().to_owned();
    let at = position(&sync);
    let (status, run) = app
        .get(&format!("/v1/admin/syncs/{sync_id}?min_position={at}"))
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(
        (run["status"].as_str(), run["reason"].as_str()),
        (Some("queued"), Some("manual"))
    );
    let (status, retry) = app
        .post(&format!("/v1/admin/syncs/{sync_id}/retry"), json!({}))
        .await;
    assert_eq!((status, code(&retry)), (409, "sync_not_failed"), "{retry}");

    // The syncer's part: the run starts and fails.
    let meta = CommandMetadata::from_operator("syncer-test", "fail-1");
    let (id, sync) = (
        TargetId::parse(&target).unwrap(),
        SyncId(sync_id.parse().unwrap()),
    );
    app.bus
        .target(id, TargetCommand::StartSync { sync_id: sync }, &meta)
        .await
        .unwrap();
    let fail = TargetCommand::FailSync {
        sync_id: sync,
        error: "boom".into(),
        retryable: true,
    };
    app.bus.target(id, fail, &meta).await.unwrap();
    let mut run = json!(null);
    for _ in 0..200 {
        (_, run) = app.get(&format!("/v1/admin/syncs/{sync_id}")).await;
        if run["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(run["status"], "failed", "{run}");

    let (status, retried) = app
        .post(&format!("/v1/admin/syncs/{sync_id}/retry"), json!({}))
        .await;
    assert_eq!(status, 202, "{retried}");
    assert_eq!(event_types(&retried), ["SyncRequested"]);
    assert_ne!(retried["sync_id"], sync_id.as_str());
    assert_eq!(retried["head_sha"], head.as_str());

    // A second request while the retry is in flight waits behind it.
    let (status, queued) = app
        .post(
            &format!("/v1/admin/targets/{target}/sync"),
            json!({"head_sha": "b".repeat(40)}),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(
        (queued["queued"].as_bool(), queued["sync_id"].as_str()),
        (Some(true), None)
    );
    let at = position(&queued);

    let (status, runs) = app
        .get(&format!(
            "/v1/admin/targets/{target}/syncs?min_position={at}"
        ))
        .await;
    assert_eq!(status, 200, "{runs}");
    assert_eq!(runs["items"].as_array().unwrap().len(), 2);
    let (_, failed) = app
        .get(&format!("/v1/admin/syncs?target={target}&status=failed"))
        .await;
    assert_eq!(failed["items"][0]["sync_id"], sync_id.as_str());

    let (status, removed) = app
        .call(Method::DELETE, &format!("/v1/admin/targets/{target}"), None)
        .await;
    assert_eq!(status, 202, "{removed}");
    assert_eq!(event_types(&removed), ["TargetRemoved", "TargetDetached"]);
    let (status, gone) = app
        .get(&format!(
            "/v1/admin/targets/{target}?min_position={}",
            position(&removed)
        ))
        .await;
    assert_eq!(
        (status, gone["status"].as_str()),
        (200, Some("removed")),
        "{gone}"
    );
    let (status, twice) = app
        .call(Method::DELETE, &format!("/v1/admin/targets/{target}"), None)
        .await;
    assert_eq!((status, code(&twice)), (409, "command_rejected"), "{twice}");
}

#[tokio::test]
async fn disconnecting_an_instance_removes_its_targets() {
    let app = App::start().await;
    let (status, _) = app
        .post(
            "/v1/admin/instances",
            json!({"installation_id": INSTALLATION}),
        )
        .await;
    assert_eq!(status, 202);
    for branch in ["main", "dev"] {
        assert_eq!(track(&app, 7, branch).await.0, 202);
    }
    let (status, body) = app
        .call(
            Method::DELETE,
            "/v1/admin/instances/github-installation-4242",
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let types = event_types(&body);
    assert_eq!(
        types,
        ["InstanceDisconnected", "TargetRemoved", "TargetRemoved"]
    );
    // The cascade is caused by the instance and correlated with the request, as stored.
    let stored: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT event_type, metadata->>'causation_id', metadata->>'actor' FROM events \
         WHERE metadata->>'correlation_id' = (SELECT metadata->>'correlation_id' FROM events \
         WHERE event_type = 'InstanceDisconnected') ORDER BY aggregate_type, aggregate_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 3, "{stored:?}");
    // Caused by the instance's `InstanceDisconnected` (its event id), sent by the process
    // manager, not by the request.
    let disconnected = format!(
        "ConnectorInstance:github-installation-4242:{}",
        stored_sequence(&app, "InstanceDisconnected").await
    );
    for (event_type, causation, actor) in &stored[1..] {
        assert_eq!(event_type, "TargetRemoved");
        assert_eq!(causation, &disconnected);
        assert_eq!(actor, "system:process-manager");
    }
    let at = position(&body);
    for branch in ["main", "dev"] {
        let (status, view) = app
            .get(&format!(
                "/v1/admin/targets/{}?min_position={at}",
                target_of(7, branch)
            ))
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["status"], "removed");
        assert_eq!(view["removed_reason"], "installation_disconnected");
    }
    let (_, page) = app
        .get(&format!(
            "/v1/admin/targets?instance=4242&status=removed&min_position={at}"
        ))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let (status, again) = app
        .call(Method::DELETE, "/v1/admin/instances/4242", None)
        .await;
    assert_eq!((status, code(&again)), (409, "command_rejected"), "{again}");
}

/// The sequence of the one stored event of `event_type`.
async fn stored_sequence(app: &App, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT sequence FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_aggregates_state_is_folded_from_the_stream_as_of_a_sequence_or_a_time() {
    let app = App::start().await;
    let (status, connected) = app
        .post(
            "/v1/admin/instances",
            json!({"installation_id": 7373, "auto_track": false}),
        )
        .await;
    assert_eq!(status, 202, "{connected}");
    let first = position(&connected);
    let (status, changed) = app
        .call(
            Method::PATCH,
            "/v1/admin/instances/7373",
            Some(json!({"auto_track": true})),
        )
        .await;
    assert_eq!(status, 202, "{changed}");
    let second = position(&changed);
    assert!(second > first);

    let path = "/v1/admin/aggregates/ConnectorInstance/github-installation-7373/state";
    let (status, now) = app.get(path).await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(
        (now["events"].as_u64(), now["stream_sequence"].as_u64()),
        (Some(2), Some(second))
    );
    assert_eq!(now["state"]["auto_track"], true);
    let (status, then) = app.get(&format!("{path}?at_seq={first}")).await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(then["events"], 1);
    assert_eq!(then["state"]["auto_track"], false, "{then}");
    assert_eq!(then["state"]["installation_id"], 7373);
    let stored_at = then["stored_at"].as_str().unwrap().to_owned();
    let (status, by_time) = app
        .get(&format!("{path}?at={}", stored_at.replace('+', "%2B")))
        .await;
    assert_eq!(status, 200, "{by_time}");
    assert_eq!(by_time["events"], 1, "{by_time}");

    for (query, expected) in [
        ("?at=2000-01-01T00:00:00Z", (404, "aggregate_not_found")),
        (
            "?at_seq=1&at=2000-01-01T00:00:00Z",
            (400, "bad_point_in_time"),
        ),
        ("?at=yesterday", (400, "bad_point_in_time")),
        ("?at_seq=x", (400, "bad_query")),
    ] {
        let (status, body) = app.get(&format!("{path}{query}")).await;
        assert_eq!((status, code(&body)), expected, "{query}: {body}");
    }
    let (status, body) = app.get("/v1/admin/aggregates/Nope/x/state").await;
    assert_eq!((status, code(&body)), (400, "bad_aggregate_type"), "{body}");
}
