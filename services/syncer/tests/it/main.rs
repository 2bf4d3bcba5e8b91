//! The syncer against real git repositories, a fake GitHub at its HTTP edge, real NATS and
//! PostgreSQL.

mod consumer;
mod fake_github;
mod github;
mod local_git;
mod repo;
mod support;
mod sync;
