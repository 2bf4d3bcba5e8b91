//! Why a `ConnectorTarget` refused a command. Decisions, not faults: callers record them.

use crate::ids::{CommitSha, SyncId};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the target is not tracked")]
    NotTracked,
    #[error("the target was removed; track it again to use it")]
    Removed,
    #[error("the target is already tracked")]
    AlreadyTracked,
    #[error("the target is disabled; enable it first")]
    Disabled,
    #[error("the target is enabled")]
    NotDisabled,
    #[error("sync {0} is not the sync in flight")]
    UnknownSync(SyncId),
    #[error("sync {0} has not started")]
    NotStarted(SyncId),
    #[error("no push has been seen for this target, so there is no head to sync; name a head SHA")]
    NoKnownHead,
    #[error("the last sync did not fail; there is nothing to retry")]
    NothingToRetry,
    #[error("head {0} is already synced or being synced")]
    AlreadyRequested(CommitSha),
}
