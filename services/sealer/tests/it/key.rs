//! Where the signing key comes from, and that a created one is private and kept.

use std::os::unix::fs::PermissionsExt;

use hooklog_audit::SigningKey;
use hooklog_infra::config::Settings;
use hooklog_sealer::key::{default_key_path, load_or_create, KeyLoadError, KeySource};
use secrecy::ExposeSecret;

fn settings(dir: &std::path::Path) -> Settings {
    Settings {
        data_dir: dir.to_path_buf(),
        ..Settings::default()
    }
}

#[test]
fn without_a_setting_a_key_is_created_once_readable_only_by_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    let (created, source) = load_or_create(&settings(dir.path())).unwrap();
    let path = default_key_path(dir.path());
    assert_eq!(source, KeySource::Created(path.clone()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (loaded, source) = load_or_create(&settings(dir.path())).unwrap();
    assert_eq!(source, KeySource::File(path));
    assert_eq!(
        loaded.verifier(),
        created.verifier(),
        "the same key on the next start"
    );
}

#[test]
fn a_key_in_the_setting_or_a_file_is_used_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate("audit.example.com").unwrap();
    let mut with_setting = settings(dir.path());
    with_setting.audit_signing_key = Some(key.to_private_text().expose_secret().into());
    let (loaded, source) = load_or_create(&with_setting).unwrap();
    assert_eq!(
        (loaded.verifier(), source),
        (key.verifier(), KeySource::Setting)
    );

    let file = dir.path().join("given.key");
    std::fs::write(
        &file,
        format!("{}\n", key.to_private_text().expose_secret()),
    )
    .unwrap();
    let mut with_file = settings(dir.path());
    with_file.audit_signing_key_file = Some(file.clone());
    let (loaded, source) = load_or_create(&with_file).unwrap();
    assert_eq!(
        (loaded.verifier(), source),
        (key.verifier(), KeySource::File(file))
    );
    assert!(
        !default_key_path(dir.path()).exists(),
        "no key created beside a given one"
    );
}

#[test]
fn a_malformed_key_names_its_setting_and_never_shows_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = settings(dir.path());
    bad.audit_signing_key = Some("PRIVATE+KEY+name+0000abcd+c2VjcmV0LWJ5dGVz".into());
    let err = load_or_create(&bad).unwrap_err();
    assert!(matches!(err, KeyLoadError::Malformed { .. }), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("HOOKLOG_AUDIT_SIGNING_KEY"), "{shown}");
    assert!(!shown.contains("c2VjcmV0LWJ5dGVz"), "{shown}");
}
