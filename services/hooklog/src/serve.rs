//! `hooklog serve`: start NATS (embedded unless `HOOKLOG_NATS_URL` is set), make sure the
//! streams exist, connect PostgreSQL for the roles that use it (all but the ingress), then run
//! the chosen roles until SIGTERM or SIGINT, letting in-flight work finish.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hooklog_admin::{AdminState, Tokens};
use hooklog_audit::SigningKey;
use hooklog_domain::clock::SystemClock;
use hooklog_infra::config::Settings;
use hooklog_infra::nats::{self, find_nats_server, EmbeddedNats, NatsAuth};
use hooklog_infra::{postgres, streams};
use hooklog_ingress::IngressConfig;
use hooklog_process_manager::ProcessManagerConfig;
use hooklog_projections::ProjectorConfig;
use hooklog_relay::RelayConfig;
use hooklog_sealer::key::{self, default_key_path, KeySource};
use hooklog_sealer::SealerConfig;
use hooklog_syncer::{Executor, SyncerConfig};
use hooklog_worker::{Processor, WorkerConfig};
use hooklog_write::CommandBus;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::{Role, ServeArgs};

async fn listen(addr: SocketAddr, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {setting}={addr}"))
}

pub async fn run(settings: Settings, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let roles: BTreeSet<Role> = if args.roles.is_empty() {
        [
            Role::Ingress,
            Role::Admin,
            Role::Worker,
            Role::Relay,
            Role::Projector,
            Role::Syncer,
            Role::ProcessManager,
            Role::Sealer,
            Role::GithubReconciler,
            Role::Repositories,
        ]
        .into_iter()
        // By default the reconciler runs only where there is an App whose log it can read, and
        // the repositories role only where connections' secrets can be opened.
        .filter(|role| *role != Role::GithubReconciler || settings.github_app_id.is_some())
        .filter(|role| {
            *role != Role::Repositories
                || settings.secrets_key.is_some()
                || settings.secrets_key_file.is_some()
        })
        .collect()
    } else {
        args.roles.into_iter().collect()
    };
    // The App, read once for the roles that call it: the reconciler needs it, the admin
    // listener uses it when it is there (operators' redeliveries, Connect GitHub, the picker).
    let github_app = match roles.contains(&Role::GithubReconciler) {
        true => Some(github_reconciler_client(&settings)?),
        false if roles.contains(&Role::Admin) => github_app(&settings)?,
        false => None,
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    // Before any role records a metric, so the admin listener's `/metrics` sees them all.
    let metrics = hooklog_infra::metrics::install()?;

    // Listen first, so a taken port fails before anything else starts.
    let ingress_listener = match roles.contains(&Role::Ingress) {
        true => Some(listen(settings.ingress_addr, "HOOKLOG_INGRESS_ADDR").await?),
        false => None,
    };
    let admin_listener = match roles.contains(&Role::Admin) {
        true => Some(listen(settings.admin_addr, "HOOKLOG_ADMIN_ADDR").await?),
        false => None,
    };

    let mut embedded = None;
    let nats_url = match &settings.nats_url {
        Some(url) => url.expose_secret().to_owned(),
        None => {
            let bin = find_nats_server(settings.nats_server_bin.as_deref())?;
            let data_dir = settings.data_dir.join("nats");
            let server = EmbeddedNats::start(&bin, &data_dir)
                .await
                .context("cannot start the embedded nats-server")?;
            tracing::info!(nats_url = %server.address(), bin = %bin.display(), data_dir = %data_dir.display(), "embedded nats-server started");
            let url = server.url();
            embedded = Some(server);
            url
        }
    };
    let client =
        nats::connect_with(&nats_url, NatsAuth::from_settings(&settings), "hooklog").await?;
    nats::check_max_payload(&client)?;
    let js = async_nats::jetstream::new(client.clone());
    streams::ensure_all(
        &js,
        settings.deliveries_duplicate_window,
        settings.events_duplicate_window,
        settings.stream_replicas,
    )
    .await
    .with_context(|| match settings.stream_replicas {
        1 => "cannot prepare hooklog's streams".to_owned(),
        n => format!(
            "cannot prepare hooklog's streams with HOOKLOG_STREAM_REPLICAS={n}: that needs a \
             JetStream cluster of at least {n} servers"
        ),
    })?;
    let audit_key = audit_key(&settings, &roles)?;

    // The ingress never needs PostgreSQL: deliveries are accepted while it is down.
    let db = match roles.iter().any(|role| *role != Role::Ingress) {
        true => Some(postgres::connect_and_migrate(settings.database_url.expose_secret()).await?),
        false => None,
    };

    // One command bus for the roles in this process that write (worker, syncer, admin, process
    // manager): one
    // aggregate cache, and commands to one aggregate take turns instead of conflicting.
    let bus = db
        .as_ref()
        .map(|pool| CommandBus::new(pool.clone(), Arc::new(SystemClock)));
    // The vault of repository connections' secrets, when HOOKLOG_SECRETS_KEY is set.
    let vault = match (
        &db,
        hooklog_write::vault::VaultKeys::from_settings(&settings)?,
    ) {
        (Some(pool), Some(keys)) => Some(hooklog_write::vault::Vault::new(pool.clone(), keys)),
        _ => None,
    };
    if roles.contains(&Role::Repositories) && vault.is_none() {
        anyhow::bail!(
            "the repositories role needs HOOKLOG_SECRETS_KEY (or HOOKLOG_SECRETS_KEY_FILE): \
             connections' tokens and webhook secrets are sealed with it"
        );
    }

    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    if let Some(listener) = ingress_listener {
        let config = IngressConfig::from_settings(&settings);
        // Repository connections' secrets, kept in step from the vault where this process has
        // one (an ingress-only process takes the App's deliveries alone).
        let connections = hooklog_ingress::ConnectionSecrets::default();
        if let (Some(bus), Some(vault)) = (&bus, &vault) {
            let keep = hooklog_repositories::directory::keep(
                bus.clone(),
                vault.clone(),
                client.clone(),
                connections.clone(),
                settings.repositories_interval,
                shutdown.clone(),
            );
            tasks.spawn(async move {
                keep.await;
                Ok(())
            });
        }
        let ingress = hooklog_ingress::run(
            config,
            client.clone(),
            listener,
            connections,
            shutdown.clone(),
        );
        tasks.spawn(async move { Ok(ingress.await?) });
    }
    if let Some(listener) = admin_listener {
        let pool = db.clone().context("the admin role needs PostgreSQL")?;
        let bus = bus.clone().context("the admin role needs PostgreSQL")?;
        let state = AdminState::with_bus(
            pool,
            client.clone(),
            bus,
            Tokens::from_settings(&settings)?,
            metrics.clone(),
        )
        .allowed_sources(settings.syncer_allowed_sources.clone())
        .webhook_secrets(settings.webhook_secrets())
        .repositories(vault.clone(), settings.public_url.as_deref());
        let state = match &audit_key {
            Some(key) => state.audit_key(key.verifier()),
            None => state,
        };
        // Operators' redeliveries (`/v1/admin/github/...`) go through the App, when there is one.
        let state = match &github_app {
            Some(app) => {
                let policy =
                    hooklog_reconciler::ReconcilerConfig::from_settings(app.app_id, &settings)
                        .policy;
                let source = hooklog_syncer::source::github::GithubApp::new(app.config.clone())
                    .map_err(anyhow::Error::msg)
                    .context("cannot set up the admin listener's GitHub App")?;
                state
                    .github_app(Arc::clone(&app.client), policy)
                    .github_source(Arc::new(source))
            }
            None => state,
        };
        let state = match &settings.github_app_slug {
            Some(slug) => state.github_install_page(&settings.github_url, slug),
            None => state,
        };
        let admin = hooklog_admin::run(state, listener, settings.server_limits(), shutdown.clone());
        tasks.spawn(async move { Ok(admin.await?) });
    }
    if let (true, Some(bus)) = (roles.contains(&Role::Worker), &bus) {
        let config = WorkerConfig {
            max_ack_pending: settings.worker_max_ack_pending,
            batch_size: settings.worker_batch_size,
            concurrency: settings.worker_concurrency,
            secrets: settings.webhook_secrets(),
            vault: vault.clone(),
            ..WorkerConfig::default()
        };
        let processor = Processor::new(bus.clone());
        let worker = hooklog_worker::run(config, processor, js.clone(), shutdown.clone());
        tasks.spawn(async move {
            worker.await;
            Ok(())
        });
    }
    if let (true, Some(pool)) = (roles.contains(&Role::Relay), &db) {
        let relay = hooklog_relay::run(
            RelayConfig::default(),
            pool.clone(),
            js.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move { Ok(relay.await?) });
    }
    if let (true, Some(pool)) = (roles.contains(&Role::Projector), &db) {
        let projector = hooklog_projections::run(
            ProjectorConfig::default(),
            pool.clone(),
            js.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move { Ok(projector.await?) });
    }
    if let (true, Some(bus)) = (roles.contains(&Role::Syncer), &bus) {
        let sources = hooklog_syncer::config::sources(&settings, vault.clone())
            .map_err(anyhow::Error::msg)
            .context("cannot set up the syncer's sources")?;
        let config = SyncerConfig::from_settings(&settings);
        let executor = Executor::new(bus.clone(), sources, config.limits.clone());
        let syncer = hooklog_syncer::run(config, executor, js.clone(), shutdown.clone());
        tasks.spawn(async move {
            syncer.await;
            Ok(())
        });
    }
    if let (true, Some(bus)) = (roles.contains(&Role::ProcessManager), &bus) {
        let manager = hooklog_process_manager::run(
            ProcessManagerConfig::default(),
            bus.clone(),
            js.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            manager.await;
            Ok(())
        });
    }
    if let (true, Some(pool), Some(key)) = (roles.contains(&Role::Sealer), &db, &audit_key) {
        let config = SealerConfig {
            checkpoint_interval: settings.audit_checkpoint_interval,
            ..SealerConfig::default()
        };
        let sealer = hooklog_sealer::run(
            config,
            pool.clone(),
            js.clone(),
            Arc::clone(key),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            sealer.await;
            Ok(())
        });
    }
    let reconciler_app = github_app
        .as_ref()
        .filter(|_| roles.contains(&Role::GithubReconciler));
    if let (Some(app), Some(pool), Some(bus)) = (reconciler_app, &db, &bus) {
        let reconciler = hooklog_reconciler::Reconciler {
            config: hooklog_reconciler::ReconcilerConfig::from_settings(app.app_id, &settings),
            pool: pool.clone(),
            bus: bus.clone(),
            js: js.clone(),
            client: Arc::clone(&app.client),
        };
        let run = hooklog_reconciler::run(reconciler, shutdown.clone());
        tasks.spawn(async move {
            run.await;
            Ok(())
        });
    }
    if let (true, Some(pool), Some(bus), Some(vault)) =
        (roles.contains(&Role::Repositories), &db, &bus, &vault)
    {
        let mut config = hooklog_repositories::RepositoriesConfig::from_settings(&settings);
        // Connections' webhook logs are reconciled with the stream like the App's, by the
        // GitHub reconciler's policy (its App id, the checkpoint key of the App's log, unused).
        config.redelivery = Some(hooklog_repositories::Redelivery {
            js: js.clone(),
            policy: hooklog_reconciler::ReconcilerConfig::from_settings(0, &settings),
            github: hooklog_syncer::source::github::GithubAppConfig {
                api_url: settings.github_api_url.clone(),
                ..Default::default()
            },
        });
        let api =
            hooklog_repositories::HookApi::new(&config.github_api_url, &config.gitlab_api_url)
                .context("cannot set up the providers' HTTP client")?;
        let run = hooklog_repositories::run(
            config,
            pool.clone(),
            bus.clone(),
            vault.clone(),
            api,
            client.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            run.await;
            Ok(())
        });
    }
    tracing::info!(roles = ?roles, "hooklog serving");

    let mut outcome = Ok(());
    loop {
        tokio::select! {
            joined = tasks.join_next() => {
                let Some(joined) = joined else { break };
                // Any role ending ends the others: a half-running process is worse than a restart.
                shutdown.cancel();
                match joined {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => outcome = Err(err.context("a role stopped with an error")),
                    Err(err) => outcome = Err(anyhow::Error::new(err).context("a role panicked")),
                }
            }
            status = embedded_exit(&mut embedded), if !shutdown.is_cancelled() => {
                outcome = Err(anyhow::anyhow!(
                    "the embedded nats-server exited unexpectedly ({}); see {}",
                    status.map_or_else(|err| err.to_string(), |status| status.to_string()),
                    settings.data_dir.join("nats/nats-server.log").display()
                ));
                shutdown.cancel();
            }
        }
    }
    // Every delivery was already acknowledged by JetStream before its answer; the flush only
    // speeds up a clean disconnect, so it must not hang when NATS is gone.
    if client.connection_state() == async_nats::connection::State::Connected {
        match tokio::time::timeout(Duration::from_secs(5), client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "NATS flush at shutdown failed"),
            Err(_) => tracing::warn!("NATS flush at shutdown timed out"),
        }
    }
    drop(client);
    if let Some(pool) = db {
        pool.close().await;
    }
    if let Some(mut server) = embedded {
        server.stop().await;
    }
    tracing::info!("hooklog stopped");
    outcome.map(|()| ExitCode::SUCCESS)
}

