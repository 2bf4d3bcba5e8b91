//! Keeps the ingress's [`ConnectionSecrets`] in step with the connections: every connection
//! whose state takes deliveries (`pending`, `active`, `failed`), with its webhook secret opened
//! from the vault. Read from the aggregates (the event store), not a read model, so a
//! connection made a moment ago takes its webhook's first ping, and one disconnected a moment
//! ago takes nothing more.
//!
//! Loaded at start, again on every `RepositoryConnection` event the relay publishes (within
//! milliseconds of the commit), and every `interval` as a backstop. A load that fails keeps
//! the directory as it was (the ingress goes on with what it knew) and is retried; a secret
//! that does not open (a row altered, a key missing) leaves out that connection alone.

use std::time::Duration;

use hooklog_domain::github::WebhookSecret;
use hooklog_domain::repository_connection::Provider;
use hooklog_ingress::ConnectionSecrets;
use hooklog_write::vault::{SecretKind, Vault};
use hooklog_write::CommandBus;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

/// The connections that take deliveries, with their secrets.
pub async fn load(
    bus: &CommandBus,
    vault: &Vault,
) -> Result<Vec<(uuid::Uuid, Provider, WebhookSecret)>, String> {
    // A secret that does not open leaves its connection out (named in the log), not the others.
    let secrets: std::collections::HashMap<String, secrecy::SecretString> = vault
        .all(SecretKind::WebhookSecret)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|(owner, secret)| {
            secret
                .inspect_err(|err| tracing::error!(connection = %owner, error = %err, "a connection's webhook secret does not open; its deliveries are refused"))
                .ok()
                .map(|secret| (owner, secret))
        })
        .collect();
    let mut taking = vec![];
    for (id, state) in bus.connections().await.map_err(|e| e.to_string())? {
        let Some(connection) = state.connection() else {
            continue;
        };
        if !state.status().accepts_deliveries() {
            continue;
        }
        match secrets.get(&id.to_string()) {
            Some(secret) => taking.push((
                id.0,
                connection.provider,
                WebhookSecret::new(secret.expose_secret()),
            )),
            None => {
                tracing::warn!(connection = %id, "connection takes deliveries but its webhook secret is not in the vault")
            }
        }
    }
    Ok(taking)
}

/// Keeps `directory` loaded until `shutdown`.
pub async fn keep(
    bus: CommandBus,
    vault: Vault,
    nats: async_nats::Client,
    directory: ConnectionSecrets,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut wake = nats.subscribe(crate::events_subject()).await.ok();
    if wake.is_none() {
        tracing::warn!("cannot subscribe to connection events; the ingress's connections are reloaded on the interval only");
    }
    loop {
        match load(&bus, &vault).await {
            Ok(taking) => {
                let count = taking.len();
                directory.replace(taking);
                tracing::debug!(connections = count, "ingress connections loaded");
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot load the ingress's connections; keeping the last ones")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
            Some(_) = crate::next(&mut wake) => {}
        }
    }
}
