//! C2SP tlog-proof (`c2sp.org/tlog-proof@v1`): an offline-checkable proof that an entry is in a
//! log, written and read.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64>            optional; hooklog puts the entry itself here
//! index <leaf index>
//! <base64 hash>             the inclusion proof, from the leaf's sibling up, zero or more
//!
//! <the checkpoint, a signed note, verbatim>
//! ```
//!
//! The extra data is not authenticated: a reader hashes it and checks the proof of that hash,
//! so a changed entry fails the proof.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::tree::Hash;

/// The first line of every proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// One proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub hashes: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

/// Why text is not a tlog-proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFormatError {
    #[error("the first line is not {HEADER}")]
    BadHeader,
    #[error("the extra line is not base64")]
    BadExtra,
    #[error("no `index <n>` line (a decimal without leading zeros)")]
    BadIndex,
    #[error("proof line {0} is not a base64 SHA-256 hash")]
    BadHash(usize),
    #[error("no blank line before the checkpoint")]
    NoCheckpoint,
}

impl TlogProof {
    /// The proof's text.
    pub fn format(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", BASE64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for hash in &self.hashes {
            out.push_str(&BASE64.encode(hash.0));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// A proof from its text.
    pub fn parse(text: &str) -> Result<TlogProof, ProofFormatError> {
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or(ProofFormatError::NoCheckpoint)?;
        let mut lines = head.split('\n').peekable();
        if lines.next() != Some(HEADER) {
            return Err(ProofFormatError::BadHeader);
        }
        let extra = match lines.peek().and_then(|line| line.strip_prefix("extra ")) {
            Some(b64) => {
                let bytes = BASE64.decode(b64).map_err(|_| ProofFormatError::BadExtra)?;
                lines.next();
                Some(bytes)
            }
            None => None,
        };
        let index = lines
            .next()
            .and_then(|line| line.strip_prefix("index "))
            .filter(|n| !n.is_empty() && (*n == "0" || !n.starts_with('0')))
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
            .ok_or(ProofFormatError::BadIndex)?;
        let hashes = lines
            .enumerate()
            .map(|(i, line)| {
                BASE64
                    .decode(line)
                    .ok()
                    .and_then(|bytes| Hash::from_slice(&bytes))
                    .ok_or(ProofFormatError::BadHash(i + 1))
            })
            .collect::<Result<_, _>>()?;
        Ok(TlogProof {
            extra,
            index,
            hashes,
            checkpoint: checkpoint.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proof() -> TlogProof {
        TlogProof {
            extra: Some(b"an entry".to_vec()),
            index: 73894,
            hashes: vec![Hash([1; 32]), Hash([2; 32])],
            checkpoint: "example.com/log\n109482\nAAAA\n\n\u{2014} example.com/log AAAA\n".into(),
        }
    }

    #[test]
    fn a_proof_reads_back_from_its_text_and_has_the_c2sp_shape() {
        let text = proof().format();
        assert!(
            text.starts_with("c2sp.org/tlog-proof@v1\nextra YW4gZW50cnk=\nindex 73894\nAQEB"),
            "{text}"
        );
        assert_eq!(TlogProof::parse(&text), Ok(proof()));
        let bare = TlogProof {
            extra: None,
            hashes: vec![],
            ..proof()
        };
        assert_eq!(TlogProof::parse(&bare.format()), Ok(bare));
    }

    #[test]
    fn malformed_proofs_say_which_part_is_wrong() {
        let text = proof().format();
        for (bad, expected) in [
            (
                text.replacen("c2sp.org/tlog-proof@v1", "tlog-proof", 1),
                ProofFormatError::BadHeader,
            ),
            (
                text.replacen("extra YW4gZW50cnk=", "extra !!", 1),
                ProofFormatError::BadExtra,
            ),
            (
                text.replacen("index 73894", "index 073894", 1),
                ProofFormatError::BadIndex,
            ),
            (
                text.replacen("AQEB", "AQE", 1),
                ProofFormatError::BadHash(1),
            ),
            (text.replace("\n\n", "\n"), ProofFormatError::NoCheckpoint),
        ] {
            assert_eq!(TlogProof::parse(&bad), Err(expected), "{bad}");
        }
    }
}
