//! `POST /v1/admin/dead-letters/{stream_sequence}/redrive`: a dead letter read back from the
//! stream and run through the worker again, its new decision an event of its own, and the
//! read models following.

use std::time::{Duration, Instant};

use hooklog_domain::delivery::{DecideDelivery, Decision, DeliveryKey, StreamPosition};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_infra::testing::octokit_example;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{answer, code, App, READ_TOKEN};

async fn events_of(app: &App, delivery_id: &str) -> Vec<(String, Value)> {
    sqlx::query_as(
        "SELECT event_type, metadata FROM events WHERE aggregate_type = 'Delivery' \
         AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(delivery_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Waits until `path` answers what `done` accepts; the last answer.
async fn until(app: &App, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, body) = app.get(path).await;
        if done(&body) || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_dead_letter_is_run_again_decided_anew_and_leaves_the_dead_letters() {
    let app = App::start().await;
    // A delivery the worker once dead-lettered (say, before the fix of what it tripped on),
    // stored as the ingress stores it.
    let delivery_id = "redrive-ping-1";
    let dead = DecideDelivery {
        delivery_id: delivery_id.to_owned(),
        position: StreamPosition {
            event: "ping".to_owned(),
            stream_sequence: 1,
            attempts: 1,
        },
        decision: Decision::DeadLettered {
            reason: "a reason since fixed".to_owned(),
        },
    };
    app.bus
        .delivery(
            &DeliveryKey::for_delivery(delivery_id),
            dead,
            &CommandMetadata::from_delivery(delivery_id),
        )
        .await
        .unwrap();
    let body =
        serde_json::to_vec(&octokit_example("ping", |x| x["repository"].is_object())).unwrap();
    let sequence = app
        .deliver("ping", delivery_id, "application/json", body)
        .await;
    assert_eq!(sequence, 1);
    let listed = until(&app, "/v1/admin/dead-letters", |page| {
        page["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1)
    })
    .await;
    assert_eq!(listed["items"][0]["delivery_id"], delivery_id, "{listed}");

    // A read token may not; an unknown sequence is 404.
    let (status, _) = answer(
        app.http
            .request(
                Method::POST,
                format!("{}/v1/admin/dead-letters/1/redrive", app.url),
            )
            .bearer_auth(READ_TOKEN),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .post("/v1/admin/dead-letters/99/redrive", json!({}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (404, "dead_letter_not_found"),
        "{body}"
    );

    let (status, redriven) = app
        .post("/v1/admin/dead-letters/1/redrive", json!({}))
        .await;
    assert_eq!(status, 200, "{redriven}");
    assert_ne!(redriven["outcome"], "dead_letter", "{redriven}");
    let events = events_of(&app, delivery_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types[..2],
        ["DeliveryDeadLettered", "DeliveryRedriven"],
        "{types:?}"
    );
    assert_eq!(types.len(), 3, "{types:?}");
    assert_eq!(events[1].1["actor"], "operator:admin");

    // The read models follow: no dead letter, the new outcome.
    until(&app, "/v1/admin/dead-letters", |page| {
        page["items"]
            .as_array()
            .is_some_and(|items| items.is_empty())
    })
    .await;
    let (_, dead_letters) = app.get("/v1/admin/dead-letters").await;
    assert_eq!(dead_letters["items"], json!([]), "{dead_letters}");
    let shown = until(&app, &format!("/v1/admin/deliveries/{delivery_id}"), |d| {
        d["outcome"] == redriven["outcome"]
    })
    .await;
    assert_eq!(shown["outcome"], redriven["outcome"], "{shown}");

    // Only dead letters are redriven.
    let (status, body) = app
        .post("/v1/admin/dead-letters/1/redrive", json!({}))
        .await;
    assert_eq!((status, code(&body)), (409, "not_a_dead_letter"), "{body}");
    assert_eq!(events_of(&app, delivery_id).await.len(), 3);
}

#[tokio::test]
async fn a_dead_letter_that_still_fails_is_a_dead_letter_again_with_its_reason() {
    let app = App::start().await;
    // A push without the fields a push needs: the worker dead-letters it.
    let sequence = app
        .deliver(
            "push",
            "redrive-bad-push",
            "application/json",
            br#"{"zen": 1}"#.to_vec(),
        )
        .await;
    until(&app, "/v1/admin/dead-letters", |page| {
        page["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1)
    })
    .await;
    let (status, redriven) = app
        .post(
            &format!("/v1/admin/dead-letters/{sequence}/redrive"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{redriven}");
    assert_eq!(redriven["outcome"], "dead_letter");
    assert!(!redriven["detail"].as_str().unwrap().is_empty());
    let types: Vec<String> = events_of(&app, "redrive-bad-push")
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        types,
        [
            "DeliveryDeadLettered",
            "DeliveryRedriven",
            "DeliveryDeadLettered"
        ]
    );
    let listed = until(&app, "/v1/admin/dead-letters", |page| {
        page["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1)
    })
    .await;
    assert_eq!(
        listed["items"][0]["delivery_id"], "redrive-bad-push",
        "{listed}"
    );
}
