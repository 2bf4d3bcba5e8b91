//! The command bus: the one way commands reach the aggregates, for every edge (the worker, the
//! process manager, the syncer, the admin API and the CLI). It runs cqrs-es over postgres-es in
//! event-store mode and stores each command's metadata with its events.
//!
//! **Idempotency that holds under concurrency.** A command that carries an idempotency key (a
//! delivery and its cause, or the process manager's causing event and step) runs at most once
//! per aggregate:
//! - the key is written to `command_keys` in the same statement (hence transaction) that
//!   appends the command's first event, and the table's primary key refuses a second row: of two
//!   processes running the same keyed command at once, the second one's append fails as a
//!   conflict, whatever it decided;
//! - the key is checked before each attempt, including every attempt after a conflict, so the
//!   loser of that race finds the winner's key and answers `AlreadyApplied` instead of deciding
//!   again on the new state.
//!
//! A keyed command that decided nothing leaves no key, so it may run again; it changed nothing.

use std::sync::Arc;

use cqrs_es::{
    Aggregate, AggregateContext, AggregateError, CqrsFramework, EventEnvelope, EventStore,
};
use hooklog_domain::clock::Clock;
use hooklog_domain::connector_instance::{ConnectorInstance, InstanceServices};
use hooklog_domain::connector_target::{ConnectorTarget, TargetServices};
use hooklog_domain::delivery::{Delivery, DeliveryKey};
use hooklog_domain::github_delivery::GithubDelivery;
use hooklog_domain::ids::{InstanceId, TargetId};
use hooklog_domain::metadata::{keys, CommandMetadata};
use hooklog_domain::repository_connection::{ConnectionId, RepositoryConnection};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;

use crate::error::CommandError;
use crate::store::{Cache, CachingEventStore, RelayWake};

/// What running a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executed {
    /// The aggregate handled it (and committed whatever events it decided on, maybe none).
    Handled,
    /// Its delivery and cause had already left events on this aggregate: nothing was run.
    AlreadyApplied,
}

/// Conflicts retried (after a short, growing, jittered pause) before `CommandError::Conflict` is
/// returned and the caller's slower retry takes over.
const CONFLICT_RETRIES: u32 = 20;

/// The write side of one aggregate type: cqrs-es over the caching store (event-store mode: the
/// events table is the only truth), and a second store to read state without running commands.
/// Both stores share one cache, which the batch writer (`crate::batch`) reads and updates too.
pub(crate) struct Side<A: Aggregate + Clone> {
    cqrs: CqrsFramework<A, CachingEventStore<A>>,
    pub(crate) store: CachingEventStore<A>,
    pub(crate) cache: Arc<Cache<A>>,
    pub(crate) services: A::Services,
}

impl<A: Aggregate + Clone> Side<A>
where
    A::Services: Clone,
{
    fn new(pool: &PgPool, services: A::Services, wake: &Arc<RelayWake>) -> Self {
        let cache = Arc::new(Cache::default());
        let store = || {
            let repo = PostgresEventRepository::new(pool.clone());
            CachingEventStore::new(repo, pool.clone(), cache.clone(), wake.clone())
        };
        Self {
            cqrs: CqrsFramework::new(store(), vec![], services.clone()),
            store: store(),
            cache: cache.clone(),
            services,
        }
    }
}

/// Lock stripes: commands to one aggregate run one at a time within a process, so they never
/// conflict with each other; only other processes' commands can (and are retried).
const STRIPES: usize = 256;

#[derive(Clone)]
pub struct CommandBus {
    pool: PgPool,
    pub(crate) wake: Arc<RelayWake>,
    pub(crate) instances: Arc<Side<ConnectorInstance>>,
    pub(crate) targets: Arc<Side<ConnectorTarget>>,
    pub(crate) deliveries: Arc<Side<Delivery>>,
    github_deliveries: Arc<Side<GithubDelivery>>,
    pub(crate) connections: Arc<Side<RepositoryConnection>>,
    stripes: Arc<Vec<tokio::sync::Mutex<()>>>,
}

