//! C2SP signed notes with Ed25519: signing a text, and opening a note against trusted keys.
//!
//! ```text
//! <text, ending in a newline>
//! <blank line>
//! — <key name> <base64(4-byte big-endian key id || 64-byte Ed25519 signature of the text)>
//! ```
//!
//! The dash is U+2014. A note is UTF-8 with no ASCII control character but newline; the text is
//! everything up to and including the newline before the last blank line. Opening follows the
//! specification: signatures by keys not given are ignored, a signature by a given key (same
//! name and key id) that fails is a forgery and fails the whole note, and a note with no
//! signature by a given key is refused. Keys and their text forms are in `note::key`.

mod key;

pub use key::{is_valid_name, key_id, KeyError, SigningKey, VerifierKey, ED25519_ALGORITHM};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// Signature lines start with an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Opening gives up on notes with more signatures than this (C2SP asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// Why a note could not be signed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The text to sign is empty, does not end in a newline or holds a control character.
    #[error("a note's text must end in a newline and hold no control character but newlines")]
    BadText,
    /// The note is not in the signed-note format; the reason says where.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// No signature in the note is by one of the keys given.
    #[error("the note has no signature by a known key")]
    UnknownKey,
    /// A signature by a known key does not verify.
    #[error("the signature by {name} ({key_id:08x}) does not verify")]
    BadSignature { name: String, key_id: u32 },
}

/// Whether `text` holds no ASCII control character except newline.
fn no_controls(text: &str) -> bool {
    !text.chars().any(|c| c < ' ' && c != '\n')
}

/// Signs `text` with `key`: the text, a blank line and one signature line.
pub fn sign(text: &str, key: &SigningKey) -> Result<String, NoteError> {
    if !text.ends_with('\n') || !no_controls(text) {
        return Err(NoteError::BadText);
    }
    let mut signature = Vec::with_capacity(4 + 64);
    signature.extend_from_slice(&key.key_id().to_be_bytes());
    signature.extend_from_slice(&key.sign_bytes(text.as_bytes()));
    Ok(format!(
        "{text}\n{SIGNATURE_PREFIX}{} {}\n",
        key.name(),
        BASE64.encode(signature)
    ))
}

/// A note's text (ending in its newline) and its signature lines, split at the last blank line.
fn split(note: &str) -> Option<(&str, &str)> {
    let at = note.rfind("\n\n")?;
    Some((&note[..=at], &note[at + 2..]))
}

/// A note's text without checking any signature (the whole input when it has no signature
/// lines): for reading a checkpoint a key no longer trusted signed, whose tree still binds.
pub fn unverified_text(note: &str) -> &str {
    split(note).map_or(note, |(text, _)| text)
}

/// Opens `note` against the trusted `verifiers`: its text, once at least one of them has a
/// valid signature in it and none has an invalid one.
pub fn open<'a>(note: &'a str, verifiers: &[VerifierKey]) -> Result<&'a str, NoteError> {
    if !no_controls(note) {
        return Err(NoteError::Malformed(
            "a control character other than newline",
        ));
    }
    let (text, signatures) =
        split(note).ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    if signatures.is_empty() || !signatures.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the signatures do not end in a newline",
        ));
    }
    let lines: Vec<&str> = signatures[..signatures.len() - 1].split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(NoteError::Malformed("too many signatures"));
    }
    let mut verified = false;
    for line in lines {
        let (name, key_id, signature) = parse_signature_line(line)?;
        let known = verifiers
            .iter()
            .filter(|v| v.name() == name && v.key_id() == key_id);
        for verifier in known {
            if !verifier.verifies(text.as_bytes(), &signature) {
                let name = name.to_string();
                return Err(NoteError::BadSignature { name, key_id });
            }
            verified = true;
        }
    }
    if verified {
        Ok(text)
    } else {
        Err(NoteError::UnknownKey)
    }
}

/// `— <name> <base64>` as the name, the key id and the signature bytes after it.
fn parse_signature_line(line: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(NoteError::Malformed(
            "a signature line does not start with \"— \"",
        ))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or(NoteError::Malformed("a signature line has no signature"))?;
    if !is_valid_name(name) {
        return Err(NoteError::Malformed("a signature line has a bad key name"));
    }
    let bytes = BASE64
        .decode(b64)
        .map_err(|_| NoteError::Malformed("a signature is not standard base64"))?;
    if bytes.len() < 5 {
        return Err(NoteError::Malformed("a signature is shorter than a key id"));
    }
    let key_id = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    Ok((name, key_id, bytes[4..].to_vec()))
}

#[cfg(test)]
mod tests;
