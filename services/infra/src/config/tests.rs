//! Settings tests: defaults, layering, validation messages that name the setting, and secrets
//! that never show.

use figment::providers::Serialized;

use super::*;

fn with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let mut figment = Figment::new();
    for (key, value) in pairs {
        figment = figment.merge(Serialized::default(key, value));
    }
    Settings::from_figment(figment)
}

#[test]
fn defaults_are_valid_and_match_the_documented_ones() {
    let settings = with(&[]).unwrap();
    assert_eq!(settings.ingress_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(settings.admin_addr.to_string(), "127.0.0.1:8081");
    assert_eq!(
        settings.deliveries_duplicate_window,
        Duration::from_secs(3600)
    );
    assert!(settings.github_webhook_secret.is_none());
    assert!(settings.nats_url.is_none());
}

#[test]
fn a_bad_value_names_its_environment_variable() {
    let err = with(&[("ingress_addr", "nowhere")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_INGRESS_ADDR"), "{err}");
    let err = with(&[("deliveries_duplicate_window", "soon")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_DELIVERIES_DUPLICATE_WINDOW"), "{err}");
}

#[test]
fn an_unknown_key_is_refused() {
    let err = with(&[("ingres_addr", "127.0.0.1:1")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("ingres_addr"), "{err}");
}

#[test]
fn an_empty_secret_is_refused_without_echoing_anything() {
    let err = with(&[("github_webhook_secret", " ")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_GITHUB_WEBHOOK_SECRET"), "{err}");
}

#[test]
fn a_previous_secret_needs_a_current_one() {
    let err = with(&[("github_webhook_secret_previous", "old")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("HOOKLOG_GITHUB_WEBHOOK_SECRET_PREVIOUS"),
        "{err}"
    );
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let settings = with(&[
        ("github_webhook_secret", "hunter2-webhook"),
        ("admin_token", "hunter2-admin"),
        ("database_url", "postgres://u:hunter2-db@h/d"),
    ])
    .unwrap();
    let shown = format!("{settings:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn a_github_app_needs_both_its_id_and_its_key() {
    // The environment gives numbers as numbers (figment parses `HOOKLOG_GITHUB_APP_ID=12`).
    let id_only = Figment::new().merge(Serialized::default("github_app_id", 12u64));
    let err = Settings::from_figment(id_only).unwrap_err().to_string();
    assert!(err.contains("HOOKLOG_GITHUB_APP_ID"), "{err}");
    assert!(err.contains("HOOKLOG_GITHUB_APP_PRIVATE_KEY"), "{err}");
    let err = with(&[("github_app_private_key", "-----BEGIN hunter2")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_GITHUB_APP_PRIVATE_KEY"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let missing_file = Figment::new()
        .merge(Serialized::default("github_app_id", 12u64))
        .merge(Serialized::default(
            "github_app_private_key_file",
            "/nonexistent/key.pem",
        ));
    let err = Settings::from_figment(missing_file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE"), "{err}");
}

#[test]
fn syncer_limits_are_checked() {
    let err = with(&[("syncer_concurrency", "0")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_SYNCER_CONCURRENCY"), "{err}");
    let err = with(&[("syncer_reconcile_interval", "10ms")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_SYNCER_RECONCILE_INTERVAL"), "{err}");
    let err = with(&[("github_api_url", "ftp://x")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_GITHUB_API_URL"), "{err}");
}

#[test]
fn the_publish_timeout_must_fit_in_the_request_timeout() {
    let err = with(&[("ingress_publish_timeout", "20s")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_INGRESS_PUBLISH_TIMEOUT"), "{err}");
}
