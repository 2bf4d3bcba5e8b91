//! The projector against a real `nats-server` and a real PostgreSQL database per test.

mod deliveries;
mod drift;
mod projector;
mod support;
