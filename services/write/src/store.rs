//! An event store that remembers aggregates between commands. cqrs-es 0.5's event-store mode
//! replays an aggregate's whole history on every command; its snapshot and aggregate modes,
//! which would avoid that, apply each new event twice. This store keeps the state and sequence
//! each aggregate had after this process last loaded or committed it, and on the next load
//! reads only the events committed after that sequence (by any process), so a command costs one
//! short query instead of a full replay. The events table stays the only source of truth:
//! nothing cached is ever written, and a commit that conflicts drops the entry. It appends a
//! command's events and its idempotency key in one statement (the table and rows are postgres-es's, so postgres-es reads
//! them back), and after each commit wakes the relay (`NOTIFY`, outside the events transaction).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
use hooklog_domain::metadata::keys;
use postgres_es::PostgresEventRepository;

/// Aggregates remembered per store; beyond it the cache starts afresh (a cold load replays).
const MAX_CACHED: usize = 100_000;

pub struct CachingEventStore<A: Aggregate + Clone> {
    repo: PostgresEventRepository,
    pool: sqlx::PgPool,
    cache: Arc<Cache<A>>,
    wake: Arc<RelayWake>,
}

/// What a process last knew of each aggregate of one type: its state and the sequence of its
/// last event. Shared by the stores of one aggregate type (the command bus's and the batch
/// writer's), never written to the database.
pub struct Cache<A>(Mutex<HashMap<String, (A, usize)>>);

impl<A> Default for Cache<A> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<A: Clone> Cache<A> {
    pub(crate) fn get(&self, id: &str) -> Option<(A, usize)> {
        self.0.lock().expect("cache lock").get(id).cloned()
    }

    pub(crate) fn remember(&self, id: &str, aggregate: A, sequence: usize) {
        let mut cache = self.0.lock().expect("cache lock");
        if cache.len() >= MAX_CACHED && !cache.contains_key(id) {
            cache.clear();
        }
        cache.insert(id.to_owned(), (aggregate, sequence));
    }

    pub(crate) fn forget(&self, id: &str) {
        self.0.lock().expect("cache lock").remove(id);
    }
}

/// Wakes the relay after commits, coalescing: while one `NOTIFY` is on its way, commits only
/// mark the relay dirty, and the notifier sends one more for them when it is done. The last
/// commit is always followed by a wake-up; a lost one only costs the relay's poll interval.
#[derive(Default)]
pub struct RelayWake {
    busy: AtomicBool,
    dirty: AtomicBool,
}

impl RelayWake {
    pub(crate) async fn after_commit(&self, pool: &sqlx::PgPool) {
        self.dirty.store(true, Ordering::SeqCst);
        loop {
            if self.busy.swap(true, Ordering::SeqCst) {
                return; // the notifier in flight will see `dirty`
            }
            while self.dirty.swap(false, Ordering::SeqCst) {
                if let Err(err) = hooklog_infra::postgres::wake_outbox(pool).await {
                    tracing::debug!(error = %err, "cannot wake the relay");
                }
            }
            self.busy.store(false, Ordering::SeqCst);
            // A commit may have marked `dirty` after the last check and found us busy.
            if !self.dirty.load(Ordering::SeqCst) {
                return;
            }
        }
    }
}

impl<A: Aggregate + Clone> CachingEventStore<A> {
    pub fn new(
        repo: PostgresEventRepository,
        pool: sqlx::PgPool,
        cache: Arc<Cache<A>>,
        wake: Arc<RelayWake>,
    ) -> Self {
        Self {
            repo,
            pool,
            cache,
            wake,
        }
    }

    /// Appends the events and, for a keyed command, its idempotency key in one statement (one
    /// round trip, its own transaction; the outbox trigger runs inside it). A duplicate sequence,
    /// or a key another writer already stored, is an optimistic-lock conflict: the bus checks the
    /// key again before deciding again.
    async fn persist(
        &self,
        events: &[SerializedEvent],
        key: Option<&str>,
    ) -> Result<(), AggregateError<A::Error>> {
        let keys: Vec<StoredKey> = match (key, events.first()) {
            (Some(key), Some(first)) => vec![StoredKey {
                aggregate_type: first.aggregate_type.clone(),
                aggregate_id: first.aggregate_id.clone(),
                key: key.to_owned(),
                sequence: first.sequence,
            }],
            _ => vec![],
        };
        append(&self.pool, events, &keys).await
    }

    fn cached(&self, id: &str) -> Option<(A, usize)> {
        self.cache.get(id)
    }

    fn remember(&self, id: &str, aggregate: A, sequence: usize) {
        self.cache.remember(id, aggregate, sequence);
    }

    fn forget(&self, id: &str) {
        self.cache.forget(id);
    }
}

/// An idempotency key to store with the first event of its command.
pub(crate) struct StoredKey {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub key: String,
    pub sequence: usize,
}

