//! `/v1/admin/github/deliveries`: the GitHub reconciler's findings as the `github_deliveries`
//! read model shows them (events made through the real write side, projected by the real
//! projector), and operators' redeliveries through the App against the fake GitHub: committed as
//! `RedeliveryRequested`, then asked once each.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use hooklog_domain::clock::Timestamp;
use hooklog_domain::github_delivery::{
    GithubAttempt, GithubDeliveryCommand, RedeliveryPolicy, Requester,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_syncer::testing::{FakeGithub, APP_ID, PUBLIC_KEY};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{answer, code, App, Options, READ_TOKEN};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn meta(id: &str) -> CommandMetadata {
    CommandMetadata::from_operator("github-test", id)
}

/// What GitHub's log said of attempt `github_id`, delivered at `delivered_at`.
fn seen(github_id: u64, event: &str, installation: u64, delivered_at: SystemTime) -> GithubAttempt {
    GithubAttempt {
        connection_id: None,
        github_id,
        event: event.to_owned(),
        action: None,
        installation_id: Some(installation),
        repository_id: Some(99),
        delivered_at: Timestamp(delivered_at),
        status: "Invalid HTTP Response: 503".to_owned(),
        status_code: 503,
        redelivery: false,
    }
}

/// Records `guid` missing through the write side.
async fn record_missing(app: &App, guid: &str, seen: GithubAttempt) {
    let command = GithubDeliveryCommand::RecordMissing {
        guid: guid.to_owned(),
        seen,
    };
    app.bus
        .github_delivery(guid, command, &meta(guid))
        .await
        .unwrap();
}

async fn command(app: &App, guid: &str, command: GithubDeliveryCommand) {
    app.bus
        .github_delivery(guid, command, &meta(guid))
        .await
        .unwrap();
}

/// The read model's row of `guid` once the projector applied it with `status` and `attempts`
/// (waits up to 10 s).
async fn projected(app: &App, guid: &str, status: &str, attempts: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, body) = app
            .get(&format!("/v1/admin/github/deliveries/{guid}"))
            .await;
        if code == 200 && body["status"] == status && body["attempts"] == attempts {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{guid} never projected {status} with {attempts} attempts: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The stored events of one type of `guid`'s `GithubDelivery`.
async fn events(app: &App, guid: &str, event_type: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'GithubDelivery' \
         AND aggregate_id = $1 AND event_type = $2",
    )
    .bind(guid)
    .bind(event_type)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

fn guids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["guid"].as_str().unwrap())
        .collect()
}

/// Four GUIDs, one per status, found in this order: missing (push, installation 1), requested
/// (push, 2), arrived (installation, 1), unrecoverable (pull_request, 1).
async fn four_findings(app: &App) {
    let now = SystemTime::now();
    record_missing(app, "gh-missing", seen(11, "push", 1, now)).await;
    record_missing(app, "gh-requested", seen(12, "push", 2, now)).await;
    let policy = RedeliveryPolicy::default();
    let ask = GithubDeliveryCommand::RequestRedelivery {
        attempt: 1,
        by: Requester::Reconciler,
        policy,
    };
    command(app, "gh-requested", ask.clone()).await;
    record_missing(app, "gh-arrived", seen(13, "installation", 1, now)).await;
    let arrived = GithubDeliveryCommand::RecordArrived { stream_sequence: 7 };
    command(app, "gh-arrived", arrived).await;
    record_missing(app, "gh-unrecoverable", seen(14, "pull_request", 1, now)).await;
    command(app, "gh-unrecoverable", ask).await;
    let refused = GithubDeliveryCommand::RecordRefused {
        attempt: 1,
        status: 422,
        message: "Validation Failed".to_owned(),
    };
    command(app, "gh-unrecoverable", refused).await;
    projected(app, "gh-missing", "missing", 0).await;
    projected(app, "gh-requested", "requested", 1).await;
    projected(app, "gh-arrived", "arrived", 0).await;
    projected(app, "gh-unrecoverable", "unrecoverable", 1).await;
}

