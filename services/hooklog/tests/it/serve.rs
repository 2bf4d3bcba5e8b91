//! `hooklog serve` end to end: embedded NATS, database creation, `hooklog deliver`, readiness,
//! graceful shutdown, and the ingress running without PostgreSQL.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use hooklog_domain::github::{Signature, WebhookSecret};
use hooklog_infra::nats::EmbeddedNats;
use hooklog_infra::streams::DELIVERIES_STREAM;
use hooklog_infra::testing::octokit_example;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{
    free_addr, fresh_database_url, hooklog, nats_server_bin, postgres_server, run, text,
    wait_ready, Served,
};

const SECRET: &str = "serve-test-secret-value";
const WEBHOOK_PATH: &str = "/v1/webhooks/connectors/github";

fn push_payload() -> Vec<u8> {
    serde_json::to_vec_pretty(&octokit_example("push", |_| true)).unwrap()
}

/// The port of the embedded nats-server, from the `.ports` file it writes.
fn embedded_nats_url(data_dir: &Path) -> String {
    let ports = std::fs::read_dir(data_dir.join("nats/ports"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let ports: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ports.path()).unwrap()).unwrap();
    ports["nats"][0].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn serve_with_embedded_defaults_stores_a_delivered_push_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (ingress, admin) = (free_addr(), free_addr());
    let (database_url, database) = fresh_database_url();
    let mut served = Served::start(
        dir.path(),
        &[],
        &[
            ("HOOKLOG_INGRESS_ADDR", ingress.clone()),
            ("HOOKLOG_ADMIN_ADDR", admin.clone()),
            ("HOOKLOG_DATABASE_URL", database_url),
            ("HOOKLOG_GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
            (
                "HOOKLOG_NATS_SERVER_BIN",
                nats_server_bin().display().to_string(),
            ),
        ],
    );
    let ready = wait_ready(&admin, &mut served).await;
    assert_eq!(
        ready,
        serde_json::json!({"ready": true, "nats": "ok", "postgres": "ok"})
    );

    // The database did not exist: serve created and migrated it.
    let pool = sqlx::PgPool::connect(&format!("{}/postgres", postgres_server()))
        .await
        .unwrap();
    let created: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&database)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(created);

    let payload = push_payload();
    std::fs::write(dir.path().join("push.json"), &payload).unwrap();
    let delivery_id = "4f1d1c2e-0000-4000-8000-serve-test";
    let output = run(hooklog(dir.path()).args([
        "deliver",
        "--event",
        "push",
        "--payload",
        "push.json",
        "--url",
        &format!("http://{ingress}{WEBHOOK_PATH}"),
        "--secret",
        SECRET,
        "--delivery-id",
        delivery_id,
    ]));
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("202"));
    let receipt: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        receipt,
        serde_json::json!({"delivery_id": delivery_id, "event": "push", "stream_seq": 1, "duplicate": false})
    );

    // What the ingress acknowledged is in the embedded JetStream, byte for byte.
    // The embedded server takes only its data directory's login, and no log shows the password.
    let data_dir = dir.path().join("hooklog-data");
    let nats_url = embedded_nats_url(&data_dir);
    let refused = async_nats::connect(&nats_url).await.unwrap_err();
    assert_eq!(
        refused.kind(),
        async_nats::ConnectErrorKind::AuthorizationViolation
    );
    let password = std::fs::read_to_string(data_dir.join("nats/credentials")).unwrap();
    let password = password.trim();
    for log in [
        served.logs(),
        std::fs::read_to_string(data_dir.join("nats/nats-server.log")).unwrap(),
    ] {
        assert!(!log.contains(password), "a log shows the NATS password");
    }
    let login = nats_url.replacen("nats://", &format!("nats://hooklog:{password}@"), 1);
    let client = hooklog_infra::nats::connect(&login, "serve-test")
        .await
        .unwrap();
    let stream = async_nats::jetstream::new(client.clone())
        .get_stream(DELIVERIES_STREAM)
        .await
        .unwrap();
    assert_eq!(
        stream.get_raw_message(1).await.unwrap().payload.as_ref(),
        payload.as_slice()
    );
    // The stream is created with the settings of the contract, and refuses deletes and purges.
    let config = stream.get_info().await.unwrap().config;
    assert_eq!(config.subjects, ["github.deliveries.>"]);
    assert_eq!(config.duplicate_window, Duration::from_secs(3600));
    assert_eq!(config.max_age, Duration::ZERO);
    assert!(config.deny_delete && config.deny_purge);
    assert!(stream.delete_message(1).await.is_err(), "deny_delete holds");
    assert!(stream.purge().await.is_err(), "deny_purge holds");
    assert_eq!(stream.get_info().await.unwrap().state.messages, 1);
    drop(stream);
    drop(client);

    let status = served.terminate();
    assert!(status.success(), "exit {status}:\n{}", served.logs());
    assert!(
        hooklog_infra::nats::connect(&login, "serve-test")
            .await
            .is_err(),
        "the embedded nats-server stopped with hooklog"
    );

    let logs = served.logs();
    assert!(
        logs.contains(delivery_id),
        "logs carry the delivery id:\n{logs}"
    );
    assert!(!logs.contains(SECRET), "the secret is never logged");
    assert!(!logs.contains("\"commits\""), "bodies are never logged");
}

