//! What can be asked of a `ConnectorTarget`. The worker sends `RecordPush`, `RenameRepository`,
//! `Disable` and `Remove` from deliveries; the syncer reports `StartSync`, `CompleteSync` and
//! `FailSync`; operators send `Track`, `RequestSync`, `SetAutoSync`, `SetPathFilters`, `Enable`, `Disable` and
//! `Remove`.

use crate::ids::{
    Branch, CommitSha, ConnectionId, InstallationId, RepositoryId, RepositoryName, SourceLocation,
    SyncId, TargetId,
};

use super::event::{
    DisableReason, FileFailure, PathFilters, RemovalReason, SyncReason, SyncStatus,
};

/// A `push` delivery, reduced to what the target decides on (stored in `TargetAttached` when a
/// push made auto-track attach its target).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Push {
    pub head_sha: CommitSha,
    pub before_sha: CommitSha,
    pub forced: bool,
    /// The branch was deleted (`deleted: true`, `after` all zeros).
    pub deleted: bool,
    pub delivery_id: String,
}

/// What a target belongs to: whose access reads its repository, and what names the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetOwner {
    /// An installation of the GitHub App: its installation tokens read the repository.
    Installation(InstallationId),
    /// A repository connection (no App): the connection's token reads the repository, and its
    /// webhook's pushes reach the target.
    Connection(ConnectionId),
}

impl TargetOwner {
    /// The id of the owner's target of `branch` of `repository`.
    pub fn target_id(self, repository: RepositoryId, branch: &Branch) -> TargetId {
        match self {
            Self::Installation(installation) => {
                TargetId::for_branch(installation, repository, branch)
            }
            Self::Connection(connection) => TargetId::for_connection(connection, branch),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TargetCommand {
    Track {
        owner: TargetOwner,
        repository_id: RepositoryId,
        repository: RepositoryName,
        branch: Branch,
        auto_sync: bool,
        /// A git repository to read files from instead of the GitHub App (`None`: GitHub).
        source: Option<SourceLocation>,
        /// Which paths are synced (already checked by `PathFilters::parse`; default: all).
        path_filters: PathFilters,
    },
    RecordPush(Push),
    /// `head_sha` None: the last head seen. `Retry` re-requests the head of the failed sync.
    RequestSync {
        head_sha: Option<CommitSha>,
        reason: SyncReason,
    },
    StartSync {
        sync_id: SyncId,
    },
    CompleteSync {
        sync_id: SyncId,
        status: SyncStatus,
        created: u64,
        updated: u64,
        deleted: u64,
        skipped: u64,
        failures: Vec<FileFailure>,
    },
    FailSync {
        sync_id: SyncId,
        error: String,
        retryable: bool,
    },
    RenameRepository {
        repository: RepositoryName,
    },
    SetAutoSync {
        enabled: bool,
    },
    /// Filters already checked by `PathFilters::parse`.
    SetPathFilters {
        filters: PathFilters,
    },
    Disable {
        reason: DisableReason,
    },
    Enable,
    Remove {
        reason: RemovalReason,
    },
}
