//! `hooklog repositories connect|list|retry|disconnect` and `hooklog secrets rotate`: the
//! write side's use cases, the same the admin API calls. The token is read from a file,
//! standard input or `HOOKLOG_REPOSITORY_TOKEN`, never from the command line, and is never
//! printed.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use hooklog_domain::clock::SystemClock;
use hooklog_domain::metadata::CommandMetadata;
use hooklog_domain::repository_connection::ConnectionId;
use hooklog_infra::config::Settings;
use hooklog_write::repositories::{self, ConnectRepository};
use hooklog_write::vault::{Vault, VaultRefused};
use hooklog_write::CommandBus;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::cli::{ConnectRepositoryArgs, RepositoriesCommand, SecretsCommand};
use crate::targets::failed;

pub async fn run(settings: &Settings, command: RepositoriesCommand) -> anyhow::Result<ExitCode> {
    let pool =
        hooklog_infra::postgres::connect_and_migrate(settings.database_url.expose_secret()).await?;
    let bus = CommandBus::new(pool.clone(), Arc::new(SystemClock));
    let meta = CommandMetadata::from_operator("cli", &uuid::Uuid::new_v4().to_string());
    let outcome = match command {
        RepositoriesCommand::Connect(args) => connect(settings, &bus, args, &meta).await,
        RepositoriesCommand::List => list(&bus).await,
        RepositoriesCommand::Retry(args) => match connection(&args.connection) {
            Ok(id) => match repositories::retry(&bus, id, &meta).await {
                Ok(()) => {
                    println!(
                        "{}",
                        json!({"connection_id": id.to_string(), "status": "pending"})
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => Ok(failed(err)),
            },
            Err(code) => Ok(code),
        },
        RepositoriesCommand::Disconnect(args) => match connection(&args.connection) {
            Ok(id) => match repositories::disconnect(&bus, id, &meta).await {
                Ok(status) => {
                    println!(
                        "{}",
                        json!({"connection_id": id.to_string(), "status": status.as_str()})
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => Ok(failed(err)),
            },
            Err(code) => Ok(code),
        },
    };
    pool.close().await;
    outcome
}

fn connection(raw: &str) -> Result<ConnectionId, ExitCode> {
    ConnectionId::parse(raw).map_err(|err| {
        eprintln!("hooklog: {err}");
        ExitCode::from(2)
    })
}

/// The vault, or None when no key is set (the use case then says which setting is missing).
fn vault(settings: &Settings, pool: &sqlx::PgPool) -> anyhow::Result<Option<Vault>> {
    match Vault::from_settings(pool.clone(), settings) {
        Ok(vault) => Ok(Some(vault)),
        Err(VaultRefused::Vault(_)) => Ok(None),
        Err(VaultRefused::Config(err)) => Err(err.into()),
    }
}

fn token(settings: &Settings, args: &ConnectRepositoryArgs) -> anyhow::Result<SecretString> {
    let text = match &args.token_file {
        Some(path) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the token from standard input")?;
            text
        }
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--token-file: cannot read {}", path.display()))?,
        None => settings
            .repository_token
            .as_ref()
            .map(|token| token.expose_secret().to_owned())
            .context(
                "no token: pass --token-file FILE (or `-` for standard input) or set \
                 HOOKLOG_REPOSITORY_TOKEN",
            )?,
    };
    Ok(SecretString::from(text.trim().to_owned()))
}

async fn connect(
    settings: &Settings,
    bus: &CommandBus,
    args: ConnectRepositoryArgs,
    meta: &CommandMetadata,
) -> anyhow::Result<ExitCode> {
    let token = match token(settings, &args) {
        Ok(token) => token,
        Err(err) => {
            eprintln!("hooklog: {err:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let vault = vault(settings, bus.pool())?;
    let request = ConnectRepository {
        provider: args.provider,
        repository: args.repository,
        branch: args.branch,
        token,
    };
    match repositories::connect(
        bus,
        vault.as_ref(),
        settings.public_url.as_deref(),
        request,
        meta,
    )
    .await
    {
        Ok(connected) => {
            println!(
                "{}",
                json!({
                    "connection_id": connected.connection.to_string(),
                    "status": "pending",
                    "hook_url": connected.hook_url,
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Ok(failed(err)),
    }
}

/// Every connection from the event store (no `serve` needed), in id order.
async fn list(bus: &CommandBus) -> anyhow::Result<ExitCode> {
    let connections = bus
        .connections()
        .await
        .context("cannot read the repository connections")?;
    for (id, state) in connections {
        let Some(connection) = state.connection() else {
            continue;
        };
        println!(
            "{}",
            json!({
                "connection_id": id.to_string(),
                "provider": connection.provider.as_str(),
                "repository": connection.repository.as_str(),
                "branch": connection.branch.as_str(),
                "status": state.status().as_str(),
                "hook_url": connection.hook_url,
                "hook_id": state.hook_id(),
                "repository_id": state.repository_id(),
                "attempt": state.attempt(),
                "last_error": state.last_error(),
            })
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn secrets(settings: &Settings, command: SecretsCommand) -> anyhow::Result<ExitCode> {
    let SecretsCommand::Rotate = command;
    let pool =
        hooklog_infra::postgres::connect_and_migrate(settings.database_url.expose_secret()).await?;
    let vault = match Vault::from_settings(pool.clone(), settings) {
        Ok(vault) => vault,
        Err(err) => {
            eprintln!("hooklog: {err}");
            return Ok(ExitCode::from(78));
        }
    };
    let rotated = vault.rotate().await.context("cannot rotate the vault")?;
    println!(
        "{}",
        json!({
            "key_id": vault.key_id(),
            "resealed": rotated.resealed,
            "already_current": rotated.current,
        })
    );
    pool.close().await;
    Ok(ExitCode::SUCCESS)
}
