//! The use cases of repositories connected without the App: connect, retry the webhook,
//! disconnect. One each, for the admin API and the CLI alike. Each records one command; the
//! provider is called by the `repositories` role, never in a request.

use hooklog_domain::github::WebhookSecret;
use hooklog_domain::ids::Branch;
use hooklog_domain::metadata::CommandMetadata;
use hooklog_domain::repository_connection::{
    ConnectionCommand, ConnectionError, ConnectionId, ConnectionStatus, Provider,
    ProviderRepository,
};
use secrecy::{ExposeSecret, SecretString};

use crate::bus::CommandBus;
use crate::error::{CommandError, ErrorClass, UseCaseError};
use crate::vault::{random_secret, SecretKind, Vault, VaultError};

/// Random bytes of a webhook secret hooklog makes (as hex, twice as many characters).
pub const WEBHOOK_SECRET_BYTES: usize = 32;
/// Longest provider token taken.
const MAX_TOKEN_CHARS: usize = 1024;

/// Where GitHub posts a connection's deliveries, under `HOOKLOG_PUBLIC_URL`.
pub const GITHUB_HOOK_PATH: &str = "/v1/webhooks/repositories";
/// Where GitLab posts a connection's deliveries.
pub const GITLAB_HOOK_PATH: &str = "/v1/webhooks/gitlab";

/// Connect one branch of a repository, as the caller wrote it.
#[derive(Debug, Clone)]
pub struct ConnectRepository {
    /// `github` or `gitlab`.
    pub provider: String,
    pub repository: String,
    pub branch: String,
    /// GitHub: a token with `admin:repo_hook` (or webhook write); GitLab: a project token
    /// with `api`.
    pub token: SecretString,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    pub connection: ConnectionId,
    pub hook_url: String,
    /// The id (never the value) of the webhook's secret.
    pub secret_id: String,
}

/// The URL the provider posts `connection`'s deliveries to.
pub fn hook_url(public_url: &str, provider: Provider, connection: ConnectionId) -> String {
    let path = match provider {
        Provider::Github => GITHUB_HOOK_PATH,
        Provider::Gitlab => GITLAB_HOOK_PATH,
    };
    format!("{}{path}/{connection}", public_url.trim_end_matches('/'))
}

fn vault_failed(err: VaultError) -> UseCaseError {
    match err {
        VaultError::NoKey => UseCaseError::new(
            ErrorClass::Unconfigured,
            "secrets_key_not_set",
            err.to_string(),
        ),
        VaultError::Database(_) => {
            UseCaseError::new(ErrorClass::Retryable, "store_unavailable", err.to_string())
        }
        _ => UseCaseError::new(ErrorClass::Corrupt, "vault_corrupt", err.to_string()),
    }
}

