//! Helpers for hooklog's own tests and benchmarks, behind the `testing` feature: real git
//! repositories built with the `git` command (`TestRepo`), a fake GitHub over real HTTP that
//! serves one (`FakeGithub`), and a fake of GitHub's repository webhooks and GitLab's project
//! hooks and git over HTTPS (`FakeRepoHosts`). Nothing here fakes anything but GitHub's HTTP edge: the
//! repositories, git, NATS and PostgreSQL the tests use are real.

mod fake_github;
mod fake_hosts;
mod repo;

pub use fake_github::{FakeGithub, Fault, HookDelivery, APP_ID, PRIVATE_KEY, PUBLIC_KEY};
pub use fake_hosts::{FakeHook, FakeRepoHosts, GitRequest, GitlabSent};
pub use repo::{git, TestRepo};
