//! The admin listener served for real (port 0) against its own `nats-server` and a fresh
//! PostgreSQL database, with the relay, projector and worker running in-process.

mod audit;
mod auth;
mod commands;
mod dashboard;
mod deliveries;
mod feed;
mod files;
mod github;
#[path = "../../../audit/tests/it/go.rs"]
mod go;
mod health;
mod input;
mod openapi;
mod redrive;
mod repositories;
mod routes;
mod sources;
mod support;
