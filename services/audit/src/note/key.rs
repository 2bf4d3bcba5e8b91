//! Ed25519 signed-note keys and their text forms, as Go's golang.org/x/mod/sumdb/note writes
//! them (and `hooklog audit keygen`, `HOOKLOG_AUDIT_SIGNING_KEY` and `GET /v1/audit/key` use):
//!
//! ```text
//! verifier key   <name>+<key id, 8 hex digits>+<base64(0x01 || 32-byte public key)>
//! private key    PRIVATE+KEY+<name>+<key id, 8 hex digits>+<base64(0x01 || 32-byte seed)>
//! key id         first 4 bytes, big-endian, of SHA-256(name || 0x0A || 0x01 || public key)
//! ```
//!
//! Parsing checks every part and says which one is wrong, never echoing key material; the key
//! id must match the key, so a verifier key cannot be paired with the wrong name by mistake.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

/// The signed-note signature type of Ed25519.
pub const ED25519_ALGORITHM: u8 = 0x01;

const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// Why a key or its text is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Key names are non-empty, with no Unicode space, control character or `+`.
    #[error(
        "{0:?} is not a key name: it must be non-empty, without spaces, control characters or '+'"
    )]
    BadName(String),
    /// A private key's text starts with `PRIVATE+KEY+`.
    #[error("a private key starts with PRIVATE+KEY+")]
    NotAPrivateKey,
    /// The text has the wrong number of `+`-separated fields.
    #[error("the key has {found} '+'-separated fields, not {expected}")]
    WrongFieldCount { expected: usize, found: usize },
    /// The key id is not 8 hexadecimal digits.
    #[error("the key id is not 8 hexadecimal digits")]
    BadKeyId,
    /// The key is not standard base64.
    #[error("the key is not standard base64")]
    BadBase64,
    /// The key is for another signature type than Ed25519.
    #[error("the key is for signature type {0:#04x}, not Ed25519 (0x01)")]
    UnsupportedAlgorithm(u8),
    /// The decoded key is not 33 bytes (the type byte and 32 key bytes).
    #[error("the key is {0} bytes, not 33 (0x01 and 32 key bytes)")]
    WrongLength(usize),
    /// The public key is not a point on the curve.
    #[error("the public key is not an Ed25519 public key")]
    BadPublicKey,
    /// The key id given is not the one the name and key make.
    #[error("the key id {stated:08x} is not the key's ({computed:08x})")]
    KeyIdMismatch { stated: u32, computed: u32 },
    /// The operating system could not supply randomness for a new key.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// A key that signs notes. Its `Debug` shows only the name and key id.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    key_id: u32,
    key: ed25519_dalek::SigningKey,
}

/// A key that verifies notes: a name, a key id and an Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    key: ed25519_dalek::VerifyingKey,
}

/// `SHA-256(name || 0x0A || 0x01 || public key)[:4]` as a big-endian u32.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ED25519_ALGORITHM])
        .chain_update(public_key)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Whether `name` may name a key: non-empty, no Unicode space, control character or `+`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

fn checked_name(name: &str) -> Result<String, KeyError> {
    if is_valid_name(name) {
        Ok(name.to_string())
    } else {
        Err(KeyError::BadName(name.to_string()))
    }
}

