//! What every hooklog role shares, and nothing else: typed settings, telemetry, the NATS and
//! Postgres connections (including the embedded `nats-server` that `serve` starts by default),
//! the JetStream stream contracts that writers and readers of a stream must agree on, the
//! process-wide Prometheus recorder, HTTP clients on the one TLS crypto provider, and the HTTP
//! server loop of both listeners (`serve`).
#![forbid(unsafe_code)]

pub mod config;
pub mod http;
pub mod metrics;
pub mod nats;
pub mod postgres;
pub mod serve;
pub mod streams;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
