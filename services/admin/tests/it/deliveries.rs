//! Deliveries: listed from the read model, and read in full with the stored headers and payload.

use serde_json::json;

use crate::support::App;

#[tokio::test]
async fn a_delivery_is_listed_and_read_back_with_its_headers_and_payload() {
    let app = App::start().await;
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1});
    let first = app
        .deliver(
            "ping",
            "d-json",
            "application/json",
            serde_json::to_vec(&ping).unwrap(),
        )
        .await;
    let form = format!(
        "payload={}",
        form_encode(&serde_json::to_string(&json!({"zen": "form", "hook_id": 2})).unwrap())
    );
    app.deliver(
        "ping",
        "d-form",
        "application/x-www-form-urlencoded",
        form.into_bytes(),
    )
    .await;
    let last = app
        .deliver(
            "ping",
            "d-raw",
            "application/octet-stream",
            vec![0xff, 0x00, 0x01],
        )
        .await;

    let (status, page) = app
        .get(&format!(
            "/v1/admin/deliveries?event=ping&min_position={last}&limit=2"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["stream_sequence"], first);
    assert_eq!(page["items"][0]["delivery_id"], "d-json");
    assert!(page["next_cursor"].is_string(), "{page}");

    let (status, json_delivery) = app.get("/v1/admin/deliveries/d-json").await;
    assert_eq!(status, 200, "{json_delivery}");
    assert_eq!(json_delivery["payload"], ping);
    assert_eq!(json_delivery["headers"]["X-GitHub-Delivery"], "d-json");
    assert_eq!(json_delivery["headers"]["X-GitHub-Event"], "ping");

    let (_, form_delivery) = app.get("/v1/admin/deliveries/d-form").await;
    assert_eq!(form_delivery["payload"]["zen"], "form", "{form_delivery}");

    let (_, raw) = app.get("/v1/admin/deliveries/d-raw").await;
    assert_eq!(raw["payload_base64"], "/wAB", "{raw}");
    assert!(raw.get("payload").is_none());

    let (status, since) = app
        .get("/v1/admin/deliveries?since=2026-01-31T12:00:00Z&until=2026-01-31T12:00:01%2B00:00")
        .await;
    assert_eq!(status, 200, "{since}");
    assert_eq!(since["items"].as_array().unwrap().len(), 3, "{since}");
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
