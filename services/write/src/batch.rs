//! The batch writer: many commands, to many aggregates, decided in memory and committed in one
//! statement, so a consumer that takes work in batches (the worker) pays three round trips for a
//! whole batch instead of several per command.
//!
//! **The same decisions as the command bus.** A command in a batch runs the aggregate's own
//! `handle` on the state the events table holds (what this process cached, brought up to date by
//! the events committed since), and later commands to the same aggregate in the batch see the
//! events of earlier ones, in the order they were sent: per aggregate, the batch decides exactly
//! what running the commands one after another through the bus would have decided, with the
//! same metadata on every event and the same idempotency keys.
//!
//! **All or nothing.** `commit` appends every event and key of the batch in one statement (one
//! transaction; the outbox trigger runs inside it). Any other writer that appended to one of the
//! batch's aggregates since it was loaded, or stored one of its keys, makes the statement fail on
//! the events table's or `command_keys`'s primary key: nothing of the batch is written, and the
//! caller runs its work again (the worker, one delivery at a time through the bus, whose
//! conflict retries settle the race). Nothing is ever half committed.
//!
//! **A failure stays with its unit.** A caller that gives up on one unit of work inside the
//! batch (a poison delivery) rolls back to the savepoint it took before it: the other units'
//! commands stand and commit.
//!
//! **Idempotency.** Keyed commands are checked against `command_keys` as loaded with their
//! aggregates and against the keys the batch itself holds: a command whose key is there answers
//! `AlreadyApplied` and runs nothing. A key the check could not see (stored since, or not among
//! the batch's candidates) is refused by the table's primary key at commit: a conflict.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, AggregateError, EventEnvelope};
use hooklog_domain::connector_instance::ConnectorInstance;
use hooklog_domain::connector_target::ConnectorTarget;
use hooklog_domain::delivery::{Delivery, DeliveryKey};
use hooklog_domain::ids::{InstanceId, TargetId};
use hooklog_domain::metadata::{keys, CommandMetadata};
use hooklog_domain::repository_connection::{ConnectionId, RepositoryConnection};

use crate::bus::{CommandBus, Executed, Side};
use crate::commands::{self, Commands};
use crate::error::CommandError;
use crate::store::{append, deserialize, StoredKey};

/// An aggregate a batch will touch, named before it runs so that it is loaded with the others.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AggregateRef {
    Instance(InstanceId),
    Target(TargetId),
    Delivery(DeliveryKey),
    Connection(ConnectionId),
}

impl AggregateRef {
    fn parts(&self) -> (&'static str, String) {
        match self {
            Self::Instance(id) => (ConnectorInstance::TYPE, id.to_string()),
            Self::Target(id) => (ConnectorTarget::TYPE, id.to_string()),
            Self::Delivery(key) => (Delivery::TYPE, key.0.clone()),
            Self::Connection(id) => (RepositoryConnection::TYPE, id.to_string()),
        }
    }
}

/// One aggregate as the batch holds it.
#[derive(Clone)]
struct Loaded<A> {
    aggregate: A,
    sequence: usize,
    /// Whether the batch added events to it (then the cache learns its new state on commit).
    touched: bool,
}

/// A point to roll back to: what the batch held before one unit of work began.
#[derive(Debug, Clone, Copy)]
pub struct Savepoint {
    events: usize,
    keys: usize,
    journal: usize,
}

/// Where each loaded aggregate lives in the batch; one map per aggregate type.
#[derive(Default)]
struct Held {
    instances: HashMap<String, Loaded<ConnectorInstance>>,
    targets: HashMap<String, Loaded<ConnectorTarget>>,
    deliveries: HashMap<String, Loaded<Delivery>>,
    connections: HashMap<String, Loaded<RepositoryConnection>>,
    /// Keys stored (`command_keys`) or added by this batch, as (type, id, key).
    keys: HashSet<(String, String, String)>,
    /// Keys this batch adds, with the sequence of their command's first event.
    new_keys: Vec<(String, String, String, usize)>,
    events: Vec<SerializedEvent>,
    /// What each command replaced, newest last, for `rollback`.
    journal: Vec<Replaced>,
}

enum Replaced {
    Instance(String, Box<Loaded<ConnectorInstance>>),
    Target(String, Box<Loaded<ConnectorTarget>>),
    Delivery(String, Box<Loaded<Delivery>>),
    Connection(String, Box<Loaded<RepositoryConnection>>),
}

