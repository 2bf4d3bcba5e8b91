//! Typed settings, layered: embedded defaults, then an optional `hooklog.toml`, then `HOOKLOG_*`
//! environment variables. Every key is the environment variable's name without the `HOOKLOG_`
//! prefix, lowercased (`HOOKLOG_INGRESS_ADDR` is `ingress_addr` in the file).
//!
//! Secrets are `SecretString`s: their `Debug` prints `[REDACTED]`, so a settings dump cannot leak
//! them. `validate` catches what types alone cannot, with messages that name the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use hooklog_domain::source::AllowedSources;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The file read when it exists and no other file is named.
pub const DEFAULT_CONFIG_FILE: &str = "hooklog.toml";
const ENV_PREFIX: &str = "HOOKLOG_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid setting {env} (`{key}` in the configuration file): {reason}")]
    Invalid {
        env: String,
        key: String,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Other(String),
}

/// Refuses `key` unless `value` is at least `min` (written `shown` in the message).
fn at_least(key: &str, value: Duration, min: Duration, shown: &str) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::invalid(
            key,
            format!("must be at least {shown}"),
        ));
    }
    Ok(())
}

impl ConfigError {
    fn invalid(key: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            env: format!("{ENV_PREFIX}{}", key.to_uppercase()),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Output format of the logs on standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    #[default]
    Json,
    /// Human-readable lines, for a terminal.
    Text,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the GitHub webhook ingress listens on.
    pub ingress_addr: SocketAddr,
    /// Address of the admin listener (`/healthz`, `/readyz`, admin API).
    pub admin_addr: SocketAddr,
    /// PostgreSQL URL; the database is created when missing. Wrapped: it may hold a password.
    pub database_url: SecretString,
    /// NATS server URL. Unset: `serve` starts an embedded `nats-server` with JetStream.
    pub nats_url: Option<SecretString>,
    /// Copies JetStream keeps of each of hooklog's streams (1 to 5); above 1 needs a JetStream
    /// cluster of at least that many servers.
    pub stream_replicas: usize,
    /// User name for `HOOKLOG_NATS_URL`'s server, with `HOOKLOG_NATS_PASSWORD`.
    pub nats_user: Option<String>,
    pub nats_password: Option<SecretString>,
    /// Token for `HOOKLOG_NATS_URL`'s server.
    pub nats_token: Option<SecretString>,
    /// A NATS `.creds` file (user JWT and NKey seed) for `HOOKLOG_NATS_URL`'s server.
    pub nats_creds_file: Option<PathBuf>,
    /// Where the embedded `nats-server` keeps its JetStream store and log.
    pub data_dir: PathBuf,
    /// The `nats-server` binary for the embedded server. Unset: the first `nats-server` 2.10 or
    /// newer on `PATH`.
    pub nats_server_bin: Option<PathBuf>,
    /// Secret of the GitHub App webhook. Unset: the ingress answers 404 to everything.
    pub github_webhook_secret: Option<SecretString>,
    /// The secret before the last rotation, still accepted until removed.
    pub github_webhook_secret_previous: Option<SecretString>,
    /// Read-write bearer token of the admin API. Unset (with no read token): admin API closed.
    pub admin_token: Option<SecretString>,
    /// Read-only bearer token of the admin API.
    pub admin_read_token: Option<SecretString>,
    /// A file of named admin tokens, one per line: `<name> <read|write> <token>` (`#` starts a
    /// comment). Each operator's commands are stored with the actor `operator:<name>`.
    pub admin_tokens_file: Option<PathBuf>,
    /// How long JetStream remembers a delivery id to drop a repeated delivery (e.g. `1h`).
    #[serde(with = "humantime_serde")]
    pub deliveries_duplicate_window: Duration,
    /// How long a client of either listener has to send a complete request head before its
    /// connection is closed (a head sent a byte at a time holds nothing for long).
    #[serde(with = "humantime_serde")]
    pub http_header_read_timeout: Duration,
    /// Connections each listener keeps open at once; more wait in the listen backlog.
    pub http_max_connections: usize,
    /// Largest number of webhook requests handled at once; more wait up to
    /// `HOOKLOG_INGRESS_QUEUE_TIMEOUT` for a slot, then get 503 with `Retry-After`.
    pub ingress_max_in_flight: usize,
    /// How long a webhook request waits for a slot before it is answered 503, and for a place
    /// among its address's uploads before it is answered 429; well inside GitHub's 10 s, so an
    /// overloaded ingress says so in time.
    #[serde(with = "humantime_serde")]
    pub ingress_queue_timeout: Duration,
    /// Comma-separated networks (CIDRs, or single addresses) the ingress accepts webhooks from;
    /// any other address gets 403 before its body is read. GitHub lists its webhook sources as
    /// `hooks` in `GET https://api.github.com/meta`. Unset: every address.
    pub ingress_allowed_networks: Option<String>,
    /// Comma-separated networks (CIDRs, or single addresses) of the reverse proxies in front of
    /// the ingress. A request from one of them is accounted to the client its
    /// `X-Forwarded-For` names: the rightmost address there that is not itself a trusted proxy.
    /// Unset: `X-Forwarded-For` is ignored and every request is the TCP peer's.
    pub ingress_trusted_proxies: Option<String>,
    /// Unverified uploads (bodies being read, signature not yet checked) one address may have at
    /// once; one more waits up to `HOOKLOG_INGRESS_QUEUE_TIMEOUT` for one to finish, then gets
    /// 429 without its body being read. An address whose failed verifications used up
    /// `HOOKLOG_INGRESS_FAILED_AUTH_PER_MINUTE` may have one.
    pub ingress_uploads_per_address: usize,
    /// Bytes per second a webhook body must arrive at, on average, once
    /// `HOOKLOG_INGRESS_UPLOAD_GRACE` has passed; a slower upload gets 408 and counts as a failure.
    pub ingress_min_upload_rate: u64,
    /// How long a body may take before the minimum upload rate applies.
    #[serde(with = "humantime_serde")]
    pub ingress_upload_grace: Duration,
    /// Whole-request deadline on the ingress, body read included (GitHub gives up after 10 s).
    #[serde(with = "humantime_serde")]
    pub ingress_request_timeout: Duration,
    /// How long the ingress waits for JetStream to store a delivery before answering 503.
    #[serde(with = "humantime_serde")]
    pub ingress_publish_timeout: Duration,
    /// Failed verifications (missing, malformed or wrong signature, too slow an upload) allowed
    /// per address and minute; past them the address uploads one body at a time and its failures
    /// get 429.
    pub ingress_failed_auth_per_minute: u32,
    /// Deliveries handed to the worker and not yet acked, across all worker processes.
    pub worker_max_ack_pending: i64,
    /// Deliveries one worker process decides together and commits in one statement, at most.
    pub worker_batch_size: usize,
    /// Deliveries one worker process handles at once when it decides them one at a time (a
    /// batch that could not commit).
    pub worker_concurrency: usize,
    /// How long JetStream remembers a domain event's msg id to drop a re-publish by the relay
    /// (e.g. `10m`). Beyond it the relay still checks the stream before re-publishing.
    #[serde(with = "humantime_serde")]
    pub events_duplicate_window: Duration,
    /// The GitHub App's id, for the syncer's App JWT. Unset: syncs of GitHub targets fail with a
    /// message naming this setting.
    pub github_app_id: Option<u64>,
    /// The GitHub App's private key (PEM). Wrapped: never printed.
    pub github_app_private_key: Option<SecretString>,
    /// A file holding the GitHub App's private key (PEM), instead of the key itself.
    pub github_app_private_key_file: Option<PathBuf>,
    /// GitHub's REST API base URL (GitHub Enterprise: `https://HOST/api/v3`).
    pub github_api_url: String,
    /// The App's slug (`https://github.com/apps/<slug>`), for the dashboard's Connect GitHub.
    pub github_app_slug: Option<String>,
    /// Where GitHub's App pages are (GitHub Enterprise: `https://HOST`).
    pub github_url: String,
    /// Syncs one syncer process runs at once.
    pub syncer_concurrency: usize,
    /// Largest file (bytes) the syncer copies; larger ones are listed as failures.
    pub syncer_max_file_size: u64,
    /// A sync still running after this long is given up (failed, retryable).
    #[serde(with = "humantime_serde")]
    pub syncer_sync_timeout: Duration,
    /// Time between reconcile passes.
    #[serde(with = "humantime_serde")]
    pub syncer_reconcile_interval: Duration,
    /// A sync requested this long ago and never started is run by the reconcile loop.
    #[serde(with = "humantime_serde")]
    pub syncer_stale_after: Duration,
    /// Automatic retries of a failed sync of one head before it waits for an admin.
    pub syncer_max_retries: u32,
    /// Pause before the first automatic retry of a failed sync; doubles with each failure.
    #[serde(with = "humantime_serde")]
    pub syncer_retry_delay: Duration,
    /// How often the reconcile pass asks each idle target's source for its branch head.
    #[serde(with = "humantime_serde")]
    pub syncer_head_check_interval: Duration,
    /// Where mirrors of remote git sources are kept. Unset: `<data_dir>/git`.
    pub syncer_git_cache_dir: Option<PathBuf>,
    /// The git sources targets may read instead of the GitHub App: comma-separated prefixes,
    /// absolute paths (`/srv/git`, or `file:///srv/git`) and URLs (`https://git.example.com/org/`,
    /// `ssh://git@host/srv/git`, scp-like `git@host:org/`), each covering whole path segments
    /// of its own scheme, host and login. A URL prefix may name an SSH login but no other
    /// credentials. Unset or empty: every `source` is refused (the admin API answers 422,
    /// `hooklog targets track` exits 2), and the syncer fails the syncs of targets stored with
    /// one, as it does for any source no longer allowed.
    pub syncer_allowed_sources: AllowedSources,
    /// Time between two passes of the GitHub reconciler over the App's webhook delivery log.
    #[serde(with = "humantime_serde")]
    pub github_reconcile_interval: Duration,
    /// Attempts GitHub made less than this long ago are left to the next pass (they may still
    /// be on their way in).
    #[serde(with = "humantime_serde")]
    pub github_reconcile_settle: Duration,
    /// A redelivery not on the stream this long after it was asked for is asked again.
    #[serde(with = "humantime_serde")]
    pub github_redelivery_timeout: Duration,
    /// Redeliveries asked for one delivery before it is reported unrecoverable.
    pub github_redelivery_attempts: u32,
    /// The audit checkpoints' signing key, in the signed-note private-key format
    /// (`PRIVATE+KEY+<name>+<id>+<base64>`). Unset (and no file): `serve` creates one in
    /// `<data_dir>/audit/signing.key` on first start.
    pub audit_signing_key: Option<SecretString>,
    /// A file holding the audit signing key, instead of the key itself.
    pub audit_signing_key_file: Option<PathBuf>,
    /// How often the sealer signs a checkpoint of a log that grew.
    #[serde(with = "humantime_serde")]
    pub audit_checkpoint_interval: Duration,
    /// The key that seals the secrets of repository connections (their webhook secrets and
    /// provider tokens) in the database: 32 random bytes as base64 (`openssl rand -base64 32`).
    /// Unset (and no file): connecting a repository is refused with a message naming it.
    pub secrets_key: Option<SecretString>,
    /// A file holding `HOOKLOG_SECRETS_KEY`, instead of the key itself.
    pub secrets_key_file: Option<PathBuf>,
    /// The key before the last rotation: secrets it sealed still open, and
    /// `hooklog secrets rotate` seals them again under the current key.
    pub secrets_key_previous: Option<SecretString>,
    pub secrets_key_previous_file: Option<PathBuf>,
    /// hooklog's own base URL as the providers reach it (`https://hooklog.example.com`): the
    /// webhooks it creates for repository connections post to
    /// `<url>/v1/webhooks/repositories/<id>` (GitHub) and `<url>/v1/webhooks/gitlab/<id>`.
    pub public_url: Option<String>,
    /// The provider token `hooklog repositories connect` connects with when it is given no
    /// `--token-file`. Read by that command only; never stored in clear.
    pub repository_token: Option<SecretString>,
    /// GitLab's REST API base URL (self-managed: `https://HOST/api/v4`).
    pub gitlab_api_url: String,
    /// Time between two passes of the `repositories` role over the connections awaiting their
    /// provider (webhooks to create, to delete again after a failure).
    #[serde(with = "humantime_serde")]
    pub repositories_interval: Duration,
    /// How often each active connection's webhook health (the provider's delivery log, and
    /// webhooks under hooklog's path that no connection owns) is read.
    #[serde(with = "humantime_serde")]
    pub repositories_health_interval: Duration,
    /// Log filter, in `tracing` env-filter syntax (e.g. `info`, `hooklog_ingress=debug`).
    pub log: String,
    /// `json` or `text`.
    pub log_format: LogFormat,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ingress_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            database_url: "postgres://postgres@127.0.0.1:5432/hooklog".into(),
            nats_url: None,
            stream_replicas: 1,
            nats_user: None,
            nats_password: None,
            nats_token: None,
            nats_creds_file: None,
            data_dir: PathBuf::from("hooklog-data"),
            nats_server_bin: None,
            github_webhook_secret: None,
            github_webhook_secret_previous: None,
            admin_token: None,
            admin_read_token: None,
            admin_tokens_file: None,
            deliveries_duplicate_window: Duration::from_secs(3600),
            http_header_read_timeout: Duration::from_secs(5),
            http_max_connections: 4096,
            ingress_max_in_flight: 1024,
            ingress_queue_timeout: Duration::from_secs(2),
            ingress_allowed_networks: None,
            ingress_trusted_proxies: None,
            ingress_uploads_per_address: 64,
            ingress_min_upload_rate: 16 * 1024,
            ingress_upload_grace: Duration::from_secs(2),
            ingress_request_timeout: Duration::from_secs(9),
            ingress_publish_timeout: Duration::from_secs(5),
            ingress_failed_auth_per_minute: 30,
            worker_max_ack_pending: 1024,
            worker_batch_size: 256,
            worker_concurrency: 32,
            events_duplicate_window: Duration::from_secs(600),
            github_app_id: None,
            github_app_private_key: None,
            github_app_private_key_file: None,
            github_api_url: "https://api.github.com".to_owned(),
            github_app_slug: None,
            github_url: "https://github.com".to_owned(),
            syncer_concurrency: 4,
            syncer_max_file_size: 1024 * 1024,
            syncer_sync_timeout: Duration::from_secs(30 * 60),
            syncer_reconcile_interval: Duration::from_secs(60),
            syncer_stale_after: Duration::from_secs(600),
            syncer_max_retries: 5,
            syncer_retry_delay: Duration::from_secs(30),
            syncer_head_check_interval: Duration::from_secs(600),
            syncer_git_cache_dir: None,
            syncer_allowed_sources: AllowedSources::default(),
            github_reconcile_interval: Duration::from_secs(300),
            github_reconcile_settle: Duration::from_secs(120),
            github_redelivery_timeout: Duration::from_secs(900),
            github_redelivery_attempts: 3,
            audit_signing_key: None,
            audit_signing_key_file: None,
            secrets_key: None,
            secrets_key_file: None,
            secrets_key_previous: None,
            secrets_key_previous_file: None,
            public_url: None,
            repository_token: None,
            gitlab_api_url: "https://gitlab.com/api/v4".to_owned(),
            repositories_interval: Duration::from_secs(30),
            repositories_health_interval: Duration::from_secs(300),
            audit_checkpoint_interval: Duration::from_secs(10),
            log: "info".to_owned(),
            log_format: LogFormat::Json,
        }
    }
}

