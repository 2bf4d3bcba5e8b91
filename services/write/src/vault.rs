//! The vault: secrets hooklog must keep and use again (a repository connection's webhook
//! secret and provider token), sealed at rest.
//!
//! **Nothing readable is stored.** Each secret is sealed with XChaCha20-Poly1305 under
//! `HOOKLOG_SECRETS_KEY`, with a fresh random 24-byte nonce (random nonces of that size do not
//! repeat in practice), and with `vault:v1:<owner>:<kind>` as associated data: a row copied to
//! another owner or kind, or altered, does not open. A row names its key by a keyed digest of
//! it (`key_id`), never by the key.
//!
//! **Rotation.** With `HOOKLOG_SECRETS_KEY` set to a new key and the old one moved to
//! `HOOKLOG_SECRETS_KEY_PREVIOUS`, rows sealed under either open; [`Vault::rotate`] (`hooklog
//! secrets rotate`) seals every row under the old key again under the new one, each in its own
//! row-locked update, so it can be run again after an interruption and races nothing. After
//! it, the previous key can be dropped.
//!
//! Secrets leave as `SecretString`s, whose `Debug` prints `[REDACTED]`; no error here carries a
//! secret or a key.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hooklog_infra::config::{ConfigError, Settings};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

const NONCE_BYTES: usize = 24;

/// What a sealed secret is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// The secret a provider signs (or sends with) each delivery of a webhook.
    WebhookSecret,
    /// The token hooklog calls the provider's API with.
    Token,
}

impl SecretKind {
    /// The kind a row names; `None` for a kind this hooklog does not know.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::WebhookSecret, Self::Token]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebhookSecret => "webhook_secret",
            Self::Token => "token",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "no secrets key is set: set HOOKLOG_SECRETS_KEY (or HOOKLOG_SECRETS_KEY_FILE) to 32 \
         random bytes as base64 (`openssl rand -base64 32`)"
    )]
    NoKey,
    #[error(
        "the {kind} of {owner} is sealed under key {key_id}, which is neither \
         HOOKLOG_SECRETS_KEY nor HOOKLOG_SECRETS_KEY_PREVIOUS"
    )]
    UnknownKey {
        owner: String,
        kind: &'static str,
        key_id: String,
    },
    #[error(
        "the {kind} of {owner} does not open under key {key_id}: the row was altered or moved"
    )]
    Corrupt {
        owner: String,
        kind: &'static str,
        key_id: String,
    },
    #[error(
        "the vault holds a {kind:?} of {owner}, a kind of secret this hooklog does not know \
         (written by a newer one?)"
    )]
    UnknownKind { owner: String, kind: String },
    #[error("the secrets vault cannot be read or written: {0}")]
    Database(#[from] sqlx::Error),
}

/// One key of the vault. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct SecretsKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsKey").field("id", &self.id).finish()
    }
}

impl SecretsKey {
    /// 32 bytes; the id is the first 8 bytes, as hex, of SHA-256 over a label and the key.
    pub fn new(key: &[u8; 32]) -> Self {
        let mut digest = Sha256::new();
        digest.update(b"hooklog vault key id v1\0");
        digest.update(key);
        Self {
            id: hex::encode(&digest.finalize()[..8]),
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// A key as the settings give it (checked there: 32 bytes of base64).
    fn from_base64(text: &SecretString) -> Option<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.expose_secret())
            .ok()?;
        let key: [u8; 32] = bytes.as_slice().try_into().ok()?;
        Some(Self::new(&key))
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The current key, which seals, and the previous one, which still opens.
#[derive(Debug, Clone)]
pub struct VaultKeys {
    pub current: SecretsKey,
    pub previous: Option<SecretsKey>,
}

impl VaultKeys {
    /// The keys the settings name; None when `HOOKLOG_SECRETS_KEY` is unset.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let Some((current, previous)) = settings.secrets_keys()? else {
            return Ok(None);
        };
        let bad = || ConfigError::Other("HOOKLOG_SECRETS_KEY is not 32 bytes as base64".into());
        Ok(Some(Self {
            current: SecretsKey::from_base64(&current).ok_or_else(bad)?,
            previous: previous
                .as_ref()
                .map(|key| SecretsKey::from_base64(key).ok_or_else(bad))
                .transpose()?,
        }))
    }

    fn by_id(&self, id: &str) -> Option<&SecretsKey> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|key| key.id == id)
    }
}

/// A secret as a row holds it.
#[derive(sqlx::FromRow)]
struct Sealed {
    key_id: String,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn associated_data(owner: &str, kind: SecretKind) -> Vec<u8> {
    format!("vault:v1:{owner}:{}", kind.as_str()).into_bytes()
}

fn seal(key: &SecretsKey, owner: &str, kind: SecretKind, secret: &SecretString) -> Sealed {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).expect("the operating system's random source");
    let aad = associated_data(owner, kind);
    let ciphertext = key
        .cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: secret.expose_secret().as_bytes(),
                aad: &aad,
            },
        )
        .expect("XChaCha20-Poly1305 seals any length a secret has");
    Sealed {
        key_id: key.id.clone(),
        nonce: nonce.to_vec(),
        ciphertext,
    }
}

/// A fresh random secret: `bytes` random bytes as lowercase hex.
pub fn random_secret(bytes: usize) -> SecretString {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).expect("the operating system's random source");
    SecretString::from(hex::encode(raw))
}

/// Sealed secrets in `vault_secrets`.
#[derive(Clone)]
pub struct Vault {
    pool: PgPool,
    keys: Arc<VaultKeys>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault").field("keys", &self.keys).finish()
    }
}

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    /// Rows sealed again under the current key.
    pub resealed: u64,
    /// Rows that were under it already.
    pub current: u64,
}

