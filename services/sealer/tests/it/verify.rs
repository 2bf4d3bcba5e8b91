//! `audit verify` over a clean history finds nothing, and finds each fault made on purpose,
//! naming its stream and sequence.

use hooklog_audit::{Checkpoint, Hash, Log, SigningKey};
use hooklog_infra::streams::audit_checkpoint_subject;
use hooklog_sealer::verify::{verify, Check, Options, Report};

use crate::support::*;

async fn run(t: &Test, options: &Options) -> Report {
    run_on(t, &t.backends.js, options).await
}

async fn run_on(t: &Test, js: &async_nats::jetstream::Context, options: &Options) -> Report {
    verify(&t.backends.pool, js, options, &mut |_, _, _| {})
        .await
        .unwrap()
}

fn options(t: &Test) -> Options {
    Options {
        public_key: Some(t.key.verifier()),
        secrets: vec![hooklog_domain::github::WebhookSecret::new(SECRET)],
    }
}

/// A history with both logs sealed: 300 deliveries, 40 events through the relay.
async fn history() -> (Test, Running, tokio_util::sync::CancellationToken) {
    let t = Test::start().await;
    let relay = t.relay();
    let sealer = t.sealer();
    t.deliver(0..300).await;
    t.store_events(0..40).await;
    t.wait_checkpoint(Log::Deliveries, 300).await;
    t.wait_checkpoint(Log::Events, 40).await;
    (t, sealer, relay)
}

#[tokio::test]
async fn a_clean_history_verifies_with_no_findings_and_says_what_it_checked() {
    let (t, _sealer, _relay) = history().await;
    let report = run(&t, &options(&t)).await;
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let passed = report.passed.join("\n");
    for expected in [
        "GITHUB_DELIVERIES: immutable",
        "GITHUB_DELIVERIES: contiguous, sequences 1 to 300",
        "300 of 300 bodies match",
        "300 of 300 X-Hub-Signature-256 verify",
        "checkpoints signed by",
        "the stored tiles give the latest checkpoint's root (300 leaves)",
        "HOOKLOG_EVENTS: equals the event store (40 events",
    ] {
        assert!(passed.contains(expected), "{expected:?} not in:\n{passed}");
    }
    // Without a key or secrets, it says what it could not check.
    let report = run(&t, &Options::default()).await;
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
}

#[tokio::test]
async fn each_fault_made_on_purpose_is_found_at_its_stream_and_sequence() {
    let (t, sealer, _relay) = history().await;
    sealer.stop().await;
    let js = &t.backends.js;

    // A body that no longer hashes to its digest (as a byte flipped on disk reads back), and one
    // signed with another secret.
    t.deliver_with(300, b"{\"tampered\":true}", Some("0".repeat(64)), None)
        .await;
    t.deliver_with(301, b"{\"ok\":true}", None, Some("another secret"))
        .await;
    // A stored event edited after it was published.
    sqlx::query(
        "UPDATE events SET payload = '{\"edited\": true}'
         WHERE aggregate_type = 'ConnectorTarget' AND aggregate_id = 't-7' AND sequence = 1",
    )
    .execute(&t.backends.pool)
    .await
    .unwrap();
    // A checkpoint signed by another key, and one by the right key with a root the stream does
    // not make (a reordered history would give it).
    let other = SigningKey::generate("intruder.example").unwrap();
    let forged =
        Checkpoint::new(&Log::Deliveries.origin(other.name()), 300, Hash([7; 32])).unwrap();
    let wrong_root =
        Checkpoint::new(&Log::Deliveries.origin(t.key.name()), 5, Hash([9; 32])).unwrap();
    for note in [forged.sign(&other), wrong_root.sign(&t.key)] {
        js.publish(audit_checkpoint_subject("deliveries"), note.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let report = run(&t, &options(&t)).await;
    let found = |check: Check| -> Vec<(Option<u64>, String)> {
        report
            .findings
            .iter()
            .filter(|f| f.check == check)
            .map(|f| (f.sequence, f.to_string()))
            .collect()
    };
    let digest = found(Check::BodyDigest);
    assert_eq!(digest.len(), 1, "{digest:?}");
    assert_eq!(digest[0].0, Some(301), "{digest:?}");
    assert!(
        digest[0]
            .1
            .starts_with("GITHUB_DELIVERIES body digest at sequence 301"),
        "{digest:?}"
    );
    let signature = found(Check::Signature);
    assert_eq!(
        signature.iter().map(|f| f.0).collect::<Vec<_>>(),
        [Some(302)],
        "{signature:?}"
    );
    let store = found(Check::EventStore);
    assert_eq!(store.len(), 1, "{store:?}");
    assert!(
        store[0]
            .1
            .contains("event 1 of ConnectorTarget/t-7 differs"),
        "{store:?}"
    );
    assert!(store[0].0.is_some(), "names the stream sequence: {store:?}");
    let signatures = found(Check::CheckpointSignature);
    assert_eq!(signatures.len(), 1, "{signatures:?}");
    assert!(
        signatures[0].1.contains("intruder.example")
            || signatures[0].1.contains("not a checkpoint signed by"),
        "{signatures:?}"
    );
    let checkpoints = found(Check::Checkpoint);
    assert!(
        checkpoints
            .iter()
            .any(|f| f.0 == Some(5) && f.1.contains("has root")),
        "{checkpoints:?}"
    );
    assert!(
        checkpoints
            .iter()
            .any(|f| f.1.contains("a log never shrinks")),
        "{checkpoints:?}"
    );
}

#[tokio::test]
async fn a_stream_that_allows_deletes_and_a_gap_in_it_are_found() {
    let t = Test::start().await;
    let stream = t.events_stream_allowing_deletes().await;
    t.publish_events(0..5).await;
    assert!(stream.delete_message(3).await.unwrap());
    let report = run(&t, &Options::default()).await;
    let immutable: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.check == Check::Immutable)
        .map(|f| f.to_string())
        .collect();
    assert_eq!(immutable, ["HOOKLOG_EVENTS immutable: deny_delete is off"]);
    let gap: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.check == Check::Contiguous)
        .collect();
    assert_eq!(gap.len(), 1, "{gap:?}");
    assert_eq!(gap[0].sequence, Some(3));
    assert!(gap[0].detail.contains("sequence 3 is missing"), "{gap:?}");
}