impl Settings {
    /// Loads defaults, then `file` (which must exist when given; otherwise `hooklog.toml` when it
    /// exists), then the environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.into())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        Self::from_figment(figment.merge(Env::prefixed(ENV_PREFIX)))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Self = figment.extract().map_err(|err| match err.path.last() {
            Some(key) => ConfigError::invalid(key, err.kind.to_string()),
            None => ConfigError::Other(err.kind.to_string()),
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the rules types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let non_empty = [
            ("database_url", Some(&self.database_url)),
            ("nats_url", self.nats_url.as_ref()),
            ("nats_password", self.nats_password.as_ref()),
            ("nats_token", self.nats_token.as_ref()),
            ("github_webhook_secret", self.github_webhook_secret.as_ref()),
            (
                "github_webhook_secret_previous",
                self.github_webhook_secret_previous.as_ref(),
            ),
            ("admin_token", self.admin_token.as_ref()),
            ("admin_read_token", self.admin_read_token.as_ref()),
            (
                "github_app_private_key",
                self.github_app_private_key.as_ref(),
            ),
            ("audit_signing_key", self.audit_signing_key.as_ref()),
            ("secrets_key", self.secrets_key.as_ref()),
            ("secrets_key_previous", self.secrets_key_previous.as_ref()),
            ("repository_token", self.repository_token.as_ref()),
        ];
        for (key, value) in non_empty {
            if value.is_some_and(|v| v.expose_secret().trim().is_empty()) {
                return Err(ConfigError::invalid(
                    key,
                    "is set but empty; unset it or give it a value",
                ));
            }
        }
        if self.github_webhook_secret.is_none() && self.github_webhook_secret_previous.is_some() {
            return Err(ConfigError::invalid(
                "github_webhook_secret_previous",
                "is set without HOOKLOG_GITHUB_WEBHOOK_SECRET; set the current secret too",
            ));
        }
        if let (Some(write), Some(read)) = (&self.admin_token, &self.admin_read_token) {
            if write.expose_secret() == read.expose_secret() {
                return Err(ConfigError::invalid(
                    "admin_read_token",
                    "equals HOOKLOG_ADMIN_TOKEN; a read-only token must differ from the read-write one",
                ));
            }
        }
        if self.ingress_addr == self.admin_addr {
            return Err(ConfigError::invalid(
                "admin_addr",
                "is the same address as HOOKLOG_INGRESS_ADDR",
            ));
        }
        if self.ingress_max_in_flight == 0 {
            return Err(ConfigError::invalid(
                "ingress_max_in_flight",
                "must be at least 1",
            ));
        }
        if !(1..=5).contains(&self.stream_replicas) {
            return Err(ConfigError::invalid(
                "stream_replicas",
                "must be between 1 and 5",
            ));
        }
        if self.http_max_connections == 0 {
            return Err(ConfigError::invalid(
                "http_max_connections",
                "must be at least 1",
            ));
        }
        if self.http_header_read_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "http_header_read_timeout",
                "must be above zero",
            ));
        }
        if self.ingress_uploads_per_address == 0 {
            return Err(ConfigError::invalid(
                "ingress_uploads_per_address",
                "must be at least 1",
            ));
        }
        if self.ingress_min_upload_rate == 0 {
            return Err(ConfigError::invalid(
                "ingress_min_upload_rate",
                "must be at least 1 (bytes per second)",
            ));
        }
        if self.ingress_queue_timeout.is_zero()
            || self.ingress_queue_timeout >= self.ingress_request_timeout
        {
            return Err(ConfigError::invalid(
                "ingress_queue_timeout",
                "must be above zero and below HOOKLOG_INGRESS_REQUEST_TIMEOUT",
            ));
        }
        if let Some(networks) = &self.ingress_allowed_networks {
            parse_networks(networks)
                .map_err(|reason| ConfigError::invalid("ingress_allowed_networks", reason))?;
        }
        if let Some(networks) = &self.ingress_trusted_proxies {
            parse_networks(networks)
                .map_err(|reason| ConfigError::invalid("ingress_trusted_proxies", reason))?;
        }
        if self.ingress_failed_auth_per_minute == 0 {
            return Err(ConfigError::invalid(
                "ingress_failed_auth_per_minute",
                "must be at least 1",
            ));
        }
        if self.worker_max_ack_pending < 1 {
            return Err(ConfigError::invalid(
                "worker_max_ack_pending",
                "must be at least 1",
            ));
        }
        if self.worker_batch_size == 0 || self.worker_batch_size > 4096 {
            return Err(ConfigError::invalid(
                "worker_batch_size",
                "must be between 1 and 4096",
            ));
        }
        if self.worker_concurrency == 0 {
            return Err(ConfigError::invalid(
                "worker_concurrency",
                "must be at least 1",
            ));
        }
        at_least(
            "events_duplicate_window",
            self.events_duplicate_window,
            Duration::from_secs(1),
            "1s",
        )?;
        at_least(
            "deliveries_duplicate_window",
            self.deliveries_duplicate_window,
            Duration::from_secs(1),
            "1s",
        )?;
        self.validate_nats_auth()?;
        self.validate_syncer()?;
        self.validate_audit()?;
        self.validate_repositories()?;
        self.validate_github_reconciler()?;
        self.named_admin_tokens()?;
        if self.ingress_publish_timeout.is_zero()
            || self.ingress_publish_timeout >= self.ingress_request_timeout
        {
            return Err(ConfigError::invalid(
                "ingress_publish_timeout",
                "must be above zero and below HOOKLOG_INGRESS_REQUEST_TIMEOUT",
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// The limits each HTTP listener serves with.
    pub fn server_limits(&self) -> crate::serve::ServerLimits {
        crate::serve::ServerLimits {
            header_read_timeout: self.http_header_read_timeout,
            max_connections: self.http_max_connections,
        }
    }

    /// The webhook secrets, current first, then the previous one: what the ingress verifies
    /// deliveries with and the worker checks them again with.
    pub fn webhook_secrets(&self) -> Vec<hooklog_domain::github::WebhookSecret> {
        [
            &self.github_webhook_secret,
            &self.github_webhook_secret_previous,
        ]
        .into_iter()
        .flatten()
        .map(|secret| hooklog_domain::github::WebhookSecret::new(secret.expose_secret()))
        .collect()
    }

    /// `HOOKLOG_INGRESS_ALLOWED_NETWORKS`, parsed; `None` when unset (every address).
    pub fn ingress_allowed_networks(&self) -> Option<Vec<ipnet::IpNet>> {
        self.ingress_allowed_networks
            .as_deref()
            .map(|networks| parse_networks(networks).expect("checked by Settings::validate"))
    }

    /// `HOOKLOG_INGRESS_TRUSTED_PROXIES`, parsed; empty when unset (no proxy trusted).
    pub fn ingress_trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.ingress_trusted_proxies
            .as_deref()
            .map(|networks| parse_networks(networks).expect("checked by Settings::validate"))
            .unwrap_or_default()
    }
}

/// Whether any of the comma-separated URLs has a `user@` or `user:password@` part, read the way
/// the connection reads it.
fn url_has_credentials(urls: &str) -> bool {
    !matches!(
        crate::nats::split_credentials(urls).1,
        crate::nats::NatsAuth::None
    )
}

/// A comma-separated list of CIDRs or single addresses; at least one.
fn parse_networks(value: &str) -> Result<Vec<ipnet::IpNet>, String> {
    let networks = value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    format!(
                        "{entry:?} is not a network (CIDR such as 192.30.252.0/22) or an address"
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if networks.is_empty() {
        return Err("is set but lists no network; unset it to accept every address".to_owned());
    }
    Ok(networks)
}

/// One named admin token (`HOOKLOG_ADMIN_TOKENS_FILE`).
#[derive(Clone, Debug)]
pub struct NamedToken {
    /// Who holds it: the actor of their commands is `operator:<name>`.
    pub name: String,
    /// Whether it may change things, or only read.
    pub write: bool,
    pub token: SecretString,
}

/// Whether `name` can name an operator: 1 to 64 of `a-z`, `0-9`, `.`, `_`, `-`.
fn is_operator_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl Settings {
    /// Every admin token with its name: `admin` (HOOKLOG_ADMIN_TOKEN, read-write) and `read`
    /// (HOOKLOG_ADMIN_READ_TOKEN, read-only) when set, then those of HOOKLOG_ADMIN_TOKENS_FILE.
    /// Names and tokens must be unique; an error names the file and line, never a token.
    pub fn named_admin_tokens(&self) -> Result<Vec<NamedToken>, ConfigError> {
        let mut tokens = Vec::new();
        if let Some(token) = &self.admin_token {
            tokens.push(NamedToken {
                name: "admin".into(),
                write: true,
                token: token.clone(),
            });
        }
        if let Some(token) = &self.admin_read_token {
            tokens.push(NamedToken {
                name: "read".into(),
                write: false,
                token: token.clone(),
            });
        }
        let Some(path) = &self.admin_tokens_file else {
            return Ok(tokens);
        };
        let bad = |reason: String| ConfigError::invalid("admin_tokens_file", reason);
        let text = std::fs::read_to_string(path)
            .map_err(|err| bad(format!("cannot read {}: {err}", path.display())))?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{} line {}", path.display(), number + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, access, token] = fields[..] else {
                return Err(bad(format!(
                    "{}: expected `<name> <read|write> <token>`",
                    at()
                )));
            };
            if !is_operator_name(name) {
                return Err(bad(format!(
                    "{}: {name:?} is not a name (1 to 64 of a-z, 0-9, '.', '_', '-')",
                    at()
                )));
            }
            let write = match access {
                "write" => true,
                "read" => false,
                other => {
                    return Err(bad(format!(
                        "{}: access {other:?} is not `read` or `write`",
                        at()
                    )))
                }
            };
            if token.len() < 16 {
                return Err(bad(format!(
                    "{}: the token of {name} is shorter than 16 characters",
                    at()
                )));
            }
            if tokens.iter().any(|t| t.name == name) {
                return Err(bad(format!("{}: the name {name} is used twice", at())));
            }
            if tokens.iter().any(|t| t.token.expose_secret() == token) {
                return Err(bad(format!(
                    "{}: the token of {name} is already another name's",
                    at()
                )));
            }
            tokens.push(NamedToken {
                name: name.into(),
                write,
                token: token.to_owned().into(),
            });
        }
        Ok(tokens)
    }

    fn validate_nats_auth(&self) -> Result<(), ConfigError> {
        let kinds = [
            (
                "nats_user",
                self.nats_user.is_some() || self.nats_password.is_some(),
            ),
            ("nats_token", self.nats_token.is_some()),
            ("nats_creds_file", self.nats_creds_file.is_some()),
        ];
        let given: Vec<&str> = kinds
            .iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| *k)
            .collect();
        let Some(first) = given.first() else {
            return Ok(());
        };
        if given.len() > 1 {
            return Err(ConfigError::invalid(
                given[1],
                "is set with another kind of NATS credentials; give one: user and password, a token or a creds file",
            ));
        }
        if self.nats_user.is_some() != self.nats_password.is_some() {
            let missing = if self.nats_user.is_some() {
                "nats_password"
            } else {
                "nats_user"
            };
            return Err(ConfigError::invalid(
                missing,
                "is missing: HOOKLOG_NATS_USER and HOOKLOG_NATS_PASSWORD go together",
            ));
        }
        match &self.nats_url {
            None => Err(ConfigError::invalid(
                first,
                "is set without HOOKLOG_NATS_URL; the embedded server uses the credentials it \
                 generated in HOOKLOG_DATA_DIR",
            )),
            Some(url) if url_has_credentials(url.expose_secret()) => Err(ConfigError::invalid(
                first,
                "is set while HOOKLOG_NATS_URL holds credentials too; give them once",
            )),
            Some(_) => Ok(()),
        }
    }

    fn validate_github_reconciler(&self) -> Result<(), ConfigError> {
        if let Some(slug) = &self.github_app_slug {
            let valid = !slug.is_empty()
                && slug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid {
                return Err(ConfigError::invalid(
                    "github_app_slug",
                    "must be the App's slug as in https://github.com/apps/<slug> (lowercase \
                     letters, digits and -)",
                ));
            }
        }
        if !(self.github_url.starts_with("https://") || self.github_url.starts_with("http://")) {
            return Err(ConfigError::invalid(
                "github_url",
                "must be an http(s) URL such as https://github.com",
            ));
        }
        at_least(
            "github_reconcile_interval",
            self.github_reconcile_interval,
            Duration::from_secs(1),
            "1s",
        )?;
        at_least(
            "github_redelivery_timeout",
            self.github_redelivery_timeout,
            Duration::from_secs(1),
            "1s",
        )?;
        if !(1..=20).contains(&self.github_redelivery_attempts) {
            return Err(ConfigError::invalid(
                "github_redelivery_attempts",
                "must be between 1 and 20",
            ));
        }
        Ok(())
    }

    fn validate_repositories(&self) -> Result<(), ConfigError> {
        let current =
            self.secrets_key_text("secrets_key", &self.secrets_key, &self.secrets_key_file)?;
        let previous = self.secrets_key_text(
            "secrets_key_previous",
            &self.secrets_key_previous,
            &self.secrets_key_previous_file,
        )?;
        if current.is_none() && previous.is_some() {
            return Err(ConfigError::invalid(
                "secrets_key_previous",
                "is set without HOOKLOG_SECRETS_KEY; set the current key too",
            ));
        }
        if let Some(url) = &self.public_url {
            let parsed = reqwest::Url::parse(url).ok().filter(|u| {
                matches!(u.scheme(), "https" | "http")
                    && u.host().is_some()
                    && u.username().is_empty()
                    && u.password().is_none()
                    && u.query().is_none()
                    && u.fragment().is_none()
            });
            if parsed.is_none() {
                return Err(ConfigError::invalid(
                    "public_url",
                    "is not an http(s) URL without credentials, query or fragment",
                ));
            }
        }
        if !(self.gitlab_api_url.starts_with("https://")
            || self.gitlab_api_url.starts_with("http://"))
        {
            return Err(ConfigError::invalid(
                "gitlab_api_url",
                "is not an http(s) URL",
            ));
        }
        at_least(
            "repositories_health_interval",
            self.repositories_health_interval,
            Duration::from_secs(1),
            "1s",
        )?;
        at_least(
            "repositories_interval",
            self.repositories_interval,
            Duration::from_millis(100),
            "100ms",
        )?;
        Ok(())
    }

    /// The vault keys as base64 text, current then previous, checked: each 32 bytes. None: no
    /// current key is set.
    pub fn secrets_keys(
        &self,
    ) -> Result<Option<(SecretString, Option<SecretString>)>, ConfigError> {
        let current =
            self.secrets_key_text("secrets_key", &self.secrets_key, &self.secrets_key_file)?;
        let previous = self.secrets_key_text(
            "secrets_key_previous",
            &self.secrets_key_previous,
            &self.secrets_key_previous_file,
        )?;
        Ok(current.map(|current| (current, previous)))
    }

    /// One vault key from its setting or its `_FILE` form, checked to be 32 bytes of base64.
    fn secrets_key_text(
        &self,
        key: &str,
        value: &Option<SecretString>,
        file: &Option<PathBuf>,
    ) -> Result<Option<SecretString>, ConfigError> {
        use base64::Engine as _;
        let file_key = format!("{key}_file");
        let text = match (value, file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    &file_key,
                    format!(
                        "is set together with {ENV_PREFIX}{}; set only one",
                        key.to_uppercase()
                    ),
                ))
            }
            (Some(value), None) => value.expose_secret().trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|err| {
                    ConfigError::invalid(
                        &file_key,
                        format!("{} cannot be read: {err}", path.display()),
                    )
                })?
                .trim()
                .to_owned(),
            (None, None) => return Ok(None),
        };
        let decoded = base64::engine::general_purpose::STANDARD.decode(&text);
        if !decoded.is_ok_and(|bytes| bytes.len() == 32) {
            // Never echoes the value: it is a key.
            return Err(ConfigError::invalid(
                key,
                "is not 32 bytes as base64 (make one with `openssl rand -base64 32`)",
            ));
        }
        Ok(Some(SecretString::from(text)))
    }

    fn validate_audit(&self) -> Result<(), ConfigError> {
        if self.audit_signing_key.is_some() && self.audit_signing_key_file.is_some() {
            return Err(ConfigError::invalid(
                "audit_signing_key_file",
                "is set together with HOOKLOG_AUDIT_SIGNING_KEY; set only one",
            ));
        }
        if let Some(path) = &self.audit_signing_key_file {
            if !path.is_file() {
                return Err(ConfigError::invalid(
                    "audit_signing_key_file",
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        at_least(
            "audit_checkpoint_interval",
            self.audit_checkpoint_interval,
            Duration::from_millis(100),
            "100ms",
        )?;
        Ok(())
    }

    fn validate_syncer(&self) -> Result<(), ConfigError> {
        let has_key =
            self.github_app_private_key.is_some() || self.github_app_private_key_file.is_some();
        if self.github_app_private_key.is_some() && self.github_app_private_key_file.is_some() {
            return Err(ConfigError::invalid(
                "github_app_private_key_file",
                "is set together with HOOKLOG_GITHUB_APP_PRIVATE_KEY; set only one",
            ));
        }
        if let Some(path) = &self.github_app_private_key_file {
            if !path.is_file() {
                return Err(ConfigError::invalid(
                    "github_app_private_key_file",
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        match (self.github_app_id.is_some(), has_key) {
            (true, false) => {
                return Err(ConfigError::invalid(
                    "github_app_id",
                    "is set without a private key; set HOOKLOG_GITHUB_APP_PRIVATE_KEY or \
                     HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE",
                ))
            }
            (false, true) => {
                return Err(ConfigError::invalid(
                    "github_app_private_key",
                    "is set without HOOKLOG_GITHUB_APP_ID",
                ))
            }
            _ => {}
        }
        if !(self.github_api_url.starts_with("https://")
            || self.github_api_url.starts_with("http://"))
        {
            return Err(ConfigError::invalid(
                "github_api_url",
                "must be an http:// or https:// URL",
            ));
        }
        if self.syncer_concurrency == 0 {
            return Err(ConfigError::invalid(
                "syncer_concurrency",
                "must be at least 1",
            ));
        }
        if self.syncer_max_file_size == 0 {
            return Err(ConfigError::invalid(
                "syncer_max_file_size",
                "must be at least 1 byte",
            ));
        }
        for (key, value) in [
            ("syncer_reconcile_interval", self.syncer_reconcile_interval),
            ("syncer_sync_timeout", self.syncer_sync_timeout),
            ("syncer_stale_after", self.syncer_stale_after),
            ("syncer_retry_delay", self.syncer_retry_delay),
            (
                "syncer_head_check_interval",
                self.syncer_head_check_interval,
            ),
        ] {
            if value < Duration::from_secs(1) {
                return Err(ConfigError::invalid(key, "must be at least 1s"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
