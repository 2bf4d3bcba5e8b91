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

#[test]
fn allowed_networks_take_cidrs_and_addresses_and_a_bad_one_is_named() {
    let settings = with(&[(
        "ingress_allowed_networks",
        "192.30.252.0/22, 185.199.108.7/22,2606:50c0::/32, 140.82.112.1",
    )])
    .unwrap();
    let networks: Vec<String> = settings
        .ingress_allowed_networks()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    // Host bits are dropped: 185.199.108.7/22 is the network 185.199.108.0/22.
    assert_eq!(
        networks,
        [
            "192.30.252.0/22",
            "185.199.108.0/22",
            "2606:50c0::/32",
            "140.82.112.1/32"
        ]
    );
    assert!(with(&[]).unwrap().ingress_allowed_networks().is_none());
    let proxies = with(&[("ingress_trusted_proxies", "10.0.0.0/8, 127.0.0.1")]).unwrap();
    let proxies: Vec<String> = proxies
        .ingress_trusted_proxies()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(proxies, ["10.0.0.0/8", "127.0.0.1/32"]);
    assert!(with(&[]).unwrap().ingress_trusted_proxies().is_empty());
    let err = with(&[("ingress_trusted_proxies", "proxy.internal")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_INGRESS_TRUSTED_PROXIES"), "{err}");
    for bad in ["192.30.252.0/33", "github", " , "] {
        let err = with(&[("ingress_allowed_networks", bad)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HOOKLOG_INGRESS_ALLOWED_NETWORKS"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn nats_credentials_are_one_kind_for_an_external_server_and_never_shown() {
    let url = ("nats_url", "nats://nats.internal:4222");
    let ok = with(&[
        url,
        ("nats_user", "hooklog"),
        ("nats_password", "pw-hunter2"),
    ])
    .unwrap();
    assert!(!format!("{ok:?}").contains("pw-hunter2"));
    for (pairs, named) in [
        (vec![url, ("nats_user", "hooklog")], "HOOKLOG_NATS_PASSWORD"),
        (
            vec![url, ("nats_password", "pw-hunter2")],
            "HOOKLOG_NATS_USER",
        ),
        (
            vec![url, ("nats_token", "t"), ("nats_creds_file", "/a.creds")],
            "HOOKLOG_NATS_CREDS_FILE",
        ),
        (vec![("nats_token", "t")], "HOOKLOG_NATS_TOKEN"),
        (
            vec![
                ("nats_url", "nats://u:pw-hunter2@h:4222"),
                ("nats_token", "t"),
            ],
            "HOOKLOG_NATS_TOKEN",
        ),
    ] {
        let err = with(&pairs).unwrap_err().to_string();
        assert!(err.contains(named), "{pairs:?}: {err}");
        assert!(!err.contains("pw-hunter2"), "{err}");
    }
}

#[test]
fn upload_limits_are_checked() {
    for (key, value, variable) in [
        (
            "ingress_uploads_per_address",
            "0",
            "HOOKLOG_INGRESS_UPLOADS_PER_ADDRESS",
        ),
        (
            "ingress_min_upload_rate",
            "0",
            "HOOKLOG_INGRESS_MIN_UPLOAD_RATE",
        ),
        (
            "ingress_queue_timeout",
            "9s",
            "HOOKLOG_INGRESS_QUEUE_TIMEOUT",
        ),
    ] {
        let err = with(&[(key, value)]).unwrap_err().to_string();
        assert!(err.contains(variable), "{key}: {err}");
    }
}

fn tokens_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    std::fs::write(&path, text).unwrap();
    (dir, path.display().to_string())
}

#[test]
fn named_admin_tokens_come_after_the_two_single_tokens_with_their_names() {
    let (_dir, path) = tokens_file(
        "# operators\nalice write alice-token-0123456789\n\n  bob read bob-token-0123456789  \n",
    );
    let settings = with(&[
        ("admin_token", "the-write-token"),
        ("admin_read_token", "the-read-token"),
        ("admin_tokens_file", path.as_str()),
    ])
    .unwrap();
    let named: Vec<(String, bool, String)> = settings
        .named_admin_tokens()
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.write, t.token.expose_secret().to_owned()))
        .collect();
    let expected = [
        ("admin", true, "the-write-token"),
        ("read", false, "the-read-token"),
        ("alice", true, "alice-token-0123456789"),
        ("bob", false, "bob-token-0123456789"),
    ]
    .map(|(n, w, t)| (n.to_owned(), w, t.to_owned()));
    assert_eq!(named, expected);
}

#[test]
fn a_bad_tokens_file_names_the_setting_and_line_and_never_a_token() {
    for (text, expected) in [
        (
            "alice write\n",
            "line 1: expected `<name> <read|write> <token>`",
        ),
        (
            "Alice write alice-token-0123456789\n",
            "line 1: \"Alice\" is not a name",
        ),
        (
            "alice admin alice-token-0123456789\n",
            "line 1: access \"admin\" is not",
        ),
        (
            "alice write short\n",
            "line 1: the token of alice is shorter than 16",
        ),
        (
            "alice write alice-token-0123456789\nalice read other-token-0123456789\n",
            "line 2: the name alice is used twice",
        ),
        (
            "alice write alice-token-0123456789\nbob read alice-token-0123456789\n",
            "line 2: the token of bob is already another name's",
        ),
    ] {
        let (_dir, path) = tokens_file(text);
        let err = with(&[("admin_tokens_file", path.as_str())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("HOOKLOG_ADMIN_TOKENS_FILE"), "{err}");
        assert!(err.contains(expected), "{expected:?} not in {err}");
        assert!(!err.contains("0123456789"), "a token shows in {err}");
    }
    let err = with(&[("admin_tokens_file", "/nonexistent/tokens")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read /nonexistent/tokens"), "{err}");
}

#[test]
fn allowed_sources_are_parsed_at_start_and_a_bad_prefix_names_the_setting() {
    assert!(with(&[]).unwrap().syncer_allowed_sources.is_empty());
    let settings = with(&[(
        "syncer_allowed_sources",
        "/srv/git, https://git.example.com/org/",
    )])
    .unwrap();
    let allowed = &settings.syncer_allowed_sources;
    assert!(allowed.admit("/srv/git/a").is_ok());
    assert!(allowed.admit("/srv/gitevil").is_err());
    for (value, why) in [
        ("srv/git", "must be absolute"),
        ("gopher://host/", "not an absolute path"),
        ("https://bot:hunter2@git.example.com/", "credentials"),
        ("https://hunter2@git.example.com/", "credentials"),
    ] {
        let err = with(&[("syncer_allowed_sources", value)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("HOOKLOG_SYNCER_ALLOWED_SOURCES"), "{err}");
        assert!(err.contains(why), "{why:?} not in {err}");
        assert!(!err.contains("hunter2"), "a secret shows in {err}");
    }
}

#[test]
fn a_secrets_key_must_be_32_bytes_of_base64_and_is_never_echoed() {
    use base64::Engine as _;
    let good = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let settings = with(&[("secrets_key", &good)]).unwrap();
    let (current, previous) = settings.secrets_keys().unwrap().unwrap();
    assert_eq!(current.expose_secret(), good);
    assert!(previous.is_none());
    assert!(with(&[]).unwrap().secrets_keys().unwrap().is_none());

    let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
    for bad in [short.as_str(), "not base64 at all!"] {
        let err = with(&[("secrets_key", bad)]).unwrap_err().to_string();
        assert!(err.contains("HOOKLOG_SECRETS_KEY"), "{err}");
        assert!(err.contains("openssl rand -base64 32"), "{err}");
        assert!(!err.contains(bad), "the value is echoed: {err}");
    }
    let err = with(&[("secrets_key_previous", &good)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_SECRETS_KEY_PREVIOUS"), "{err}");
    assert!(
        !format!("{settings:?}").contains(&good),
        "Debug shows the key"
    );
}

#[test]
fn a_secrets_key_file_is_read_and_one_form_only_is_taken() {
    use base64::Engine as _;
    let good = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.key");
    std::fs::write(&path, format!("{good}\n")).unwrap();
    let file = path.to_str().unwrap();
    let settings = with(&[("secrets_key_file", file)]).unwrap();
    assert_eq!(
        settings.secrets_keys().unwrap().unwrap().0.expose_secret(),
        good
    );
    let err = with(&[("secrets_key_file", file), ("secrets_key", &good)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("HOOKLOG_SECRETS_KEY_FILE"), "{err}");
    let err = with(&[("secrets_key_file", "/no/such/key")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot be read"), "{err}");
}

#[test]
fn a_public_url_must_be_plain_http() {
    assert!(with(&[("public_url", "https://hooks.example.com")]).is_ok());
    for bad in [
        "hooks.example.com",
        "ftp://hooks.example.com",
        "https://user:pw@hooks.example.com",
        "https://hooks.example.com/?token=x",
    ] {
        let err = with(&[("public_url", bad)]).unwrap_err().to_string();
        assert!(err.contains("HOOKLOG_PUBLIC_URL"), "{bad}: {err}");
    }
}
