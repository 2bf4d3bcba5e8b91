//! The baseline for `services/hooklog/bench/ingress.sh`: an axum handler on the webhook path that
//! reads the body and answers 202 without verifying or storing anything. Never deploy this.
//!
//! Usage: `bare_receiver <addr>`

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let app = Router::new().route(
        hooklog_ingress::WEBHOOK_PATH,
        post(|body: Bytes| async move {
            let receipt = serde_json::json!({"delivery_id": "", "event": "push", "stream_seq": 0, "bytes": body.len(), "duplicate": false});
            (StatusCode::ACCEPTED, Json(receipt))
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
