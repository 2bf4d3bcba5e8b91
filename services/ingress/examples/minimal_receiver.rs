//! The second baseline for `services/hooklog/bench/ingress.sh`: the least a receiver that keeps
//! GitHub's promise must do, and nothing more. It reads the body, checks `X-Hub-Signature-256`
//! (HMAC-SHA256, constant-time), publishes the body to JetStream with `Nats-Msg-Id` = the delivery
//! id, waits for the PubAck and answers 202. No header checks beyond those, no payload check, no
//! limits, no logs, no metrics. Never deploy this.
//!
//! Usage: `minimal_receiver <addr> <nats url> <webhook secret>`

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hooklog_domain::github::{Signature, WebhookSecret};

struct Receiver {
    js: async_nats::jetstream::Context,
    secret: WebhookSecret,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = header("X-Hub-Signature-256")
        .and_then(|value| Signature::parse(value).ok())
        .is_some_and(|signature| signature.matches(&receiver.secret, &body));
    let (true, Some(delivery), Some(event)) = (
        signed,
        header("X-GitHub-Delivery"),
        header("X-GitHub-Event"),
    ) else {
        return StatusCode::UNAUTHORIZED;
    };
    let mut message_headers = async_nats::HeaderMap::new();
    message_headers.insert("Nats-Msg-Id", delivery);
    let published = receiver
        .js
        .publish_with_headers(format!("github.deliveries.{event}"), message_headers, body)
        .await;
    match published {
        Ok(ack) => match ack.await {
            Ok(_) => StatusCode::ACCEPTED,
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, nats_url, secret] = args.as_slice() else {
        panic!("usage: minimal_receiver <addr> <nats url> <webhook secret>");
    };
    let client = async_nats::connect(nats_url.as_str()).await.expect("NATS");
    let receiver = Arc::new(Receiver {
        js: async_nats::jetstream::new(client),
        secret: WebhookSecret::new(secret),
    });
    let app = Router::new()
        .route(hooklog_ingress::WEBHOOK_PATH, post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
