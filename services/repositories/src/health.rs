//! The health of an active connection's webhook, read from the provider every
//! `HOOKLOG_REPOSITORIES_HEALTH_INTERVAL` into `webhook_health`: from GitHub's delivery log of
//! the webhook or GitLab's events of the hook (the newest 100: how many, how many failed, the
//! last one and the last failure), and the repository's webhooks that post under hooklog's
//! path for no live connection (left behind by a connection whose deletion was given up on, or
//! by another hooklog database on the same public URL): reported, never deleted, since no
//! connection owns them.
//!
//! A GitHub webhook's log also goes through the GitHub reconciler's pass (when the role is given
//! a `Redelivery`): each delivery the log has and the stream lacks is recorded missing on its
//! `GithubDelivery` and GitHub is asked, with the connection's token, to redeliver it, under
//! the same settle time, window, attempts and arrival timeout as the App's; the log has its own
//! checkpoint, and the pass takes steps only for the GUIDs it listed. A GitLab hook's events
//! are read for health only: nothing asks GitLab to resend one.
//!
//! A check that cannot read the provider records why (`error`) and keeps the connection as it
//! is: health is information, not a state of the aggregate.

use std::collections::HashSet;
use std::time::Duration;

use hooklog_domain::ids::RepositoryName;
use hooklog_domain::repository_connection::{ConnectionId, Provider, RepositoryConnection};
use hooklog_reconciler::HookLog;
use hooklog_syncer::source::github::AppClient;
use hooklog_write::vault::{SecretKind, Vault};
use hooklog_write::CommandBus;
use serde_json::json;

use crate::pass::{PassError, PassReport};
use crate::provider::{HookApi, HookAttempt};

/// What one check found.
#[derive(Debug, Default)]
struct Found {
    log_read: bool,
    attempts: Vec<HookAttempt>,
    orphans: Vec<serde_json::Value>,
    error: Option<String>,
}

/// What a health check is given besides the connection.
pub(crate) struct Health<'a> {
    /// The connections not disconnected.
    pub live: &'a HashSet<ConnectionId>,
    /// A connection's health is read again once it is this old.
    pub interval: Duration,
    pub redelivery: Option<&'a crate::Redelivery>,
}

