//! Bad input is the client's 4xx with a stable code and a JSON body, never a 500.

use std::time::Duration;

use hooklog_admin::Waits;
use reqwest::Method;
use serde_json::json;

use crate::routes::UNKNOWN_TARGET;
use crate::support::{answer, code, App, Options};

#[tokio::test]
async fn malformed_ids_filters_cursors_and_bodies_get_a_4xx_with_a_stable_code() {
    let app = App::start_with(Options {
        waits: Waits {
            position: Duration::from_millis(200),
            publish: Duration::from_secs(5),
        },
        ..Options::default()
    })
    .await;
    let cases: Vec<(&str, (u16, serde_json::Value), u16, &str)> = vec![
        ("bad target id", app.get("/v1/admin/targets/not-a-uuid").await, 400, "bad_id"),
        ("bad instance id", app.get("/v1/admin/instances/installation-7").await, 400, "bad_id"),
        ("bad sync id", app.get("/v1/admin/syncs/42").await, 400, "bad_id"),
        ("unknown query field", app.get("/v1/admin/instances?colour=red").await, 400, "bad_query"),
        ("non-numeric limit", app.get("/v1/admin/targets?limit=many").await, 400, "bad_query"),
        ("limit too large", app.get("/v1/admin/instances?limit=100000").await, 400, "bad_filter"),
        ("bad cursor", app.get("/v1/admin/targets?cursor=zzz").await, 400, "bad_cursor"),
        ("unknown status", app.get("/v1/admin/syncs?status=sleeping").await, 400, "bad_filter"),
        ("bad target filter", app.get("/v1/admin/syncs?target=nope").await, 400, "bad_filter"),
        ("bad instance filter", app.get("/v1/admin/targets?instance=nope").await, 400, "bad_filter"),
        ("bad connection filter", app.get("/v1/admin/targets?connection=nope").await, 400, "bad_filter"),
        ("bad time", app.get("/v1/admin/deliveries?since=yesterday").await, 400, "bad_filter"),
        ("unknown aggregate type", app.get("/v1/admin/aggregates/Repository/x/events").await, 400, "bad_aggregate_type"),
        ("unknown aggregate", app.get(&format!("/v1/admin/aggregates/ConnectorTarget/{UNKNOWN_TARGET}/events")).await, 404, "aggregate_not_found"),
        ("unknown target", app.get(&format!("/v1/admin/targets/{UNKNOWN_TARGET}")).await, 404, "target_not_found"),
        ("unknown instance", app.get("/v1/admin/instances/31337").await, 404, "instance_not_found"),
        ("unknown delivery", app.get("/v1/admin/deliveries/nope").await, 404, "delivery_not_found"),
        ("unknown sync", app.get(&format!("/v1/admin/syncs/{UNKNOWN_TARGET}")).await, 404, "sync_not_found"),
        ("retry of unknown sync", app.post(&format!("/v1/admin/syncs/{UNKNOWN_TARGET}/retry"), json!({})).await, 404, "sync_not_found"),
        ("unknown route", app.get("/v1/admin/nothing-here").await, 404, "route_not_found"),
        ("wrong method", app.call(Method::PUT, "/v1/admin/instances", None).await, 405, "method_not_allowed"),
        ("position not reached", app.get("/v1/admin/instances?min_position=1000000").await, 503, "position_not_reached"),
        ("malformed JSON", answer(app.request(Method::POST, "/v1/admin/targets").header("content-type", "application/json").body("{")).await, 400, "bad_body"),
        ("body not JSON", answer(app.request(Method::POST, "/v1/admin/instances").body("installation_id=1")).await, 415, "unsupported_media_type"),
        ("unknown body field", app.post("/v1/admin/instances", json!({"installation_id": 1, "colour": "red"})).await, 400, "bad_body"),
        ("missing body field", app.post("/v1/admin/targets", json!({"installation_id": 1})).await, 400, "bad_body"),
        ("wrong body type", app.post("/v1/admin/instances", json!({"installation_id": "one"})).await, 400, "bad_body"),
        ("bad repository", app.post("/v1/admin/targets", json!({"installation_id": 1, "repository_id": 2, "repository": "no-owner", "branch": "main"})).await, 422, "invalid_repository"),
        ("dot-dot repository", app.post("/v1/admin/targets", json!({"installation_id": 1, "repository_id": 2, "repository": "octo/..", "branch": "main"})).await, 422, "invalid_repository"),
        ("bad branch", app.post("/v1/admin/targets", json!({"installation_id": 1, "repository_id": 2, "repository": "o/r", "branch": "refs/heads/main"})).await, 422, "invalid_branch"),
        ("bad path filter", app.post("/v1/admin/targets", json!({"installation_id": 1, "repository_id": 2, "repository": "o/r", "branch": "main", "path_filters": {"include": ["../etc"]}})).await, 422, "invalid_path_filters"),
        ("empty update", app.call(Method::PATCH, &format!("/v1/admin/targets/{UNKNOWN_TARGET}"), Some(json!({}))).await, 422, "empty_update"),
        ("update of unknown target", app.call(Method::PATCH, &format!("/v1/admin/targets/{UNKNOWN_TARGET}"), Some(json!({"auto_sync": false}))).await, 404, "target_not_found"),
        ("bad head SHA", app.post(&format!("/v1/admin/targets/{UNKNOWN_TARGET}/sync"), json!({"head_sha": "HEAD"})).await, 422, "invalid_head_sha"),
        ("sync of unknown target", app.post(&format!("/v1/admin/targets/{UNKNOWN_TARGET}/sync"), json!({})).await, 404, "target_not_found"),
        ("patch of unknown instance", app.call(Method::PATCH, "/v1/admin/instances/31337", Some(json!({"auto_track": true}))).await, 404, "instance_not_found"),
        ("delete of unknown instance", app.call(Method::DELETE, "/v1/admin/instances/31337", None).await, 404, "instance_not_found"),
        ("delete of unknown target", app.call(Method::DELETE, &format!("/v1/admin/targets/{UNKNOWN_TARGET}"), None).await, 404, "target_not_found"),
        ("bad Last-Event-ID", answer(app.request(Method::GET, "/v1/admin/feed").header("last-event-id", "soon")).await, 400, "bad_last_event_id"),
        ("bad feed start", app.get("/v1/admin/feed?after=-1").await, 400, "bad_query"),
    ];
    for (what, (status, body), want_status, want_code) in cases {
        assert_eq!(
            (status, code(&body)),
            (want_status, want_code),
            "{what}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }
}

#[tokio::test]
async fn a_read_that_waits_for_an_unreached_position_says_when_to_retry() {
    let app = App::start_with(Options {
        waits: Waits {
            position: Duration::from_millis(100),
            publish: Duration::from_secs(5),
        },
        ..Options::default()
    })
    .await;
    let response = app
        .request(Method::GET, "/v1/admin/deliveries?min_position=99")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
}
