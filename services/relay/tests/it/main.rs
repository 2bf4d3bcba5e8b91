//! The relay against a real `nats-server` (one per test, in a temporary directory) and a fresh
//! PostgreSQL database per test, migrated with the project's migrations. Events are written to
//! `events` with plain SQL, as postgres-es writes them. Postgres outages go through
//! `TcpOutage`, a proxy the test cuts, since other suites share the server.

mod election;
mod outages;
mod outbox;
mod publishing;
mod redelivery;
mod stream;
mod support;
