//! The deliveries' bodies: the vendored `@octokit/webhooks-examples` payloads (as GitHub sends
//! them), with the installation, repository, branch and commits of the suite's own targets.

use std::sync::atomic::{AtomicU64, Ordering};

use hooklog_infra::testing::octokit_example;
use serde_json::{json, Value};

use super::load::Kind;
use super::repo::{branch, Source};

/// The installation the tracked branches belong to, and their repository.
pub const INSTALLATION: u64 = 4242;
pub const REPOSITORY_ID: u64 = 424242;
pub const REPOSITORY: &str = "octo/faults";
/// Installations deleted during the run start here.
pub const DOOMED_INSTALLATION: u64 = 5_000_000;
/// Installations created during the run start here.
const NEW_INSTALLATION: u64 = 7_000_000;

pub struct Templates {
    push: Value,
    ping: Value,
    created: Value,
    deleted: Value,
    created_count: AtomicU64,
}

impl Templates {
    pub fn load() -> Self {
        Self {
            push: octokit_example("push", |x| {
                x["installation"].is_object() && x["ref"] == "refs/heads/master"
            }),
            ping: octokit_example("ping", |x| x["repository"].is_object()),
            created: octokit_example("installation", |x| x["action"] == "created"),
            deleted: octokit_example("installation", |x| x["action"] == "deleted"),
            created_count: AtomicU64::new(0),
        }
    }

    /// The event and body of a delivery of `kind` with delivery id `id`.
    pub fn body(&self, kind: &Kind, id: &str, source: &Source) -> (&'static str, Value) {
        match kind {
            Kind::Push { target, k } => {
                let mut body = self.push.clone();
                body["ref"] = json!(format!("refs/heads/{}", branch(*target)));
                body["before"] = json!(source.commit(*target, k - 1));
                body["after"] = json!(source.commit(*target, *k));
                body["created"] = json!(false);
                body["deleted"] = json!(false);
                body["forced"] = json!(false);
                body["installation"] = json!({ "id": INSTALLATION });
                body["repository"]["id"] = json!(REPOSITORY_ID);
                body["repository"]["full_name"] = json!(REPOSITORY);
                body["repository"]["name"] = json!("faults");
                ("push", body)
            }
            Kind::UntrackedPush => {
                let mut body = self.push.clone();
                let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.as_bytes());
                body["ref"] = json!("refs/heads/nobody-tracks-this");
                body["before"] = json!("0".repeat(40));
                body["after"] = json!(format!("{}{}", digest.simple(), "0".repeat(8)));
                body["installation"] = json!({ "id": INSTALLATION });
                body["repository"]["id"] = json!(REPOSITORY_ID);
                body["repository"]["full_name"] = json!(REPOSITORY);
                ("push", body)
            }
            Kind::Ping => {
                let mut body = self.ping.clone();
                body["installation"] = json!({ "id": INSTALLATION });
                ("ping", body)
            }
            Kind::InstallationCreated => {
                let mut body = self.created.clone();
                let n = self.created_count.fetch_add(1, Ordering::Relaxed);
                body["installation"]["id"] = json!(NEW_INSTALLATION + n);
                ("installation", body)
            }
            Kind::InstallationDeleted { installation } => {
                let mut body = self.deleted.clone();
                body["installation"]["id"] = json!(installation);
                ("installation", body)
            }
        }
    }
}
