//! hooklog's delivery worker: what each stored GitHub delivery makes happen.
//!
//! - `authenticity`: the body digest and GitHub signature checked again before anything runs.
//! - `process`: what one GitHub delivery makes happen, as commands and cascades.
//! - `redrive`: an operator's second run of a dead letter, read back from the stream.
//! - `consumer`: the durable JetStream consumer that feeds deliveries to `process` and acks
//!   only after the commands committed.
//!
//! What the worker decided about each delivery is itself an event (`Delivery` aggregate): the
//! outcome and dead-letter read models are the projector's.
//!
//! Commands go through the write side (`hooklog-write`), shared with every other edge.
#![forbid(unsafe_code)]

pub mod authenticity;
pub mod consumer;
pub mod process;
pub mod redrive;

pub use consumer::{run, WorkerConfig};
pub use process::{Delivery, Failure, Outcome, OutcomeKind, Processor};
