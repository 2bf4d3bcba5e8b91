//! The worker against a real `nats-server` and the local PostgreSQL (a fresh database per test):
//! deliveries published to `GITHUB_DELIVERIES` as the ingress stores them, decisions read back
//! from the event store and the worker's tables.

mod support;

mod batches;
mod failures;
mod idempotency;
mod lifecycle;
mod properties;
mod push;
