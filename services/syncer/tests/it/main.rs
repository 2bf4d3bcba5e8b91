//! The syncer against real git repositories, a fake GitHub at its HTTP edge, real NATS and
//! PostgreSQL.

mod consumer;
mod fake_hooks;
mod fake_hosts;
mod github;
mod github_archive;
mod github_faults;
mod installations;
mod local_git;
mod support;
mod sync;
