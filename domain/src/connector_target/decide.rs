//! The rules of `ConnectorTarget`: what a command makes happen, given the history so far.
//! `decide` dispatches; the lifecycle and the syncer's reports are checked here, and the
//! request rules (dedupe, one in flight, coalesce, convergence) live in `request`, beside it.

use crate::clock::Timestamp;
use crate::ids::{SyncId, TargetId};

use super::aggregate::{ConnectorTarget, InFlightSync, TargetStatus};
use super::command::{TargetCommand, TargetOwner};
use super::error::TargetError;
use super::event::TargetEvent;

impl ConnectorTarget {
    /// Refuses commands on a target that is not tracked (never, or no longer).
    pub(super) fn ensure_tracked(&self) -> Result<TargetId, TargetError> {
        match (self.status, self.target_id) {
            (TargetStatus::Removed, _) => Err(TargetError::Removed),
            (TargetStatus::Untracked, _) | (_, None) => Err(TargetError::NotTracked),
            (_, Some(id)) => Ok(id),
        }
    }

    pub(super) fn ensure_active(&self) -> Result<TargetId, TargetError> {
        let id = self.ensure_tracked()?;
        match self.status {
            TargetStatus::Disabled(_) => Err(TargetError::Disabled),
            _ => Ok(id),
        }
    }

    fn in_flight_matching(&self, sync_id: SyncId) -> Result<&InFlightSync, TargetError> {
        self.in_flight
            .as_ref()
            .filter(|s| s.sync_id == sync_id)
            .ok_or(TargetError::UnknownSync(sync_id))
    }

    /// The rules: what `command` makes happen, given the history so far.
    pub(super) fn decide(
        &self,
        command: TargetCommand,
        at: Timestamp,
    ) -> Result<Vec<TargetEvent>, TargetError> {
        use TargetCommand as C;
        use TargetEvent as E;
        Ok(match command {
            C::Track {
                owner,
                repository_id,
                repository,
                branch,
                auto_sync,
                source,
                path_filters,
            } => {
                if matches!(
                    self.status,
                    TargetStatus::Active | TargetStatus::Disabled(_)
                ) {
                    return Err(TargetError::AlreadyTracked);
                }
                let (installation_id, connection_id) = match owner {
                    TargetOwner::Installation(installation) => (Some(installation), None),
                    TargetOwner::Connection(connection) => (None, Some(connection)),
                };
                vec![E::TargetTracked {
                    target_id: owner.target_id(repository_id, &branch),
                    installation_id,
                    connection_id,
                    repository_id,
                    repository,
                    branch,
                    auto_sync,
                    source,
                    path_filters,
                    at,
                }]
            }
            C::RecordPush(push) => self.record_push(push, at)?,
            C::RequestSync { head_sha, reason } => self.request_sync(head_sha, reason, at)?,
            C::StartSync { sync_id } => {
                self.ensure_tracked()?;
                let sync = self.in_flight_matching(sync_id)?;
                if sync.started {
                    vec![]
                } else {
                    vec![E::SyncStarted {
                        sync_id,
                        head_sha: sync.head_sha.clone(),
                        at,
                    }]
                }
            }
            C::CompleteSync {
                sync_id,
                status,
                created,
                updated,
                deleted,
                skipped,
                failures,
            } => {
                let target_id = self.ensure_tracked()?;
                let sync = self.in_flight_matching(sync_id)?;
                if !sync.started {
                    return Err(TargetError::NotStarted(sync_id));
                }
                let head_sha = sync.head_sha.clone();
                let follow_up = self.follow_up_after(target_id, &head_sha, true, at);
                let mut events = vec![E::SyncCompleted {
                    sync_id,
                    head_sha,
                    status,
                    created,
                    updated,
                    deleted,
                    skipped,
                    failures,
                    at,
                }];
                events.extend(follow_up);
                events
            }
            C::FailSync {
                sync_id,
                error,
                retryable,
            } => {
                let target_id = self.ensure_tracked()?;
                let head_sha = self.in_flight_matching(sync_id)?.head_sha.clone();
                let follow_up = self.follow_up_after(target_id, &head_sha, false, at);
                let mut events = vec![E::SyncFailed {
                    sync_id,
                    head_sha,
                    error,
                    retryable,
                    at,
                }];
                events.extend(follow_up);
                events
            }
            C::RenameRepository { repository } => {
                self.ensure_tracked()?;
                match &self.repository {
                    Some(from) if *from != repository => vec![E::RepositoryRenamed {
                        from: from.clone(),
                        to: repository,
                        at,
                    }],
                    _ => vec![],
                }
            }
            C::SetAutoSync { enabled } => {
                self.ensure_tracked()?;
                if self.auto_sync == enabled {
                    vec![]
                } else {
                    vec![E::AutoSyncChanged { enabled, at }]
                }
            }
            C::SetPathFilters { filters } => {
                self.ensure_tracked()?;
                if self.path_filters == filters {
                    vec![]
                } else {
                    vec![E::PathFiltersChanged { filters, at }]
                }
            }
            C::Disable { reason } => {
                self.ensure_tracked()?;
                match self.status {
                    TargetStatus::Disabled(_) => vec![],
                    _ => vec![E::TargetDisabled { reason, at }],
                }
            }
            C::Enable => {
                let target_id = self.ensure_tracked()?;
                if !matches!(self.status, TargetStatus::Disabled(_)) {
                    return Err(TargetError::NotDisabled);
                }
                let mut events = vec![E::TargetEnabled { at }];
                if let (None, Some(follow_up)) = (&self.in_flight, self.follow_up.clone()) {
                    events.push(self.requested(target_id, follow_up, at));
                }
                events
            }
            C::Remove { reason } => {
                self.ensure_tracked()?;
                vec![E::TargetRemoved { reason, at }]
            }
        })
    }
}
