//! Health, readiness and metrics: open, and telling.

use std::time::Duration;

use hooklog_admin::{AdminState, Tokens};
use hooklog_infra::config::Settings;
use hooklog_infra::nats::{self, EmbeddedNats};
use hooklog_infra::postgres;
use hooklog_infra::testing::{nats_server_bin, postgres_server_url};
use serde_json::{json, Value};

use crate::support::{App, WRITE_TOKEN};

async fn serve(state: AdminState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hooklog_admin::run(
        state,
        listener,
        Settings::default().server_limits(),
        Default::default(),
    ));
    format!("http://{addr}")
}

async fn get(url: String) -> (u16, Value) {
    let response = hooklog_infra::http::client()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
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

    let healthy =
        serve(AdminState::new(db.clone(), client.clone(), Tokens::default()).unwrap()).await;
    assert_eq!(
        get(format!("{healthy}/healthz")).await,
        (200, json!({"status": "ok"}))
    );
    assert_eq!(
        get(format!("{healthy}/readyz")).await,
        (200, json!({"ready": true, "nats": "ok", "postgres": "ok"}))
    );

    let no_postgres =
        serve(AdminState::new(down_db, client.clone(), Tokens::default()).unwrap()).await;
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

async fn scrape(app: &App) -> String {
    let response = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_expose_ingress_worker_projection_and_sync_figures_without_a_token() {
    let app = App::start().await;
    // An ingress in the same process records its answers (here 404: no webhook secret).
    let config =
        hooklog_ingress::IngressConfig::from_settings(&hooklog_infra::config::Settings::default());
    assert!(config.secrets.is_empty());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ingress = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(hooklog_ingress::run(
        config,
        app.nats.clone(),
        listener,
        Default::default(),
        Default::default(),
    ));
    let response = app
        .http
        .post(format!("{ingress}{}", hooklog_ingress::WEBHOOK_PATH))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // A delivery the worker cannot process becomes a dead letter.
    let sequence = app
        .deliver("push", "poison-1", "application/json", b"{}".to_vec())
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, page) = app.get("/v1/admin/dead-letters").await;
        assert_eq!(status, 200, "{page}");
        if page["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
        {
            assert_eq!(page["items"][0]["stream_sequence"], sequence);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let text = scrape(&app).await;
    for name in [
        "hooklog_ingress_request_duration_seconds_bucket",
        "hooklog_ingress_deliveries_total",
        "hooklog_worker_deliveries_total",
        "hooklog_dead_letters_total",
        "hooklog_projection_position{projection=\"connector\"}",
        "hooklog_projection_position{projection=\"deliveries\"}",
        "hooklog_projection_lag_events{projection=\"deliveries\"}",
        "hooklog_projection_lag_seconds{projection=\"connector\"}",
        "hooklog_dead_letters ",
        "hooklog_sync_runs{status=\"failed\"}",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(text.contains("status=\"404\""), "{text}");
    assert!(!text.contains(WRITE_TOKEN));
}
