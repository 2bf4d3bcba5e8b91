//! What every hooklog role shares, and nothing else: typed settings, telemetry, the NATS and
//! Postgres connections (including the embedded `nats-server` that `serve` starts by default),
//! and the JetStream stream contracts that writers and readers of a stream must agree on.
#![forbid(unsafe_code)]

pub mod config;
pub mod nats;
pub mod postgres;
pub mod streams;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
