//! The `ConnectorTarget` aggregate: rules in `handle` (through `decide`), `apply` only assigns.

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{
    Branch, CommitSha, InstallationId, RepositoryId, RepositoryName, SourceLocation, SyncId,
    TargetId,
};

use super::command::{Push, TargetCommand};
use super::error::TargetError;
use super::event::{DisableReason, PathFilters, SyncReason, TargetEvent};
use super::services::TargetServices;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetStatus {
    #[default]
    Untracked,
    Active,
    Disabled(DisableReason),
    Removed,
}

/// The one sync a target may have in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightSync {
    pub sync_id: SyncId,
    pub head_sha: CommitSha,
    pub started: bool,
}

/// The request that waits for the sync in flight to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    pub head_sha: CommitSha,
    pub delivery_id: Option<String>,
    pub reason: SyncReason,
    pub forced: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectorTarget {
    target_id: Option<TargetId>,
    installation_id: Option<InstallationId>,
    repository_id: Option<RepositoryId>,
    repository: Option<RepositoryName>,
    branch: Option<Branch>,
    source: Option<SourceLocation>,
    status: TargetStatus,
    auto_sync: bool,
    path_filters: PathFilters,
    /// How many syncs were ever requested: names the next one, never reset.
    requests: u64,
    in_flight: Option<InFlightSync>,
    follow_up: Option<FollowUp>,
    /// Every head synced (completed or partial) since the target was last tracked.
    synced: BTreeSet<CommitSha>,
    last_head: Option<CommitSha>,
    last_failed: Option<CommitSha>,
}

impl ConnectorTarget {
    pub fn target_id(&self) -> Option<TargetId> {
        self.target_id
    }
    pub fn installation_id(&self) -> Option<InstallationId> {
        self.installation_id
    }
    pub fn repository_id(&self) -> Option<RepositoryId> {
        self.repository_id
    }
    pub fn repository(&self) -> Option<&RepositoryName> {
        self.repository.as_ref()
    }
    pub fn branch(&self) -> Option<&Branch> {
        self.branch.as_ref()
    }
    /// The git repository files come from; `None`: the GitHub App.
    pub fn source(&self) -> Option<&SourceLocation> {
        self.source.as_ref()
    }
    pub fn status(&self) -> TargetStatus {
        self.status
    }
    pub fn auto_sync(&self) -> bool {
        self.auto_sync
    }
    pub fn path_filters(&self) -> &PathFilters {
        &self.path_filters
    }
    pub fn in_flight(&self) -> Option<&InFlightSync> {
        self.in_flight.as_ref()
    }
    pub fn follow_up(&self) -> Option<&FollowUp> {
        self.follow_up.as_ref()
    }
    pub fn last_head(&self) -> Option<&CommitSha> {
        self.last_head.as_ref()
    }
    pub fn is_synced(&self, head: &CommitSha) -> bool {
        self.synced.contains(head)
    }

    /// Refuses commands on a target that is not tracked (never, or no longer).
    fn ensure_tracked(&self) -> Result<TargetId, TargetError> {
        match (self.status, self.target_id) {
            (TargetStatus::Removed, _) => Err(TargetError::Removed),
            (TargetStatus::Untracked, _) | (_, None) => Err(TargetError::NotTracked),
            (_, Some(id)) => Ok(id),
        }
    }

    fn ensure_active(&self) -> Result<TargetId, TargetError> {
        let id = self.ensure_tracked()?;
        match self.status {
            TargetStatus::Disabled(_) => Err(TargetError::Disabled),
            _ => Ok(id),
        }
    }