impl SigningKey {
    /// The key with this name and 32-byte Ed25519 seed (RFC 8032's private key).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<SigningKey, KeyError> {
        let name = checked_name(name)?;
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let key_id = key_id(&name, key.verifying_key().as_bytes());
        Ok(SigningKey { name, key_id, key })
    }

    /// A new key from the operating system's random number generator.
    pub fn generate(name: &str) -> Result<SigningKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|err| KeyError::Random(err.to_string()))?;
        let key = SigningKey::from_seed(name, &seed);
        seed.fill(0);
        key
    }

    /// A key from its `PRIVATE+KEY+<name>+<key id>+<base64>` text.
    pub fn parse(text: &str) -> Result<SigningKey, KeyError> {
        let rest = text
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or(KeyError::NotAPrivateKey)?;
        let [name, id, key] = fields(rest)?;
        let name = checked_name(name)?;
        let stated = parse_key_id(id)?;
        let mut seed = ed25519_bytes(key)?;
        let signing = SigningKey::from_seed(&name, &seed);
        seed.fill(0);
        let signing = signing?;
        check_key_id(stated, signing.key_id)?;
        Ok(signing)
    }

    /// The `PRIVATE+KEY+…` text, wrapped so it is not printed by accident.
    pub fn to_private_text(&self) -> SecretString {
        let mut bytes = [0u8; 33];
        bytes[0] = ED25519_ALGORITHM;
        bytes[1..].copy_from_slice(self.key.as_bytes());
        let text = format!(
            "{PRIVATE_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64.encode(bytes)
        );
        bytes.fill(0);
        SecretString::from(text)
    }

    /// The key that verifies this key's signatures.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The key's name, which its signature lines carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id, which prefixes its signatures.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 signature of `message` (deterministic, RFC 8032).
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl FromStr for SigningKey {
    type Err = KeyError;
    fn from_str(text: &str) -> Result<SigningKey, KeyError> {
        SigningKey::parse(text)
    }
}

impl VerifierKey {
    /// The verifier key with this name and 32-byte Ed25519 public key.
    pub fn new(name: &str, public_key: &[u8; 32]) -> Result<VerifierKey, KeyError> {
        let name = checked_name(name)?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(public_key)
            .map_err(|_| KeyError::BadPublicKey)?;
        let key_id = key_id(&name, public_key);
        Ok(VerifierKey { name, key_id, key })
    }

    /// A key from its `<name>+<key id>+<base64>` text.
    pub fn parse(text: &str) -> Result<VerifierKey, KeyError> {
        let [name, id, key] = fields(text)?;
        let name = checked_name(name)?;
        let stated = parse_key_id(id)?;
        let verifier = VerifierKey::new(&name, &ed25519_bytes(key)?)?;
        check_key_id(stated, verifier.key_id)?;
        Ok(verifier)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `signature` is this key's Ed25519 signature of `message` (strict RFC 8032
    /// verification: canonical encodings only).
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(message, &signature).is_ok()
    }
}

/// The verifier key's text, `<name>+<key id>+<base64(0x01 || public key)>`.
impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = [0u8; 33];
        bytes[0] = ED25519_ALGORITHM;
        bytes[1..].copy_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64.encode(bytes)
        )
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl FromStr for VerifierKey {
    type Err = KeyError;
    fn from_str(text: &str) -> Result<VerifierKey, KeyError> {
        VerifierKey::parse(text)
    }
}

/// `<name>+<key id>+<key>`: names and key ids cannot hold `+`, base64 can.
fn fields(text: &str) -> Result<[&str; 3], KeyError> {
    let parts: Vec<&str> = text.splitn(3, '+').collect();
    <[&str; 3]>::try_from(parts.as_slice()).map_err(|_| KeyError::WrongFieldCount {
        expected: 3,
        found: parts.len(),
    })
}

fn parse_key_id(text: &str) -> Result<u32, KeyError> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::BadKeyId);
    }
    u32::from_str_radix(text, 16).map_err(|_| KeyError::BadKeyId)
}

fn check_key_id(stated: u32, computed: u32) -> Result<(), KeyError> {
    if stated == computed {
        Ok(())
    } else {
        Err(KeyError::KeyIdMismatch { stated, computed })
    }
}

/// The 32 key bytes of `base64(0x01 || key)`.
fn ed25519_bytes(text: &str) -> Result<[u8; 32], KeyError> {
    let mut decoded = BASE64.decode(text).map_err(|_| KeyError::BadBase64)?;
    let result = match decoded.split_first() {
        None => Err(KeyError::WrongLength(0)),
        Some((&algorithm, _)) if algorithm != ED25519_ALGORITHM => {
            Err(KeyError::UnsupportedAlgorithm(algorithm))
        }
        Some((_, key)) => {
            <[u8; 32]>::try_from(key).map_err(|_| KeyError::WrongLength(decoded.len()))
        }
    };
    decoded.fill(0);
    result
}
