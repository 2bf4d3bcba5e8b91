//! Writes a log the way the audit service will publish it, for the Go program to read: the
//! C2SP tiles and entry bundles of two tree sizes under `log/`, both signed checkpoints, the
//! keys, a manifest from Go's tile paths (as this crate maps them) to C2SP's, and Rust's own
//! inclusion and consistency proofs.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use hooklog_audit::tiles::{c2sp_to_go_path, entry_bundles, go_to_c2sp_path, tree_tiles};
use hooklog_audit::tree::{consistency_proof, inclusion_proof, leaf_hash, root};
use hooklog_audit::{Checkpoint, Hash, Log, SigningKey, StreamMessage, Tile};
use secrecy::ExposeSecret;

/// A log of `size` synthetic deliveries, with an older checkpoint at `old_size`.
pub struct TestLog {
    pub entries: Vec<Vec<u8>>,
    pub leaves: Vec<Hash>,
    pub old_size: u64,
}

impl TestLog {
    pub fn new(size: u64, old_size: u64) -> TestLog {
        let entries: Vec<Vec<u8>> = (0..size).map(|i| delivery(i).encode().unwrap()).collect();
        let leaves = entries.iter().map(|e| leaf_hash(e)).collect();
        TestLog {
            entries,
            leaves,
            old_size,
        }
    }

    pub fn size(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// The checkpoint of the first `size` leaves, origin `<key name>/deliveries`.
    pub fn checkpoint(&self, key: &SigningKey, size: u64) -> Checkpoint {
        let origin = Log::Deliveries.origin(key.name());
        Checkpoint::new(&origin, size, root(&self.leaves[..size as usize])).unwrap()
    }

    /// Writes everything the Go program reads to `dir`; returns the number of tile files.
    pub fn write(&self, dir: &Path, key: &SigningKey, proved: &[u64]) -> usize {
        let mut manifest = String::new();
        let mut files = 0;
        for size in [self.old_size, self.size()] {
            let n = size as usize;
            let tiles = tree_tiles(&self.leaves[..n]);
            let bundles = entry_bundles(&self.entries[..n]).unwrap();
            for (tile, bytes) in tiles.iter().chain(&bundles) {
                if write_once(dir, tile, bytes) {
                    let c2sp = tile.path();
                    let go = c2sp_to_go_path(&c2sp).unwrap();
                    assert_eq!(go_to_c2sp_path(&go).unwrap(), c2sp);
                    writeln!(manifest, "{go} {c2sp}").unwrap();
                    files += 1;
                }
            }
        }
        fs::write(dir.join("manifest"), manifest).unwrap();

        let latest = self.checkpoint(key, self.size()).sign(key);
        let old = self.checkpoint(key, self.old_size).sign(key);
        fs::write(dir.join("checkpoint"), latest).unwrap();
        fs::write(dir.join("checkpoint.old"), old).unwrap();
        fs::write(dir.join("rust.vkey"), key.verifier().to_string()).unwrap();
        fs::write(dir.join("rust.skey"), key.to_private_text().expose_secret()).unwrap();

        let mut proofs = String::new();
        for &index in proved {
            let proof = inclusion_proof(&self.leaves, index).unwrap();
            writeln!(proofs, "record {index} {}", hashes(&proof)).unwrap();
        }
        let proof = consistency_proof(&self.leaves, self.old_size).unwrap();
        writeln!(proofs, "tree {} {}", self.old_size, hashes(&proof)).unwrap();
        fs::write(dir.join("proofs"), proofs).unwrap();
        files
    }
}

/// Delivery `i`: stream sequence `i + 1`, two headers given out of order.
fn delivery(i: u64) -> StreamMessage {
    let event = if i.is_multiple_of(3) {
        "issues"
    } else {
        "push"
    };
    StreamMessage::from_body(
        i + 1,
        1_700_000_000_000_000_000 + i as i64 * 1_000_003,
        format!("hooklog.deliveries.github.{event}"),
        vec![
            ("X-GitHub-Event".into(), format!(" {event} ")),
            ("Nats-Msg-Id".into(), format!("github:{i:08}")),
        ],
        format!("{{\"delivery\":{i}}}").as_bytes(),
    )
}

/// Writes a tile file unless it exists; a tile written for both sizes must not change.
fn write_once(dir: &Path, tile: &Tile, bytes: &[u8]) -> bool {
    let path = dir.join("log").join(tile.path());
    if let Ok(existing) = fs::read(&path) {
        assert_eq!(
            existing,
            bytes,
            "{} changed between tree sizes",
            tile.path()
        );
        return false;
    }
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    true
}

fn hashes(proof: &[Hash]) -> String {
    if proof.is_empty() {
        return "-".into();
    }
    let hex: Vec<String> = proof.iter().map(Hash::to_string).collect();
    hex.join(",")
}
