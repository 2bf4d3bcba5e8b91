//! The admin listener against a real `nats-server` and the local PostgreSQL: readiness tells
//! which dependency is unreachable.

use std::time::Duration;

use hooklog_admin::AdminState;
use hooklog_infra::nats::{self, EmbeddedNats};
use hooklog_infra::postgres;
use hooklog_infra::testing::{nats_server_bin, postgres_server_url};
use serde_json::{json, Value};

async fn serve(state: AdminState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hooklog_admin::run(state, listener, Default::default()));
    format!("http://{addr}")
}

async fn get(url: String) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// A closed port: connections to it are refused.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn readiness_names_the_unreachable_dependency() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = EmbeddedNats::start(&nats_server_bin(), dir.path())
        .await
        .unwrap();
    let client = nats::connect(&server.url(), "hooklog-admin-test")
        .await
        .unwrap();
    let db = postgres::connect_lazy(&format!("{}/postgres", postgres_server_url())).unwrap();
    let down_db = postgres::connect_lazy(&format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        closed_port()
    ))
    .unwrap();

    let healthy = serve(AdminState {
        nats: Some(client.clone()),
        db: Some(db.clone()),
    })
    .await;
    assert_eq!(
        get(format!("{healthy}/healthz")).await,
        (200, json!({"status": "ok"}))
    );
    assert_eq!(
        get(format!("{healthy}/readyz")).await,
        (200, json!({"ready": true, "nats": "ok", "postgres": "ok"}))
    );

    let no_postgres = serve(AdminState {
        nats: Some(client.clone()),
        db: Some(down_db),
    })
    .await;
    assert_eq!(
        get(format!("{no_postgres}/readyz")).await,
        (
            503,
            json!({"ready": false, "nats": "ok", "postgres": "unreachable"})
        )
    );

    server.stop().await;
    let mut answer = (0, Value::Null);
    for _ in 0..50 {
        answer = get(format!("{healthy}/readyz")).await;
        if answer.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        answer,
        (
            503,
            json!({"ready": false, "nats": "unreachable", "postgres": "ok"})
        )
    );
}

#[tokio::test]
async fn no_admin_api_route_answers_yet() {
    let url = serve(AdminState::default()).await;
    let response = reqwest::get(format!("{url}/v1/admin/instances"))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
