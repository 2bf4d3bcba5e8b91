//! One pass over the connections that await their provider: a webhook to create (a
//! connection `pending`), or to delete (`disconnecting`, or `delete_failed` from an earlier
//! pass). Each is read from its aggregate, not from a read model, so a pass acts on what is
//! committed, and each report is a command the aggregate takes only while it is the one
//! awaited.
//!
//! **Nothing is created twice.** Before creating, the pass lists the repository's webhooks: one
//! that posts to the connection's URL already (made by an earlier pass whose answer or report
//! was lost, or by hand) is adopted and given the connection's secret and events. GitHub also
//! refuses a second webhook for one URL (422), which is then adopted the same way.
//!
//! **Nothing is left behind.** Deleting removes the webhook the connection recorded and every
//! other one posting to its URL; only when all are gone is the connection disconnected and
//! its secrets are dropped from the vault. A failed deletion is reported and tried again by
//! the next pass, for as long as it takes; the connection takes no delivery meanwhile.

use hooklog_domain::metadata::CommandMetadata;
use hooklog_domain::repository_connection::{
    Connection, ConnectionCommand, ConnectionId, ConnectionStatus, Provider, RepositoryConnection,
};
use hooklog_write::vault::{SecretKind, Vault};
use hooklog_write::CommandBus;
use secrecy::SecretString;

use crate::provider::{HookApi, ProviderError, RepositoryFacts};

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub created: usize,
    pub adopted: usize,
    pub failed: usize,
    pub deleted: usize,
    pub delete_failed: usize,
    /// Active connections whose webhook's health was read.
    pub checked: usize,
    /// Webhooks found posting under hooklog's path for no live connection.
    pub orphans: usize,
    /// Deliveries a webhook's log has and the stream lacked, found for the first time.
    pub missing: usize,
    /// Redeliveries GitHub accepted.
    pub redeliveries: usize,
}

/// Why a pass stopped early (the next one starts over).
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("the connections cannot be listed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Store(String),
}

/// A pass's commands are correlated by the connection they are about.
fn meta(id: ConnectionId) -> CommandMetadata {
    let correlation = format!("repositories:{id}");
    CommandMetadata::from_system("repositories", &correlation, &correlation)
}

/// Runs one pass over every connection awaiting its provider, after reading the health of the
/// active ones' webhooks not checked for `health_interval` (`crate::health`).
pub async fn run_pass(
    bus: &CommandBus,
    vault: &Vault,
    api: &HookApi,
    health_interval: std::time::Duration,
    redelivery: Option<&crate::Redelivery>,
) -> Result<PassReport, PassError> {
    let mut report = PassReport::default();
    let states = bus
        .connections()
        .await
        .map_err(|e| PassError::Store(e.to_string()))?;
    let live: std::collections::HashSet<ConnectionId> = states
        .iter()
        .filter(|(_, s)| s.status() != ConnectionStatus::Disconnected)
        .map(|(id, _)| *id)
        .collect();
    for (_, state) in &states {
        if state.status() == ConnectionStatus::Active {
            let health = crate::health::Health {
                live: &live,
                interval: health_interval,
                redelivery,
            };
            crate::health::check(bus, vault, api, state, &health, &mut report).await?;
        }
    }
    for (_, state) in states {
        if !state.status().awaits_provider() {
            continue;
        }
        let Some(connection) = state.connection().cloned() else {
            continue;
        };
        match state.status() {
            ConnectionStatus::Pending => {
                create(bus, vault, api, &state, &connection, &mut report).await?
            }
            _ => delete(bus, vault, api, &state, &connection, &mut report).await?,
        }
    }
    Ok(report)
}

/// One of the connection's secrets from the vault, or why it cannot be had (in words).
pub(crate) async fn secret(
    vault: &Vault,
    id: ConnectionId,
    kind: SecretKind,
) -> Result<SecretString, String> {
    match vault.get(&id.to_string(), kind).await {
        Ok(Some(secret)) => Ok(secret),
        Ok(None) => Err(format!(
            "the connection's {} is not in the vault",
            kind.as_str()
        )),
        Err(err) => Err(err.to_string()),
    }
}

/// A command the aggregate may refuse because another pass reported first: that is fine.
async fn report_step(
    bus: &CommandBus,
    id: ConnectionId,
    command: ConnectionCommand,
) -> Result<bool, PassError> {
    match bus.connection(id, command, &meta(id)).await {
        Ok(_) => Ok(true),
        Err(err) if err.refusal().is_some() => {
            tracing::info!(connection = %id, reason = %err, "report not taken; another pass reported first");
            Ok(false)
        }
        Err(err) => Err(PassError::Store(err.to_string())),
    }
}

