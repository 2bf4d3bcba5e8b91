//! C2SP tlog-checkpoint: the signed statement "this log had this many leaves with this root".
//!
//! ```text
//! <origin>
//! <tree size, decimal, no leading zeros>
//! <base64 of the 32-byte root hash>
//! [extension lines, each non-empty]
//! ```
//!
//! hooklog's origins are `<key name>/deliveries` and `<key name>/events` ([`Log::origin`]).
//! Parsing keeps extension lines so a checkpoint re-formats to the bytes it came from, but
//! hooklog never writes any ([`Checkpoint::new`] has none): C2SP discourages them, as monitors
//! cannot audit them. Signing and opening go through `note`; [`Checkpoint::open`] also checks the
//! origin, so a checkpoint of one log is never taken for the other's.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::note::{self, NoteError, SigningKey, VerifierKey};
use crate::tree::Hash;

/// hooklog's two logs, one per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Log {
    /// `GITHUB_DELIVERIES`: every webhook delivery as received.
    Deliveries,
    /// `HOOKLOG_EVENTS`: every domain event as published.
    Events,
}

impl Log {
    /// The log's name in origins and URLs: `deliveries` or `events`.
    pub fn name(self) -> &'static str {
        match self {
            Log::Deliveries => "deliveries",
            Log::Events => "events",
        }
    }

    /// The checkpoint origin of this log under the signing key named `key_name`.
    pub fn origin(self, key_name: &str) -> String {
        format!("{key_name}/{}", self.name())
    }
}

/// A tree head: origin, size and root, with any extension lines it was parsed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

/// Why text is not a checkpoint, or a note not a checkpoint of the expected log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The origin is empty or holds a newline or control character.
    #[error("a checkpoint origin must be one non-empty line without control characters")]
    BadOrigin,
    /// The text is not lines ending in a newline, or has fewer than three.
    #[error("a checkpoint is at least three lines, each ending in a newline")]
    BadShape,
    /// The size line is not a decimal u64 without leading zeros.
    #[error("the checkpoint's tree size is not a decimal without leading zeros")]
    BadSize,
    /// The root line is not the base64 of 32 bytes.
    #[error("the checkpoint's root hash is not the base64 of 32 bytes")]
    BadRoot,
    /// An extension line is empty or holds a control character.
    #[error("a checkpoint's extension lines must be non-empty, without control characters")]
    BadExtension,
    /// The note is for another log.
    #[error("the checkpoint is for {found:?}, not {expected:?}")]
    WrongOrigin { expected: String, found: String },
    /// The note did not open.
    #[error(transparent)]
    Note(#[from] NoteError),
}

impl Checkpoint {
    /// The checkpoint of the tree of `size` leaves with `root` in the log `origin`.
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Checkpoint, CheckpointError> {
        if origin.is_empty() || origin.chars().any(char::is_control) {
            return Err(CheckpointError::BadOrigin);
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// The checkpoint in a note's text.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::BadShape)?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::BadShape);
        };
        let canonical = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size = canonical
            .then(|| size.parse::<u64>().ok())
            .flatten()
            .ok_or(CheckpointError::BadSize)?;
        let root = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| Hash::from_slice(&bytes))
            .ok_or(CheckpointError::BadRoot)?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        let bad = |line: &String| line.is_empty() || line.chars().any(char::is_control);
        if extensions.iter().any(bad) {
            return Err(CheckpointError::BadExtension);
        }
        let mut checkpoint = Checkpoint::new(origin, size, root)?;
        checkpoint.extensions = extensions;
        Ok(checkpoint)
    }

    /// Opens a signed checkpoint with `verifier` and checks that it is for `origin`.
    pub fn open(
        note: &str,
        verifier: &VerifierKey,
        origin: &str,
    ) -> Result<Checkpoint, CheckpointError> {
        let text = note::open(note, std::slice::from_ref(verifier))?;
        let checkpoint = Checkpoint::parse(text)?;
        if checkpoint.origin != origin {
            return Err(CheckpointError::WrongOrigin {
                expected: origin.to_string(),
                found: checkpoint.origin,
            });
        }
        Ok(checkpoint)
    }

    /// The signed note of this checkpoint.
    pub fn sign(&self, key: &SigningKey) -> String {
        note::sign(&self.to_string(), key).expect("a checkpoint's text is a valid note text")
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree's root hash.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The extension lines the checkpoint was parsed with (none for one hooklog made).
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }
}

/// The note text: the origin, size and root lines, then any extensions, each ending in `\n`.
impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root.0)
        )?;
        for line in &self.extensions {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