    /// Dedupe, one in flight, coalesce: the heart of the target.
    ///
    /// A head in flight, or queued behind the sync in flight, is not requested again. A head
    /// already synced is not requested again either, unless `moves_branch`: the push moves the
    /// branch from the target's latest head back onto it (a revert by force push), which must
    /// bring the copy back. A follow-up kept while the target was disabled, with nothing in
    /// flight, waits to be requested: it does not count as requested.
    fn request(
        &self,
        target_id: TargetId,
        request: FollowUp,
        moves_branch: bool,
        at: Timestamp,
    ) -> Result<Vec<TargetEvent>, TargetError> {
        let operator = matches!(request.reason, SyncReason::Manual | SyncReason::Retry);
        let head = &request.head_sha;
        let in_flight = self.in_flight.as_ref().map(|s| &s.head_sha);
        let queued = self.follow_up.as_ref().map(|f| &f.head_sha);
        let back_to_in_flight = moves_branch && in_flight == Some(head) && queued.is_some();
        let already = in_flight == Some(head) || (in_flight.is_some() && queued == Some(head));
        if already && !back_to_in_flight {
            return if operator {
                Err(TargetError::AlreadyRequested(request.head_sha))
            } else {
                Ok(vec![])
            };
        }
        if !operator && !moves_branch && self.synced.contains(head) {
            return Ok(vec![]);
        }
        if self.in_flight.is_some() {
            return Ok(vec![TargetEvent::SyncQueued {
                replaces: queued.cloned(),
                head_sha: request.head_sha,
                delivery_id: request.delivery_id,
                reason: request.reason,
                forced: request.forced,
                at,
            }]);
        }
        Ok(vec![self.requested(target_id, request, at)])
    }

    fn requested(&self, target_id: TargetId, request: FollowUp, at: Timestamp) -> TargetEvent {
        TargetEvent::SyncRequested {
            sync_id: SyncId::nth(target_id, self.requests + 1),
            head_sha: request.head_sha,
            delivery_id: request.delivery_id,
            reason: request.reason,
            forced: request.forced,
            at,
        }
    }

    /// After the sync in flight ends: the queued follow-up becomes the next request, unless
    /// the target is disabled (it waits for `Enable`) or the head was just synced.
    fn follow_up_after(
        &self,
        target_id: TargetId,
        ended: &CommitSha,
        synced: bool,
        at: Timestamp,
    ) -> Option<TargetEvent> {
        let follow_up = self.follow_up.clone()?;
        if self.status != TargetStatus::Active || (synced && &follow_up.head_sha == ended) {
            return None;
        }
        // `requests` is unchanged by the end of a sync, so the next id is still `requests + 1`.
        Some(self.requested(target_id, follow_up, at))
    }

    fn in_flight_matching(&self, sync_id: SyncId) -> Result<&InFlightSync, TargetError> {
        self.in_flight
            .as_ref()
            .filter(|s| s.sync_id == sync_id)
            .ok_or(TargetError::UnknownSync(sync_id))
    }

    fn record_push(&self, push: Push, at: Timestamp) -> Result<Vec<TargetEvent>, TargetError> {
        let target_id = self.ensure_tracked()?;
        let mut events = vec![];
        match (self.status, push.deleted) {
            (TargetStatus::Disabled(_), true) => return Ok(vec![]),
            (_, true) => {
                return Ok(vec![TargetEvent::TargetDisabled {
                    reason: DisableReason::BranchDeleted,
                    at,
                }])
            }
            (TargetStatus::Disabled(DisableReason::BranchDeleted), false) => {
                events.push(TargetEvent::TargetEnabled { at });
            }
            (TargetStatus::Disabled(_), false) => return Err(TargetError::Disabled),
            _ => {}
        }
        if !self.auto_sync {
            if self.last_head.as_ref() != Some(&push.head_sha) {
                events.push(TargetEvent::PushRecorded {
                    head_sha: push.head_sha,
                    forced: push.forced,
                    delivery_id: push.delivery_id,
                    at,
                });
            }
            return Ok(events);
        }
        let moves_branch =
            self.last_head.as_ref() == Some(&push.before_sha) && push.before_sha != push.head_sha;
        let request = FollowUp {
            head_sha: push.head_sha,
            delivery_id: Some(push.delivery_id),
            reason: SyncReason::Push,
            forced: push.forced,
        };
        events.extend(self.request(target_id, request, moves_branch, at)?);
        Ok(events)
    }

