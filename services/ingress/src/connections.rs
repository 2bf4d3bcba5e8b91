//! The webhook secrets of repository connections, by connection id: what
//! `POST /v1/webhooks/repositories/{connection_id}` verifies a delivery with. The id in the
//! path picks the one secret a delivery may be signed with, so nothing of the request is
//! parsed before that secret's signature holds, and a delivery signed with another
//! connection's secret is refused like a forged one.
//!
//! The ingress never reads PostgreSQL: whoever can open the vault fills this directory
//! (`hooklog serve` loads it at start, again on each `RepositoryConnection` event and on an
//! interval) and removes a connection the moment it is disconnected. An id not here answers
//! 404 before the body is read.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use hooklog_domain::github::WebhookSecret;
use hooklog_domain::repository_connection::Provider;
use uuid::Uuid;

#[derive(Clone, Default)]
pub struct ConnectionSecrets {
    secrets: Arc<RwLock<HashMap<Uuid, (Provider, WebhookSecret)>>>,
}

impl std::fmt::Debug for ConnectionSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSecrets")
            .field("connections", &self.len())
            .finish()
    }
}

impl ConnectionSecrets {
    /// Replaces the whole directory with `secrets` (the connections that take deliveries, each
    /// at its provider's path only).
    pub fn replace(&self, secrets: impl IntoIterator<Item = (Uuid, Provider, WebhookSecret)>) {
        let fresh: HashMap<_, _> = secrets
            .into_iter()
            .map(|(id, provider, secret)| (id, (provider, secret)))
            .collect();
        *self.secrets.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    /// Forgets one connection: its deliveries are refused from now on.
    pub fn remove(&self, connection: Uuid) {
        self.secrets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&connection);
    }

    pub fn get(&self, connection: Uuid) -> Option<(Provider, WebhookSecret)> {
        self.secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&connection)
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.secrets.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