/// The App's id, settings and a client of its own endpoints, for the GitHub reconciler and
/// `hooklog github redeliver`; without the App, an error naming the settings.
pub(crate) fn github_reconciler_client(settings: &Settings) -> anyhow::Result<GithubAppParts> {
    github_app(settings)?.context(
        "the GitHub reconciler needs the GitHub App: set HOOKLOG_GITHUB_APP_ID and \
         HOOKLOG_GITHUB_APP_PRIVATE_KEY (or HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE)",
    )
}

/// The GitHub App as the settings give it, and a client of its own endpoints.
pub(crate) struct GithubAppParts {
    pub app_id: u64,
    pub config: hooklog_syncer::source::github::GithubAppConfig,
    pub client: Arc<hooklog_syncer::source::github::AppClient>,
}

/// The GitHub App, its key read once; `None` without `HOOKLOG_GITHUB_APP_ID`.
fn github_app(settings: &Settings) -> anyhow::Result<Option<GithubAppParts>> {
    let config = hooklog_syncer::config::github_app_config(settings)
        .context("cannot read HOOKLOG_GITHUB_APP_PRIVATE_KEY_FILE")?;
    let Some(app_id) = config.app_id else {
        return Ok(None);
    };
    let client = hooklog_syncer::source::github::AppClient::new(&config)
        .map_err(anyhow::Error::msg)
        .context("cannot set up the GitHub App client")?;
    Ok(Some(GithubAppParts {
        app_id,
        config,
        client: Arc::new(client),
    }))
}

