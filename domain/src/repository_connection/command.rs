//! What can be asked of a `RepositoryConnection`. Admins send `Connect`, `RetryWebhook` and
//! `Disconnect`; the `repositories` role reports what the provider answered.

use crate::clock::Timestamp;
use crate::ids::{Branch, CommitSha};

use super::event::{ConnectionId, Provider, ProviderRepository, PullRequestState};

/// A completed run of a CI workflow (GitHub's `workflow_run` with action `completed`), as the
/// connection decides on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRun {
    /// The provider's id of the repository the run is in.
    pub repository_id: u64,
    pub run_id: u64,
    /// Which workflow (stable across renames of its name).
    pub workflow_id: u64,
    pub name: String,
    pub branch: Branch,
    pub head_sha: CommitSha,
    /// Runs of one workflow are numbered in the order they started; a re-run keeps its number
    /// and counts up its attempt.
    pub run_number: u64,
    pub run_attempt: u64,
    /// `success`, `failure`, `timed_out`, `cancelled`, … (None: GitHub gave none).
    pub conclusion: Option<String>,
    pub url: String,
    /// When the provider last updated the run.
    pub updated_at: Timestamp,
}

/// A pull request as a `pull_request` delivery shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub repository_id: u64,
    pub number: u64,
    pub title: String,
    pub state: PullRequestState,
    /// The delivery's action (`opened`, `closed`, `synchronize`, …).
    pub action: String,
    pub head_branch: String,
    pub base_branch: String,
    pub head_sha: CommitSha,
    pub url: String,
    /// When the provider last updated the pull request.
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionCommand {
    Connect {
        connection_id: ConnectionId,
        provider: Provider,
        repository: ProviderRepository,
        branch: Branch,
        hook_url: String,
        secret_id: String,
    },
    /// Creation attempt `attempt` made or adopted the webhook `hook_id`.
    RecordWebhookCreated {
        attempt: u32,
        hook_id: u64,
        adopted: bool,
        repository_id: u64,
        /// GitLab's `path_with_namespace` of the project.
        repository_path: Option<String>,
        /// GitLab's git-over-HTTPS URL of the project.
        clone_url: Option<String>,
    },
    RecordWebhookFailed {
        attempt: u32,
        reason: String,
    },
    RetryWebhook,
    Disconnect,
    RecordWebhookDeleted {
        hook_ids: Vec<u64>,
    },
    RecordWebhookDeleteFailed {
        reason: String,
    },
    /// A workflow run completed (sent by the worker from a delivery of the connection's
    /// webhook): it may open or resolve an incident.
    RecordWorkflowRun(WorkflowRun),
    RecordPullRequest(PullRequest),
}

impl ConnectionCommand {
    /// The command's name, as decisions record what was sent.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "Connect",
            Self::RecordWebhookCreated { .. } => "RecordWebhookCreated",
            Self::RecordWebhookFailed { .. } => "RecordWebhookFailed",
            Self::RetryWebhook => "RetryWebhook",
            Self::Disconnect => "Disconnect",
            Self::RecordWebhookDeleted { .. } => "RecordWebhookDeleted",
            Self::RecordWebhookDeleteFailed { .. } => "RecordWebhookDeleteFailed",
            Self::RecordWorkflowRun(_) => "RecordWorkflowRun",
            Self::RecordPullRequest(_) => "RecordPullRequest",
        }
    }
}
