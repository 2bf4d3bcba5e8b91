//! The inclusion proof of one message in the latest checkpoint of its log, as a C2SP
//! `tlog-proof` (`c2sp.org/tlog-proof@v1`): the index, the proof's hashes from the leaf's
//! sibling up, a blank line and the checkpoint verbatim. The `extra` line carries the entry
//! itself (base64), which is what an auditor hashes (`SHA-256(0x00 || entry)`) to get the record
//! hash the proof starts from; like all extra data it is not authenticated, the proof is.
//!
//! The proof is read from the stored tiles and verified here against the checkpoint and the
//! message read back from the stream before it is handed out, so a proof this prints verifies.

use std::collections::BTreeSet;

use async_nats::jetstream;
use hooklog_audit::note::unverified_text;
use hooklog_audit::proof::TlogProof;
use hooklog_audit::tiles::{tiles_for_subtrees, TileHashes};
use hooklog_audit::tree::{inclusion_proof_from, inclusion_subtrees, leaf_hash, verify_inclusion};
use hooklog_audit::{Checkpoint, Log};
use hooklog_infra::streams::AUDIT_STREAM;

use crate::message::{raw_stream_message, stream_name};
use crate::seal::latest_note;
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

/// The latest checkpoint of a log with the stored tiles that prove a range of its entries.
pub struct Prover {
    log: Log,
    note: String,
    checkpoint: Checkpoint,
    tiles: TileHashes,
    stream: jetstream::stream::Stream,
}

impl Prover {
    /// Reads the latest checkpoint of `log` and the tiles that prove `first..=last` in it.
    pub async fn latest(
        pool: &sqlx::PgPool,
        js: &jetstream::Context,
        log: Log,
        first: u64,
        last: u64,
    ) -> Result<Prover, ProveError> {
        let (_, note) = latest_note(js, log)
            .await
            .map_err(|reason| ProveError::Unavailable {
                what: AUDIT_STREAM.into(),
                reason,
            })?
            .ok_or(ProveError::NoCheckpoint(log.name()))?;
        let checkpoint =
            Checkpoint::parse(unverified_text(&note)).map_err(|err| ProveError::Invalid {
                log: log.name(),
                sequence: first,
                reason: err.to_string(),
            })?;
        let size = checkpoint.size();
        for sequence in [first, last] {
            if sequence == 0 || sequence > size {
                return Err(ProveError::NotSealedYet {
                    log: log.name(),
                    sequence,
                    size,
                });
            }
        }
        let mut needed = BTreeSet::new();
        for sequence in first..=last {
            let subtrees = inclusion_subtrees(size, sequence - 1).expect("checked above");
            needed.extend(tiles_for_subtrees(&subtrees, size).unwrap_or_default());
        }
        let tiles = store::read_tiles(pool, log, &needed)
            .await
            .map_err(|err| unavailable("the stored tiles", err))?;
        let stream_label = stream_name(log);
        let stream = js
            .get_stream(stream_label)
            .await
            .map_err(|err| unavailable(stream_label, err))?;
        Ok(Prover {
            log,
            note,
            checkpoint,
            tiles: TileHashes::new(size, tiles),
            stream,
        })
    }

    /// The checkpoint note the proofs are in, verbatim.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// The proof of the message at `sequence` (in the range given to [`Prover::latest`]), with
    /// the message's body; verified against the checkpoint before it is returned.
    pub async fn prove(&mut self, sequence: u64) -> Result<(TlogProof, bytes::Bytes), ProveError> {
        let log = self.log;
        let invalid = |reason: String| ProveError::Invalid {
            log: log.name(),
            sequence,
            reason,
        };
        let message =
            self.stream
                .get_raw_message(sequence)
                .await
                .map_err(|_| ProveError::NoMessage {
                    stream: stream_name(log),
                    sequence,
                })?;
        let entry = raw_stream_message(&message)
            .map_err(|err| invalid(err.to_string()))?
            .encode()
            .map_err(|err| invalid(err.to_string()))?;
        let (size, index) = (self.checkpoint.size(), sequence - 1);
        let hashes = inclusion_proof_from(&mut self.tiles, size, index)
            .map_err(|err| invalid(err.to_string()))?
            .map_err(|err| invalid(err.to_string()))?;
        verify_inclusion(
            index,
            size,
            &leaf_hash(&entry),
            &hashes,
            &self.checkpoint.root(),
        )
        .map_err(|err| invalid(err.to_string()))?;
        let proof = TlogProof {
            extra: Some(entry),
            index,
            hashes,
            checkpoint: self.note.clone(),
        };
        Ok((proof, message.payload))
    }
}

/// The `tlog-proof` of the message at `sequence` of `log`'s stream.
pub async fn inclusion(
    pool: &sqlx::PgPool,
    js: &jetstream::Context,
    log: Log,
    sequence: u64,
) -> Result<String, ProveError> {
    let mut prover = Prover::latest(pool, js, log, sequence, sequence).await?;
    Ok(prover.prove(sequence).await?.0.format())
}
