//! hooklog-audit against Go's reference implementation, golang.org/x/mod/sumdb/note and
//! .../sumdb/tlog (DESIGN.md: "a checkpoint must open with `note.Open` under the verifier key
//! and the tiles must read through `tlog.TileHashReader`").
//!
//! Rust writes a log (tiles, entry bundles, two signed checkpoints, proofs) to a temporary
//! directory and the Go program in `tests/go` checks it: `note.Open` on both checkpoints, the
//! roots through `tlog.TileHashReader` over the tiles (found by Go's tile paths, mapped by this
//! crate), Go's own hashes of the entries (`tlog.StoredHashes`) against both roots and every
//! hash tile (`tlog.ReadTileData`), every entry's `tlog.RecordHash` against its tile,
//! `ProveRecord`/`CheckRecord` and `ProveTree`/`CheckTree` (and Go checking Rust's own proofs,
//! which must equal Go's). A key
//! from Go's `note.GenerateKey` goes the other way: Rust parses it, opens Go's note and signs
//! a checkpoint with it that Go opens. Tampered logs must fail the Go checks.

mod go;
mod log;

use std::fs;
use std::path::Path;

use hooklog_audit::note::{self, SigningKey, VerifierKey};
use hooklog_audit::tree::verify_consistency;
use hooklog_audit::{Checkpoint, Log};

use crate::log::TestLog;

const GO_KEY_NAME: &str = "interop.go.example";

/// Runs `interop keygen`, checks the Go key from the Rust side and returns it.
fn go_key(program: &Path, dir: &Path) -> SigningKey {
    let output = go::run(
        program,
        &["keygen".as_ref(), dir.as_os_str(), GO_KEY_NAME.as_ref()],
    );
    assert!(output.status.success(), "interop keygen failed");
    let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap();
    let key = SigningKey::parse(read("go.skey").trim()).expect("Rust parses Go's private key");
    let verifier = VerifierKey::parse(read("go.vkey").trim()).expect("Rust parses Go's vkey");
    assert_eq!(key.verifier(), verifier);
    assert_eq!(key.verifier().to_string(), read("go.vkey").trim());
    assert_eq!(key.name(), GO_KEY_NAME);
    assert_eq!(
        note::open(&read("go.note"), &[verifier]),
        Ok("signed by Go's note.Sign\n")
    );
    key
}

/// Writes `log` to `dir` with a new Rust key, plus a checkpoint signed with Go's key.
fn prepare(program: &Path, dir: &Path, log: &TestLog, proved: &[u64]) -> SigningKey {
    let go_key = go_key(program, dir);
    let key = SigningKey::generate("audit.hooklog.example").unwrap();
    let files = log.write(dir, &key, proved);
    assert!(files > 0);
    let by_go = log.checkpoint(&go_key, log.size()).sign(&go_key);
    fs::write(dir.join("go-key.checkpoint"), by_go).unwrap();
    key
}