/// Connects the branch: a fresh secret and the token are sealed in the vault, then the
/// connection is recorded (`pending`); the `repositories` role creates the webhook. Refused
/// without `HOOKLOG_SECRETS_KEY` (`vault` None) or `HOOKLOG_PUBLIC_URL`, and while the same
/// branch has a connection that is not disconnected.
pub async fn connect(
    bus: &CommandBus,
    vault: Option<&Vault>,
    public_url: Option<&str>,
    request: ConnectRepository,
    meta: &CommandMetadata,
) -> Result<Connected, UseCaseError> {
    let provider = Provider::parse(&request.provider)
        .map_err(|e| UseCaseError::invalid("provider", "invalid_provider", e))?;
    let repository = ProviderRepository::parse(provider, &request.repository)
        .map_err(|e| UseCaseError::invalid("repository", "invalid_repository", e))?;
    let branch = Branch::parse(&request.branch)
        .map_err(|e| UseCaseError::invalid("branch", "invalid_branch", e))?;
    let token = request.token.expose_secret();
    if token.is_empty()
        || token.chars().count() > MAX_TOKEN_CHARS
        || token.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        // Never echoes the token.
        return Err(UseCaseError::invalid(
            "token",
            "invalid_token",
            format!(
                "the token is empty, longer than {MAX_TOKEN_CHARS} characters, or has \
                 whitespace or control characters"
            ),
        ));
    }
    let vault = vault.ok_or_else(|| vault_failed(VaultError::NoKey))?;
    let public_url = public_url.ok_or_else(|| {
        UseCaseError::new(
            ErrorClass::Unconfigured,
            "public_url_not_set",
            "HOOKLOG_PUBLIC_URL is not set: hooklog needs its own public base URL to point \
             the webhook at",
        )
    })?;
    if let Some(existing) = live_connection(bus, provider, &repository, &branch).await? {
        return Err(UseCaseError::new(
            ErrorClass::Refused,
            "already_connected",
            format!(
                "{provider} repository {repository} branch {branch} is connected already \
                 (connection {existing})"
            ),
        ));
    }
    let connection = ConnectionId::random();
    let secret = random_secret(WEBHOOK_SECRET_BYTES);
    let secret_id = WebhookSecret::new(secret.expose_secret()).id().to_string();
    let owner = connection.to_string();
    vault
        .put(&owner, SecretKind::WebhookSecret, &secret)
        .await
        .map_err(vault_failed)?;
    vault
        .put(&owner, SecretKind::Token, &request.token)
        .await
        .map_err(vault_failed)?;
    let hook_url = hook_url(public_url, provider, connection);
    let command = ConnectionCommand::Connect {
        connection_id: connection,
        provider,
        repository,
        branch,
        hook_url: hook_url.clone(),
        secret_id: secret_id.clone(),
    };
    bus.connection(connection, command, meta)
        .await
        .map_err(|e| refused(connection, e))?;
    Ok(Connected {
        connection,
        hook_url,
        secret_id,
    })
}

/// The connection of `repository`'s `branch` at `provider` that is not disconnected, read from
/// the event store (the CLI runs without a projector): names compare case-insensitively, as
/// both providers treat them.
async fn live_connection(
    bus: &CommandBus,
    provider: Provider,
    repository: &ProviderRepository,
    branch: &Branch,
) -> Result<Option<ConnectionId>, UseCaseError> {
    let connections = bus
        .connections()
        .await
        .map_err(|e| UseCaseError::command("command_rejected", e))?;
    for (id, state) in connections {
        let same = state.connection().is_some_and(|c| {
            c.provider == provider
                && c.repository
                    .as_str()
                    .eq_ignore_ascii_case(repository.as_str())
                && &c.branch == branch
        });
        if same && state.status() != ConnectionStatus::Disconnected {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

fn refused(connection: ConnectionId, err: CommandError<ConnectionError>) -> UseCaseError {
    let code = match err.refusal() {
        Some(ConnectionError::NotConnected) => {
            return UseCaseError::not_found(
                "connection_not_found",
                format_args!("repository connection {connection}"),
            )
        }
        Some(ConnectionError::Disconnected) => "already_disconnected",
        Some(ConnectionError::AlreadyConnected) => "already_connected",
        Some(ConnectionError::NotDue { .. }) => "not_failed",
        Some(ConnectionError::OtherRepository { .. }) | None => "command_rejected",
    };
    UseCaseError::command(code, err)
}

/// Asks for another attempt at creating a failed connection's webhook.
pub async fn retry(
    bus: &CommandBus,
    connection: ConnectionId,
    meta: &CommandMetadata,
) -> Result<(), UseCaseError> {
    bus.connection(connection, ConnectionCommand::RetryWebhook, meta)
        .await
        .map(|_| ())
        .map_err(|e| refused(connection, e))
}

/// Disconnects: deliveries are refused from now on; the `repositories` role deletes the
/// webhook, then the connection is disconnected. Asking again while that runs changes nothing.
pub async fn disconnect(
    bus: &CommandBus,
    connection: ConnectionId,
    meta: &CommandMetadata,
) -> Result<ConnectionStatus, UseCaseError> {
    bus.connection(connection, ConnectionCommand::Disconnect, meta)
        .await
        .map_err(|e| refused(connection, e))?;
    let state = bus
        .load_connection(connection)
        .await
        .map_err(|e| refused(connection, e))?;
    Ok(state.status())
}