#[tokio::test]
async fn findings_are_listed_newest_first_filtered_and_read_one_by_one() {
    let app = App::start().await;
    four_findings(&app).await;

    let (status, all) = app.get("/v1/admin/github/deliveries").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        guids(&all),
        [
            "gh-unrecoverable",
            "gh-arrived",
            "gh-requested",
            "gh-missing"
        ]
    );
    assert!(all["next_cursor"].is_null(), "{all}");

    let (status, open) = app.get("/v1/admin/github/deliveries?missing=true").await;
    assert_eq!(status, 200, "{open}");
    assert_eq!(
        guids(&open),
        ["gh-unrecoverable", "gh-requested", "gh-missing"]
    );
    let (_, arrived) = app.get("/v1/admin/github/deliveries?missing=false").await;
    assert_eq!(guids(&arrived), ["gh-arrived"]);
    for status in ["missing", "requested", "arrived", "unrecoverable"] {
        let (code, page) = app
            .get(&format!("/v1/admin/github/deliveries?status={status}"))
            .await;
        assert_eq!(code, 200, "{page}");
        assert_eq!(guids(&page), [format!("gh-{status}")], "status={status}");
    }
    let (_, pushes) = app.get("/v1/admin/github/deliveries?event=push").await;
    assert_eq!(guids(&pushes), ["gh-requested", "gh-missing"]);
    let (_, first) = app
        .get("/v1/admin/github/deliveries?installation_id=1&missing=true")
        .await;
    assert_eq!(guids(&first), ["gh-unrecoverable", "gh-missing"]);

    // Pages of two, newest first, neither skipping nor repeating.
    let (_, page) = app.get("/v1/admin/github/deliveries?limit=2").await;
    assert_eq!(guids(&page), ["gh-unrecoverable", "gh-arrived"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = app
        .get(&format!(
            "/v1/admin/github/deliveries?limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(guids(&next), ["gh-requested", "gh-missing"]);
    assert!(next["next_cursor"].is_null(), "{next}");

    // One, with what GitHub's log said and what was done.
    let (status, one) = app
        .get("/v1/admin/github/deliveries/gh-unrecoverable")
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["github_id"], 14);
    assert_eq!(one["event"], "pull_request");
    assert_eq!(one["installation_id"], 1);
    assert_eq!(one["github_status_code"], 503);
    assert_eq!(one["last_requested_by"], "reconciler");
    assert_eq!(one["unrecoverable"], "refused");
    assert!(
        one["reason"]
            .as_str()
            .unwrap()
            .contains("Validation Failed"),
        "{one}"
    );
    for time in [
        "delivered_at",
        "found_at",
        "updated_at",
        "last_requested_at",
    ] {
        let raw = one[time].as_str().unwrap();
        time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| panic!("{time} {raw:?} is not RFC 3339"));
    }
    let (_, arrived) = app.get("/v1/admin/github/deliveries/gh-arrived").await;
    assert_eq!(arrived["stream_sequence"], 7);

    let (status, body) = app.get("/v1/admin/github/deliveries/gh-never").await;
    assert_eq!((status, code(&body)), (404, "github_delivery_not_found"));

    // Bad values are the client's 400, naming the parameter.
    for (query, want, names) in [
        ("status=lost", "bad_filter", "status"),
        ("event=Push!", "bad_filter", "event"),
        ("missing=maybe", "bad_query", "missing"),
        ("installation_id=one", "bad_query", "installation_id"),
        ("limit=0", "bad_filter", "limit"),
        ("limit=many", "bad_query", "limit"),
        ("cursor=x", "bad_cursor", "cursor"),
        ("colour=red", "bad_query", "colour"),
    ] {
        let (status, body) = app
            .get(&format!("/v1/admin/github/deliveries?{query}"))
            .await;
        assert_eq!((status, code(&body)), (400, want), "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{query}: {message}");
    }

    // The record itself: the aggregate's events and its state folded from HOOKLOG_EVENTS.
    let (status, history) = app
        .get("/v1/admin/aggregates/GithubDelivery/gh-unrecoverable/events")
        .await;
    assert_eq!(status, 200, "{history}");
    let types: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "DeliveryMissing",
            "RedeliveryRequested",
            "DeliveryUnrecoverable"
        ]
    );
    let (status, state) = app
        .get("/v1/admin/aggregates/GithubDelivery/gh-requested/state")
        .await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["events"], 2);
    assert_eq!(state["state"]["status"], "requested");
    assert_eq!(state["state"]["attempts"], 1);
    let (status, body) = app
        .get("/v1/admin/aggregates/GithubDelivery/not.one.token/state")
        .await;
    assert_eq!((status, code(&body)), (400, "bad_aggregate_id"), "{body}");
    let (status, body) = app
        .get("/v1/admin/aggregates/GithubDeliveries/gh-missing/events")
        .await;
    assert_eq!((status, code(&body)), (400, "bad_aggregate_type"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GithubDelivery"),
        "{body}"
    );

    // The read token reads but never asks for a redelivery.
    let (status, _) = answer(
        app.http
            .get(format!("{}/v1/admin/github/deliveries", app.url))
            .bearer_auth(READ_TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    for path in [
        "/v1/admin/github/deliveries/gh-missing/redeliver",
        "/v1/admin/github/deliveries/redeliver-missing",
    ] {
        let (status, body) = answer(
            app.http
                .post(format!("{}{path}", app.url))
                .bearer_auth(READ_TOKEN),
        )
        .await;
        assert_eq!((status, code(&body)), (403, "read_only_token"), "{path}");
    }
}

#[tokio::test]
async fn redelivering_without_the_app_is_503_naming_the_settings() {
    let app = App::start().await;
    record_missing(&app, "gh-no-app", seen(21, "push", 1, SystemTime::now())).await;
    for path in [
        "/v1/admin/github/deliveries/gh-no-app/redeliver",
        "/v1/admin/github/deliveries/redeliver-missing",
    ] {
        let (status, body) = app.call(Method::POST, path, None).await;
        assert_eq!(
            (status, code(&body)),
            (503, "github_app_not_configured"),
            "{path}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("HOOKLOG_GITHUB_APP_ID")
                && message.contains("HOOKLOG_GITHUB_APP_PRIVATE_KEY"),
            "{message}"
        );
    }
    assert_eq!(events(&app, "gh-no-app", "RedeliveryRequested").await, 0);
}

/// The fake GitHub (its delivery log; redeliveries go nowhere) and an admin listener with its App.
async fn with_app() -> (App, FakeGithub, tempfile::TempDir) {
    let repo_dir = tempfile::tempdir().unwrap();
    let github = FakeGithub::start(repo_dir.path().to_path_buf(), APP_ID, PUBLIC_KEY).await;
    let app = App::start_with(Options {
        github_app: Some((github.app_config(), RedeliveryPolicy::default())),
        ..Options::default()
    })
    .await;
    (app, github, repo_dir)
}

/// A delivery GitHub attempted and hooklog never got, in the fake's log; recorded missing with
/// the fake's id.
async fn lost(app: &App, github: &FakeGithub, delivered_at: SystemTime) -> (String, u64) {
    let item = github.record_lost("push", br#"{"zen":"lost"}"#, delivered_at, 0);
    record_missing(app, &item.guid, seen(item.id, "push", 1, delivered_at)).await;
    (item.guid, item.id)
}

#[tokio::test]
async fn an_operator_redelivers_through_the_app_and_may_ask_again_at_once() {
    let (app, github, _repo) = with_app().await;
    let (guid, id) = lost(&app, &github, SystemTime::now()).await;
    projected(&app, &guid, "missing", 0).await;

    let path = format!("/v1/admin/github/deliveries/{guid}/redeliver");
    let (status, body) = app.call(Method::POST, &path, None).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["guid"], guid.as_str());
    assert_eq!(body["outcome"], "accepted");
    assert!(body["detail"].is_null(), "{body}");
    assert_eq!(body["events"][0]["event_type"], "RedeliveryRequested");
    let position = body["position"].as_u64().expect("published");
    assert_eq!(github.redelivery_requests(), [id]);
    let (status, row) = app
        .get(&format!(
            "/v1/admin/github/deliveries/{guid}?min_position={position}"
        ))
        .await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(
        (&row["status"], &row["attempts"], &row["last_requested_by"]),
        (&json!("requested"), &json!(1), &json!("operator"))
    );
    let (_, history) = app
        .get(&format!(
            "/v1/admin/aggregates/GithubDelivery/{guid}/events"
        ))
        .await;
    assert_eq!(
        history["items"][1]["metadata"]["actor"], "operator:admin",
        "{history}"
    );

    // An operator is not held to the arrival timeout: the next attempt, asked once more.
    let (status, body) = app.call(Method::POST, &path, None).await;
    assert_eq!(
        (status, &body["outcome"]),
        (202, &json!("accepted")),
        "{body}"
    );
    assert_eq!(github.redelivery_requests(), [id, id]);
    assert_eq!(events(&app, &guid, "RedeliveryRequested").await, 2);
    projected(&app, &guid, "requested", 2).await;

    // Never recorded missing: 404; GitHub does not know it: asked, and refused by GitHub.
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/admin/github/deliveries/gh-never/redeliver",
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (404, "github_delivery_not_found"));
    record_missing(
        &app,
        "gh-unknown-to-github",
        seen(9999, "push", 1, SystemTime::now()),
    )
    .await;
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/admin/github/deliveries/gh-unknown-to-github/redeliver",
            None,
        )
        .await;
    assert_eq!(
        (status, &body["outcome"]),
        (202, &json!("refused")),
        "{body}"
    );
    assert!(body["detail"].as_str().unwrap().contains("404"), "{body}");
    projected(&app, "gh-unknown-to-github", "unrecoverable", 1).await;

    // Arrived, or past GitHub's window: nothing GitHub can do (409), nothing asked.
    command(
        &app,
        &guid,
        GithubDeliveryCommand::RecordArrived { stream_sequence: 3 },
    )
    .await;
    let (status, body) = app.call(Method::POST, &path, None).await;
    assert_eq!((status, code(&body)), (409, "redelivery_refused"), "{body}");
    let (old, _) = lost(&app, &github, SystemTime::now() - 4 * DAY).await;
    let (status, body) = app
        .call(
            Method::POST,
            &format!("/v1/admin/github/deliveries/{old}/redeliver"),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (409, "redelivery_refused"), "{body}");
    assert_eq!(github.redelivery_requests(), [id, id, 9999]);
    assert_eq!(events(&app, &guid, "RedeliveryRequested").await, 2);
    assert_eq!(events(&app, &old, "RedeliveryRequested").await, 0);
}

