//! The `ConnectorTarget` aggregate: its state, what callers may read of it, and `apply`, which
//! only assigns. The rules that turn a command into events live in `decide` and `request`.

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::ids::{
    Branch, CommitSha, ConnectionId, InstallationId, RepositoryId, RepositoryName, SourceLocation,
    SyncId, TargetId,
};

use super::command::{TargetCommand, TargetOwner};
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
    /// The `before` of the push that asked for it; `None` for operator and reconcile requests.
    #[serde(default)]
    pub before_sha: Option<CommitSha>,
    pub delivery_id: Option<String>,
    pub reason: SyncReason,
    pub forced: bool,
}

/// Fields are `pub(super)` so that the rules (`decide` and `request`, beside this module) read
/// them; outside the aggregate's folder only the accessors below are seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectorTarget {
    pub(super) target_id: Option<TargetId>,
    pub(super) installation_id: Option<InstallationId>,
    /// The repository connection the target belongs to (then no installation).
    #[serde(default)]
    pub(super) connection_id: Option<ConnectionId>,
    pub(super) repository_id: Option<RepositoryId>,
    pub(super) repository: Option<RepositoryName>,
    pub(super) branch: Option<Branch>,
    pub(super) source: Option<SourceLocation>,
    pub(super) status: TargetStatus,
    pub(super) auto_sync: bool,
    pub(super) path_filters: PathFilters,
    /// How many syncs were ever requested: names the next one, never reset.
    pub(super) requests: u64,
    pub(super) in_flight: Option<InFlightSync>,
    pub(super) follow_up: Option<FollowUp>,
    /// The newest head seen: where the branch is, as far as the pushes and requests tell.
    pub(super) last_head: Option<CommitSha>,
    /// What the synced copy holds: the head of the last sync completed (fully or partly).
    /// Reconcile compares the source's branch head with this, not with what was requested.
    pub(super) copy_head: Option<CommitSha>,
    pub(super) last_failed: Option<CommitSha>,
    /// Every head ever requested or queued (any reason) since the target was last tracked: a
    /// push never requests one of these again, whatever became of its sync, so redeliveries
    /// and copies of a push cost nothing and a failed head waits for the retry policy.
    pub(super) requested: BTreeSet<CommitSha>,
    /// Heads the push chain shows older than a head seen: the `before` of every push recorded
    /// (the all-zero SHA of a new branch aside). A push of one of these arrived late or out of
    /// order and must not move the copy back.
    pub(super) superseded: BTreeSet<CommitSha>,
}

impl ConnectorTarget {
    pub fn target_id(&self) -> Option<TargetId> {
        self.target_id
    }
    /// The App installation it belongs to; `None` for a repository connection's target.
    pub fn installation_id(&self) -> Option<InstallationId> {
        self.installation_id
    }
    /// The repository connection it belongs to; `None` for a target of the App.
    pub fn connection_id(&self) -> Option<ConnectionId> {
        self.connection_id
    }
    /// What it belongs to; `None` before it was tracked.
    pub fn owner(&self) -> Option<TargetOwner> {
        match (self.installation_id, self.connection_id) {
            (Some(installation), _) => Some(TargetOwner::Installation(installation)),
            (None, Some(connection)) => Some(TargetOwner::Connection(connection)),
            (None, None) => None,
        }
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
    /// The head the synced copy holds (the last completed or partial sync), if any.
    pub fn copy_head(&self) -> Option<&CommitSha> {
        self.copy_head.as_ref()
    }
    /// Whether `head` was ever requested or queued since the target was last tracked.
    pub fn is_requested(&self, head: &CommitSha) -> bool {
        self.requested.contains(head)
    }

    /// Learns one link of the push chain: `before` is older than the head pushed over it. The
    /// all-zero `before` of a new branch names no commit, and a push that left the branch
    /// where it was shows nothing older.
    fn learn_before(&mut self, head: &CommitSha, before: Option<CommitSha>) {
        if let Some(before) = before.filter(|sha| !sha.is_zero() && sha != head) {
            self.superseded.insert(before);
        }
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
                connection_id,
                repository_id,
                repository,
                branch,
                auto_sync,
                source,
                path_filters,
                ..
            } => {
                *self = Self {
                    target_id: Some(target_id),
                    installation_id,
                    connection_id,
                    repository_id: Some(repository_id),
                    repository: Some(repository),
                    branch: Some(branch),
                    source,
                    status: TargetStatus::Active,
                    auto_sync,
                    path_filters,
                    requests: self.requests,
                    ..Self::default()
                };
            }
            E::PushRecorded {
                head_sha,
                before_sha,
                ..
            } => {
                self.learn_before(&head_sha, before_sha);
                self.last_head = Some(head_sha);
            }
            E::PushSuperseded { before_sha, .. } => {
                self.superseded.insert(before_sha);
            }
            E::SyncRequested {
                sync_id,
                head_sha,
                before_sha,
                ..
            } => {
                self.requests += 1;
                self.last_head = Some(head_sha.clone());
                self.learn_before(&head_sha, before_sha);
                self.requested.insert(head_sha.clone());
                self.follow_up = None;
                self.in_flight = Some(InFlightSync {
                    sync_id,
                    head_sha,
                    started: false,
                });
            }
            E::SyncQueued {
                head_sha,
                before_sha,
                delivery_id,
                reason,
                forced,
                ..
            } => {
                self.last_head = Some(head_sha.clone());
                self.learn_before(&head_sha, before_sha.clone());
                self.requested.insert(head_sha.clone());
                self.follow_up = Some(FollowUp {
                    head_sha,
                    before_sha,
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
                self.copy_head = Some(head_sha);
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
