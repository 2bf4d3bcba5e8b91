//! What can be asked of a `ConnectorInstance`. The worker derives these from `installation`,
//! `installation_repositories`, `repository`, `push` and `ping` deliveries; operators send
//! `Connect`, `SetAutoTrack`, `AttachTarget`, `DetachTarget` and `Disconnect`.

use std::collections::BTreeMap;

use crate::ids::{Branch, InstallationId, RepositoryId, RepositoryName, TargetId};

use super::event::Repository;
use crate::connector_target::Push;

#[derive(Debug, Clone, PartialEq)]
pub enum InstanceCommand {
    /// The installation exists (GitHub's `installation.created`, or an operator).
    Connect {
        installation_id: InstallationId,
        account: String,
        repository_selection: Option<String>,
        repositories: Vec<Repository>,
        /// Also turn `auto_track` on or off (operators connecting by hand).
        auto_track: Option<bool>,
    },
    Suspend,
    Unsuspend,
    AcceptPermissions {
        permissions: BTreeMap<String, String>,
    },
    /// GitHub says the installation is gone. Its targets are removed.
    Delete,
    /// An operator stops following the installation. Its targets are removed.
    Disconnect,
    AddRepositories {
        repositories: Vec<Repository>,
    },
    /// The installation lost access to these repositories (`deleted`: they were deleted). Their
    /// targets are disabled (removed).
    RemoveRepositories {
        repository_ids: Vec<RepositoryId>,
        deleted: bool,
    },
    SetAutoTrack {
        enabled: bool,
    },
    RecordPing {
        hook_id: Option<u64>,
        zen: Option<String>,
    },
    /// Hang a target (one branch of one repository) off this installation.
    AttachTarget {
        installation_id: InstallationId,
        repository_id: RepositoryId,
        repository: RepositoryName,
        branch: Branch,
    },
    DetachTarget {
        target_id: TargetId,
    },
    /// A push reached a repository's branch that no target follows: with `auto_track` on and
    /// the branch the default one, a target is attached, carrying the push for it.
    AutoTrack {
        repository_id: RepositoryId,
        repository: RepositoryName,
        branch: Branch,
        default_branch: Branch,
        push: Push,
    },
    /// The account the App is installed on was renamed (`installation_target.renamed`): the
    /// full names of its repositories change with it.
    RenameAccount {
        login: String,
    },
    /// The repository was renamed or transferred; the id stays, the name follows.
    RenameRepository {
        repository_id: RepositoryId,
        repository: RepositoryName,
    },
}

impl InstanceCommand {
    /// The command's name, as decisions record what was sent.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "Connect",
            Self::Suspend => "Suspend",
            Self::Unsuspend => "Unsuspend",
            Self::AcceptPermissions { .. } => "AcceptPermissions",
            Self::Delete => "Delete",
            Self::Disconnect => "Disconnect",
            Self::AddRepositories { .. } => "AddRepositories",
            Self::RemoveRepositories { .. } => "RemoveRepositories",
            Self::SetAutoTrack { .. } => "SetAutoTrack",
            Self::RecordPing { .. } => "RecordPing",
            Self::AttachTarget { .. } => "AttachTarget",
            Self::DetachTarget { .. } => "DetachTarget",
            Self::AutoTrack { .. } => "AutoTrack",
            Self::RenameAccount { .. } => "RenameAccount",
            Self::RenameRepository { .. } => "RenameRepository",
        }
    }
}
