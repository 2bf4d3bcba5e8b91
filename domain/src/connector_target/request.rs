//! When a `ConnectorTarget` requests a sync: the push and request rules `decide` applies.
//!
//! - **Dedupe**: a push never requests a head a push or request already requested, whatever
//!   became of that sync (in flight, completed, partial, failed). Failed heads are retried by
//!   the retry policy or an operator only.
//! - **One in flight, coalesce**: a request while a sync is in flight becomes the one queued
//!   follow-up, replacing an older one.
//! - **Convergence**: GitHub does not promise delivery order, so a push whose head the
//!   `before`/`after` chain already shows older than a head seen does not move the copy (nor
//!   the last head); only a push that moves the branch from the last head (a force push back
//!   onto an old head included) requests a head again. What the chain cannot know, reconcile
//!   repairs: it requests the source's branch head whenever the copy holds another one.

use crate::clock::Timestamp;
use crate::ids::{CommitSha, SyncId, TargetId};

use super::aggregate::{ConnectorTarget, FollowUp, TargetStatus};
use super::command::Push;
use super::error::TargetError;
use super::event::{DisableReason, SyncReason, TargetEvent};

impl ConnectorTarget {
    pub(super) fn record_push(
        &self,
        push: Push,
        at: Timestamp,
    ) -> Result<Vec<TargetEvent>, TargetError> {
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
        // The push moves the branch on from the newest head seen: the one kind of push that
        // may bring back a head requested before (a force push onto an old head).
        let moves_branch =
            self.last_head.as_ref() == Some(&push.before_sha) && push.before_sha != push.head_sha;
        if !self.auto_sync {
            events.extend(self.record_without_sync(push, moves_branch, at));
            return Ok(events);
        }
        if !moves_branch {
            if self.requested.contains(&push.head_sha) && !self.waits(&push.head_sha) {
                return Ok(events);
            }
            if self.superseded.contains(&push.head_sha) {
                events.extend(self.superseded_push(push, at));
                return Ok(events);
            }
        }
        let request = FollowUp {
            head_sha: push.head_sha,
            before_sha: Some(push.before_sha),
            delivery_id: Some(push.delivery_id),
            reason: SyncReason::Push,
            forced: push.forced,
        };
        events.extend(self.request(target_id, request, moves_branch, at)?);
        Ok(events)
    }

    /// `auto_sync` off: the push only moves the last head (what a manual sync without a head
    /// syncs), under the same chain rule, so that head never goes back either.
    fn record_without_sync(
        &self,
        push: Push,
        moves_branch: bool,
        at: Timestamp,
    ) -> Option<TargetEvent> {
        if !moves_branch {
            if self.last_head.as_ref() == Some(&push.head_sha) {
                return None;
            }
            if self.superseded.contains(&push.head_sha) {
                return self.superseded_push(push, at);
            }
        }
        Some(TargetEvent::PushRecorded {
            head_sha: push.head_sha,
            before_sha: Some(push.before_sha),
            forced: push.forced,
            delivery_id: push.delivery_id,
            at,
        })
    }

    /// A push of a superseded head changes nothing; it is recorded only when its `before` is a
    /// link of the chain the target did not know, so copies of it emit nothing.
    fn superseded_push(&self, push: Push, at: Timestamp) -> Option<TargetEvent> {
        let before = &push.before_sha;
        let teaches =
            !before.is_zero() && *before != push.head_sha && !self.superseded.contains(before);
        teaches.then_some(TargetEvent::PushSuperseded {
            head_sha: push.head_sha,
            before_sha: push.before_sha,
            delivery_id: push.delivery_id,
            at,
        })
    }

    /// A follow-up kept while the target was disabled, with nothing in flight, waits to be
    /// requested: it was queued, but no sync of it was ever asked of the syncer, so a push of
    /// that head (the one that recreates a deleted branch) requests it.
    fn waits(&self, head: &CommitSha) -> bool {
        self.in_flight.is_none() && self.follow_up.as_ref().map(|f| &f.head_sha) == Some(head)
    }

    /// `RequestSync`. Manual and retry requests may sync any head not in flight or queued (an
    /// operator may re-sync a synced head). Reconcile has read the branch head from the source:
    /// it requests it whenever the copy holds another head, even one synced before, except the
    /// head of the last failed sync, which the retry policy owns.
    pub(super) fn request_sync(
        &self,
        head_sha: Option<CommitSha>,
        reason: SyncReason,
        at: Timestamp,
    ) -> Result<Vec<TargetEvent>, TargetError> {
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
        let settled = [&self.copy_head, &self.last_failed]
            .into_iter()
            .any(|known| known.as_ref() == Some(&head_sha));
        if reason == SyncReason::Reconcile && settled {
            return Ok(vec![]);
        }
        let request = FollowUp {
            head_sha,
            before_sha: None,
            delivery_id: None,
            reason,
            forced: false,
        };
        self.request(target_id, request, false, at)
    }

    /// One in flight, coalesce: the heart of the target.
    ///
    /// A head in flight, or queued behind the sync in flight, is not requested again (an
    /// operator is told so), unless `moves_branch` brings the branch back to the head in flight
    /// while another is queued: the queued head is then replaced by the one in flight. Whether
    /// a head requested before may be requested again is the caller's rule.
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
        if self.in_flight.is_some() {
            return Ok(vec![TargetEvent::SyncQueued {
                replaces: queued.cloned(),
                head_sha: request.head_sha,
                before_sha: request.before_sha,
                delivery_id: request.delivery_id,
                reason: request.reason,
                forced: request.forced,
                at,
            }]);
        }
        Ok(vec![self.requested(target_id, request, at)])
    }

    /// The next sync, numbered after every sync ever requested of this target.
    pub(super) fn requested(
        &self,
        target_id: TargetId,
        request: FollowUp,
        at: Timestamp,
    ) -> TargetEvent {
        TargetEvent::SyncRequested {
            sync_id: SyncId::nth(target_id, self.requests + 1),
            head_sha: request.head_sha,
            before_sha: request.before_sha,
            delivery_id: request.delivery_id,
            reason: request.reason,
            forced: request.forced,
            at,
        }
    }

    /// After the sync in flight ends: the queued follow-up becomes the next request, unless
    /// the target is disabled (it waits for `Enable`) or the head was just synced.
    pub(super) fn follow_up_after(
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
}