pub(crate) async fn check(
    bus: &CommandBus,
    vault: &Vault,
    api: &HookApi,
    state: &RepositoryConnection,
    health: &Health<'_>,
    report: &mut PassReport,
) -> Result<(), PassError> {
    let (live, interval) = (health.live, health.interval);
    let (Some(connection), Some(hook_id)) = (state.connection(), state.hook_id()) else {
        return Ok(());
    };
    let pool = bus.pool();
    let due: bool = sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM webhook_health WHERE connection_id = $1 \
         AND checked_at > now() - $2::interval)",
    )
    .bind(connection.id.0)
    .bind(format!("{} milliseconds", interval.as_millis()))
    .fetch_one(pool)
    .await?;
    if !due {
        return Ok(());
    }
    let mut found = Found::default();
    match crate::pass::secret(vault, connection.id, SecretKind::Token).await {
        Err(reason) => found.error = Some(reason),
        Ok(token) => {
            let repository = &connection.repository;
            let log = match connection.provider {
                Provider::Github => api.attempts(repository, &token, hook_id).await,
                Provider::Gitlab => api.gitlab_events(repository, &token, hook_id).await,
            };
            match log {
                Ok(attempts) => {
                    found.log_read = true;
                    found.attempts = attempts;
                }
                Err(err) => found.error = Some(err.to_string()),
            }
            if connection.provider == Provider::Github {
                if let (true, Some(redelivery)) = (found.log_read, health.redelivery) {
                    let log = HookLog::Repository {
                        connection: connection.id,
                        repository: RepositoryName::from_stored(repository.as_str())
                            .map_err(|e| PassError::Store(e.to_string()))?,
                        hook_id,
                    };
                    match redeliver(bus, redelivery, &log, token.clone()).await {
                        Ok(pass) => {
                            report.missing += pass.found;
                            report.redeliveries += pass.asked;
                        }
                        Err(err) => {
                            tracing::warn!(connection = %connection.id, error = %err, "the webhook's missing deliveries could not be asked for");
                            found.error.get_or_insert(format!("redelivery: {err}"));
                        }
                    }
                }
            }
            // Ours: under the same path as this connection's URL, for another connection.
            let prefix = connection
                .hook_url
                .rsplit_once('/')
                .map_or("", |(prefix, _)| prefix);
            match api.hooks(connection.provider, repository, &token).await {
                Ok(hooks) => {
                    for hook in hooks {
                        let Some(rest) = hook.url.strip_prefix(prefix) else {
                            continue;
                        };
                        let owner = rest
                            .strip_prefix('/')
                            .and_then(|id| ConnectionId::parse(id).ok());
                        if owner.is_some_and(|id| !live.contains(&id)) {
                            tracing::warn!(connection = %connection.id, hook_id = hook.id, url = %hook.url, "a webhook posts under hooklog's path for no live connection");
                            found
                                .orphans
                                .push(json!({"hook_id": hook.id, "url": hook.url}));
                        }
                    }
                }
                Err(err) => {
                    found.error.get_or_insert(err.to_string());
                }
            }
        }
    }
    let failed = |a: &&HookAttempt| !(200..300).contains(&a.status_code);
    let last = found.attempts.first();
    let last_failure = found.attempts.iter().find(failed);
    sqlx::query(
        "INSERT INTO webhook_health (connection_id, checked_at, log_read, attempts, failures, \
         last_delivery_at, last_status_code, last_status, last_failure_at, error, orphan_hooks) \
         VALUES ($1, now(), $2, $3, $4, $5::timestamptz, $6, $7, $8::timestamptz, $9, $10) \
         ON CONFLICT (connection_id) DO UPDATE SET checked_at = EXCLUDED.checked_at, \
         log_read = EXCLUDED.log_read, attempts = EXCLUDED.attempts, \
         failures = EXCLUDED.failures, last_delivery_at = EXCLUDED.last_delivery_at, \
         last_status_code = EXCLUDED.last_status_code, last_status = EXCLUDED.last_status, \
         last_failure_at = EXCLUDED.last_failure_at, error = EXCLUDED.error, \
         orphan_hooks = EXCLUDED.orphan_hooks",
    )
    .bind(connection.id.0)
    .bind(found.log_read)
    .bind(i32::try_from(found.attempts.len()).unwrap_or(i32::MAX))
    .bind(i32::try_from(found.attempts.iter().filter(failed).count()).unwrap_or(i32::MAX))
    .bind(last.map(|a| a.delivered_at.clone()))
    .bind(last.map(|a| i32::from(a.status_code)))
    .bind(last.map(|a| a.status.clone()))
    .bind(last_failure.map(|a| a.delivered_at.clone()))
    .bind(&found.error)
    .bind(serde_json::Value::Array(found.orphans.clone()))
    .execute(pool)
    .await?;
    report.checked += 1;
    report.orphans += found.orphans.len();
    Ok(())
}

/// The GitHub reconciler's pass over `log` (a connection's webhook), read and asked with the
/// connection's `token`: what the log has and the stream lacks is recorded missing and
/// redelivered, under the reconciler's policy, as for the App's log.
async fn redeliver(
    bus: &CommandBus,
    redelivery: &crate::Redelivery,
    log: &HookLog,
    token: secrecy::SecretString,
) -> Result<hooklog_reconciler::PassReport, String> {
    let client = AppClient::with_token(&redelivery.github, token).map_err(|e| e.to_string())?;
    hooklog_reconciler::run_pass_over(
        &redelivery.policy,
        bus.pool(),
        bus,
        &redelivery.js,
        &client,
        log,
    )
    .await
    .map_err(|e| e.to_string())
}
