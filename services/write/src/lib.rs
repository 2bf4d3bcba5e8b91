//! hooklog's write side, shared by every edge that changes anything (the worker, the process
//! manager, the syncer, the admin API and the CLI), so that two edges never implement one use
//! case twice or classify one failure two ways.
//!
//! - `bus`: the command bus over cqrs-es and the event store, idempotent per key under
//!   concurrency.
//! - `batch`: many commands decided in memory on the same states and committed in one
//!   statement, all or nothing (the worker's batches).
//! - `commands`: what an edge sending instance and target commands needs, from either.
//! - `store`: the event store with an aggregate cache that the bus runs cqrs-es over.
//! - `error`: why a command did not commit, and the one classification every edge maps.
//! - `usecases`: track, untrack, connect, disconnect: one command each, the same for every edge.
//! - `repositories`: connect, retry and disconnect a repository connected without the App.
//! - `vault`: the secrets hooklog keeps (repository connections' webhook secrets and tokens),
//!   sealed at rest under `HOOKLOG_SECRETS_KEY`, and their rotation.
//! - `reactions`: the process manager's rules (which commands an event asks of other
//!   aggregates) and their keyed execution; the `process-manager` role runs them for every
//!   event on `HOOKLOG_EVENTS`.
#![forbid(unsafe_code)]

pub mod batch;
pub mod bus;
pub mod commands;
pub mod error;
pub mod reactions;
pub mod repositories;
pub mod store;
pub mod usecases;
pub mod vault;

pub use batch::{AggregateRef, Batch, Savepoint};
pub use bus::{CommandBus, Executed};
pub use commands::Commands;
pub use error::{CommandError, ErrorClass, UseCaseError};
