//! Audit bundles: a range of one log with everything needed to check it offline, with no
//! database and no NATS (`hooklog audit export`, `hooklog audit verify --bundle`).
//!
//! ```text
//! DIR/manifest             "hooklog-audit-bundle-v1", then `log <name>`, `from <seq>`, `to <seq>`
//! DIR/checkpoint           the log's latest signed checkpoint, verbatim
//! DIR/<seq>.tlog-proof     the C2SP tlog-proof of the message at <seq>: its entry (extra), the
//!                          leaf index, the inclusion proof and the checkpoint
//! DIR/<seq>.body           the message's body, byte for byte
//! ```
//!
//! Checking a bundle: the checkpoint opens under the auditor's verifier key for the log's
//! origin; each proof names that checkpoint and leaf `seq - 1`; its entry is canonical and names
//! `seq`; the body hashes to the entry's digest; and the inclusion proof of the entry's leaf
//! verifies against the checkpoint's root.

use std::path::{Path, PathBuf};

use async_nats::jetstream;
use hooklog_audit::proof::TlogProof;
use hooklog_audit::tree::{leaf_hash, verify_inclusion};
use hooklog_audit::{Checkpoint, CheckpointError, Log, NoteError, StreamMessage, VerifierKey};
use sha2::{Digest, Sha256};

use crate::message::parse_log;
use crate::prove::{ProveError, Prover};

/// The first line of a bundle's manifest.
pub const FORMAT: &str = "hooklog-audit-bundle-v1";

/// Why a bundle could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Prove(#[from] ProveError),
    #[error("{} already holds files; export into a new or empty directory", .0.display())]
    NotEmpty(PathBuf),
    #[error("the bundle has no {}", .0.display())]
    Missing(PathBuf),
    #[error("{}: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<(), BundleError> {
    std::fs::write(&path, bytes).map_err(|source| BundleError::Write { path, source })
}

/// Writes the bundle of `log` sequences `from..=to` to `dir`; returns how many entries.
pub async fn export(
    pool: &sqlx::PgPool,
    js: &jetstream::Context,
    log: Log,
    from: u64,
    to: u64,
    dir: &Path,
) -> Result<u64, BundleError> {
    if dir
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        return Err(BundleError::NotEmpty(dir.into()));
    }
    let mut prover = Prover::latest(pool, js, log, from, to).await?;
    std::fs::create_dir_all(dir).map_err(|source| BundleError::Write {
        path: dir.into(),
        source,
    })?;
    for sequence in from..=to {
        let (proof, body) = prover.prove(sequence).await?;
        write(
            dir.join(format!("{sequence}.tlog-proof")),
            proof.format().as_bytes(),
        )?;
        write(dir.join(format!("{sequence}.body")), &body)?;
    }
    write(dir.join("checkpoint"), prover.note().as_bytes())?;
    let manifest = format!("{FORMAT}\nlog {}\nfrom {from}\nto {to}\n", log.name());
    write(dir.join("manifest"), manifest.as_bytes())?;
    Ok(to - from + 1)
}

/// What checking a bundle found.
#[derive(Debug, Default)]
pub struct BundleReport {
    pub log: Option<Log>,
    pub checked: u64,
    pub findings: Vec<String>,
    pub passed: Vec<String>,
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, BundleError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => BundleError::Missing(path),
        _ => BundleError::Malformed {
            path,
            reason: err.to_string(),
        },
    })
}

fn text(dir: &Path, name: &str) -> Result<String, BundleError> {
    String::from_utf8(read(dir, name)?).map_err(|_| BundleError::Malformed {
        path: dir.join(name),
        reason: "not UTF-8".into(),
    })
}

