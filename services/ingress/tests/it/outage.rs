//! JetStream down: the ingress answers 503 with Retry-After, never 2xx, and accepts again once
//! the server is back, without a restart.

use std::time::Duration;

use async_nats::connection::State;

use crate::support::{new_delivery_id, receipt, spawn_app};

const BODY: &[u8] = br#"{"ref":"refs/heads/main"}"#;

#[tokio::test]
async fn jetstream_stopped_answers_503_and_restarted_accepts_again_without_a_restart() {
    let mut app = spawn_app().await;
    assert_eq!(
        app.deliver("push", &new_delivery_id(), BODY.to_vec())
            .await
            .status(),
        202
    );

    app.nats.stop().await;
    let delivery_id = new_delivery_id();
    let refused = app.deliver("push", &delivery_id, BODY.to_vec()).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let error: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(error["code"], "store_unavailable");

    app.nats
        .restart()
        .await
        .expect("nats-server restarts on the same port and store");
    let mut accepted = None;
    for _ in 0..100 {
        let response = app.deliver("push", &delivery_id, BODY.to_vec()).await;
        match response.status().as_u16() {
            202 => {
                accepted = Some(receipt(response).await);
                break;
            }
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("unexpected status {other} while recovering"),
        }
    }
    let accepted = accepted.expect("accepted again within 10 s of the restart");
    assert_eq!(app.client.connection_state(), State::Connected);
    assert_eq!(accepted["delivery_id"], delivery_id.as_str());
    // The delivery refused during the outage is now stored, once, after the first one.
    assert_eq!(app.stored_count().await, 2);
}
