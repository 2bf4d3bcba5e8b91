//! What happened to a `ConnectorTarget`. Sync events carry the sync id, head SHA and counts the
//! `connector_sync_event` read model reports.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{
    Branch, CommitSha, ConnectionId, InstallationId, RepositoryId, RepositoryName, SourceLocation,
    SyncId, TargetId,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncReason {
    Push,
    Manual,
    Retry,
    Reconcile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Completed,
    /// Some files failed; the rest were synced.
    Partial,
}

impl SyncStatus {
    /// The name stored and shown for it (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Partial => "partial",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFailure {
    pub path: String,
    pub reason: String,
}

/// Which paths of a branch are synced: those matching any `include` glob (every path when
/// `include` is empty) and no `exclude` glob. Globs use `*` (within a path segment), `**` (any
/// number of segments) and `?`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathFilters {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// At most this many globs per list, each at most `MAX_GLOB_LEN` bytes.
pub const MAX_GLOBS: usize = 100;
pub const MAX_GLOB_LEN: usize = 256;

impl PathFilters {
    /// No filter: every path is synced.
    pub fn is_all(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Filters that are well-formed: bounded, no empty glob, no NUL, no absolute path, no `..`.
    pub fn parse(include: Vec<String>, exclude: Vec<String>) -> Result<Self, String> {
        for (list, globs) in [("include", &include), ("exclude", &exclude)] {
            if globs.len() > MAX_GLOBS {
                return Err(format!("{list}: at most {MAX_GLOBS} globs"));
            }
            for glob in globs.iter() {
                if glob.is_empty() || glob.len() > MAX_GLOB_LEN {
                    return Err(format!(
                        "{list}: a glob must be 1 to {MAX_GLOB_LEN} bytes long"
                    ));
                }
                if glob.contains('\0') || glob.starts_with('/') {
                    return Err(format!(
                        "{list}: {glob:?} must be a relative path without NUL"
                    ));
                }
                if glob
                    .split('/')
                    .any(|segment| segment == ".." || segment.is_empty())
                {
                    return Err(format!(
                        "{list}: {glob:?} has an empty or `..` path segment"
                    ));
                }
            }
        }
        Ok(Self { include, exclude })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisableReason {
    /// The installation lost access to the repository.
    RepositoryRemoved,
    /// The branch was deleted on GitHub; a push that recreates it enables the target again.
    BranchDeleted,
    Operator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    InstallationDeleted,
    InstallationDisconnected,
    RepositoryDeleted,
    /// The repository connection it belongs to was disconnected.
    ConnectionDisconnected,
    Operator,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TargetEvent {
    TargetTracked {
        target_id: TargetId,
        /// The App installation it belongs to; absent for a repository connection's target
        /// (every event stored before connections had targets has one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        installation_id: Option<InstallationId>,
        /// The repository connection it belongs to, instead of an installation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection_id: Option<ConnectionId>,
        repository_id: RepositoryId,
        repository: RepositoryName,
        branch: Branch,
        auto_sync: bool,
        /// The git repository the syncer reads instead of the GitHub App; absent (in events
        /// stored before sources existed, too) means GitHub.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<SourceLocation>,
        /// Which paths are synced from the start (absent, in events stored before filters could
        /// be given when tracking, too: every path).
        #[serde(default, skip_serializing_if = "PathFilters::is_all")]
        path_filters: PathFilters,
        at: Timestamp,
    },
    /// A push recorded without requesting a sync (`auto_sync` off).
    PushRecorded {
        head_sha: CommitSha,
        /// The push's `before`: the head it moved the branch from (absent in events stored before
        /// the target learned push chains, and on requests from operators or reconcile).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_sha: Option<CommitSha>,
        forced: bool,
        delivery_id: String,
        at: Timestamp,
    },
    /// A push whose head the `before`/`after` chain already shows older than a head seen (a
    /// late or out-of-order delivery): it moves neither the copy nor the last head, and is
    /// recorded only because it teaches the target one more link, `before_sha`, of that chain.
    PushSuperseded {
        head_sha: CommitSha,
        before_sha: CommitSha,
        delivery_id: String,
        at: Timestamp,
    },
    SyncRequested {
        sync_id: SyncId,
        head_sha: CommitSha,
        /// The push's `before`: the head it moved the branch from (absent in events stored before
        /// the target learned push chains, and on requests from operators or reconcile).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_sha: Option<CommitSha>,
        delivery_id: Option<String>,
        reason: SyncReason,
        forced: bool,
        at: Timestamp,
    },
    /// A request that arrived while a sync was in flight: it becomes the follow-up, replacing an
    /// older queued head (`replaces`).
    SyncQueued {
        head_sha: CommitSha,
        /// The push's `before`: the head it moved the branch from (absent in events stored before
        /// the target learned push chains, and on requests from operators or reconcile).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_sha: Option<CommitSha>,
        delivery_id: Option<String>,
        reason: SyncReason,
        forced: bool,
        replaces: Option<CommitSha>,
        at: Timestamp,
    },
    SyncStarted {
        sync_id: SyncId,
        head_sha: CommitSha,
        at: Timestamp,
    },
    SyncCompleted {
        sync_id: SyncId,
        head_sha: CommitSha,
        status: SyncStatus,
        created: u64,
        updated: u64,
        deleted: u64,
        skipped: u64,
        failures: Vec<FileFailure>,
        at: Timestamp,
    },
    SyncFailed {
        sync_id: SyncId,
        head_sha: CommitSha,
        error: String,
        retryable: bool,
        at: Timestamp,
    },
    RepositoryRenamed {
        from: RepositoryName,
        to: RepositoryName,
        at: Timestamp,
    },
    AutoSyncChanged {
        enabled: bool,
        at: Timestamp,
    },
    /// Which paths of the branch the syncer materializes from now on.
    PathFiltersChanged {
        filters: PathFilters,
        at: Timestamp,
    },
    TargetDisabled {
        reason: DisableReason,
        at: Timestamp,
    },
    TargetEnabled {
        at: Timestamp,
    },
    TargetRemoved {
        reason: RemovalReason,
        at: Timestamp,
    },
}

impl DomainEvent for TargetEvent {
    fn event_type(&self) -> String {
        let name = match self {
            Self::TargetTracked { .. } => "TargetTracked",
            Self::PushRecorded { .. } => "PushRecorded",
            Self::PushSuperseded { .. } => "PushSuperseded",
            Self::SyncRequested { .. } => "SyncRequested",
            Self::SyncQueued { .. } => "SyncQueued",
            Self::SyncStarted { .. } => "SyncStarted",
            Self::SyncCompleted { .. } => "SyncCompleted",
            Self::SyncFailed { .. } => "SyncFailed",
            Self::RepositoryRenamed { .. } => "RepositoryRenamed",
            Self::AutoSyncChanged { .. } => "AutoSyncChanged",
            Self::PathFiltersChanged { .. } => "PathFiltersChanged",
            Self::TargetDisabled { .. } => "TargetDisabled",
            Self::TargetEnabled { .. } => "TargetEnabled",
            Self::TargetRemoved { .. } => "TargetRemoved",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
