//! The admin listener's state: one `Clone` struct of cheap handles, built once at start.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use hooklog_audit::VerifierKey;
use hooklog_domain::clock::SystemClock;
use hooklog_domain::github_delivery::RedeliveryPolicy;
use hooklog_domain::source::AllowedSources;
use hooklog_infra::metrics::{MetricsError, PrometheusHandle};
use hooklog_syncer::source::github::{AppClient, GithubApp};
use hooklog_write::CommandBus;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;

/// How long requests wait for the rest of the system before answering without it.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// For a read with `min_position`: the read model to reach that position (then 503).
    pub position: Duration,
    /// For a command: the relay to publish its events to `HOOKLOG_EVENTS` (then `position`
    /// is null).
    pub publish: Duration,
}

impl Default for Waits {
    fn default() -> Self {
        Self {
            position: Duration::from_secs(5),
            publish: Duration::from_secs(5),
        }
    }
}

/// Cheap handles shared by every request, built once per listener: `AdminState::new` over its own
/// command bus, or `AdminState::with_bus` (as `hooklog serve` does) sharing the process's.
#[derive(Clone)]
pub struct AdminState {
    pub(crate) db: PgPool,
    pub(crate) nats: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) bus: CommandBus,
    pub(crate) tokens: Arc<Tokens>,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) waits: Waits,
    /// The audit checkpoints' verifier key, served at `/v1/audit/key` (`None`: not known here).
    pub(crate) audit_key: Option<Arc<VerifierKey>>,
    /// The git sources a tracked target may name (`HOOKLOG_SYNCER_ALLOWED_SOURCES`); none unless
    /// set with `allowed_sources`.
    pub(crate) allowed_sources: Arc<AllowedSources>,
    /// The GitHub App's client, for operators' redeliveries (`None`: the App is not configured,
    /// and those routes answer 503 naming the settings).
    pub(crate) github: Option<Arc<AppClient>>,
    /// When redeliveries are asked for (GitHub's window; operators are not held to the rest).
    pub(crate) redelivery_policy: RedeliveryPolicy,
    /// The App's install page (`<github_url>/apps/<slug>/installations/new`) for Connect
    /// GitHub; `None` without `HOOKLOG_GITHUB_APP_SLUG`.
    pub(crate) install_page: Option<Arc<str>>,
    /// The App as an installation, to list an installation's repositories.
    pub(crate) github_source: Option<Arc<GithubApp>>,
    /// The webhook secrets a redriven dead letter is checked with again (none: redrive is
    /// refused, naming the setting).
    pub(crate) webhook_secrets: Arc<[hooklog_domain::github::WebhookSecret]>,
    /// The vault that seals repository connections' secrets (`None`: no
    /// `HOOKLOG_SECRETS_KEY`, and connecting a repository is refused naming it).
    pub(crate) vault: Option<hooklog_write::vault::Vault>,
    /// `HOOKLOG_PUBLIC_URL`, which connections' webhooks post to.
    pub(crate) public_url: Option<Arc<str>>,
    /// Ends live feeds when the listener shuts down (`run` sets it).
    pub(crate) shutdown: CancellationToken,
}

impl AdminState {
    /// The state over a migrated database and a NATS connection whose JetStream has both streams.
    /// Installs the process's metrics recorder if no role did yet.
    pub fn new(db: PgPool, nats: async_nats::Client, tokens: Tokens) -> Result<Self, MetricsError> {
        let bus = CommandBus::new(db.clone(), Arc::new(SystemClock));
        Ok(Self::with_bus(
            db,
            nats,
            bus,
            tokens,
            hooklog_infra::metrics::install()?,
        ))
    }

    /// Like [`AdminState::new`], sharing an existing command bus (and its aggregate cache).
    pub fn with_bus(
        db: PgPool,
        nats: async_nats::Client,
        bus: CommandBus,
        tokens: Tokens,
        metrics: PrometheusHandle,
    ) -> Self {
        Self {
            js: jetstream::new(nats.clone()),
            db,
            nats,
            bus,
            tokens: Arc::new(tokens),
            metrics,
            waits: Waits::default(),
            audit_key: None,
            allowed_sources: Arc::new(AllowedSources::default()),
            github: None,
            redelivery_policy: RedeliveryPolicy::default(),
            install_page: None,
            github_source: None,
            webhook_secrets: Arc::from(Vec::new()),
            vault: None,
            public_url: None,
            shutdown: CancellationToken::new(),
        }
    }

    /// Connect GitHub sends admins to the App `slug` on `github_url` (`https://github.com`).
    pub fn github_install_page(mut self, github_url: &str, slug: &str) -> Self {
        let base = github_url.trim_end_matches('/');
        self.install_page = Some(Arc::from(format!("{base}/apps/{slug}/installations/new")));
        self
    }

    /// Checks redriven dead letters with `secrets` (current first, then previous ones).
    pub fn webhook_secrets(mut self, secrets: Vec<hooklog_domain::github::WebhookSecret>) -> Self {
        self.webhook_secrets = Arc::from(secrets);
        self
    }

    /// Lets admins connect repositories: their secrets sealed in `vault`, their webhooks
    /// posting under `public_url` (either may be missing; connecting then says which).
    pub fn repositories(
        mut self,
        vault: Option<hooklog_write::vault::Vault>,
        public_url: Option<&str>,
    ) -> Self {
        self.vault = vault;
        self.public_url = public_url.map(Arc::from);
        self
    }

    /// Lists installations' repositories through `app` (the repository picker).
    pub fn github_source(mut self, app: Arc<GithubApp>) -> Self {
        self.github_source = Some(app);
        self
    }

    /// Serves `key` as the audit log's verifier key.
    pub fn audit_key(mut self, key: VerifierKey) -> Self {
        self.audit_key = Some(Arc::new(key));
        self
    }

    /// Lets tracked targets name the git sources `allowed` covers (none by default).
    pub fn allowed_sources(mut self, allowed: AllowedSources) -> Self {
        self.allowed_sources = Arc::new(allowed);
        self
    }

    /// Lets operators ask GitHub for redeliveries through `client` (the App of
    /// `HOOKLOG_GITHUB_APP_ID`), under `policy` (the reconciler's).
    pub fn github_app(mut self, client: Arc<AppClient>, policy: RedeliveryPolicy) -> Self {
        self.github = Some(client);
        self.redelivery_policy = policy;
        self
    }

    /// Replaces the default waits (tests shorten them).
    pub fn waits(mut self, waits: Waits) -> Self {
        self.waits = waits;
        self
    }
}