#[tokio::test]
async fn redeliver_missing_asks_each_guid_not_arrived_once() {
    let (app, github, _repo) = with_app().await;
    let now = SystemTime::now();
    let (missing, missing_id) = lost(&app, &github, now).await;
    let (requested, requested_id) = lost(&app, &github, now).await;
    let (arrived, _) = lost(&app, &github, now).await;
    let (past_window, _) = lost(&app, &github, now - 4 * DAY).await;
    let policy = RedeliveryPolicy::default();
    let ask = GithubDeliveryCommand::RequestRedelivery {
        attempt: 1,
        by: Requester::Reconciler,
        policy,
    };
    command(&app, &requested, ask).await;
    command(
        &app,
        &arrived,
        GithubDeliveryCommand::RecordArrived { stream_sequence: 5 },
    )
    .await;
    projected(&app, &missing, "missing", 0).await;
    projected(&app, &requested, "requested", 1).await;
    projected(&app, &arrived, "arrived", 0).await;
    projected(&app, &past_window, "missing", 0).await;

    let (status, report) = app
        .call(
            Method::POST,
            "/v1/admin/github/deliveries/redeliver-missing",
            None,
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["asked"], 3, "{report}");
    assert_eq!(report["accepted"], 2, "{report}");
    assert_eq!(report["failed"], json!([]), "{report}");
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{report}");
    assert_eq!(refused[0]["guid"], past_window.as_str());
    assert!(
        refused[0]["detail"].as_str().unwrap().contains("window"),
        "{report}"
    );
    let asked: BTreeSet<u64> = github.redelivery_requests().into_iter().collect();
    assert_eq!(asked, BTreeSet::from([missing_id, requested_id]));
    assert_eq!(github.redelivery_requests().len(), 2);
    assert_eq!(events(&app, &missing, "RedeliveryRequested").await, 1);
    assert_eq!(events(&app, &requested, "RedeliveryRequested").await, 2);
    assert_eq!(events(&app, &arrived, "RedeliveryRequested").await, 0);
    assert_eq!(events(&app, &past_window, "RedeliveryRequested").await, 0);
}