/// Appends `events`, in order, and `keys` in one statement: one round trip and one transaction
/// (the outbox trigger runs inside it). The events table's primary key refuses a sequence
/// another writer took, and `command_keys`'s a key already stored: either fails the whole
/// statement as a conflict, and nothing of it is written.
pub(crate) async fn append<E: std::error::Error>(
    pool: &sqlx::PgPool,
    events: &[SerializedEvent],
    keys: &[StoredKey],
) -> Result<(), AggregateError<E>> {
    let column = |f: fn(&SerializedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
    let key_column = |f: fn(&StoredKey) -> String| keys.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "WITH appended AS ( \
             INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             SELECT t, i, s, e, v, p::json, m::json \
             FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) \
                  WITH ORDINALITY AS u(t, i, s, e, v, p, m, n) ORDER BY n \
             RETURNING 1) \
         INSERT INTO command_keys (aggregate_type, aggregate_id, idempotency_key, sequence) \
         SELECT t, i, k, s FROM UNNEST($8::text[], $9::text[], $10::text[], $11::bigint[]) AS k(t, i, k, s)",
    )
    .bind(column(|e| e.aggregate_type.clone()))
    .bind(column(|e| e.aggregate_id.clone()))
    .bind(events.iter().map(|e| e.sequence as i64).collect::<Vec<_>>())
    .bind(column(|e| e.event_type.clone()))
    .bind(column(|e| e.event_version.clone()))
    .bind(column(|e| e.payload.to_string()))
    .bind(column(|e| e.metadata.to_string()))
    .bind(key_column(|k| k.aggregate_type.clone()))
    .bind(key_column(|k| k.aggregate_id.clone()))
    .bind(key_column(|k| k.key.clone()))
    .bind(keys.iter().map(|k| k.sequence as i64).collect::<Vec<_>>())
    .execute(pool)
    .await
    .map(drop)
    .map_err(append_error)
}

/// An append's failure: a duplicate sequence or key (`23505`) is an optimistic-lock conflict.
pub(crate) fn append_error<E: std::error::Error>(err: sqlx::Error) -> AggregateError<E> {
    match err {
        sqlx::Error::Database(err) if err.code().as_deref() == Some("23505") => {
            AggregateError::AggregateConflict
        }
        err @ (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) => {
            AggregateError::DatabaseConnectionError(Box::new(err))
        }
        err => AggregateError::UnexpectedError(Box::new(err)),
    }
}

pub(crate) fn deserialize<A: Aggregate>(
    events: Vec<SerializedEvent>,
) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
    events
        .into_iter()
        .map(|e| EventEnvelope::<A>::try_from(e).map_err(AggregateError::from))
        .collect()
}

impl<A: Aggregate + Clone> EventStore<A> for CachingEventStore<A> {
    type AC = EventStoreAggregateContext<A>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        deserialize(self.repo.get_events::<A>(aggregate_id).await?)
    }

    async fn load_aggregate(
        &self,
        aggregate_id: &str,
    ) -> Result<Self::AC, AggregateError<A::Error>> {
        let (mut aggregate, mut sequence) = self.cached(aggregate_id).unwrap_or_default();
        let newer = if sequence == 0 {
            self.repo.get_events::<A>(aggregate_id).await?
        } else {
            self.repo
                .get_last_events::<A>(aggregate_id, sequence)
                .await?
        };
        let newer = deserialize::<A>(newer)?;
        if !newer.is_empty() {
            for envelope in newer {
                sequence = envelope.sequence;
                aggregate.apply(envelope.payload);
            }
            self.remember(aggregate_id, aggregate.clone(), sequence);
        }
        Ok(EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_owned(),
            aggregate,
            current_sequence: sequence,
            current_snapshot: None,
        })
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: Self::AC,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let id = context.aggregate_id;
        let wrapped: Vec<EventEnvelope<A>> = events
            .into_iter()
            .enumerate()
            .map(|(i, payload)| EventEnvelope {
                aggregate_id: id.clone(),
                sequence: context.current_sequence + i + 1,
                payload,
                metadata: metadata.clone(),
            })
            .collect();
        if wrapped.is_empty() {
            return Ok(wrapped);
        }
        let serialized = wrapped
            .iter()
            .map(SerializedEvent::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let key = metadata.get(keys::IDEMPOTENCY_KEY).map(String::as_str);
        if let Err(err) = self.persist(&serialized, key).await {
            self.forget(&id);
            return Err(err);
        }
        // `handle` applied the new events to the context's aggregate as it wrote them (cqrs-es's
        // `EventSink`), so it is already the state after this commit.
        let last = context.current_sequence + wrapped.len();
        self.remember(&id, context.aggregate, last);
        self.wake.after_commit(&self.pool).await;
        Ok(wrapped)
    }
}
