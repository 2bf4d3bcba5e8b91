//! The canonical entry of one stream message: the bytes that become a leaf of the stream's
//! Merkle tree (DESIGN.md, "Audit: both streams are transparency logs").
//!
//! ```text
//! "hooklog-tlog-v1\n"                    16 bytes
//! stream sequence                        u64 big-endian
//! stream time                            i64 big-endian, Unix nanoseconds
//! subject                                u16 big-endian length, then the UTF-8 bytes
//! header count                           u16 big-endian
//! each header, sorted by name, then value:
//!     u16 BE length + name bytes, u16 BE length + value bytes
//!     (name as stored, value without surrounding whitespace, no NATS status line)
//! SHA-256 of the body                    32 bytes
//! ```
//!
//! The layout is a contract with anyone who re-verifies a log, so it is fixed here, in the
//! crate's README and by the vectors in the tests. Encoding canonicalises (sorts the headers,
//! trims their values); decoding accepts only canonical bytes, so an entry and the message it
//! decodes to are one-to-one and `audit verify` can compare a bundle's entries byte for byte.

use sha2::{Digest, Sha256};

use crate::tree::{leaf_hash, Hash};

/// The first 16 bytes of every entry: names the format and its version.
pub const ENTRY_PREFIX: &[u8; 16] = b"hooklog-tlog-v1\n";

/// One message as JetStream stored it, with its body committed through its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMessage {
    /// The stream sequence, from 1.
    pub sequence: u64,
    /// JetStream's stored time, in nanoseconds since the Unix epoch.
    pub time_unix_nanos: i64,
    /// The subject the message was published on.
    pub subject: String,
    /// The headers as `(name, value)`, in any order and with repeated names; without the NATS
    /// status line, which is not a header.
    pub headers: Vec<(String, String)>,
    /// SHA-256 of the body.
    pub body_sha256: [u8; 32],
}

/// A field of the entry, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Prefix,
    Sequence,
    Time,
    Subject,
    HeaderCount,
    HeaderName,
    HeaderValue,
    BodyDigest,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::Prefix => "prefix",
            Field::Sequence => "stream sequence",
            Field::Time => "stream time",
            Field::Subject => "subject",
            Field::HeaderCount => "header count",
            Field::HeaderName => "header name",
            Field::HeaderValue => "header value",
            Field::BodyDigest => "body digest",
        })
    }
}

/// Why a message has no entry, or bytes are not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// A length or count does not fit in the u16 the layout gives it.
    #[error("the {field} is {len} long, more than the entry's u16 allows")]
    TooLong { field: Field, len: usize },
    /// The bytes end inside a field.
    #[error("the entry ends inside its {0}")]
    Truncated(Field),
    /// The bytes do not start with [`ENTRY_PREFIX`].
    #[error("the entry does not start with \"hooklog-tlog-v1\\n\"")]
    BadPrefix,
    /// A subject, header name or header value is not UTF-8.
    #[error("the entry's {0} is not UTF-8")]
    NotUtf8(Field),
    /// Bytes follow the body digest.
    #[error("{0} bytes follow the entry's body digest")]
    TrailingBytes(usize),
    /// Headers out of order or values with surrounding whitespace: valid bytes, but not the
    /// ones hooklog writes for any message.
    #[error("the entry is not in canonical form (headers unsorted or values untrimmed)")]
    NotCanonical,
}

impl StreamMessage {
    /// A message with the digest of its raw `body`.
    pub fn from_body(
        sequence: u64,
        time_unix_nanos: i64,
        subject: impl Into<String>,
        headers: Vec<(String, String)>,
        body: &[u8],
    ) -> StreamMessage {
        StreamMessage {
            sequence,
            time_unix_nanos,
            subject: subject.into(),
            headers,
            body_sha256: Sha256::digest(body).into(),
        }
    }

    /// The headers as the entry holds them: values trimmed, sorted by name, then value.
    pub fn canonical_headers(&self) -> Vec<(&str, &str)> {
        let mut headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.trim()))
            .collect();
        headers.sort_unstable();
        headers
    }

    /// The canonical entry.
    pub fn encode(&self) -> Result<Vec<u8>, EntryError> {
        let headers = self.canonical_headers();
        let mut out = Vec::with_capacity(64 + self.subject.len() + 32 * headers.len());
        out.extend_from_slice(ENTRY_PREFIX);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.time_unix_nanos.to_be_bytes());
        put_bytes(&mut out, Field::Subject, self.subject.as_bytes())?;
        out.extend_from_slice(&u16_len(Field::HeaderCount, headers.len())?.to_be_bytes());
        for (name, value) in headers {
            put_bytes(&mut out, Field::HeaderName, name.as_bytes())?;
            put_bytes(&mut out, Field::HeaderValue, value.as_bytes())?;
        }
        out.extend_from_slice(&self.body_sha256);
        Ok(out)
    }

    /// The leaf hash of the canonical entry.
    pub fn leaf_hash(&self) -> Result<Hash, EntryError> {
        Ok(leaf_hash(&self.encode()?))
    }

    /// The message a canonical entry encodes; anything else is an error.
    pub fn decode(entry: &[u8]) -> Result<StreamMessage, EntryError> {
        let mut r = Reader(entry);
        if r.take(Field::Prefix, ENTRY_PREFIX.len())? != ENTRY_PREFIX {
            return Err(EntryError::BadPrefix);
        }
        let sequence = u64::from_be_bytes(r.array(Field::Sequence)?);
        let time_unix_nanos = i64::from_be_bytes(r.array(Field::Time)?);
        let subject = r.string(Field::Subject)?;
        let count = u16::from_be_bytes(r.array(Field::HeaderCount)?);
        let mut headers = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let name = r.string(Field::HeaderName)?;
            let value = r.string(Field::HeaderValue)?;
            headers.push((name, value));
        }
        let body_sha256 = r.array(Field::BodyDigest)?;
        if !r.0.is_empty() {
            return Err(EntryError::TrailingBytes(r.0.len()));
        }
        let message = StreamMessage {
            sequence,
            time_unix_nanos,
            subject,
            headers,
            body_sha256,
        };
        let canonical = message.canonical_headers().into_iter().eq(message
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())));
        if canonical {
            Ok(message)
        } else {
            Err(EntryError::NotCanonical)
        }
    }
}

fn u16_len(field: Field, len: usize) -> Result<u16, EntryError> {
    u16::try_from(len).map_err(|_| EntryError::TooLong { field, len })
}

fn put_bytes(out: &mut Vec<u8>, field: Field, bytes: &[u8]) -> Result<(), EntryError> {
    out.extend_from_slice(&u16_len(field, bytes.len())?.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// The unread rest of an entry.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, field: Field, n: usize) -> Result<&'a [u8], EntryError> {
        if self.0.len() < n {
            return Err(EntryError::Truncated(field));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: Field) -> Result<[u8; N], EntryError> {
        let bytes = self.take(field, N)?;
        Ok(bytes.try_into().expect("take returned N bytes"))
    }

    fn string(&mut self, field: Field) -> Result<String, EntryError> {
        let len = u16::from_be_bytes(self.array(field)?);
        let bytes = self.take(field, usize::from(len))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| EntryError::NotUtf8(field))
    }
}

#[cfg(test)]
mod tests;