#[tokio::test]
async fn a_byte_flipped_in_a_stored_message_on_disk_is_found_at_its_sequence() {
    use hooklog_infra::nats::EmbeddedNats;
    use hooklog_infra::testing::nats_server_bin;

    let t = Test::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut nats = EmbeddedNats::start(&nats_server_bin(), dir.path())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(
        hooklog_infra::nats::connect(&nats.url(), "verify-test")
            .await
            .unwrap(),
    );
    hooklog_infra::streams::ensure_deliveries_stream(&js, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    hooklog_infra::streams::ensure_events_stream(&js, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    hooklog_infra::streams::ensure_audit_stream(&js)
        .await
        .unwrap();
    for i in 0..3u64 {
        let body = format!("{{\"marker\":\"flip-me-{i}-0123456789abcdef\"}}");
        publish_delivery(&js, i, body.as_bytes(), None, None)
            .await
            .await
            .unwrap();
    }
    let clean = run_on(&t, &js, &Options::default()).await;
    assert!(clean.findings.is_empty(), "{:#?}", clean.findings);
    nats.stop().await;
    drop(nats); // and with it the data directory's lock

    // The second message's body, one byte changed, in the stream's block files.
    let marker = b"flip-me-1-0123456789abcdef";
    let mut flipped = false;
    for file in walk(dir.path()) {
        let mut bytes = std::fs::read(&file).unwrap();
        if let Some(at) = bytes.windows(marker.len()).position(|w| w == marker) {
            bytes[at + 12] ^= 0x01;
            std::fs::write(&file, bytes).unwrap();
            flipped = true;
        }
    }
    assert!(flipped, "the body is in a block file");

    let _nats = EmbeddedNats::start(&nats_server_bin(), dir.path())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(
        hooklog_infra::nats::connect(&_nats.url(), "verify-test")
            .await
            .unwrap(),
    );
    let report = run_on(&t, &js, &Options::default()).await;
    // However the server reads the damaged block back (the changed body, or without the
    // message), the finding is at sequence 2.
    let at_2: Vec<String> = report
        .findings
        .iter()
        .filter(|f| {
            f.sequence == Some(2) && matches!(f.check, Check::BodyDigest | Check::Contiguous)
        })
        .map(|f| f.to_string())
        .collect();
    assert!(!at_2.is_empty(), "{:#?}", report.findings);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