impl CommandBus {
    pub fn new(pool: PgPool, clock: Arc<dyn Clock>) -> Self {
        let wake = Arc::new(RelayWake::default());
        let instance_services = InstanceServices {
            clock: clock.clone(),
        };
        let instances = Side::new(&pool, instance_services, &wake);
        let targets = Side::new(
            &pool,
            TargetServices {
                clock: clock.clone(),
            },
            &wake,
        );
        let deliveries = Side::new(
            &pool,
            TargetServices {
                clock: clock.clone(),
            },
            &wake,
        );
        let github_deliveries = Side::new(
            &pool,
            TargetServices {
                clock: clock.clone(),
            },
            &wake,
        );
        let connections = Side::new(&pool, TargetServices { clock }, &wake);
        Self {
            pool,
            wake,
            instances: Arc::new(instances),
            targets: Arc::new(targets),
            deliveries: Arc::new(deliveries),
            github_deliveries: Arc::new(github_deliveries),
            connections: Arc::new(connections),
            stripes: Arc::new((0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect()),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    #[tracing::instrument(skip_all, fields(aggregate_id = %id, command = ?command))]
    pub async fn instance(
        &self,
        id: InstanceId,
        command: <ConnectorInstance as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> Result<Executed, CommandError<<ConnectorInstance as Aggregate>::Error>> {
        self.execute(&self.instances, &id.to_string(), command, metadata, true)
            .await
    }

    #[tracing::instrument(skip_all, fields(aggregate_id = %id, command = ?command))]
    pub async fn target(
        &self,
        id: TargetId,
        command: <ConnectorTarget as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> Result<Executed, CommandError<<ConnectorTarget as Aggregate>::Error>> {
        self.execute(&self.targets, &id.to_string(), command, metadata, true)
            .await
    }

    /// Records what the worker decided about a delivery (once per delivery id).
    #[tracing::instrument(skip_all, fields(aggregate_id = %id))]
    pub async fn delivery(
        &self,
        id: &DeliveryKey,
        command: <Delivery as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> Result<Executed, CommandError<<Delivery as Aggregate>::Error>> {
        // Unkeyed: a delivery takes one decision by its own rule, and the second writer of a
        // race loses on the event's sequence; a key would only cost a lookup and a row.
        self.execute(&self.deliveries, &id.0, command, metadata, false)
            .await
    }

    /// What was decided about a delivery; nothing yet: not decided.
    pub async fn load_delivery(
        &self,
        id: &DeliveryKey,
    ) -> Result<Delivery, CommandError<<Delivery as Aggregate>::Error>> {
        load(&self.deliveries.store, &id.0).await
    }

    /// Records what the GitHub reconciler found or asked about a GitHub-side delivery.
    #[tracing::instrument(skip_all, fields(guid = %guid))]
    pub async fn github_delivery(
        &self,
        guid: &str,
        command: <GithubDelivery as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> Result<Executed, CommandError<<GithubDelivery as Aggregate>::Error>> {
        // Unkeyed: each command names the step it takes, which the aggregate refuses unless it
        // is the step due, so the loser of a race decides nothing.
        let id = DeliveryKey::for_delivery(guid);
        self.execute(&self.github_deliveries, &id.0, command, metadata, false)
            .await
    }

    /// What is known of a GitHub-side delivery; nothing yet: never recorded missing.
    pub async fn load_github_delivery(
        &self,
        guid: &str,
    ) -> Result<GithubDelivery, CommandError<<GithubDelivery as Aggregate>::Error>> {
        load(
            &self.github_deliveries.store,
            &DeliveryKey::for_delivery(guid).0,
        )
        .await
    }

    /// Runs a command on a repository connection.
    #[tracing::instrument(skip_all, fields(aggregate_id = %id, command = ?command))]
    pub async fn connection(
        &self,
        id: ConnectionId,
        command: <RepositoryConnection as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> Result<Executed, CommandError<<RepositoryConnection as Aggregate>::Error>> {
        // Keyed by delivery, like instance and target commands (a workflow run redelivered
        // records nothing); admins' and the repositories role's commands carry no key: each
        // report names the attempt or state it is about, which the aggregate refuses unless it
        // is the one awaited.
        self.execute(&self.connections, &id.to_string(), command, metadata, true)
            .await
    }

    pub async fn load_connection(
        &self,
        id: ConnectionId,
    ) -> Result<RepositoryConnection, CommandError<<RepositoryConnection as Aggregate>::Error>>
    {
        load(&self.connections.store, &id.to_string()).await
    }

    /// Every repository connection that ever had an event, in id order.
    pub async fn connection_ids(&self) -> Result<Vec<ConnectionId>, sqlx::Error> {
        Ok(self
            .aggregate_ids(RepositoryConnection::TYPE)
            .await?
            .iter()
            .filter_map(|id| ConnectionId::parse(id).ok())
            .collect())
    }

    /// Every repository connection that ever had an event, with its state, in id order (the
    /// repositories role, the ingress's directory, the CLI and the duplicate-branch check all
    /// look at every connection).
    pub async fn connections(
        &self,
    ) -> Result<
        Vec<(ConnectionId, RepositoryConnection)>,
        CommandError<<RepositoryConnection as Aggregate>::Error>,
    > {
        let ids = self
            .connection_ids()
            .await
            .map_err(|err| CommandError::Unavailable(err.to_string()))?;
        let mut connections = Vec::with_capacity(ids.len());
        for id in ids {
            connections.push((id, self.load_connection(id).await?));
        }
        Ok(connections)
    }

    pub async fn load_instance(
        &self,
        id: InstanceId,
    ) -> Result<ConnectorInstance, CommandError<<ConnectorInstance as Aggregate>::Error>> {
        load(&self.instances.store, &id.to_string()).await
    }

    pub async fn load_target(
        &self,
        id: TargetId,
    ) -> Result<ConnectorTarget, CommandError<<ConnectorTarget as Aggregate>::Error>> {
        load(&self.targets.store, &id.to_string()).await
    }

    /// The stored events of an instance, in order (the CLI finishes its own cascade from them).
    pub async fn instance_events(
        &self,
        id: InstanceId,
    ) -> Result<
        Vec<EventEnvelope<ConnectorInstance>>,
        CommandError<<ConnectorInstance as Aggregate>::Error>,
    > {
        Ok(self.instances.store.load_events(&id.to_string()).await?)
    }

    /// The stored events of a delivery's decisions, in order.
    pub async fn delivery_events(
        &self,
        id: &DeliveryKey,
    ) -> Result<Vec<EventEnvelope<Delivery>>, CommandError<<Delivery as Aggregate>::Error>> {
        Ok(self.deliveries.store.load_events(&id.0).await?)
    }

    /// The stored events of a target, in order.
    pub async fn target_events(
        &self,
        id: TargetId,
    ) -> Result<
        Vec<EventEnvelope<ConnectorTarget>>,
        CommandError<<ConnectorTarget as Aggregate>::Error>,
    > {
        Ok(self.targets.store.load_events(&id.to_string()).await?)
    }

    /// Every target that ever had an event, in id order.
    pub async fn target_ids(&self) -> Result<Vec<TargetId>, sqlx::Error> {
        Ok(self
            .aggregate_ids(ConnectorTarget::TYPE)
            .await?
            .iter()
            .filter_map(|id| TargetId::parse(id).ok())
            .collect())
    }

    /// The ids of every aggregate of `aggregate_type` that has an event, in order.
    async fn aggregate_ids(&self, aggregate_type: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = $1 ORDER BY 1",
        )
        .bind(aggregate_type)
        .fetch_all(&self.pool)
        .await
    }

    async fn execute<A: Aggregate + Clone>(
        &self,
        side: &Side<A>,
        id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        keyed: bool,
    ) -> Result<Executed, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        let stripe = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (A::TYPE, id).hash(&mut hasher);
            (hasher.finish() % STRIPES as u64) as usize
        };
        let _serialized = self.stripes[stripe].lock().await;
        let key = metadata.idempotency_key().filter(|_| keyed);
        let mut stored = metadata.to_map();
        if key.is_none() {
            stored.remove(keys::IDEMPOTENCY_KEY);
        }
        // A conflict means another command committed to the aggregate first: load it again and
        // decide again, a few times, before leaving it to the caller's slower retry. The key is
        // checked before every attempt: the command that won may have been this very one.
        let mut conflicts = 0;
        loop {
            if let Some(key) = &key {
                if self.applied(A::TYPE, id, key).await? {
                    tracing::debug!(idempotency_key = %key, "already applied");
                    return Ok(Executed::AlreadyApplied);
                }
            }
            let attempt = side
                .cqrs
                .execute_with_metadata(id, command.clone(), stored.clone())
                .await;
            match attempt {
                Ok(()) => return Ok(Executed::Handled),
                Err(AggregateError::AggregateConflict) if conflicts < CONFLICT_RETRIES => {
                    conflicts += 1;
                    // Another process won the race: let it finish before deciding again, at a
                    // jittered moment so two processes do not keep colliding in step.
                    tokio::time::sleep(conflict_pause(conflicts)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    async fn applied<E: std::error::Error>(
        &self,
        aggregate_type: &str,
        id: &str,
        key: &str,
    ) -> Result<bool, CommandError<E>> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM command_keys WHERE aggregate_type = $1 \
             AND aggregate_id = $2 AND idempotency_key = $3)",
        )
        .bind(aggregate_type)
        .bind(id)
        .bind(key)
        .fetch_one(&self.pool)
        .await
        .map_err(|err| CommandError::Unavailable(err.to_string()))
    }
}

/// 1 ms more per attempt (at most 10 ms), plus up to 1 ms of jitter from the clock.
fn conflict_pause(attempt: u32) -> std::time::Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 1_000_000);
    std::time::Duration::from_millis(u64::from(attempt.min(10)))
        + std::time::Duration::from_nanos(u64::from(jitter))
}

async fn load<A: Aggregate + Clone>(
    store: &CachingEventStore<A>,
    id: &str,
) -> Result<A, CommandError<A::Error>> {
    let mut context = store.load_aggregate(id).await?;
    Ok(std::mem::take(context.aggregate()))
}
