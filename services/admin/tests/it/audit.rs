//! `/v1/audit`: the transparency logs served as C2SP tlog-tiles while a sealer runs, read over
//! HTTP by Go's reference `sumdb/note` and `sumdb/tlog`, and every wrong request answered with
//! what is wrong.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hooklog_audit::tiles::decode_bundle;
use hooklog_audit::{SigningKey, StreamMessage};
use hooklog_infra::streams;
use hooklog_infra::testing::octokit_example;
use hooklog_sealer::SealerConfig;
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::go;
use crate::support::{code, App, Options, READ_TOKEN};

async fn start(key: &SigningKey) -> (App, CancellationToken) {
    let app = App::start_with(Options {
        pipeline: false,
        audit_key: Some(key.verifier()),
        ..Options::default()
    })
    .await;
    let stop = CancellationToken::new();
    tokio::spawn(hooklog_sealer::run(
        SealerConfig {
            checkpoint_interval: Duration::from_millis(100),
            ..SealerConfig::default()
        },
        app.pool.clone(),
        app.js.clone(),
        Arc::new(key.clone()),
        stop.clone(),
    ));
    (app, stop)
}

async fn deliver(app: &App, range: std::ops::Range<u32>) {
    let body = serde_json::to_vec(&octokit_example("push", |_| true)).unwrap();
    for i in range {
        let id = format!("8c1d2e3f-0000-4000-8000-{i:012}");
        app.deliver("push", &id, "application/json", body.clone())
            .await;
    }
}

async fn publish_events(app: &App, count: u32) {
    for i in 0..count {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("ConnectorTarget:t-{i}:1").as_str());
        app.js
            .publish_with_headers(
                streams::event_subject("ConnectorTarget", &format!("t-{i}")),
                headers,
                format!("{{\"n\":{i}}}").into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// The served checkpoint of `log` once it names `size` leaves.
async fn checkpoint_at(app: &App, log: &str, size: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = app
            .http
            .get(format!("{}/v1/audit/{log}/checkpoint", app.url))
            .send()
            .await
            .unwrap();
        let text = response.text().await.unwrap();
        if text.lines().nth(1) == Some(size.to_string().as_str()) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {log} checkpoint of {size}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gos_tlog_opens_the_served_checkpoints_and_proves_inclusion_and_consistency_over_http() {
    let Some(program) = go::interop() else { return };
    let key = SigningKey::generate("audit-test.example").unwrap();
    let (app, _stop) = start(&key).await;
    deliver(&app, 0..300).await;
    publish_events(&app, 20).await;
    let old = checkpoint_at(&app, "deliveries", 300).await;
    deliver(&app, 300..560).await;
    checkpoint_at(&app, "deliveries", 560).await;
    checkpoint_at(&app, "events", 20).await;

    let dir = tempfile::tempdir().unwrap();
    let (vkey, old_file) = (dir.path().join("vkey"), dir.path().join("old"));
    std::fs::write(&vkey, format!("{}\n", key.verifier())).unwrap();
    std::fs::write(&old_file, old).unwrap();
    // Off the runtime's thread: the listener Go talks to runs on it.
    let url = app.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        go::run(
            program,
            &[
                "served".as_ref(),
                url.as_ref(),
                vkey.as_os_str(),
                READ_TOKEN.as_ref(),
                old_file.as_os_str(),
            ],
        )
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "Go's checks failed:\n{report}");
    assert!(!report.contains("FAIL"), "{report}");
    let passed = report.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(passed >= 20, "only {passed} checks ran:\n{report}");
}

#[tokio::test]
async fn audit_routes_say_what_is_wrong_and_entries_need_a_token() {
    let key = SigningKey::generate("audit-test.example").unwrap();
    let (app, _stop) = start(&key).await;
    let get = |path: &str, token: Option<&str>| {
        let mut request = app.http.get(format!("{}{path}", app.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let bytes = response.bytes().await.unwrap();
            let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            (status, bytes, json)
        }
    };
    let (status, body, _) = get("/v1/audit/key", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!("{}\n", key.verifier())
    );

    for (path, expected) in [
        ("/v1/audit/nope/checkpoint", "unknown_log"),
        ("/v1/audit/deliveries/checkpoint", "no_checkpoint"),
        ("/v1/audit/deliveries/tile/0/000.p/1", "tile_not_in_tree"),
        ("/v1/audit/deliveries/tile/0/0000", "not_a_tile"),
        ("/v1/audit/deliveries/tile/0/000.p/256", "not_a_tile"),
        ("/v1/audit/deliveries/tile/64/000", "not_a_tile"),
    ] {
        let (status, _, json) = get(path, None).await;
        assert_eq!(
            (status, code(&json)),
            (StatusCode::NOT_FOUND, expected),
            "{path}"
        );
    }

    deliver(&app, 0..3).await;
    checkpoint_at(&app, "deliveries", 3).await;
    let (status, tile, _) = get("/v1/audit/deliveries/tile/0/000.p/3", None).await;
    assert_eq!((status, tile.len()), (StatusCode::OK, 3 * 32));
    let (status, _, json) = get("/v1/audit/deliveries/tile/0/000.p/4", None).await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::NOT_FOUND, "tile_not_in_tree")
    );

    let entries = "/v1/audit/deliveries/tile/entries/000.p/3";
    let (status, _, json) = get(entries, None).await;
    assert_eq!(
        (status, code(&json)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (status, _, _) = get(entries, Some("not-the-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, bundle, _) = get(entries, Some(READ_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let decoded = decode_bundle(&bundle).unwrap();
    let sequences: Vec<u64> = decoded
        .iter()
        .map(|entry| StreamMessage::decode(entry).unwrap().sequence)
        .collect();
    assert_eq!(sequences, [1, 2, 3]);
    for (entry, hash) in decoded.iter().zip(tile.chunks(32)) {
        assert_eq!(
            hooklog_audit::tree::leaf_hash(entry).0,
            hash,
            "a leaf is its entry's hash"
        );
    }
}

#[tokio::test]
async fn without_a_key_the_verifier_key_route_says_how_to_get_one() {
    let app = App::start_with(Options {
        pipeline: false,
        ..Options::default()
    })
    .await;
    let response = app
        .http
        .get(format!("{}/v1/audit/key", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(code(&body), "no_audit_key");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HOOKLOG_AUDIT_SIGNING_KEY"),
        "{body}"
    );
}
