//! The repositories role against real NATS and PostgreSQL, the ingress, relay, projector and
//! worker, and fake GitHub and GitLab HTTP edges in their documented shapes.

mod connections;
mod deliveries;
mod redeliveries;
mod support;
mod syncs;
mod vault;
