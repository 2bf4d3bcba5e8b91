//! An event store that remembers aggregates between commands. cqrs-es 0.5's event-store mode
//! replays an aggregate's whole history on every command; its snapshot and aggregate modes,
//! which would avoid that, apply each new event twice. This store keeps the state and sequence
//! each aggregate had after this process last loaded or committed it, and on the next load
//! reads only the events committed after that sequence (by any process), so a command costs one
//! short query instead of a full replay. The events table stays the only source of truth:
//! nothing cached is ever written, and a commit that conflicts drops the entry. After each
//! commit it wakes the relay (`NOTIFY`, outside the events transaction).

use std::collections::HashMap;
use std::sync::Mutex;

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;

/// Aggregates remembered per store; beyond it the cache starts afresh (a cold load replays).
const MAX_CACHED: usize = 100_000;

pub struct CachingEventStore<A: Aggregate + Clone> {
    repo: PostgresEventRepository,
    /// Where the relay is woken after a commit.
    pool: sqlx::PgPool,
    cache: Mutex<HashMap<String, (A, usize)>>,
}

impl<A: Aggregate + Clone> CachingEventStore<A> {
    pub fn new(repo: PostgresEventRepository, pool: sqlx::PgPool) -> Self {
        Self {
            repo,
            pool,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, id: &str) -> Option<(A, usize)> {
        self.cache.lock().expect("cache lock").get(id).cloned()
    }

    fn remember(&self, id: &str, aggregate: A, sequence: usize) {
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= MAX_CACHED && !cache.contains_key(id) {
            cache.clear();
        }
        cache.insert(id.to_owned(), (aggregate, sequence));
    }

    fn forget(&self, id: &str) {
        self.cache.lock().expect("cache lock").remove(id);
    }
}

fn deserialize<A: Aggregate>(
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
        match self.repo.persist::<A>(&serialized, None).await {
            Ok(()) => {
                // `handle` applied the new events to the context's aggregate as it wrote them
                // (cqrs-es's `EventSink`), so it is already the state after this commit.
                let last = context.current_sequence + wrapped.len();
                self.remember(&id, context.aggregate, last);
                // Wake the relay; a lost wake-up only costs its poll interval.
                if let Err(err) = hooklog_infra::postgres::wake_outbox(&self.pool).await {
                    tracing::debug!(error = %err, "cannot wake the relay");
                }
                Ok(wrapped)
            }
            Err(err) => {
                self.forget(&id);
                Err(err.into())
            }
        }
    }
}
