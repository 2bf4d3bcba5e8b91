//! hooklog's outbox relay: publishes every committed domain event to the `HOOKLOG_EVENTS`
//! JetStream stream, in order per aggregate, exactly once (DESIGN.md, "Relay (outbox)").
//!
//! A trigger on the postgres-es `events` table copies each event into `event_outbox` in the
//! committing transaction; writers notify `hooklog_outbox` after committing. One relay at a
//! time, elected with a Postgres advisory lock, reads the outbox in id order, publishes each row
//! with `Nats-Msg-Id` `<type>:<id>:<sequence>` (in waves of one event per aggregate, whose PubAcks
//! are awaited together), and deletes it once acknowledged. A crash can only leave rows
//! that were published but not deleted; the next lock holder checks those against the stream
//! before publishing (see `first_pass`), so an event is stored once even after JetStream's
//! duplicate window.
//!
//! - `outbox`: the table, the lock and the notifications (Postgres).
//! - `message`: an outbox row as a stream message.
//! - `publish`: publishing until acknowledged (NATS).
//! - `relay`: the loop, [`run`].
#![forbid(unsafe_code)]

mod config;
mod error;
mod first_pass;
mod message;
mod outbox;
mod publish;
mod relay;

pub use config::RelayConfig;
pub use error::RelayError;
pub use outbox::{ADVISORY_LOCK_KEY, NOTIFY_CHANNEL};
pub use relay::run;
