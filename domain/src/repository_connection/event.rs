//! What happened to a repository connection.

use std::fmt;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::ids::{Branch, CommitSha, IdError};

/// The aggregate id of a `RepositoryConnection`: a random UUID given at connect. It is in the
/// webhook's URL, where it selects the secret a delivery must be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(pub Uuid);

impl ConnectionId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn parse(value: &str) -> Result<Self, IdError> {
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| IdError::ConnectionId(value.to_owned()))
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Where the repository is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Github,
    Gitlab,
}

impl Provider {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        match value {
            "github" => Ok(Self::Github),
            "gitlab" => Ok(Self::Gitlab),
            other => Err(IdError::Provider(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

string_newtype!(
    /// A repository as its provider names it: GitHub's `OWNER/NAME`; a GitLab project's path
    /// (`group/subgroup/name`) or numeric id. Checked so that it can go into an API path
    /// segment by segment: no empty, `.` or `..` segment, no whitespace, control character,
    /// `?`, `#`, `%` or `\`.
    #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(try_from = "String", into = "String")]
    ProviderRepository
);

impl ProviderRepository {
    pub fn parse(provider: Provider, value: &str) -> Result<Self, IdError> {
        let bad = || IdError::ProviderRepository {
            provider: provider.as_str(),
            value: value.to_owned(),
        };
        let segments: Vec<&str> = value.split('/').collect();
        let clean = value.len() <= 1024
            && segments
                .iter()
                .all(|s| !s.is_empty() && *s != "." && *s != "..")
            && !value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "?#%\\".contains(c));
        let shaped = match provider {
            Provider::Github => segments.len() == 2,
            Provider::Gitlab => {
                segments.len() >= 2 || segments[0].bytes().all(|b| b.is_ascii_digit())
            }
        };
        (clean && shaped)
            .then(|| Self(value.to_owned()))
            .ok_or_else(bad)
    }

    /// Decoded from a stored event: the rules above without knowing the provider.
    fn from_stored(value: &str) -> Result<Self, IdError> {
        Self::parse(Provider::Gitlab, value)
    }
}

impl From<ProviderRepository> for String {
    fn from(value: ProviderRepository) -> String {
        value.0
    }
}

impl TryFrom<String> for ProviderRepository {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        Self::from_stored(&value)
    }
}

/// Where a pull request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullRequestState {
    Open,
    Closed,
    Merged,
}

impl PullRequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Merged => "merged",
        }
    }
}

/// The run an incident event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRef {
    pub run_id: u64,
    pub run_number: u64,
    pub run_attempt: u64,
    pub head_sha: CommitSha,
    pub url: String,
    /// When the provider last updated the run.
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectionEvent {
    /// An admin connected `repository` (its `branch` tracked) at `provider`; its webhook is
    /// to be created at `hook_url`, signed with the secret named `secret_id`.
    RepositoryConnected {
        connection_id: ConnectionId,
        provider: Provider,
        repository: ProviderRepository,
        branch: Branch,
        hook_url: String,
        secret_id: String,
        at: Timestamp,
    },
    /// The webhook exists at the provider: created, or `adopted` (one for `hook_url` was there
    /// already and was given this connection's secret and events).
    WebhookCreated {
        attempt: u32,
        hook_id: u64,
        adopted: bool,
        /// The provider's numeric id of the repository (stable across renames).
        repository_id: u64,
        /// The provider's name of it then: GitLab's `path_with_namespace` (absent in events
        /// stored before GitLab projects were synced, and for GitHub).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repository_path: Option<String>,
        /// Where git reads it over HTTPS, on the GitLab of `HOOKLOG_GITLAB_API_URL` (GitLab
        /// only; absent when that URL does not end in `/api/v4`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clone_url: Option<String>,
        at: Timestamp,
    },
    /// Creating the webhook failed; an operator may retry.
    WebhookFailed {
        attempt: u32,
        reason: String,
        at: Timestamp,
    },
    /// An operator asked for another attempt at creating the webhook.
    WebhookRetryRequested {
        attempt: u32,
        at: Timestamp,
    },
    /// The connection accepts no more deliveries; its webhook is to be deleted.
    DisconnectRequested {
        at: Timestamp,
    },
    /// Deleting the webhook failed; each pass tries again.
    WebhookDeleteFailed {
        attempts: u32,
        reason: String,
        at: Timestamp,
    },
    /// The webhooks for `hook_url` are gone at the provider (`hook_ids`: those deleted now).
    WebhookDeleted {
        hook_ids: Vec<u64>,
        at: Timestamp,
    },
    RepositoryDisconnected {
        at: Timestamp,
    },
    /// A run of workflow `workflow_id` failed on the connection's branch, and none of it was
    /// failing there: an incident opens.
    IncidentOpened {
        incident_id: Uuid,
        workflow_id: u64,
        workflow: String,
        branch: Branch,
        /// `failure`, `timed_out` or `startup_failure`.
        conclusion: String,
        run: RunRef,
        at: Timestamp,
    },
    /// Another run of a workflow with an open incident failed too.
    IncidentRecurred {
        incident_id: Uuid,
        workflow_id: u64,
        branch: Branch,
        conclusion: String,
        run: RunRef,
        at: Timestamp,
    },
    /// A run succeeded while no incident of its workflow was open there.
    WorkflowPassed {
        workflow_id: u64,
        branch: Branch,
        run: RunRef,
        at: Timestamp,
    },
    /// A later run of the same workflow on the same branch succeeded.
    IncidentResolved {
        incident_id: Uuid,
        workflow_id: u64,
        branch: Branch,
        run: RunRef,
        at: Timestamp,
    },
    /// A pull request changed (newer than the last change seen of it).
    PullRequestUpdated {
        number: u64,
        title: String,
        state: PullRequestState,
        action: String,
        head_branch: String,
        base_branch: String,
        head_sha: CommitSha,
        url: String,
        updated_at: Timestamp,
        at: Timestamp,
    },
}

impl DomainEvent for ConnectionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::RepositoryConnected { .. } => "RepositoryConnected",
            Self::WebhookCreated { .. } => "WebhookCreated",
            Self::WebhookFailed { .. } => "WebhookFailed",
            Self::WebhookRetryRequested { .. } => "WebhookRetryRequested",
            Self::DisconnectRequested { .. } => "DisconnectRequested",
            Self::WebhookDeleteFailed { .. } => "WebhookDeleteFailed",
            Self::WebhookDeleted { .. } => "WebhookDeleted",
            Self::RepositoryDisconnected { .. } => "RepositoryDisconnected",
            Self::IncidentOpened { .. } => "IncidentOpened",
            Self::IncidentRecurred { .. } => "IncidentRecurred",
            Self::WorkflowPassed { .. } => "WorkflowPassed",
            Self::IncidentResolved { .. } => "IncidentResolved",
            Self::PullRequestUpdated { .. } => "PullRequestUpdated",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
