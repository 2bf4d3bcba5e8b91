//! hooklog's write side.
//!
//! - `bus`: the command bus over cqrs-es and the postgres-es event store, shared by every
//!   writer (the worker, the `hooklog targets` CLI, the admin API).
//! - `process`: what one GitHub delivery makes happen, as commands and cascades.
//! - `consumer`: the durable JetStream consumer that feeds deliveries to `process` and acks
//!   only after the commands committed.
//! - `records`: the worker's tables (delivery outcomes, dead letters).
//! - `store`: the event store with an aggregate cache that the bus runs cqrs-es over.
#![forbid(unsafe_code)]

pub mod bus;
pub mod consumer;
pub mod process;
pub mod records;
pub mod store;

pub use bus::{CommandBus, CommandError, Executed};
pub use consumer::{run, WorkerConfig};
pub use process::{Delivery, Failure, Outcome, OutcomeKind, Processor};
