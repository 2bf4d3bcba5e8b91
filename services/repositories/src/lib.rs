//! hooklog's `repositories` role: the webhooks of repositories connected without the GitHub
//! App. An admin's connect or disconnect only records a command (`RepositoryConnection`); this
//! role makes it true at the provider, and reports back:
//! - a `pending` connection gets its webhook (created, or an existing one for its URL adopted)
//!   and becomes `active`, or `failed` with the provider's reason (an operator retries);
//! - a `disconnecting` or `delete_failed` connection has its webhooks deleted and becomes
//!   `disconnected`, or `delete_failed` again until a pass succeeds.
//!
//! [`directory`] keeps the ingress's connection secrets in step the same way; each pass also
//! reads active connections' webhook health (`health`), and has GitHub redeliver what a
//! webhook's log has and the stream lacks, by the GitHub reconciler's own pass over that log.
//!
//! A pass runs every `HOOKLOG_REPOSITORIES_INTERVAL`, and at once whenever a
//! `RepositoryConnection` event is published on `HOOKLOG_EVENTS` (the relay's publish is the
//! wake-up; the pass reads the aggregates themselves). Only the holder of [`LEASE_KEY`] runs
//! passes, so of several replicas one calls the providers; a crash anywhere leaves a state the
//! next pass finishes (see [`pass`] for why nothing is created twice or left behind).
#![forbid(unsafe_code)]

pub mod directory;
mod health;
pub mod pass;
pub mod provider;

use std::time::Duration;

use futures::StreamExt;
use hooklog_infra::postgres::Lease;
use hooklog_infra::streams::EVENTS_SUBJECT_PREFIX;
use hooklog_write::vault::Vault;
use hooklog_write::CommandBus;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use pass::{run_pass, PassReport};
pub use provider::{HookApi, ProviderError};

/// The advisory lock only the working `repositories` role holds (`hooklog` + 6 in ASCII).
pub const LEASE_KEY: i64 = 0x686f_6f6b_6c6f_6706;

/// What the role needs from the settings.
#[derive(Debug, Clone)]
pub struct RepositoriesConfig {
    pub interval: Duration,
    pub github_api_url: String,
    pub gitlab_api_url: String,
    /// How often a standing-by replica tries the lease.
    pub lock_retry: Duration,
    /// How often each active connection's webhook health is read from the provider.
    pub health_interval: Duration,
    /// Asking GitHub to redeliver what a webhook's log has and the stream lacks; `None`: the
    /// logs are read for health only.
    pub redelivery: Option<Redelivery>,
}

/// What asking GitHub for a connection's redeliveries needs: the stream (to know what is
/// stored), the GitHub reconciler's policy (settle time, window, attempts; its App id is not
/// used), and GitHub's API (`HOOKLOG_GITHUB_API_URL`, retries, rate-limit wait).
#[derive(Debug, Clone)]
pub struct Redelivery {
    pub js: async_nats::jetstream::Context,
    pub policy: hooklog_reconciler::ReconcilerConfig,
    pub github: hooklog_syncer::source::github::GithubAppConfig,
}

impl RepositoriesConfig {
    pub fn from_settings(settings: &hooklog_infra::config::Settings) -> Self {
        Self {
            interval: settings.repositories_interval,
            github_api_url: settings.github_api_url.clone(),
            gitlab_api_url: settings.gitlab_api_url.clone(),
            lock_retry: Duration::from_secs(5),
            health_interval: settings.repositories_health_interval,
            redelivery: None,
        }
    }
}

/// The subject `RepositoryConnection` events are published on.
pub fn events_subject() -> String {
    format!("{EVENTS_SUBJECT_PREFIX}.RepositoryConnection.>")
}

/// Runs passes while this process holds [`LEASE_KEY`], until `shutdown`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    config: RepositoriesConfig,
    pool: PgPool,
    bus: CommandBus,
    vault: Vault,
    api: HookApi,
    nats: async_nats::Client,
    shutdown: CancellationToken,
) {
    let mut standing_by = false;
    while !shutdown.is_cancelled() {
        match Lease::take(&pool, LEASE_KEY).await {
            Ok(Some(lease)) => {
                standing_by = false;
                lead(&config, &bus, &vault, &api, &nats, lease, &shutdown).await;
            }
            Ok(None) if !standing_by => {
                tracing::info!("another repositories role holds the lease; standing by");
                standing_by = true;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "cannot take the repositories lease yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.lock_retry) => {}
        }
    }
    tracing::info!("repositories role stopped");
}

async fn lead(
    config: &RepositoriesConfig,
    bus: &CommandBus,
    vault: &Vault,
    api: &HookApi,
    nats: &async_nats::Client,
    mut lease: Lease,
    shutdown: &CancellationToken,
) {
    tracing::info!(
        interval_s = config.interval.as_secs(),
        "took the repositories lease; keeping connected repositories' webhooks"
    );
    // Woken by each connection event the relay publishes; the interval is the backstop.
    let mut wake = match nats.subscribe(events_subject()).await {
        Ok(subscriber) => Some(subscriber),
        Err(err) => {
            tracing::warn!(error = %err, "cannot subscribe to connection events; passes run on the interval only");
            None
        }
    };
    loop {
        if let Err(err) = lease.check().await {
            tracing::error!(error = %err, "lost the repositories lease; standing down");
            break;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            result = run_pass(bus, vault, api, config.health_interval, config.redelivery.as_ref()) => match result {
                Ok(report) if report != PassReport::default() => tracing::info!(
                    created = report.created,
                    adopted = report.adopted,
                    failed = report.failed,
                    deleted = report.deleted,
                    delete_failed = report.delete_failed,
                    checked = report.checked,
                    orphans = report.orphans,
                    missing = report.missing,
                    redeliveries = report.redeliveries,
                    "repositories pass done"
                ),
                Ok(_) => {}
                Err(err) => tracing::error!(error = %err, "repositories pass failed; the next one starts over"),
            },
        }
        let sleep = tokio::time::sleep(config.interval);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = sleep => {}
            Some(_) = next(&mut wake) => {
                // Events come in bursts (a disconnect's request and report): take them all.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    lease.release().await;
}

pub(crate) async fn next(wake: &mut Option<async_nats::Subscriber>) -> Option<async_nats::Message> {
    match wake {
        Some(subscriber) => subscriber.next().await,
        None => std::future::pending().await,
    }
}
