//! Bundles: a range exported with its proofs checks offline, and each change to it is found.

use hooklog_audit::{Log, SigningKey};
use hooklog_sealer::bundle::{export, verify_bundle, BundleError};
use hooklog_sealer::prove::ProveError;

use crate::support::*;

#[tokio::test]
async fn an_exported_range_checks_offline_and_every_change_to_it_is_found() {
    let t = Test::start().await;
    let _sealer = t.sealer();
    t.deliver(0..300).await;
    t.wait_checkpoint(Log::Deliveries, 300).await;
    let (pool, js) = (&t.backends.pool, &t.backends.js);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    assert_eq!(
        export(pool, js, Log::Deliveries, 100, 140, &bundle)
            .await
            .unwrap(),
        41
    );

    let key = t.key.verifier();
    let report = verify_bundle(&bundle, &key).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.checked, 41);
    assert!(
        report
            .passed
            .iter()
            .any(|p| p.contains("41 entries of the deliveries log (100 to 140)")),
        "{:?}",
        report.passed
    );

    let other = SigningKey::generate("sealer-test.example")
        .unwrap()
        .verifier();
    let report = verify_bundle(&bundle, &other).unwrap();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert!(
        report.findings[0].starts_with("checkpoint: not signed by"),
        "{:?}",
        report.findings
    );

    // A body changed, and a proof hash changed.
    let body = bundle.join("120.body");
    let mut bytes = std::fs::read(&body).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&body, bytes).unwrap();
    let proof = bundle.join("130.tlog-proof");
    let text = std::fs::read_to_string(&proof).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let hash_line = lines.iter().position(|l| l.starts_with("index ")).unwrap() + 1;
    let flipped = if lines[hash_line].starts_with('A') {
        'B'
    } else {
        'A'
    };
    lines[hash_line].replace_range(0..1, &flipped.to_string());
    std::fs::write(&proof, lines.join("\n") + "\n").unwrap();
    let report = verify_bundle(&bundle, &key).unwrap();
    assert_eq!(
        report.findings,
        [
            "sequence 120: the body does not hash to the entry's digest",
            "sequence 130: its inclusion proof does not verify against the checkpoint",
        ],
    );

    // A checkpoint that is not one is a malformed bundle, named.
    let checkpoint = bundle.join("checkpoint");
    let note = std::fs::read(&checkpoint).unwrap();
    std::fs::write(&checkpoint, b"not a note\n").unwrap();
    match verify_bundle(&bundle, &key) {
        Err(BundleError::Malformed { path, reason }) => {
            assert!(path.ends_with("checkpoint"), "{path:?}");
            assert!(reason.contains("not a signed checkpoint"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(&checkpoint, note).unwrap();

    // A missing file is named; a range past the tree and a used directory are refused.
    std::fs::remove_file(bundle.join("140.body")).unwrap();
    match verify_bundle(&bundle, &key) {
        Err(BundleError::Missing(path)) => assert!(path.ends_with("140.body"), "{path:?}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        export(
            pool,
            js,
            Log::Deliveries,
            290,
            301,
            &dir.path().join("past")
        )
        .await,
        Err(BundleError::Prove(ProveError::NotSealedYet {
            sequence: 301,
            ..
        }))
    ));
    assert!(matches!(
        export(pool, js, Log::Deliveries, 1, 2, &bundle).await,
        Err(BundleError::NotEmpty(_))
    ));
}