    /// The rules: what `command` makes happen, given the history so far.
    fn decide(
        &self,
        command: TargetCommand,
        at: Timestamp,
    ) -> Result<Vec<TargetEvent>, TargetError> {
        use TargetCommand as C;
        use TargetEvent as E;
        Ok(match command {
            C::Track {
                installation_id,
                repository_id,
                repository,
                branch,
                auto_sync,
                source,
            } => {
                if matches!(
                    self.status,
                    TargetStatus::Active | TargetStatus::Disabled(_)
                ) {
                    return Err(TargetError::AlreadyTracked);
                }
                vec![E::TargetTracked {
                    target_id: TargetId::for_branch(installation_id, repository_id, &branch),
                    installation_id,
                    repository_id,
                    repository,
                    branch,
                    auto_sync,
                    source,
                    at,
                }]
            }
            C::RecordPush(push) => self.record_push(push, at)?,
            C::RequestSync { head_sha, reason } => {
                let target_id = self.ensure_active()?;
                let head_sha = match (reason, head_sha) {
                    (SyncReason::Retry, given) => {
                        let failed = self
                            .last_failed
                            .clone()
                            .ok_or(TargetError::NothingToRetry)?;
                        given.unwrap_or(failed)
                    }
                    (_, Some(head)) => head,
                    (_, None) => self.last_head.clone().ok_or(TargetError::NoKnownHead)?,
                };
                let request = FollowUp {
                    head_sha,
                    delivery_id: None,
                    reason,
                    forced: false,
                };
                self.request(target_id, request, false, at)?
            }
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

impl Aggregate for ConnectorTarget {
    const TYPE: &'static str = "ConnectorTarget";
    type Command = TargetCommand;
    type Event = TargetEvent;
    type Error = TargetError;
    type Services = TargetServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services.clock.now())? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use TargetEvent as E;
        match event {
            E::TargetTracked {
                target_id,
                installation_id,
                repository_id,
                repository,
                branch,
                auto_sync,
                source,
                ..
            } => {
                *self = Self {
                    target_id: Some(target_id),
                    installation_id: Some(installation_id),
                    repository_id: Some(repository_id),
                    repository: Some(repository),
                    branch: Some(branch),
                    source,
                    status: TargetStatus::Active,
                    auto_sync,
                    requests: self.requests,
                    ..Self::default()
                };
            }
            E::PushRecorded { head_sha, .. } => self.last_head = Some(head_sha),
            E::SyncRequested {
                sync_id, head_sha, ..
            } => {
                self.requests += 1;
                self.last_head = Some(head_sha.clone());
                self.follow_up = None;
                self.in_flight = Some(InFlightSync {
                    sync_id,
                    head_sha,
                    started: false,
                });
            }
            E::SyncQueued {
                head_sha,
                delivery_id,
                reason,
                forced,
                ..
            } => {
                self.last_head = Some(head_sha.clone());
                self.follow_up = Some(FollowUp {
                    head_sha,
                    delivery_id,
                    reason,
                    forced,
                });
            }
            E::SyncStarted { .. } => {
                if let Some(sync) = &mut self.in_flight {
                    sync.started = true;
                }
            }
            E::SyncCompleted { head_sha, .. } => {
                self.in_flight = None;
                self.last_failed = None;
                self.synced.insert(head_sha);
            }
            E::SyncFailed { head_sha, .. } => {
                self.in_flight = None;
                self.last_failed = Some(head_sha);
            }
            E::RepositoryRenamed { to, .. } => self.repository = Some(to),
            E::AutoSyncChanged { enabled, .. } => self.auto_sync = enabled,
            E::PathFiltersChanged { filters, .. } => self.path_filters = filters,
            E::TargetDisabled { reason, .. } => self.status = TargetStatus::Disabled(reason),
            E::TargetEnabled { .. } => self.status = TargetStatus::Active,
            E::TargetRemoved { .. } => {
                self.status = TargetStatus::Removed;
                self.in_flight = None;
                self.follow_up = None;
            }
        }
    }
}
