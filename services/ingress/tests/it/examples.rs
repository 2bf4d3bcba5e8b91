//! Every example payload of `@octokit/webhooks-examples` (api.github.com), delivered with its
//! event name: each answers as the status table says and is stored byte for byte.

use futures::{stream, StreamExt};
use hooklog_infra::streams::delivery_headers as h;
use sha2::{Digest, Sha256};

use crate::support::{header, new_delivery_id, receipt, spawn_app};

const EXAMPLES: &str = include_str!("../fixtures/octokit-webhooks-examples/api.github.com.json");

/// The events the connector acts on (202); every other verified event is recorded (200).
const ACTED_ON: [&str; 6] = [
    "push",
    "installation",
    "installation_repositories",
    "repository",
    "installation_target",
    "ping",
];

fn examples() -> Vec<(String, Vec<u8>)> {
    let events: Vec<serde_json::Value> = serde_json::from_str(EXAMPLES).expect("fixture parses");
    events
        .iter()
        .flat_map(|event| {
            let name = event["name"].as_str().expect("event name").to_owned();
            event["examples"]
                .as_array()
                .expect("examples")
                .iter()
                .map(move |example| (name.clone(), serde_json::to_vec_pretty(example).unwrap()))
        })
        .collect()
}

#[tokio::test]
async fn every_octokit_example_is_answered_per_the_status_table_and_stored_byte_for_byte() {
    let app = spawn_app().await;
    let examples = examples();
    assert!(examples.len() >= 300, "only {} examples", examples.len());

    let outcomes = stream::iter(examples.iter())
        .map(|(event, body)| {
            let app = &app;
            async move {
                let delivery_id = new_delivery_id();
                let response = app.deliver(event, &delivery_id, body.clone()).await;
                (
                    event,
                    body,
                    delivery_id,
                    response.status().as_u16(),
                    receipt(response).await,
                )
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;

    for (event, body, delivery_id, status, receipt) in &outcomes {
        let expected = if ACTED_ON.contains(&event.as_str()) {
            202
        } else {
            200
        };
        assert_eq!(*status, expected, "{event}: {receipt}");
        assert_eq!(receipt["event"], event.as_str());
        assert_eq!(receipt["delivery_id"], delivery_id.as_str());
        assert_eq!(receipt["duplicate"], false);

        let stored = app.stored(receipt["stream_seq"].as_u64().unwrap()).await;
        assert_eq!(
            stored.payload.as_ref(),
            body.as_slice(),
            "{event} body altered"
        );
        assert_eq!(
            stored.subject.as_str(),
            format!("github.deliveries.{event}")
        );
        assert_eq!(header(&stored, h::EVENT), Some(event.as_str()));
        assert_eq!(header(&stored, h::DELIVERY), Some(delivery_id.as_str()));
        assert_eq!(header(&stored, "Nats-Msg-Id"), Some(delivery_id.as_str()));
        assert_eq!(
            header(&stored, h::BODY_SHA256),
            Some(hex::encode(Sha256::digest(body)).as_str())
        );
        assert_eq!(
            header(&stored, h::SECRET_ID),
            Some(app.secret.id().as_str())
        );
        assert_eq!(header(&stored, h::CONTENT_TYPE), Some("application/json"));
        let signature = header(&stored, h::SIGNATURE_256).expect("signature kept");
        assert!(
            hooklog_domain::github::signature::verify(
                Some(signature),
                &stored.payload,
                std::slice::from_ref(&app.secret)
            )
            .is_ok(),
            "the stored signature re-verifies against the stored body"
        );
        assert!(
            header(&stored, h::RECEIVED_AT).is_some_and(|at| humantime::parse_rfc3339(at).is_ok())
        );
    }
    assert_eq!(app.stored_count().await, examples.len() as u64);
}
