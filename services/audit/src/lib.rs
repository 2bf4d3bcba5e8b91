//! hooklog's verifiable-log core: both JetStream streams as transparency logs (DESIGN.md,
//! "Audit: both streams are transparency logs"), as pure functions over bytes.
//!
//! Each stream is an RFC 6962 Merkle tree whose leaf `i` is the canonical entry of the message
//! at stream sequence `i + 1`. Its tree heads are C2SP checkpoints signed as C2SP signed notes
//! with Ed25519, and it is published as C2SP tlog-tiles. Every format here is one an outsider
//! must reproduce, so each is fixed in prose (the module docs and the crate's README), pinned by
//! test vectors and checked against Go's reference implementation (golang.org/x/mod/sumdb/note
//! and .../tlog) by the integration test. Nothing here does I/O: the sealer (`hooklog-sealer`),
//! the admin API and the CLI bring the streams, the storage and the clock.
//!
//! - [`entry`]: a stream message as its canonical entry bytes, and back.
//! - [`tree`]: leaf and node hashes, roots, inclusion and consistency proofs.
//! - [`frontier`]: a tree grown leaf by leaf from its right edge, handing out tiles as they fill.
//! - [`tiles`]: tiles and entry bundles, their bytes and their paths (C2SP's and Go's).
//! - [`note`]: Ed25519 signed-note keys, signing and opening notes.
//! - [`proof`]: C2SP tlog-proof, an entry's inclusion proof with its checkpoint, as text.
//! - [`checkpoint`]: the checkpoint note text, parsed and formatted.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod entry;
pub mod frontier;
pub mod note;
pub mod proof;
pub mod tiles;
pub mod tree;

pub use checkpoint::{Checkpoint, CheckpointError, Log};
pub use entry::{EntryError, StreamMessage};
pub use frontier::Frontier;
pub use note::{KeyError, NoteError, SigningKey, VerifierKey};
pub use tiles::{Tile, TileLevel};
pub use tree::{Hash, ProofError};
