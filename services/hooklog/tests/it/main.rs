//! The `hooklog` binary as users run it: real processes, a real `nats-server`, the local
//! PostgreSQL with a fresh database per test.

mod support;

mod admin;
mod audit;
mod cli;
mod github;
mod migrate;
mod pipeline;
mod replay;
mod repositories;
mod serve;
mod targets;