/// The aggregate types a batch runs commands on: where their state lives in a batch and on the
/// bus.
trait Batched: Aggregate + Clone {
    fn held(held: &mut Held) -> &mut HashMap<String, Loaded<Self>>;
    fn side(bus: &CommandBus) -> &Side<Self>;
    fn replaced(id: String, before: Loaded<Self>) -> Replaced;
}

impl Batched for ConnectorInstance {
    fn held(held: &mut Held) -> &mut HashMap<String, Loaded<Self>> {
        &mut held.instances
    }
    fn side(bus: &CommandBus) -> &Side<Self> {
        &bus.instances
    }
    fn replaced(id: String, before: Loaded<Self>) -> Replaced {
        Replaced::Instance(id, Box::new(before))
    }
}

impl Batched for ConnectorTarget {
    fn held(held: &mut Held) -> &mut HashMap<String, Loaded<Self>> {
        &mut held.targets
    }
    fn side(bus: &CommandBus) -> &Side<Self> {
        &bus.targets
    }
    fn replaced(id: String, before: Loaded<Self>) -> Replaced {
        Replaced::Target(id, Box::new(before))
    }
}

impl Batched for RepositoryConnection {
    fn held(held: &mut Held) -> &mut HashMap<String, Loaded<Self>> {
        &mut held.connections
    }
    fn side(bus: &CommandBus) -> &Side<Self> {
        &bus.connections
    }
    fn replaced(id: String, before: Loaded<Self>) -> Replaced {
        Replaced::Connection(id, Box::new(before))
    }
}

impl Batched for Delivery {
    fn held(held: &mut Held) -> &mut HashMap<String, Loaded<Self>> {
        &mut held.deliveries
    }
    fn side(bus: &CommandBus) -> &Side<Self> {
        &bus.deliveries
    }
    fn replaced(id: String, before: Loaded<Self>) -> Replaced {
        Replaced::Delivery(id, Box::new(before))
    }
}

/// Commands decided in memory and committed together; see the module doc.
pub struct Batch<'a> {
    bus: &'a CommandBus,
    /// The idempotency keys the batch's commands may carry: loading an aggregate loads which of
    /// them it already has.
    candidate_keys: Vec<String>,
    held: Mutex<Held>,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    pub events: usize,
}

impl<'a> Batch<'a> {
    /// A batch whose keyed commands carry one of `candidate_keys` (for the worker, each
    /// delivery's key): loading an aggregate loads which of them it has. A command with another
    /// key runs, and if that key was stored before, the commit fails on it as a conflict.
    pub(crate) fn new(bus: &'a CommandBus, candidate_keys: Vec<String>) -> Self {
        Self {
            bus,
            candidate_keys,
            held: Mutex::new(Held::default()),
        }
    }

    /// Loads `aggregates` that the batch does not hold yet, with the candidate keys they have,
    /// in two queries sent at once: the events each one has after what this process cached,
    /// and its rows of `command_keys`.
    pub async fn load(&self, aggregates: &[AggregateRef]) -> Result<(), String> {
        let wanted: Vec<(&'static str, String)> = {
            let held = self.held.lock().expect("batch lock");
            let mut seen = HashSet::new();
            aggregates
                .iter()
                .map(AggregateRef::parts)
                .filter(|(t, id)| !holds(&held, t, id) && seen.insert((*t, id.clone())))
                .collect()
        };
        self.load_parts(wanted).await
    }

