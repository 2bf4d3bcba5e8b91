//! Why a `ConnectorInstance` refused a command. Each is a decision, not a fault: callers record
//! it and move on (the worker never retries these).

use crate::ids::{Branch, InstallationId, RepositoryName};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceError {
    #[error("the installation is not connected to hooklog")]
    NotConnected,
    #[error("the installation is already connected")]
    AlreadyConnected,
    #[error("the installation was deleted on GitHub; it cannot change any more")]
    Deleted,
    #[error("the installation was disconnected; connect it again first")]
    Disconnected,
    #[error("the installation is already suspended")]
    AlreadySuspended,
    #[error("the installation is not suspended")]
    NotSuspended,
    #[error("the installation does not track new repositories automatically (auto_track is off)")]
    AutoTrackOff,
    #[error("{repository}: branch {branch} is not the default branch ({default_branch}); only the default branch is tracked automatically")]
    NotDefaultBranch {
        repository: RepositoryName,
        branch: Branch,
        default_branch: Branch,
    },
    #[error("a command for installation {command} was sent to the aggregate of installation {aggregate}")]
    WrongInstallation {
        command: InstallationId,
        aggregate: InstallationId,
    },
}