async fn create(
    bus: &CommandBus,
    vault: &Vault,
    api: &HookApi,
    state: &RepositoryConnection,
    connection: &Connection,
    report: &mut PassReport,
) -> Result<(), PassError> {
    let attempt = state.attempt();
    let outcome = async {
        let token = secret(vault, connection.id, SecretKind::Token).await?;
        let secret = secret(vault, connection.id, SecretKind::WebhookSecret).await?;
        let made = ensure_hook(api, connection, &token, &secret)
            .await
            .map_err(|err| err.to_string())?;
        Ok::<_, String>(made)
    }
    .await;
    let (command, created) = match outcome {
        Ok((hook_id, adopted, facts)) => (
            ConnectionCommand::RecordWebhookCreated {
                attempt,
                hook_id,
                adopted,
                repository_id: facts.id,
                clone_url: match connection.provider {
                    Provider::Gitlab => facts
                        .path_with_namespace
                        .as_deref()
                        .and_then(|path| api.gitlab_clone_url(path)),
                    Provider::Github => None,
                },
                repository_path: facts.path_with_namespace,
            },
            Some(adopted),
        ),
        Err(reason) => {
            tracing::warn!(connection = %connection.id, %reason, "webhook creation failed");
            (
                ConnectionCommand::RecordWebhookFailed { attempt, reason },
                None,
            )
        }
    };
    if report_step(bus, connection.id, command).await? {
        match created {
            Some(true) => report.adopted += 1,
            Some(false) => report.created += 1,
            None => report.failed += 1,
        }
    }
    Ok(())
}

/// Finds the webhook for the connection's URL and gives it the connection's secret, or creates
/// it: `(hook id, adopted, the repository)`.
async fn ensure_hook(
    api: &HookApi,
    connection: &Connection,
    token: &SecretString,
    secret: &SecretString,
) -> Result<(u64, bool, RepositoryFacts), ProviderError> {
    let (provider, repository, url) = (
        connection.provider,
        &connection.repository,
        &connection.hook_url,
    );
    let facts = api.repository(provider, repository, token).await?;
    let known = &facts;
    let adopt = |hook_id| async move {
        api.update(provider, repository, token, hook_id, url, secret)
            .await
            .map(|()| (hook_id, true, known.clone()))
    };
    let existing = api.hooks(provider, repository, token).await?;
    if let Some(hook) = existing.iter().find(|h| &h.url == url) {
        return adopt(hook.id).await;
    }
    match api.create(provider, repository, token, url, secret).await {
        Ok(hook_id) => Ok((hook_id, false, facts.clone())),
        // GitHub's answer to a second webhook for one URL: another creation won the race.
        Err(ProviderError::Status { status: 422, .. }) => {
            let existing = api.hooks(provider, repository, token).await?;
            match existing.iter().find(|h| &h.url == url) {
                Some(hook) => adopt(hook.id).await,
                None => api
                    .create(provider, repository, token, url, secret)
                    .await
                    .map(|id| (id, false, facts.clone())),
            }
        }
        Err(err) => Err(err),
    }
}

async fn delete(
    bus: &CommandBus,
    vault: &Vault,
    api: &HookApi,
    state: &RepositoryConnection,
    connection: &Connection,
    report: &mut PassReport,
) -> Result<(), PassError> {
    let outcome = async {
        let token = secret(vault, connection.id, SecretKind::Token).await?;
        remove_hooks(api, connection, state.hook_id(), &token)
            .await
            .map_err(|err| err.to_string())
    }
    .await;
    match outcome {
        Ok(hook_ids) => {
            if report_step(
                bus,
                connection.id,
                ConnectionCommand::RecordWebhookDeleted { hook_ids },
            )
            .await?
            {
                report.deleted += 1;
                if let Err(err) = vault.remove(&connection.id.to_string()).await {
                    tracing::warn!(connection = %connection.id, error = %err, "the disconnected connection's secrets stay in the vault");
                }
            }
        }
        Err(reason) => {
            tracing::warn!(connection = %connection.id, %reason, attempts = state.delete_attempts() + 1, "webhook deletion failed; the next pass tries again");
            if report_step(
                bus,
                connection.id,
                ConnectionCommand::RecordWebhookDeleteFailed { reason },
            )
            .await?
            {
                report.delete_failed += 1;
            }
        }
    }
    Ok(())
}

/// Deletes the recorded webhook and every other one posting to the connection's URL.
async fn remove_hooks(
    api: &HookApi,
    connection: &Connection,
    recorded: Option<u64>,
    token: &SecretString,
) -> Result<Vec<u64>, ProviderError> {
    let (provider, repository) = (connection.provider, &connection.repository);
    let mut ids: Vec<u64> = recorded.into_iter().collect();
    match api.hooks(provider, repository, token).await {
        Ok(hooks) => ids.extend(
            hooks
                .iter()
                .filter(|h| h.url == connection.hook_url)
                .map(|h| h.id),
        ),
        // The repository is gone, or the token no longer sees it: nothing of ours is left
        // there that this token could delete.
        Err(ProviderError::Status { status: 404, .. }) => {}
        Err(err) => return Err(err),
    }
    ids.sort_unstable();
    ids.dedup();
    for id in &ids {
        api.delete(provider, repository, token, *id).await?;
    }
    Ok(ids)
}
