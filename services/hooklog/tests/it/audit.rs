//! `hooklog audit`: the auditors' commands, as users run them.

use std::os::unix::fs::PermissionsExt;

use hooklog_audit::note::{open, sign};
use hooklog_audit::{SigningKey, VerifierKey};

use crate::support::{hooklog, run, text};

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads_and_prints_the_verifier_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("audit.key");
    let output = run(hooklog(dir.path())
        .args(["audit", "keygen", "--name", "audit.example.com", "--out"])
        .arg(&out));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let private = std::fs::read_to_string(&out).unwrap();
    assert!(
        private.starts_with("PRIVATE+KEY+audit.example.com+"),
        "{private}"
    );
    let key = SigningKey::parse(private.trim()).unwrap();
    let printed = text(&output.stdout);
    // The verifier key, and nothing secret, is printed.
    assert!(!printed.contains("PRIVATE"), "{printed}");
    let verifier = VerifierKey::parse(printed.trim()).unwrap();
    assert_eq!(verifier.to_string(), key.verifier().to_string());
    let note = sign("audit.example.com/events\n1\nAAAA\n", &key).unwrap();
    assert!(open(&note, &[verifier]).is_ok());

    // A second run never overwrites it, and a bad name is refused by flag.
    let again = run(hooklog(dir.path())
        .args(["audit", "keygen", "--name", "audit.example.com", "--out"])
        .arg(&out));
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), private);
    let bad = run(hooklog(dir.path())
        .args(["audit", "keygen", "--name", "has space", "--out"])
        .arg(dir.path().join("other.key")));
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("--name"),
        "{}",
        text(&bad.stderr)
    );
    assert!(!dir.path().join("other.key").exists());
}