    async fn load_parts(&self, wanted: Vec<(&'static str, String)>) -> Result<(), String> {
        if wanted.is_empty() {
            return Ok(());
        }
        // What this process knew of each, taken once: the query reads what came after it.
        let ids = |t: &'static str| {
            wanted
                .iter()
                .filter(move |(w, _)| *w == t)
                .map(|(_, id)| id.as_str())
        };
        let instances = snapshot::<ConnectorInstance>(self.bus, ids(ConnectorInstance::TYPE));
        let targets = snapshot::<ConnectorTarget>(self.bus, ids(ConnectorTarget::TYPE));
        let deliveries = snapshot::<Delivery>(self.bus, ids(Delivery::TYPE));
        let connections =
            snapshot::<RepositoryConnection>(self.bus, ids(RepositoryConnection::TYPE));
        let mut types = Vec::with_capacity(wanted.len());
        let mut names = Vec::with_capacity(wanted.len());
        let mut after = Vec::with_capacity(wanted.len());
        let known = (sequences(ConnectorInstance::TYPE, &instances))
            .chain(sequences(ConnectorTarget::TYPE, &targets))
            .chain(sequences(Delivery::TYPE, &deliveries))
            .chain(sequences(RepositoryConnection::TYPE, &connections));
        for (t, id, sequence) in known {
            types.push(t);
            names.push(id);
            after.push(sequence as i64);
        }
        let pool = self.bus.pool();
        let events = sqlx::query_as::<_, EventRow>(
            "SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version, \
                    e.payload, e.metadata \
             FROM UNNEST($1::text[], $2::text[], $3::bigint[]) AS w(t, i, s) \
             JOIN events e ON e.aggregate_type = w.t AND e.aggregate_id = w.i AND e.sequence > w.s \
             ORDER BY e.aggregate_type, e.aggregate_id, e.sequence",
        )
        .bind(&types)
        .bind(&names)
        .bind(&after)
        .fetch_all(pool);
        let stored_keys = sqlx::query_as::<_, (String, String, String)>(
            "SELECT k.aggregate_type, k.aggregate_id, k.idempotency_key \
             FROM UNNEST($1::text[], $2::text[]) AS w(t, i) \
             JOIN command_keys k ON k.aggregate_type = w.t AND k.aggregate_id = w.i \
             WHERE k.idempotency_key = ANY($3)",
        )
        .bind(&types)
        .bind(&names)
        .bind(&self.candidate_keys)
        .fetch_all(pool);
        let (events, stored_keys) =
            tokio::try_join!(events, stored_keys).map_err(|err| err.to_string())?;

        let mut newer: HashMap<(String, String), Vec<SerializedEvent>> = HashMap::new();
        for row in events {
            let event = row.into_serialized();
            newer
                .entry((event.aggregate_type.clone(), event.aggregate_id.clone()))
                .or_default()
                .push(event);
        }
        let mut held = self.held.lock().expect("batch lock");
        hold(&mut held, instances, &mut newer)?;
        hold(&mut held, targets, &mut newer)?;
        hold(&mut held, deliveries, &mut newer)?;
        hold(&mut held, connections, &mut newer)?;
        held.keys.extend(stored_keys);
        Ok(())
    }

    /// Where the batch stands now; `rollback` returns to it.
    pub fn savepoint(&self) -> Savepoint {
        let held = self.held.lock().expect("batch lock");
        Savepoint {
            events: held.events.len(),
            keys: held.new_keys.len(),
            journal: held.journal.len(),
        }
    }

    /// Undoes every command run since `savepoint`: its events, keys and the states it left.
    pub fn rollback(&self, savepoint: Savepoint) {
        let mut held = self.held.lock().expect("batch lock");
        held.events.truncate(savepoint.events);
        for (t, id, key, _) in held.new_keys.split_off(savepoint.keys) {
            held.keys.remove(&(t, id, key));
        }
        while held.journal.len() > savepoint.journal {
            match held.journal.pop().expect("journal entry") {
                Replaced::Instance(id, before) => held.instances.insert(id, *before),
                Replaced::Target(id, before) => {
                    held.targets.insert(id, *before);
                    None
                }
                Replaced::Delivery(id, before) => {
                    held.deliveries.insert(id, *before);
                    None
                }
                Replaced::Connection(id, before) => {
                    held.connections.insert(id, *before);
                    None
                }
            };
        }
    }

    /// Events the batch will append.
    pub fn pending(&self) -> usize {
        self.held.lock().expect("batch lock").events.len()
    }