/// The audit signing key: the sealer needs it (and creates the default one on first start);
/// the admin listener serves its verifier key when this process can read it.
fn audit_key(
    settings: &Settings,
    roles: &BTreeSet<Role>,
) -> anyhow::Result<Option<Arc<SigningKey>>> {
    let configured = settings.audit_signing_key.is_some()
        || settings.audit_signing_key_file.is_some()
        || default_key_path(&settings.data_dir).exists();
    let needed = roles.contains(&Role::Sealer) || (roles.contains(&Role::Admin) && configured);
    if !needed {
        return Ok(None);
    }
    let (key, source) = key::load_or_create(settings)?;
    match source {
        KeySource::Created(path) => tracing::info!(
            verifier_key = %key.verifier(),
            path = %path.display(),
            "created the audit signing key; give auditors its verifier key"
        ),
        KeySource::File(path) => tracing::info!(
            verifier_key = %key.verifier(),
            path = %path.display(),
            "audit signing key loaded"
        ),
        KeySource::Setting => tracing::info!(
            verifier_key = %key.verifier(),
            "audit signing key loaded from HOOKLOG_AUDIT_SIGNING_KEY"
        ),
    }
    Ok(Some(Arc::new(key)))
}

async fn embedded_exit(
    embedded: &mut Option<EmbeddedNats>,
) -> std::io::Result<std::process::ExitStatus> {
    match embedded {
        Some(server) => server.exited().await,
        None => std::future::pending().await,
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; shutting down"),
        _ = shutdown.cancelled() => {}
    }
    shutdown.cancel();
}
