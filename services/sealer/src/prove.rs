//! The inclusion proof of one message in the latest checkpoint of its log, as a C2SP
//! `tlog-proof` (`c2sp.org/tlog-proof@v1`): the index, the proof's hashes from the leaf's
//! sibling up, a blank line and the checkpoint verbatim. The `extra` line carries the entry
//! itself (base64), which is what an auditor hashes (`SHA-256(0x00 || entry)`) to get the record
//! hash the proof starts from; like all extra data it is not authenticated, the proof is.
//!
//! The proof is read from the stored tiles and verified here against the checkpoint and the
//! message read back from the stream before it is handed out, so a proof this prints verifies.

use async_nats::jetstream;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hooklog_audit::tiles::{tiles_for_subtrees, TileHashes};
use hooklog_audit::tree::{inclusion_proof_from, inclusion_subtrees, leaf_hash, verify_inclusion};
use hooklog_audit::{Checkpoint, Log};
use hooklog_infra::streams::{audit_checkpoint_subject, AUDIT_STREAM};

use crate::message::{raw_stream_message, stream_name};
use crate::store;

/// Why there is no proof.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error("cannot read {what}: {reason}")]
    Unavailable { what: String, reason: String },
    #[error("{stream} has no message at sequence {sequence}")]
    NoMessage { stream: &'static str, sequence: u64 },
    #[error("no checkpoint of the {0} log has been signed yet")]
    NoCheckpoint(&'static str),
    #[error("the latest {log} checkpoint covers sequences 1 to {size}; {sequence} is not sealed yet (the next checkpoint will cover it)")]
    NotSealedYet {
        log: &'static str,
        sequence: u64,
        size: u64,
    },
    /// The stored tiles, the stream and the checkpoint disagree: `audit verify` says where.
    #[error("the proof of sequence {sequence} of the {log} log does not verify against its checkpoint: {reason}")]
    Invalid {
        log: &'static str,
        sequence: u64,
        reason: String,
    },
}

fn unavailable(what: impl Into<String>, err: impl std::fmt::Display) -> ProveError {
    ProveError::Unavailable {
        what: what.into(),
        reason: err.to_string(),
    }
}

/// The `tlog-proof` of the message at `sequence` of `log`'s stream.
pub async fn inclusion(
    pool: &sqlx::PgPool,
    js: &jetstream::Context,
    log: Log,
    sequence: u64,
) -> Result<String, ProveError> {
    let stream_label = stream_name(log);
    let audit = js
        .get_stream(AUDIT_STREAM)
        .await
        .map_err(|err| unavailable(AUDIT_STREAM, err))?;
    let note = match audit
        .get_last_raw_message_by_subject(&audit_checkpoint_subject(log.name()))
        .await
    {
        Ok(message) => String::from_utf8_lossy(&message.payload).into_owned(),
        Err(err) if err.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
            return Err(ProveError::NoCheckpoint(log.name()))
        }
        Err(err) => return Err(unavailable(AUDIT_STREAM, err)),
    };
    let text = note.rfind("\n\n").map_or(note.as_str(), |at| &note[..=at]);
    let invalid = |reason: String| ProveError::Invalid {
        log: log.name(),
        sequence,
        reason,
    };
    let checkpoint = Checkpoint::parse(text).map_err(|err| invalid(err.to_string()))?;
    let size = checkpoint.size();
    if sequence == 0 || sequence > size {
        return Err(ProveError::NotSealedYet {
            log: log.name(),
            sequence,
            size,
        });
    }
    let stream = js
        .get_stream(stream_label)
        .await
        .map_err(|err| unavailable(stream_label, err))?;
    let message = stream
        .get_raw_message(sequence)
        .await
        .map_err(|_| ProveError::NoMessage {
            stream: stream_label,
            sequence,
        })?;
    let entry = raw_stream_message(&message)
        .map_err(|err| invalid(err.to_string()))?
        .encode()
        .map_err(|err| invalid(err.to_string()))?;

    let index = sequence - 1;
    let subtrees = inclusion_subtrees(size, index).map_err(|err| invalid(err.to_string()))?;
    let needed = tiles_for_subtrees(&subtrees, size).unwrap_or_default();
    let tiles = store::read_tiles(pool, log, &needed)
        .await
        .map_err(|err| unavailable("the stored tiles", err))?;
    let proof = inclusion_proof_from(&mut TileHashes::new(size, tiles), size, index)
        .map_err(|err| invalid(err.to_string()))?
        .map_err(|err| invalid(err.to_string()))?;
    verify_inclusion(index, size, &leaf_hash(&entry), &proof, &checkpoint.root())
        .map_err(|err| invalid(err.to_string()))?;

    let mut out = String::from("c2sp.org/tlog-proof@v1\n");
    out.push_str(&format!("extra {}\n", BASE64.encode(&entry)));
    out.push_str(&format!("index {index}\n"));
    for hash in &proof {
        out.push_str(&BASE64.encode(hash.0));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&note);
    Ok(out)
}
