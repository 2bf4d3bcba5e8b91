//! The checkpoints' signing key: from `HOOKLOG_AUDIT_SIGNING_KEY`, from the file
//! `HOOKLOG_AUDIT_SIGNING_KEY_FILE` names, or, with neither set, from `<data_dir>/audit/signing.key`,
//! which `serve` creates (mode 0600, never overwritten) on first start. The key never appears in
//! a log line or an error; its verifier key is what auditors are given.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hooklog_audit::{KeyError, SigningKey};
use hooklog_infra::config::Settings;
use secrecy::ExposeSecret;

/// The name of a key `serve` creates itself: origins `hooklog/deliveries`, `hooklog/events`.
pub const DEFAULT_KEY_NAME: &str = "hooklog";

/// Why there is no signing key.
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    #[error("{setting} does not hold a signing key ({source}); `hooklog audit keygen` writes one")]
    Malformed { setting: String, source: KeyError },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the signing key {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the key comes from, for the log line that names its verifier key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Setting,
    File(PathBuf),
    Created(PathBuf),
}

/// Where `serve` keeps a key it created.
pub fn default_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("signing.key")
}

/// The signing key the settings name, creating the default one if none is named.
pub fn load_or_create(settings: &Settings) -> Result<(SigningKey, KeySource), KeyLoadError> {
    if let Some(text) = &settings.audit_signing_key {
        let key = SigningKey::parse(text.expose_secret().trim()).map_err(|source| {
            KeyLoadError::Malformed {
                setting: "HOOKLOG_AUDIT_SIGNING_KEY".into(),
                source,
            }
        })?;
        return Ok((key, KeySource::Setting));
    }
    if let Some(path) = &settings.audit_signing_key_file {
        let key = read_key_file(path, "HOOKLOG_AUDIT_SIGNING_KEY_FILE")?;
        return Ok((key, KeySource::File(path.clone())));
    }
    let path = default_key_path(&settings.data_dir);
    if path.exists() {
        let key = read_key_file(&path, &path.display().to_string())?;
        return Ok((key, KeySource::File(path)));
    }
    let key = SigningKey::generate(DEFAULT_KEY_NAME).expect("the default key name is valid");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| KeyLoadError::Create {
            path: path.clone(),
            source,
        })?;
    }
    write_new_key_file(&path, &key).map_err(|source| KeyLoadError::Create {
        path: path.clone(),
        source,
    })?;
    Ok((key, KeySource::Created(path)))
}

fn read_key_file(path: &Path, setting: &str) -> Result<SigningKey, KeyLoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyLoadError::Read {
        path: path.into(),
        source,
    })?;
    SigningKey::parse(text.trim()).map_err(|source| KeyLoadError::Malformed {
        setting: setting.into(),
        source,
    })
}

/// Writes `key` to a new file only its owner can read; an existing file is an error
/// (`AlreadyExists`), never overwritten.
pub fn write_new_key_file(path: &Path, key: &SigningKey) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{}", key.to_private_text().expose_secret())?;
    file.sync_all()
}