    /// Records a delivery's decision; unkeyed, as on the bus.
    pub async fn delivery(
        &self,
        id: &DeliveryKey,
        command: <Delivery as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> Result<Executed, CommandError<<Delivery as Aggregate>::Error>> {
        self.execute::<Delivery>(&id.0, command, metadata, false)
            .await
    }

    /// What the batch knows of a delivery (loading it if it was not named to `load`).
    pub async fn load_delivery(
        &self,
        id: &DeliveryKey,
    ) -> Result<Delivery, CommandError<<Delivery as Aggregate>::Error>> {
        self.ensure::<Delivery>(&id.0).await?;
        let mut held = self.held.lock().expect("batch lock");
        Ok(Delivery::held(&mut held)[&id.0].aggregate.clone())
    }

    async fn ensure<A: Batched>(&self, id: &str) -> Result<(), CommandError<A::Error>> {
        let present = A::held(&mut self.held.lock().expect("batch lock")).contains_key(id);
        if !present {
            self.load_parts(vec![(A::TYPE, id.to_owned())])
                .await
                .map_err(CommandError::Unavailable)?;
        }
        Ok(())
    }

    /// Runs a command on the batch's state of aggregate `id` (instances and targets are keyed,
    /// through `Commands`; decisions are not).
    async fn execute<A: Batched>(
        &self,
        id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        keyed: bool,
    ) -> Result<Executed, CommandError<A::Error>> {
        self.ensure::<A>(id).await?;
        let key = metadata.idempotency_key().filter(|_| keyed);
        let mut stored = metadata.to_map();
        if key.is_none() {
            stored.remove(keys::IDEMPOTENCY_KEY);
        }
        let mut state = {
            let mut held = self.held.lock().expect("batch lock");
            if let Some(key) = &key {
                // A key stored before and not among the candidates was not loaded: the commit's
                // insert into `command_keys` refuses it then, as a conflict.
                if held
                    .keys
                    .contains(&(A::TYPE.to_owned(), id.to_owned(), key.clone()))
                {
                    tracing::debug!(idempotency_key = %key, "already applied");
                    return Ok(Executed::AlreadyApplied);
                }
            }
            A::held(&mut held)[id].clone()
        };
        let before = state.clone();
        let sink = EventSink::<A>::default();
        state
            .aggregate
            .handle(command, &A::side(self.bus).services, &sink)
            .await
            .map_err(CommandError::Rejected)?;
        let events = sink.collect().await;
        if events.is_empty() {
            return Ok(Executed::Handled);
        }
        let first = state.sequence + 1;
        let serialized = events
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                SerializedEvent::try_from(&EventEnvelope::<A> {
                    aggregate_id: id.to_owned(),
                    sequence: first + i,
                    payload,
                    metadata: stored.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| CommandError::from(AggregateError::<A::Error>::from(err)))?;
        state.sequence += serialized.len();
        state.touched = true;
        let mut held = self.held.lock().expect("batch lock");
        held.events.extend(serialized);
        if let Some(key) = key {
            held.keys
                .insert((A::TYPE.to_owned(), id.to_owned(), key.clone()));
            held.new_keys
                .push((A::TYPE.to_owned(), id.to_owned(), key, first));
        }
        held.journal.push(A::replaced(id.to_owned(), before));
        A::held(&mut held).insert(id.to_owned(), state);
        Ok(Executed::Handled)
    }

    /// Appends every event and key of the batch in one statement, then teaches the caches the
    /// aggregates' new states and wakes the relay. A conflict (another writer got to one of the
    /// aggregates or keys first) writes nothing and forgets the cached states of every aggregate
    /// involved.
    pub async fn commit(self) -> Result<Committed, CommandError<std::convert::Infallible>> {
        let held = self.held.into_inner().expect("batch lock");
        if held.events.is_empty() {
            return Ok(Committed { events: 0 });
        }
        let keys: Vec<StoredKey> = held
            .new_keys
            .iter()
            .map(|(t, id, key, sequence)| StoredKey {
                aggregate_type: t.clone(),
                aggregate_id: id.clone(),
                key: key.clone(),
                sequence: *sequence,
            })
            .collect();
        let result = append::<std::convert::Infallible>(self.bus.pool(), &held.events, &keys).await;
        let count = held.events.len();
        if let Err(err) = result {
            forget_all(self.bus, &held);
            return Err(CommandError::from(err));
        }
        learn_all(self.bus, held);
        self.bus.wake.after_commit(self.bus.pool()).await;
        Ok(Committed { events: count })
    }
}

impl Commands for Batch<'_> {
    async fn instance(
        &self,
        id: InstanceId,
        command: <ConnectorInstance as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> commands::Result<ConnectorInstance> {
        self.execute::<ConnectorInstance>(&id.to_string(), command, metadata, true)
            .await
    }

    async fn target(
        &self,
        id: TargetId,
        command: <ConnectorTarget as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> commands::Result<ConnectorTarget> {
        self.execute::<ConnectorTarget>(&id.to_string(), command, metadata, true)
            .await
    }

    async fn connection(
        &self,
        id: ConnectionId,
        command: <RepositoryConnection as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> commands::Result<RepositoryConnection> {
        self.execute::<RepositoryConnection>(&id.to_string(), command, metadata, true)
            .await
    }
}

impl CommandBus {
    /// A batch whose keyed commands carry one of `candidate_keys`; see `crate::batch`.
    pub fn batch(&self, candidate_keys: Vec<String>) -> Batch<'_> {
        Batch::new(self, candidate_keys)
    }
}

fn holds(held: &Held, t: &str, id: &str) -> bool {
    match t {
        ConnectorInstance::TYPE => held.instances.contains_key(id),
        ConnectorTarget::TYPE => held.targets.contains_key(id),
        RepositoryConnection::TYPE => held.connections.contains_key(id),
        _ => held.deliveries.contains_key(id),
    }
}

/// What this process cached of each aggregate named: its state and sequence (a default state at
/// sequence 0 when it knows nothing).
fn snapshot<'i, A: Batched>(
    bus: &CommandBus,
    ids: impl Iterator<Item = &'i str>,
) -> Vec<(String, A, usize)> {
    ids.map(|id| {
        let (aggregate, sequence) = A::side(bus).cache.get(id).unwrap_or_default();
        (id.to_owned(), aggregate, sequence)
    })
    .collect()
}

fn sequences<'k, A>(
    t: &'static str,
    known: &'k [(String, A, usize)],
) -> impl Iterator<Item = (&'static str, &'k str, usize)> {
    known
        .iter()
        .map(move |(id, _, sequence)| (t, id.as_str(), *sequence))
}

/// Holds each snapshot brought up to date by the events read after it.
fn hold<A: Batched>(
    held: &mut Held,
    known: Vec<(String, A, usize)>,
    newer: &mut HashMap<(String, String), Vec<SerializedEvent>>,
) -> Result<(), String> {
    for (id, mut aggregate, mut sequence) in known {
        let events = newer
            .remove(&(A::TYPE.to_owned(), id.clone()))
            .unwrap_or_default();
        // What was read is worth caching too, as if a command had touched it.
        let touched = !events.is_empty();
        for envelope in deserialize::<A>(events).map_err(|err| err.to_string())? {
            sequence = envelope.sequence;
            aggregate.apply(envelope.payload);
        }
        A::held(held).insert(
            id,
            Loaded {
                aggregate,
                sequence,
                touched,
            },
        );
    }
    Ok(())
}

fn forget_all(bus: &CommandBus, held: &Held) {
    for id in held.instances.keys() {
        bus.instances.cache.forget(id);
    }
    for id in held.targets.keys() {
        bus.targets.cache.forget(id);
    }
    for id in held.deliveries.keys() {
        bus.deliveries.cache.forget(id);
    }
    for id in held.connections.keys() {
        bus.connections.cache.forget(id);
    }
}

fn learn_all(bus: &CommandBus, held: Held) {
    for (id, l) in held.instances.into_iter().filter(|(_, l)| l.touched) {
        bus.instances.cache.remember(&id, l.aggregate, l.sequence);
    }
    for (id, l) in held.targets.into_iter().filter(|(_, l)| l.touched) {
        bus.targets.cache.remember(&id, l.aggregate, l.sequence);
    }
    for (id, l) in held.deliveries.into_iter().filter(|(_, l)| l.touched) {
        bus.deliveries.cache.remember(&id, l.aggregate, l.sequence);
    }
    for (id, l) in held.connections.into_iter().filter(|(_, l)| l.touched) {
        bus.connections.cache.remember(&id, l.aggregate, l.sequence);
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: serde_json::Value,
    metadata: serde_json::Value,
}

impl EventRow {
    fn into_serialized(self) -> SerializedEvent {
        SerializedEvent {
            aggregate_id: self.aggregate_id,
            sequence: usize::try_from(self.sequence).unwrap_or(0),
            aggregate_type: self.aggregate_type,
            event_type: self.event_type,
            event_version: self.event_version,
            payload: self.payload,
            metadata: self.metadata,
        }
    }
}
