//! The live feed: domain events as Server-Sent Events, resumable by `Last-Event-ID`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::App;

/// One parsed SSE event: (id, event, data).
type SseEvent = (String, String, Value);

/// Reads SSE events from a streaming response until `count` arrived (30 s at most).
async fn read_events(response: &mut reqwest::Response, count: usize) -> Vec<SseEvent> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while events.len() < count {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("events within 30 s")
            .unwrap()
            .expect("the feed stays open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !data.is_empty() {
                events.push((id, event, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

#[tokio::test]
async fn the_feed_streams_new_events_and_resumes_after_last_event_id() {
    let app = App::start().await;
    let mut live = app
        .request(Method::GET, "/v1/admin/feed")
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert!(live.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    // The ordered consumer is created before the answer: what follows is on the feed.
    let (status, body) = app
        .post(
            "/v1/admin/instances",
            json!({"installation_id": 77, "account": "octo", "auto_track": true}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let events = read_events(&mut live, 2).await;
    let (id, event, data) = &events[0];
    assert_eq!(event, "InstanceConnected");
    assert_eq!(data["position"].to_string(), *id);
    assert_eq!(data["aggregate_type"], "ConnectorInstance");
    assert_eq!(data["aggregate_id"], "github-installation-77");
    assert_eq!(data["sequence"], 1);
    assert_eq!(data["payload"]["InstanceConnected"]["account"], "octo");
    assert_eq!(data["metadata"]["actor"], "operator:admin");
    assert_eq!(events[1].1, "AutoTrackChanged");
    assert_eq!(events[1].0, body["position"].to_string());

    let mut resumed = app
        .request(Method::GET, "/v1/admin/feed")
        .header("last-event-id", id.as_str())
        .send()
        .await
        .unwrap();
    let again = read_events(&mut resumed, 1).await;
    assert_eq!(again[0].1, "AutoTrackChanged");

    let mut from_start = app
        .request(Method::GET, "/v1/admin/feed?after=0")
        .send()
        .await
        .unwrap();
    let all = read_events(&mut from_start, 2).await;
    assert_eq!(all[0].1, "InstanceConnected");
}

#[tokio::test]
async fn an_open_feed_ends_when_the_listener_shuts_down() {
    let app = App::start().await;
    let mut live = app
        .request(Method::GET, "/v1/admin/feed")
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    app.shut_down();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while live.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the feed kept the listener from shutting down");
}