impl Vault {
    pub fn new(pool: PgPool, keys: VaultKeys) -> Self {
        Self {
            pool,
            keys: Arc::new(keys),
        }
    }

    /// The vault of the settings' keys; `VaultError::NoKey` without `HOOKLOG_SECRETS_KEY`.
    pub fn from_settings(pool: PgPool, settings: &Settings) -> Result<Self, VaultRefused> {
        match VaultKeys::from_settings(settings) {
            Ok(Some(keys)) => Ok(Self::new(pool, keys)),
            Ok(None) => Err(VaultRefused::Vault(VaultError::NoKey)),
            Err(err) => Err(VaultRefused::Config(err)),
        }
    }

    pub fn key_id(&self) -> &str {
        self.keys.current.id()
    }

    /// Seals `secret` as `owner`'s `kind`, replacing what was there.
    pub async fn put(
        &self,
        owner: &str,
        kind: SecretKind,
        secret: &SecretString,
    ) -> Result<(), VaultError> {
        let sealed = seal(&self.keys.current, owner, kind, secret);
        sqlx::query(
            "INSERT INTO vault_secrets (owner, kind, key_id, nonce, ciphertext) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner, kind) DO UPDATE SET \
             key_id = EXCLUDED.key_id, nonce = EXCLUDED.nonce, \
             ciphertext = EXCLUDED.ciphertext, sealed_at = now()",
        )
        .bind(owner)
        .bind(kind.as_str())
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `owner`'s `kind`, opened; None when there is none.
    pub async fn get(
        &self,
        owner: &str,
        kind: SecretKind,
    ) -> Result<Option<SecretString>, VaultError> {
        let row: Option<Sealed> = sqlx::query_as(
            "SELECT key_id, nonce, ciphertext FROM vault_secrets WHERE owner = $1 AND kind = $2",
        )
        .bind(owner)
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|sealed| self.open(owner, kind, &sealed))
            .transpose()
    }

    /// Every owner's `kind`, by owner, each opened on its own: a row that does not open is
    /// that owner's error (named), and the others still open.
    #[allow(clippy::type_complexity)]
    pub async fn all(
        &self,
        kind: SecretKind,
    ) -> Result<Vec<(String, Result<SecretString, VaultError>)>, VaultError> {
        #[derive(sqlx::FromRow)]
        struct Owned {
            owner: String,
            #[sqlx(flatten)]
            sealed: Sealed,
        }
        let rows: Vec<Owned> = sqlx::query_as(
            "SELECT owner, key_id, nonce, ciphertext FROM vault_secrets WHERE kind = $1 \
             ORDER BY owner",
        )
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let secret = self.open(&row.owner, kind, &row.sealed);
                (row.owner, secret)
            })
            .collect())
    }

    /// Forgets every secret of `owner`.
    pub async fn remove(&self, owner: &str) -> Result<u64, VaultError> {
        Ok(sqlx::query("DELETE FROM vault_secrets WHERE owner = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Seals every row that is not under the current key again under it.
    pub async fn rotate(&self) -> Result<Rotated, VaultError> {
        let current_id = self.keys.current.id().to_owned();
        let current: i64 =
            sqlx::query_scalar("SELECT count(*) FROM vault_secrets WHERE key_id = $1")
                .bind(&current_id)
                .fetch_one(&self.pool)
                .await?;
        let stale: Vec<(String, String)> = sqlx::query_as(
            "SELECT owner, kind FROM vault_secrets WHERE key_id <> $1 ORDER BY owner, kind",
        )
        .bind(&current_id)
        .fetch_all(&self.pool)
        .await?;
        let mut resealed = 0;
        for (owner, kind_name) in stale {
            let kind = SecretKind::parse(&kind_name).ok_or_else(|| VaultError::UnknownKind {
                owner: owner.clone(),
                kind: kind_name.clone(),
            })?;
            let mut tx = self.pool.begin().await?;
            let row: Option<Sealed> = sqlx::query_as(
                "SELECT key_id, nonce, ciphertext FROM vault_secrets \
                 WHERE owner = $1 AND kind = $2 FOR UPDATE",
            )
            .bind(&owner)
            .bind(&kind_name)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row.filter(|row| row.key_id != current_id) else {
                continue;
            };
            let secret = self.open(&owner, kind, &row)?;
            let sealed = seal(&self.keys.current, &owner, kind, &secret);
            sqlx::query(
                "UPDATE vault_secrets SET key_id = $3, nonce = $4, ciphertext = $5, \
                 sealed_at = now() WHERE owner = $1 AND kind = $2",
            )
            .bind(&owner)
            .bind(&kind_name)
            .bind(&sealed.key_id)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            resealed += 1;
        }
        Ok(Rotated {
            resealed,
            current: current as u64,
        })
    }

    fn open(
        &self,
        owner: &str,
        kind: SecretKind,
        sealed: &Sealed,
    ) -> Result<SecretString, VaultError> {
        let key = self
            .keys
            .by_id(&sealed.key_id)
            .ok_or_else(|| VaultError::UnknownKey {
                owner: owner.to_owned(),
                kind: kind.as_str(),
                key_id: sealed.key_id.clone(),
            })?;
        let corrupt = || VaultError::Corrupt {
            owner: owner.to_owned(),
            kind: kind.as_str(),
            key_id: sealed.key_id.clone(),
        };
        if sealed.nonce.len() != NONCE_BYTES {
            return Err(corrupt());
        }
        let aad = associated_data(owner, kind);
        let plain = key
            .cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| corrupt())?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| corrupt())
    }
}

/// Why no vault could be opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultRefused {
    #[error(transparent)]
    Vault(VaultError),
    #[error(transparent)]
    Config(ConfigError),
}