fn check(program: &Path, dir: &Path) -> (bool, String) {
    let output = go::run(program, &["check".as_ref(), dir.as_os_str()]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    (output.status.success(), stdout)
}

#[test]
fn a_rust_log_its_checkpoints_and_proofs_verify_with_gos_sumdb_note_and_tlog() {
    let Some(program) = go::interop() else { return };
    let dir = tempfile::tempdir().unwrap();
    // 66,770 leaves: full and partial tiles at levels 0 and 1, a partial level-2 tile.
    let log = TestLog::new(66_770, 1_000);
    let proved = [0, 1, 255, 256, 999, 1_000, 65_535, 65_536, 66_769];
    let key = prepare(program, dir.path(), &log, &proved);

    let origin = Log::Deliveries.origin(key.name());
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
    let latest = Checkpoint::open(&read("checkpoint"), &key.verifier(), &origin).unwrap();
    let old = Checkpoint::open(&read("checkpoint.old"), &key.verifier(), &origin).unwrap();
    let proof = hooklog_audit::tree::consistency_proof(&log.leaves, old.size()).unwrap();
    verify_consistency(
        old.size(),
        latest.size(),
        &old.root(),
        &latest.root(),
        &proof,
    )
    .unwrap();

    let (success, report) = check(program, dir.path());
    assert!(success, "Go's checks failed:\n{report}");
    assert!(!report.contains("FAIL"), "{report}");
    let oks = report.lines().filter(|l| l.starts_with("ok ")).count();
    // Manifest, 2 opens, same signature, 2 roots through tiles, entries read, 2 roots from Go's
    // own hashes, tile data, leaf hashes, 2 per proved record, 2 for the tree, the Go-key note.
    assert_eq!(
        oks,
        1 + 2 + 1 + 2 + 1 + 2 + 1 + 1 + 2 * proved.len() + 2 + 1,
        "{report}"
    );
}

/// Writes a log of 600 leaves (older checkpoint at 300), flips one bit of the file at C2SP path
/// `path` at `offset(file length)`, and returns Go's report, which must be a failure.
fn go_report_on_tampered(path: &str, offset: fn(usize) -> usize) -> String {
    let program = go::interop().expect("checked by the caller");
    let dir = tempfile::tempdir().unwrap();
    let log = TestLog::new(600, 300);
    prepare(program, dir.path(), &log, &[5, 400]);
    let file = dir.path().join("log").join(path);
    let mut bytes = fs::read(&file).unwrap();
    let at = offset(bytes.len());
    bytes[at] ^= 0x01;
    fs::write(&file, bytes).unwrap();
    let (success, report) = check(program, dir.path());
    assert!(!success, "Go accepted a tampered {path}:\n{report}");
    report
}

#[test]
fn a_tampered_entry_fails_gos_record_hash_and_root_checks() {
    if go::interop().is_none() {
        return;
    }
    // The last byte of the full second bundle: the body digest of entry 511.
    let report = go_report_on_tampered("tile/entries/001", |len| len - 1);
    assert!(
        report.contains("FAIL tlog.TreeHash(600) from Go's own hashes"),
        "{report}"
    );
    assert!(report.contains("FAIL tlog.RecordHash"), "{report}");
    assert!(report.contains("entry 511 hashes to"), "{report}");
}

#[test]
fn a_tampered_leaf_tile_fails_gos_tile_checks() {
    if go::interop().is_none() {
        return;
    }
    // Leaf hash 7. Debian's x/mod 0.7.0 TileHashReader hands it out without checking tile/0/000
    // against its parent (its check loop skips tiles when subtrees of the tree share a tile),
    // so the failures come from Go's own tile data and the entry's record hash.
    let report = go_report_on_tampered("tile/0/000", |_| 32 * 7);
    assert!(report.contains("FAIL tlog.ReadTileData"), "{report}");
    assert!(report.contains("FAIL tlog.RecordHash"), "{report}");
}

#[test]
fn a_tampered_level_1_tile_fails_gos_tile_hash_reader() {
    if go::interop().is_none() {
        return;
    }
    let report = go_report_on_tampered("tile/1/000.p/2", |_| 3);
    assert!(
        report.contains("FAIL tlog.TreeHash(600) through tlog.TileHashReader"),
        "{report}"
    );
    assert!(report.contains("FAIL tlog.ReadTileData"), "{report}");
}

#[test]
fn a_checkpoint_signed_by_another_key_fails_gos_note_open() {
    let Some(program) = go::interop() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = TestLog::new(10, 3);
    prepare(program, dir.path(), &log, &[]);
    let impostor = SigningKey::generate("audit.hooklog.example").unwrap();
    let forged = log.checkpoint(&impostor, 10).sign(&impostor);
    fs::write(dir.path().join("checkpoint"), forged).unwrap();

    let (success, report) = check(program, dir.path());
    assert!(!success, "Go opened a checkpoint by another key:\n{report}");
    assert!(
        report.contains("FAIL note.Open opens the checkpoint"),
        "{report}"
    );
}
