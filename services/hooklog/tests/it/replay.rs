//! `hooklog replay` and `hooklog audit prove`, run as users run them against a real NATS server
//! and database.

use std::time::Duration;

use base64::Engine as _;
use hooklog_infra::streams::{self, delivery_headers};
use hooklog_infra::testing::{octokit_example, Backends};
use hooklog_sealer::message::raw_stream_message;
use serde_json::Value;

use crate::support::{hooklog, text};

async fn store(backends: &Backends, event: &str, id: &str, content_type: &str, body: &[u8]) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(delivery_headers::EVENT, event);
    headers.insert(delivery_headers::DELIVERY, id);
    headers.insert(delivery_headers::CONTENT_TYPE, content_type);
    headers.insert("Nats-Msg-Id", id);
    backends
        .js
        .publish_with_headers(
            streams::delivery_subject(event),
            headers,
            body.to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Runs `hooklog` with `args` against the backends; (exit code, stdout, stderr).
async fn replay(backends: &Backends, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = backends.dir.path().to_path_buf();
    let (nats, db) = (backends.nats.url(), backends.database_url.clone());
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        hooklog(&dir)
            .args(&args)
            .env("HOOKLOG_NATS_URL", nats)
            .env("HOOKLOG_DATABASE_URL", db)
            .env("HOOKLOG_LOG", "warn")
            .output()
            .unwrap()
    });
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("hooklog replay ends on its own")
        .unwrap();
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[tokio::test]
async fn replay_writes_each_message_once_in_order_with_its_body_and_leaf_hash() {
    let backends = Backends::start("hooklog-replay-test").await;
    let push = octokit_example("push", |p| p["installation"]["id"].is_u64());
    let installation = push["installation"]["id"].as_u64().unwrap();
    let push_body = serde_json::to_vec(&push).unwrap();
    store(&backends, "push", "d-1", "application/json", &push_body).await;
    let form = b"payload=%7B%22zen%22%3A%22hi%22%7D";
    store(
        &backends,
        "ping",
        "d-2",
        "application/x-www-form-urlencoded",
        form,
    )
    .await;
    let pretty = b"{\n  \"zen\": \"multi-line\"\n}\n";
    store(&backends, "ping", "d-3", "application/json", pretty).await;
    store(&backends, "push", "d-4", "application/json", &push_body).await;

    let out = backends.dir.path().join("replay.jsonl");
    let (code, _, stderr) = replay(
        &backends,
        &["replay", "deliveries", "--out", out.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("replayed 4 of 4 messages"), "{stderr}");
    assert!(stderr.contains("messages/s"), "{stderr}");
    let all = lines(&std::fs::read_to_string(&out).unwrap());
    let seqs: Vec<u64> = all.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(all[0]["body"], push, "a JSON body is the JSON value");
    assert_eq!(all[0]["subject"], "github.deliveries.push");
    assert_eq!(all[0]["headers"][delivery_headers::DELIVERY], "d-1");
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        b64.decode(all[1]["body_base64"].as_str().unwrap()).unwrap(),
        form,
        "a body that is not JSON is its exact bytes"
    );
    assert_eq!(all[2]["body"]["zen"], "multi-line", "still one line");
    let stream = backends
        .js
        .get_stream(streams::DELIVERIES_STREAM)
        .await
        .unwrap();
    for line in &all {
        let seq = line["seq"].as_u64().unwrap();
        let stored = stream.get_raw_message(seq).await.unwrap();
        let leaf = raw_stream_message(&stored).unwrap().leaf_hash().unwrap();
        assert_eq!(line["leaf_hash"], leaf.to_string(), "leaf of {seq}");
    }

    // --raw: every body as its bytes.
    let (_, raw, _) = replay(
        &backends,
        &["replay", "deliveries", "--raw", "--to-seq", "1"],
    )
    .await;
    let raw = lines(&raw);
    assert_eq!(
        b64.decode(raw[0]["body_base64"].as_str().unwrap()).unwrap(),
        push_body
    );

    // Filters: ranges, event, installation, time.
    let (_, pushes, _) = replay(&backends, &["replay", "deliveries", "--event", "push"]).await;
    let seqs: Vec<u64> = lines(&pushes)
        .iter()
        .map(|l| l["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 4]);
    let (_, middle, _) = replay(
        &backends,
        &["replay", "deliveries", "--from-seq", "2", "--to-seq", "3"],
    )
    .await;
    assert_eq!(lines(&middle).len(), 2);
    let installation = installation.to_string();
    let (_, theirs, _) = replay(
        &backends,
        &["replay", "deliveries", "--installation", &installation],
    )
    .await;
    let seqs: Vec<u64> = lines(&theirs)
        .iter()
        .map(|l| l["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 4]);
    let third = all[2]["time"].as_str().unwrap();
    let (_, later, _) = replay(&backends, &["replay", "deliveries", "--since", third]).await;
    assert_eq!(lines(&later).len(), 2, "the third and the fourth");
    let (_, earlier, _) = replay(&backends, &["replay", "deliveries", "--until", third]).await;
    assert_eq!(lines(&earlier).len(), 3, "up to the third");
}

#[tokio::test]
async fn replay_and_prove_say_what_is_wrong_and_exit_2() {
    let backends = Backends::start("hooklog-replay-test").await;
    store(&backends, "ping", "d-1", "application/json", b"{}").await;
    let vkey = hooklog_audit::SigningKey::generate("export-test.example")
        .unwrap()
        .verifier()
        .to_string();
    let no_bundle = backends.dir.path().join("no-bundle");
    let no_bundle = no_bundle.to_str().unwrap();
    for (args, expected) in [
        (
            &["replay", "deliveries", "--from-seq", "5"][..],
            "past the end of GITHUB_DELIVERIES",
        ),
        (
            &["replay", "deliveries", "--from-seq", "3", "--to-seq", "2"],
            "is past --to-seq",
        ),
        (
            &["replay", "deliveries", "--since", "yesterday"],
            "not an RFC 3339 time",
        ),
        (&["replay", "deliveries", "--event", "a.>"], "--event"),
        (
            &["replay", "events", "--aggregate", "no-slash"],
            "is not TYPE/ID",
        ),
        (
            &["replay", "events", "--event", "push"],
            "--event filters deliveries",
        ),
        (
            &["audit", "prove", "--delivery-id", "nope"],
            "no delivery \"nope\"",
        ),
        (
            &["audit", "prove", "--seq", "1"],
            "no checkpoint of the deliveries log",
        ),
        (
            &[
                "audit",
                "export",
                "--log",
                "deliveries",
                "--from-seq",
                "3",
                "--to-seq",
                "2",
                "--out",
                "x",
            ],
            "is not a range of sequences",
        ),
        (
            &[
                "audit",
                "export",
                "--log",
                "deliveries",
                "--from-seq",
                "1",
                "--to-seq",
                "1",
                "--out",
                "x",
            ],
            "no checkpoint of the deliveries log",
        ),
        (&["audit", "verify", "--bundle", no_bundle], "--public-key"),
        (
            &[
                "audit",
                "verify",
                "--bundle",
                no_bundle,
                "--public-key",
                vkey.as_str(),
            ],
            "the bundle has no",
        ),
    ] {
        let (code, stdout, stderr) = replay(&backends, args).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    }
    // An empty range of a live stream ends at once; a stream that is not there is named.
    let (code, stdout, _) = replay(&backends, &["replay", "events"]).await;
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
    backends
        .js
        .delete_stream(streams::EVENTS_STREAM)
        .await
        .unwrap();
    let (code, _, stderr) = replay(&backends, &["replay", "events"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("HOOKLOG_EVENTS is not there"), "{stderr}");
}

#[tokio::test]
async fn audit_verify_reports_each_finding_and_exits_1_and_a_bad_key_exits_2() {
    let backends = Backends::start("hooklog-verify-test").await;
    let (code, stdout, stderr) = replay(&backends, &["audit", "verify"]).await;
    assert_eq!(code, Some(0), "an empty history: {stdout}{stderr}");
    assert!(
        stdout.contains("ok       GITHUB_DELIVERIES: immutable"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped  checkpoint signatures"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("0 findings"), "{stdout}");

    // Stored without the digest header the ingress writes.
    store(&backends, "ping", "d-1", "application/json", b"{}").await;
    let key = hooklog_audit::SigningKey::generate("verify-test.example").unwrap();
    let key_file = backends.dir.path().join("audit.vkey");
    std::fs::write(&key_file, format!("{}\n", key.verifier())).unwrap();
    let (code, stdout, stderr) = replay(
        &backends,
        &[
            "audit",
            "verify",
            "--public-key",
            key_file.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "FINDING  GITHUB_DELIVERIES body digest at sequence 1: no Hooklog-Body-Sha256 header"
        ),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("1 finding"), "{stdout}");
    assert!(
        stderr.contains("verifying GITHUB_DELIVERIES: 1 of 1"),
        "plain progress lines off a terminal: {stderr}"
    );

    let (code, stdout, stderr) =
        replay(&backends, &["audit", "verify", "--public-key", "not-a-key"]).await;
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("--public-key: \"not-a-key\" is neither a verifier key"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[tokio::test]
async fn replay_state_folds_an_aggregate_up_to_a_sequence() {
    use std::sync::Arc;

    use hooklog_domain::clock::SystemClock;
    use hooklog_domain::metadata::CommandMetadata;
    use hooklog_write::{usecases, CommandBus};

    let backends = Backends::start("hooklog-replay-test").await;
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(hooklog_relay::run(
        hooklog_relay::RelayConfig::default(),
        backends.pool.clone(),
        backends.js.clone(),
        stop.clone(),
    ));
    let bus = CommandBus::new(backends.pool.clone(), Arc::new(SystemClock));
    let meta = CommandMetadata::from_operator("test", "replay-state");
    usecases::connect(&bus, 8484, Some("octo".into()), Some(false), &meta)
        .await
        .unwrap();
    let instance = hooklog_domain::ids::InstanceId(hooklog_domain::ids::InstallationId(8484));
    bus.instance(
        instance,
        hooklog_domain::connector_instance::InstanceCommand::SetAutoTrack { enabled: true },
        &meta,
    )
    .await
    .unwrap();
    let mut stream = backends
        .js
        .get_stream(streams::EVENTS_STREAM)
        .await
        .unwrap();
    for _ in 0..200 {
        if stream.info().await.unwrap().state.last_sequence >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let aggregate = "ConnectorInstance/github-installation-8484";
    let (code, now, stderr) = replay(
        &backends,
        &["replay", "events", "--aggregate", aggregate, "--state"],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let now: Value = serde_json::from_str(now.trim()).unwrap();
    assert_eq!(
        (now["events"].as_u64(), now["state"]["auto_track"].as_bool()),
        (Some(2), Some(true)),
        "{now}"
    );
    let (code, then, stderr) = replay(
        &backends,
        &[
            "replay",
            "events",
            "--aggregate",
            aggregate,
            "--state",
            "--to-seq",
            "1",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let then: Value = serde_json::from_str(then.trim()).unwrap();
    assert_eq!(
        (
            then["events"].as_u64(),
            then["state"]["auto_track"].as_bool()
        ),
        (Some(1), Some(false)),
        "{then}"
    );
    let (code, _, stderr) = replay(
        &backends,
        &[
            "replay",
            "events",
            "--aggregate",
            "ConnectorInstance/github-installation-1",
            "--state",
        ],
    )
    .await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("no event of ConnectorInstance/github-installation-1"),
        "{stderr}"
    );
    stop.cancel();
}
