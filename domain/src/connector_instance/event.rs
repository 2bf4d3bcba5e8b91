//! What happened to a `ConnectorInstance`. Events carry what read models need (the targets a
//! cascade touches, the repositories granted), so no consumer has to re-derive a decision.

use std::collections::BTreeMap;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::connector_target::Push;
use crate::ids::{Branch, InstallationId, RepositoryId, RepositoryName, TargetId};

/// A repository the installation grants access to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    pub id: RepositoryId,
    pub full_name: RepositoryName,
}

/// A target hanging off the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedTarget {
    pub target_id: TargetId,
    pub repository_id: RepositoryId,
    pub repository: RepositoryName,
    pub branch: Branch,
}

impl AttachedTarget {
    /// The target of `branch` of a repository of `installation`, under its derived id.
    pub fn new(
        installation: InstallationId,
        repository_id: RepositoryId,
        repository: RepositoryName,
        branch: Branch,
    ) -> Self {
        Self {
            target_id: TargetId::for_branch(installation, repository_id, &branch),
            repository_id,
            repository,
            branch,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InstanceEvent {
    InstanceConnected {
        installation_id: InstallationId,
        account: String,
        repository_selection: Option<String>,
        repositories: Vec<Repository>,
        at: Timestamp,
    },
    InstanceSuspended {
        at: Timestamp,
    },
    InstanceUnsuspended {
        at: Timestamp,
    },
    PermissionsAccepted {
        permissions: BTreeMap<String, String>,
        at: Timestamp,
    },
    /// Deleted on GitHub; `removed_targets` are to be removed.
    InstanceDeleted {
        removed_targets: Vec<TargetId>,
        at: Timestamp,
    },
    /// Disconnected by an operator; `removed_targets` are to be removed.
    InstanceDisconnected {
        removed_targets: Vec<TargetId>,
        at: Timestamp,
    },
    RepositoriesAdded {
        repositories: Vec<Repository>,
        at: Timestamp,
    },
    /// Access lost; `disabled_targets` are to be disabled (removed when the repositories were
    /// `deleted`; absent in events stored before: false).
    RepositoriesRemoved {
        repository_ids: Vec<RepositoryId>,
        disabled_targets: Vec<TargetId>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        deleted: bool,
        at: Timestamp,
    },
    AutoTrackChanged {
        enabled: bool,
        at: Timestamp,
    },
    WebhookPinged {
        hook_id: Option<u64>,
        zen: Option<String>,
        at: Timestamp,
    },
    /// `push`: with `auto_tracked`, the push to track the target for (the process manager
    /// tracks the target, then records the push on it).
    TargetAttached {
        installation_id: InstallationId,
        target: AttachedTarget,
        auto_tracked: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        push: Option<Push>,
        at: Timestamp,
    },
    TargetDetached {
        target_id: TargetId,
        at: Timestamp,
    },
    /// The account was renamed; `repositories` and `targets` carry their new full names.
    AccountRenamed {
        from: Option<String>,
        to: String,
        repositories: Vec<Repository>,
        targets: Vec<AttachedTarget>,
        at: Timestamp,
    },
    /// `targets` follow the new name.
    RepositoryRenamed {
        repository_id: RepositoryId,
        from: Option<RepositoryName>,
        to: RepositoryName,
        targets: Vec<TargetId>,
        at: Timestamp,
    },
}

impl DomainEvent for InstanceEvent {
    fn event_type(&self) -> String {
        let name = match self {
            Self::InstanceConnected { .. } => "InstanceConnected",
            Self::InstanceSuspended { .. } => "InstanceSuspended",
            Self::InstanceUnsuspended { .. } => "InstanceUnsuspended",
            Self::PermissionsAccepted { .. } => "PermissionsAccepted",
            Self::InstanceDeleted { .. } => "InstanceDeleted",
            Self::InstanceDisconnected { .. } => "InstanceDisconnected",
            Self::RepositoriesAdded { .. } => "RepositoriesAdded",
            Self::RepositoriesRemoved { .. } => "RepositoriesRemoved",
            Self::AutoTrackChanged { .. } => "AutoTrackChanged",
            Self::WebhookPinged { .. } => "WebhookPinged",
            Self::TargetAttached { .. } => "TargetAttached",
            Self::TargetDetached { .. } => "TargetDetached",
            Self::AccountRenamed { .. } => "AccountRenamed",
            Self::RepositoryRenamed { .. } => "RepositoryRenamed",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