#[tokio::test]
async fn the_ingress_role_runs_without_postgres_and_finishes_in_flight_requests_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let nats = EmbeddedNats::start(&nats_server_bin(), &dir.path().join("nats"))
        .await
        .unwrap();
    let ingress = free_addr();
    let mut served = Served::start(
        dir.path(),
        &["--role", "ingress"],
        &[
            ("HOOKLOG_INGRESS_ADDR", ingress.clone()),
            ("HOOKLOG_ADMIN_ADDR", free_addr()),
            ("HOOKLOG_NATS_URL", nats.url()),
            // Nothing listens here: the ingress must not need it.
            (
                "HOOKLOG_DATABASE_URL",
                format!("postgres://postgres@{}/hooklog", free_addr()),
            ),
            ("HOOKLOG_GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
        ],
    );

    let body = br#"{"zen":"Design for failure.","hook_id":7}"#;
    let signature = Signature::sign(&WebhookSecret::new(SECRET), body).to_string();
    let head = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {ingress}\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: ping\r\nX-GitHub-Delivery: in-flight-1\r\nX-Hub-Signature-256: {signature}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut connection = loop {
        match TcpStream::connect(&ingress) {
            Ok(connection) => break connection,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(err) => panic!("ingress never listened: {err}\n{}", served.logs()),
        }
    };
    // Half a request is in flight when SIGTERM arrives; the rest follows.
    connection.write_all(head.as_bytes()).unwrap();
    connection.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    served.signal_term();
    std::thread::sleep(Duration::from_millis(300));
    connection.write_all(&body[10..]).unwrap();
    let mut response = String::new();
    connection.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 202"),
        "{response}\n{}",
        served.logs()
    );

    let status = served.wait_exit();
    assert!(status.success(), "exit {status}:\n{}", served.logs());
    let client = hooklog_infra::nats::connect(&nats.url(), "serve-test")
        .await
        .unwrap();
    let stream = async_nats::jetstream::new(client)
        .get_stream(DELIVERIES_STREAM)
        .await
        .unwrap();
    assert_eq!(
        stream.get_raw_message(1).await.unwrap().payload.as_ref(),
        body
    );
}

#[tokio::test]
async fn serve_refuses_a_nats_server_whose_max_payload_cannot_carry_25_mib() {
    let dir = tempfile::tempdir().unwrap();
    let nats = EmbeddedNats::start_with_config(
        &nats_server_bin(),
        &dir.path().join("nats"),
        "max_payload: 1MB\njetstream {}\n",
    )
    .await
    .unwrap();
    let output = run(hooklog(dir.path())
        .args(["serve", "--role", "ingress"])
        .env("HOOKLOG_NATS_URL", nats.url())
        .env("HOOKLOG_INGRESS_ADDR", free_addr()));
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("max_payload") && stderr.contains("1048576"),
        "{stderr}"
    );
}

#[tokio::test]
async fn three_stream_replicas_on_one_server_are_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let nats = EmbeddedNats::start(&nats_server_bin(), &dir.path().join("nats"))
        .await
        .unwrap();
    let output = run(hooklog(dir.path())
        .args(["serve", "--role", "ingress"])
        .env("HOOKLOG_NATS_URL", nats.url())
        .env("HOOKLOG_STREAM_REPLICAS", "3")
        .env("HOOKLOG_INGRESS_ADDR", free_addr()));
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("HOOKLOG_STREAM_REPLICAS=3") && stderr.contains("GITHUB_DELIVERIES"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&nats.url()),
        "the NATS password is not shown"
    );
}

#[tokio::test]
async fn hooklog_stops_with_an_error_when_its_embedded_nats_server_dies() {
    let dir = tempfile::tempdir().unwrap();
    let ingress = free_addr();
    let mut served = Served::start(
        dir.path(),
        &["--role", "ingress"],
        &[
            ("HOOKLOG_INGRESS_ADDR", ingress.clone()),
            ("HOOKLOG_GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
            (
                "HOOKLOG_NATS_SERVER_BIN",
                nats_server_bin().display().to_string(),
            ),
        ],
    );
    // Serving for real: a signed delivery is stored.
    let body = br#"{"zen":"Practicality beats purity."}"#.to_vec();
    let signature = Signature::sign(&WebhookSecret::new(SECRET), &body).to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = hooklog_infra::http::client()
            .unwrap()
            .post(format!("http://{ingress}{WEBHOOK_PATH}"))
            .header("X-GitHub-Event", "ping")
            .header("X-GitHub-Delivery", "before-the-crash")
            .header("X-Hub-Signature-256", &signature)
            .body(body.clone())
            .send()
            .await;
        if response.is_ok_and(|r| r.status() == 202) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never accepted a delivery:\n{}",
            served.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // nats-server names its ports file `<exe>_<pid>.ports`.
    let ports_dir = dir.path().join("hooklog-data/nats/ports");
    let ports_file = std::fs::read_dir(ports_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let ports_file = ports_file.to_string_lossy();
    let pid: i32 = ports_file
        .trim_end_matches(".ports")
        .rsplit('_')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();

    let status = served.wait_exit();
    assert!(!status.success());
    let logs = served.logs();
    assert!(
        logs.contains("embedded nats-server exited unexpectedly"),
        "{logs}"
    );
}