/// Checks the bundle in `dir` against `key`, offline. A file that is missing or unreadable is
/// an error; anything that does not verify is a finding.
pub fn verify_bundle(dir: &Path, key: &VerifierKey) -> Result<BundleReport, BundleError> {
    let manifest = text(dir, "manifest")?;
    let malformed = |reason: &str| BundleError::Malformed {
        path: dir.join("manifest"),
        reason: reason.into(),
    };
    let mut lines = manifest.lines();
    if lines.next() != Some(FORMAT) {
        return Err(malformed("not a hooklog-audit-bundle-v1 manifest"));
    }
    let mut field = |name: &str| {
        lines
            .next()
            .and_then(|line| line.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_owned)
    };
    let log = field("log")
        .as_deref()
        .and_then(parse_log)
        .ok_or_else(|| malformed("no `log deliveries|events` line"))?;
    let from: u64 = field("from")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| malformed("no `from <seq>` line"))?;
    let to: u64 = field("to")
        .and_then(|n| n.parse().ok())
        .filter(|to| *to >= from && from >= 1)
        .ok_or_else(|| malformed("no `to <seq>` line at or after from"))?;

    let mut report = BundleReport {
        log: Some(log),
        ..BundleReport::default()
    };
    let note = text(dir, "checkpoint")?;
    let origin = log.origin(key.name());
    let checkpoint = match Checkpoint::open(&note, key, &origin) {
        Ok(checkpoint) => {
            report.passed.push(format!(
                "the checkpoint ({} leaves) is signed by {key} for {origin}",
                checkpoint.size()
            ));
            checkpoint
        }
        // Not a signed note or not a checkpoint at all: the bundle is malformed (exit 2). A
        // well-formed one another key signed, or for another log, is a finding.
        Err(
            err @ (CheckpointError::Note(NoteError::Malformed(_) | NoteError::BadText)
            | CheckpointError::BadShape
            | CheckpointError::BadSize
            | CheckpointError::BadRoot
            | CheckpointError::BadExtension
            | CheckpointError::BadOrigin),
        ) => {
            return Err(BundleError::Malformed {
                path: dir.join("checkpoint"),
                reason: format!("not a signed checkpoint: {err}"),
            })
        }
        Err(err) => {
            report.findings.push(format!(
                "checkpoint: not signed by {key} for {origin}: {err}"
            ));
            return Ok(report);
        }
    };
    for sequence in from..=to {
        let proof_name = format!("{sequence}.tlog-proof");
        let proof_text = text(dir, &proof_name)?;
        let body = read(dir, &format!("{sequence}.body"))?;
        report.checked += 1;
        let mut find = |what: String| report.findings.push(format!("sequence {sequence}: {what}"));
        let proof = match TlogProof::parse(&proof_text) {
            Ok(proof) => proof,
            Err(err) => {
                find(format!("{proof_name} is not a tlog-proof: {err}"));
                continue;
            }
        };
        if proof.checkpoint != note {
            find("its proof is for another checkpoint than the bundle's".into());
            continue;
        }
        if proof.index != sequence - 1 {
            find(format!(
                "its proof is for leaf {}, not {}",
                proof.index,
                sequence - 1
            ));
            continue;
        }
        let Some(entry) = proof.extra.as_deref() else {
            find("its proof carries no entry".into());
            continue;
        };
        match StreamMessage::decode(entry) {
            Ok(message) if message.sequence != sequence => {
                find(format!("its entry is of sequence {}", message.sequence));
                continue;
            }
            Ok(message) => {
                let digest: [u8; 32] = Sha256::digest(&body).into();
                if digest != message.body_sha256 {
                    find("the body does not hash to the entry's digest".into());
                }
            }
            Err(err) => {
                find(format!("its entry is not canonical: {err}"));
                continue;
            }
        }
        if verify_inclusion(
            proof.index,
            checkpoint.size(),
            &leaf_hash(entry),
            &proof.hashes,
            &checkpoint.root(),
        )
        .is_err()
        {
            find("its inclusion proof does not verify against the checkpoint".into());
        }
    }
    if report.findings.is_empty() {
        report.passed.push(format!(
            "{} entries of the {} log ({from} to {to}) are in the checkpoint, each body matching its entry",
            report.checked,
            log.name()
        ));
    }
    Ok(report)
}
