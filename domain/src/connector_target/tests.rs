//! Given/when/then tests of `ConnectorTarget`: one test per rule of `decide`, on histories built
//! from small helpers (a tracked target, a push, a SHA from a digit) and a fixed clock, so the
//! expected events compare equal.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cqrs_es::test::{AggregateTestExecutor, TestFramework};

use super::*;
use crate::clock::{FixedClock, Timestamp};
use crate::ids::{
    Branch, CommitSha, InstallationId, RepositoryId, RepositoryName, SyncId, TargetId,
};

use TargetCommand as C;
use TargetEvent as E;

fn at() -> Timestamp {
    Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn given(events: Vec<TargetEvent>) -> AggregateTestExecutor<ConnectorTarget> {
    TestFramework::<ConnectorTarget>::with(TargetServices {
        clock: Arc::new(FixedClock(at())),
    })
    .given(events)
}

fn repository(name: &str) -> RepositoryName {
    RepositoryName::parse(name).unwrap()
}

fn main_branch() -> Branch {
    Branch::parse("main").unwrap()
}

fn target_id() -> TargetId {
    TargetId::for_branch(InstallationId(7), RepositoryId(42), &main_branch())
}

fn sync(n: u64) -> SyncId {
    SyncId::nth(target_id(), n)
}

/// A SHA made of one repeated digit: `sha(0)` is GitHub's all-zero SHA.
fn sha(digit: u8) -> CommitSha {
    CommitSha::parse(&digit.to_string().repeat(40)).unwrap()
}

fn delivery(head: u8) -> String {
    format!("delivery-{head}")
}

fn track(auto_sync: bool) -> TargetCommand {
    C::Track {
        installation_id: InstallationId(7),
        repository_id: RepositoryId(42),
        repository: repository("octo/docs"),
        branch: main_branch(),
        auto_sync,
        source: None,
    }
}

fn tracked(auto_sync: bool) -> TargetEvent {
    E::TargetTracked {
        target_id: target_id(),
        installation_id: InstallationId(7),
        repository_id: RepositoryId(42),
        repository: repository("octo/docs"),
        branch: main_branch(),
        auto_sync,
        source: None,
        at: at(),
    }
}

/// A push of `head` in its own delivery.
fn push(head: u8) -> Push {
    Push {
        head_sha: sha(head),
        before_sha: sha(9),
        forced: false,
        deleted: false,
        delivery_id: delivery(head),
    }
}

fn pushed(head: u8) -> TargetCommand {
    C::RecordPush(push(head))
}

fn branch_deleted() -> TargetCommand {
    C::RecordPush(Push {
        head_sha: sha(0),
        deleted: true,
        ..push(0)
    })
}

fn push_recorded(head: u8) -> TargetEvent {
    E::PushRecorded {
        head_sha: sha(head),
        forced: false,
        delivery_id: delivery(head),
        at: at(),
    }
}

/// Sync number `n` requested by the push of `head`.
fn push_requested(n: u64, head: u8) -> TargetEvent {
    E::SyncRequested {
        sync_id: sync(n),
        head_sha: sha(head),
        delivery_id: Some(delivery(head)),
        reason: SyncReason::Push,
        forced: false,
        at: at(),
    }
}

/// Sync number `n` requested without a delivery (operator, retry, reconcile).
fn requested(n: u64, head: u8, reason: SyncReason) -> TargetEvent {
    E::SyncRequested {
        sync_id: sync(n),
        head_sha: sha(head),
        delivery_id: None,
        reason,
        forced: false,
        at: at(),
    }
}

/// The push of `head` queued behind the sync in flight, replacing the queued push of `replaces`.
fn queued(head: u8, replaces: Option<u8>) -> TargetEvent {
    E::SyncQueued {
        head_sha: sha(head),
        delivery_id: Some(delivery(head)),
        reason: SyncReason::Push,
        forced: false,
        replaces: replaces.map(sha),
        at: at(),
    }
}

fn started(n: u64, head: u8) -> TargetEvent {
    E::SyncStarted {
        sync_id: sync(n),
        head_sha: sha(head),
        at: at(),
    }
}

fn complete(n: u64) -> TargetCommand {
    C::CompleteSync {
        sync_id: sync(n),
        status: SyncStatus::Completed,
        created: 3,
        updated: 2,
        deleted: 1,
        skipped: 0,
        failures: vec![],
    }
}

fn completed(n: u64, head: u8) -> TargetEvent {
    E::SyncCompleted {
        sync_id: sync(n),
        head_sha: sha(head),
        status: SyncStatus::Completed,
        created: 3,
        updated: 2,
        deleted: 1,
        skipped: 0,
        failures: vec![],
        at: at(),
    }
}

fn fail(n: u64) -> TargetCommand {
    C::FailSync {
        sync_id: sync(n),
        error: "tree fetch timed out".to_owned(),
        retryable: true,
    }
}

fn failed(n: u64, head: u8) -> TargetEvent {
    E::SyncFailed {
        sync_id: sync(n),
        head_sha: sha(head),
        error: "tree fetch timed out".to_owned(),
        retryable: true,
        at: at(),
    }
}

fn request(head: Option<u8>, reason: SyncReason) -> TargetCommand {
    C::RequestSync {
        head_sha: head.map(sha),
        reason,
    }
}

fn disabled(reason: DisableReason) -> TargetEvent {
    E::TargetDisabled { reason, at: at() }
}

fn enabled() -> TargetEvent {
    E::TargetEnabled { at: at() }
}

fn removed() -> TargetEvent {
    E::TargetRemoved {
        reason: RemovalReason::Operator,
        at: at(),
    }
}

/// A target with auto_sync on whose push of `head` is sync 1, requested but not started.
fn in_flight(head: u8) -> Vec<TargetEvent> {
    vec![tracked(true), push_requested(1, head)]
}

/// A target with auto_sync on whose push of `head` is sync 1, started.
fn started_sync(head: u8) -> Vec<TargetEvent> {
    vec![tracked(true), push_requested(1, head), started(1, head)]
}

/// A target with auto_sync on whose push of `head` was synced as sync 1.
fn synced(head: u8) -> Vec<TargetEvent> {
    vec![
        tracked(true),
        push_requested(1, head),
        started(1, head),
        completed(1, head),
    ]
}

fn with(
    mut history: Vec<TargetEvent>,
    more: impl IntoIterator<Item = TargetEvent>,
) -> Vec<TargetEvent> {
    history.extend(more);
    history
}

/// Every command but `Track`, each valid on an active target with sync 1 in flight.
fn every_command_but_track() -> Vec<TargetCommand> {
    vec![
        pushed(2),
        request(Some(2), SyncReason::Manual),
        C::StartSync { sync_id: sync(1) },
        complete(1),
        fail(1),
        C::RenameRepository {
            repository: repository("octo/handbook"),
        },
        C::SetAutoSync { enabled: false },
        C::SetPathFilters {
            filters: docs_only(),
        },
        C::Disable {
            reason: DisableReason::Operator,
        },
        C::Enable,
        C::Remove {
            reason: RemovalReason::Operator,
        },
    ]
}

// Tracking

#[test]
fn tracking_a_branch_tracks_it_under_the_id_derived_from_installation_repository_and_branch() {
    given(vec![])
        .when(track(true))
        .then_expect_events(vec![tracked(true)]);
}

#[test]
fn tracking_a_target_already_tracked_or_disabled_is_refused() {
    given(vec![tracked(true)])
        .when(track(true))
        .then_expect_error(TargetError::AlreadyTracked);
    given(vec![tracked(true), disabled(DisableReason::Operator)])
        .when(track(false))
        .then_expect_error(TargetError::AlreadyTracked);
}

#[test]
fn a_removed_target_can_be_tracked_again() {
    given(vec![tracked(true), removed()])
        .when(track(false))
        .then_expect_events(vec![tracked(false)]);
}

#[test]
fn a_target_tracked_again_syncs_its_heads_again_under_new_sync_ids() {
    let history = with(synced(1), [removed(), tracked(true)]);
    given(history)
        .when(pushed(1))
        .then_expect_events(vec![push_requested(2, 1)]);
}

#[test]
fn every_command_but_track_is_refused_on_an_untracked_target() {
    for command in every_command_but_track() {
        given(vec![])
            .when(command)
            .then_expect_error(TargetError::NotTracked);
    }
}

#[test]
fn every_command_but_track_is_refused_on_a_removed_target() {
    for command in every_command_but_track() {
        given(with(in_flight(1), [removed()]))
            .when(command)
            .then_expect_error(TargetError::Removed);
    }
}

// Pushes with auto_sync on

#[test]
fn a_push_requests_the_first_sync_of_its_head_with_its_delivery_id() {
    given(vec![tracked(true)])
        .when(pushed(1))
        .then_expect_events(vec![push_requested(1, 1)]);
}

#[test]
fn a_push_for_a_head_already_in_flight_requests_nothing() {
    let redelivered = C::RecordPush(Push {
        delivery_id: "redelivered".to_owned(),
        ..push(1)
    });
    given(in_flight(1))
        .when(redelivered)
        .then_expect_events(vec![]);
}

#[test]
fn a_push_for_a_head_already_queued_requests_nothing() {
    given(with(in_flight(1), [queued(2, None)]))
        .when(pushed(2))
        .then_expect_events(vec![]);
}

#[test]
fn a_push_for_a_head_already_synced_requests_nothing() {
    given(synced(1)).when(pushed(1)).then_expect_events(vec![]);
}

/// A push moving the branch from `before` to `head`.
fn moved(before: u8, head: u8) -> TargetCommand {
    C::RecordPush(Push {
        before_sha: sha(before),
        forced: true,
        ..push(head)
    })
}

#[test]
fn a_force_push_back_to_a_synced_head_requests_it_again() {
    // 1 synced, then 2 synced, then the branch is forced back from 2 to 1.
    let history = with(
        synced(1),
        [push_requested(2, 2), started(2, 2), completed(2, 2)],
    );
    let mut expected = push_requested(3, 1);
    if let E::SyncRequested { forced, .. } = &mut expected {
        *forced = true;
    }
    given(history)
        .when(moved(2, 1))
        .then_expect_events(vec![expected]);
}

#[test]
fn a_stale_copy_of_an_old_push_does_not_bring_the_copy_back() {
    // 1 then 2 synced; a distinct delivery of the push to 1 (from 9) arrives late.
    let history = with(
        synced(1),
        [push_requested(2, 2), started(2, 2), completed(2, 2)],
    );
    given(history).when(moved(9, 1)).then_expect_events(vec![]);
}

#[test]
fn a_force_push_back_to_the_head_in_flight_replaces_the_queued_follow_up() {
    // 1 in flight, 2 queued, then the branch is forced back from 2 to 1.
    let history = with(in_flight(1), [queued(2, None)]);
    let mut expected = queued(1, Some(2));
    if let E::SyncQueued { forced, .. } = &mut expected {
        *forced = true;
    }
    given(history)
        .when(moved(2, 1))
        .then_expect_events(vec![expected]);
}

#[test]
fn a_push_while_a_sync_is_in_flight_is_queued_as_the_follow_up() {
    given(in_flight(1))
        .when(pushed(2))
        .then_expect_events(vec![queued(2, None)]);
}

#[test]
fn a_newer_push_replaces_the_queued_follow_up() {
    given(with(in_flight(1), [queued(2, None)]))
        .when(pushed(3))
        .then_expect_events(vec![queued(3, Some(2))]);
}

#[test]
fn a_forced_push_requests_a_forced_sync() {
    let forced = C::RecordPush(Push {
        forced: true,
        ..push(1)
    });
    given(vec![tracked(true)])
        .when(forced)
        .then_expect_events(vec![E::SyncRequested {
            sync_id: sync(1),
            head_sha: sha(1),
            delivery_id: Some(delivery(1)),
            reason: SyncReason::Push,
            forced: true,
            at: at(),
        }]);
}

// Ending the sync in flight

#[test]
fn completing_the_sync_in_flight_with_nothing_queued_requests_nothing_more() {
    given(started_sync(1))
        .when(complete(1))
        .then_expect_events(vec![completed(1, 1)]);
}

#[test]
fn completing_the_sync_in_flight_requests_the_queued_follow_up_as_the_next_sync() {
    given(with(started_sync(1), [queued(2, None)]))
        .when(complete(1))
        .then_expect_events(vec![completed(1, 1), push_requested(2, 2)]);
}

#[test]
fn failing_the_sync_in_flight_also_requests_the_queued_follow_up() {
    given(with(started_sync(1), [queued(2, None)]))
        .when(fail(1))
        .then_expect_events(vec![failed(1, 1), push_requested(2, 2)]);
}

#[test]
fn a_sync_may_fail_before_it_started() {
    given(in_flight(1))
        .when(fail(1))
        .then_expect_events(vec![failed(1, 1)]);
}

#[test]
fn a_disabled_target_keeps_its_follow_up_waiting_when_the_sync_in_flight_ends() {
    given(with(
        started_sync(1),
        [queued(2, None), disabled(DisableReason::Operator)],
    ))
    .when(complete(1))
    .then_expect_events(vec![completed(1, 1)]);
}

#[test]
fn enabling_a_target_requests_the_follow_up_it_kept_waiting() {
    let history = with(
        started_sync(1),
        [
            queued(2, None),
            disabled(DisableReason::Operator),
            completed(1, 1),
        ],
    );
    given(history)
        .when(C::Enable)
        .then_expect_events(vec![enabled(), push_requested(2, 2)]);
}

#[test]
fn enabling_a_target_while_its_sync_is_in_flight_leaves_the_follow_up_queued() {
    given(with(
        started_sync(1),
        [queued(2, None), disabled(DisableReason::Operator)],
    ))
    .when(C::Enable)
    .then_expect_events(vec![enabled()]);
}

// Pushes with auto_sync off

#[test]
fn a_push_with_auto_sync_off_is_recorded_without_requesting_a_sync() {
    given(vec![tracked(false)])
        .when(pushed(1))
        .then_expect_events(vec![push_recorded(1)]);
}

#[test]
fn the_same_head_pushed_again_with_auto_sync_off_records_nothing() {
    given(vec![tracked(false), push_recorded(1)])
        .when(pushed(1))
        .then_expect_events(vec![]);
}

#[test]
fn a_forced_push_with_auto_sync_off_is_recorded_as_forced() {
    let forced = C::RecordPush(Push {
        forced: true,
        ..push(1)
    });
    given(vec![tracked(false)])
        .when(forced)
        .then_expect_events(vec![E::PushRecorded {
            head_sha: sha(1),
            forced: true,
            delivery_id: delivery(1),
            at: at(),
        }]);
}

// Branch deletion and recreation

#[test]
fn deleting_the_branch_disables_the_target() {
    given(synced(1))
        .when(branch_deleted())
        .then_expect_events(vec![disabled(DisableReason::BranchDeleted)]);
}

#[test]
fn deleting_the_branch_of_a_disabled_target_changes_nothing() {
    given(vec![tracked(true), disabled(DisableReason::BranchDeleted)])
        .when(branch_deleted())
        .then_expect_events(vec![]);
}

#[test]
fn a_push_that_recreates_a_deleted_branch_enables_the_target_and_requests_a_sync() {
    given(with(synced(1), [disabled(DisableReason::BranchDeleted)]))
        .when(pushed(2))
        .then_expect_events(vec![enabled(), push_requested(2, 2)]);
}

#[test]
fn a_push_that_recreates_a_deleted_branch_at_its_queued_head_requests_that_head() {
    let history = with(
        started_sync(1),
        [
            queued(2, None),
            disabled(DisableReason::BranchDeleted),
            completed(1, 1),
        ],
    );
    given(history)
        .when(pushed(2))
        .then_expect_events(vec![enabled(), push_requested(2, 2)]);
}

#[test]
fn a_push_to_a_target_disabled_for_another_reason_is_refused() {
    for reason in [DisableReason::Operator, DisableReason::RepositoryRemoved] {
        given(vec![tracked(true), disabled(reason)])
            .when(pushed(1))
            .then_expect_error(TargetError::Disabled);
    }
}

// Requests from operators and the reconcile loop

#[test]
fn a_manual_sync_without_a_head_syncs_the_last_head_pushed() {
    given(vec![tracked(false), push_recorded(3)])
        .when(request(None, SyncReason::Manual))
        .then_expect_events(vec![requested(1, 3, SyncReason::Manual)]);
}

#[test]
fn a_manual_sync_without_a_head_before_any_push_is_refused() {
    given(vec![tracked(true)])
        .when(request(None, SyncReason::Manual))
        .then_expect_error_message(
            "no push has been seen for this target, so there is no head to sync; name a head SHA",
        );
}

#[test]
fn a_manual_sync_of_an_already_synced_head_is_allowed() {
    given(synced(1))
        .when(request(Some(1), SyncReason::Manual))
        .then_expect_events(vec![requested(2, 1, SyncReason::Manual)]);
}

#[test]
fn a_manual_sync_of_the_head_in_flight_is_refused() {
    given(in_flight(1))
        .when(request(Some(1), SyncReason::Manual))
        .then_expect_error(TargetError::AlreadyRequested(sha(1)));
}

#[test]
fn a_manual_sync_while_another_is_in_flight_is_queued() {
    given(in_flight(1))
        .when(request(Some(2), SyncReason::Manual))
        .then_expect_events(vec![E::SyncQueued {
            head_sha: sha(2),
            delivery_id: None,
            reason: SyncReason::Manual,
            forced: false,
            replaces: None,
            at: at(),
        }]);
}

#[test]
fn a_manual_sync_of_a_disabled_target_is_refused() {
    given(with(synced(1), [disabled(DisableReason::Operator)]))
        .when(request(Some(1), SyncReason::Manual))
        .then_expect_error(TargetError::Disabled);
}

#[test]
fn a_retry_without_a_failed_sync_is_refused() {
    given(synced(1))
        .when(request(None, SyncReason::Retry))
        .then_expect_error(TargetError::NothingToRetry);
}

#[test]
fn a_retry_requests_the_head_of_the_failed_sync_again() {
    given(with(started_sync(1), [failed(1, 1)]))
        .when(request(None, SyncReason::Retry))
        .then_expect_events(vec![requested(2, 1, SyncReason::Retry)]);
}

#[test]
fn a_completed_sync_leaves_nothing_to_retry() {
    let history = with(
        started_sync(1),
        [
            failed(1, 1),
            requested(2, 1, SyncReason::Retry),
            started(2, 1),
            completed(2, 1),
        ],
    );
    given(history)
        .when(request(None, SyncReason::Retry))
        .then_expect_error(TargetError::NothingToRetry);
}

#[test]
fn a_reconcile_of_a_synced_head_requests_nothing() {
    given(synced(1))
        .when(request(Some(1), SyncReason::Reconcile))
        .then_expect_events(vec![]);
}

#[test]
fn a_reconcile_of_a_head_not_yet_synced_requests_it() {
    given(synced(1))
        .when(request(Some(2), SyncReason::Reconcile))
        .then_expect_events(vec![requested(2, 2, SyncReason::Reconcile)]);
}

// Reports from the syncer

#[test]
fn starting_the_sync_in_flight_records_its_head() {
    given(in_flight(1))
        .when(C::StartSync { sync_id: sync(1) })
        .then_expect_events(vec![started(1, 1)]);
}

#[test]
fn starting_a_sync_that_is_not_in_flight_is_refused() {
    given(in_flight(1))
        .when(C::StartSync { sync_id: sync(9) })
        .then_expect_error(TargetError::UnknownSync(sync(9)));
}

#[test]
fn starting_a_sync_twice_records_it_once() {
    given(started_sync(1))
        .when(C::StartSync { sync_id: sync(1) })
        .then_expect_events(vec![]);
}

#[test]
fn completing_a_sync_that_has_not_started_is_refused() {
    given(in_flight(1))
        .when(complete(1))
        .then_expect_error(TargetError::NotStarted(sync(1)));
}

#[test]
fn completing_or_failing_a_sync_that_already_ended_is_refused() {
    given(synced(1))
        .when(complete(1))
        .then_expect_error(TargetError::UnknownSync(sync(1)));
    given(synced(1))
        .when(fail(1))
        .then_expect_error(TargetError::UnknownSync(sync(1)));
}

#[test]
fn a_partial_sync_carries_its_file_failures() {
    let failures = vec![FileFailure {
        path: "docs/huge.md".to_owned(),
        reason: "too large".to_owned(),
    }];
    let command = C::CompleteSync {
        sync_id: sync(1),
        status: SyncStatus::Partial,
        created: 4,
        updated: 0,
        deleted: 0,
        skipped: 1,
        failures: failures.clone(),
    };
    given(started_sync(1))
        .when(command)
        .then_expect_events(vec![E::SyncCompleted {
            sync_id: sync(1),
            head_sha: sha(1),
            status: SyncStatus::Partial,
            created: 4,
            updated: 0,
            deleted: 0,
            skipped: 1,
            failures,
            at: at(),
        }]);
}

// Settings and lifecycle

#[test]
fn renaming_the_repository_to_its_current_name_changes_nothing() {
    given(vec![tracked(true)])
        .when(C::RenameRepository {
            repository: repository("octo/docs"),
        })
        .then_expect_events(vec![]);
}

#[test]
fn renaming_the_repository_records_the_old_and_new_names() {
    given(vec![tracked(true)])
        .when(C::RenameRepository {
            repository: repository("octo/handbook"),
        })
        .then_expect_events(vec![E::RepositoryRenamed {
            from: repository("octo/docs"),
            to: repository("octo/handbook"),
            at: at(),
        }]);
}

#[test]
fn setting_auto_sync_to_its_current_value_changes_nothing() {
    given(vec![tracked(true)])
        .when(C::SetAutoSync { enabled: true })
        .then_expect_events(vec![]);
}

#[test]
fn turning_auto_sync_off_is_recorded() {
    given(vec![tracked(true)])
        .when(C::SetAutoSync { enabled: false })
        .then_expect_events(vec![E::AutoSyncChanged {
            enabled: false,
            at: at(),
        }]);
}

#[test]
fn disabling_an_active_target_records_the_reason() {
    given(vec![tracked(true)])
        .when(C::Disable {
            reason: DisableReason::RepositoryRemoved,
        })
        .then_expect_events(vec![disabled(DisableReason::RepositoryRemoved)]);
}

#[test]
fn disabling_a_disabled_target_changes_nothing() {
    given(vec![tracked(true), disabled(DisableReason::BranchDeleted)])
        .when(C::Disable {
            reason: DisableReason::Operator,
        })
        .then_expect_events(vec![]);
}

#[test]
fn enabling_an_active_target_is_refused() {
    given(vec![tracked(true)])
        .when(C::Enable)
        .then_expect_error(TargetError::NotDisabled);
}

#[test]
fn enabling_a_disabled_target_with_nothing_waiting_only_enables_it() {
    given(with(synced(1), [disabled(DisableReason::Operator)]))
        .when(C::Enable)
        .then_expect_events(vec![enabled()]);
}

#[test]
fn removing_a_target_records_the_reason() {
    given(in_flight(1))
        .when(C::Remove {
            reason: RemovalReason::RepositoryDeleted,
        })
        .then_expect_events(vec![E::TargetRemoved {
            reason: RemovalReason::RepositoryDeleted,
            at: at(),
        }]);
}

// Path filters

fn docs_only() -> PathFilters {
    PathFilters::parse(vec!["docs/**".into()], vec!["**/*.tmp".into()]).unwrap()
}

#[test]
fn setting_path_filters_records_them_once() {
    given(vec![tracked(true)])
        .when(C::SetPathFilters {
            filters: docs_only(),
        })
        .then_expect_events(vec![E::PathFiltersChanged {
            filters: docs_only(),
            at: at(),
        }]);
    given(vec![
        tracked(true),
        E::PathFiltersChanged {
            filters: docs_only(),
            at: at(),
        },
    ])
    .when(C::SetPathFilters {
        filters: docs_only(),
    })
    .then_expect_events(vec![]);
}

#[test]
fn path_filters_that_could_escape_the_branch_or_grow_unbounded_are_refused() {
    for (include, why) in [
        (vec!["/etc/passwd".to_owned()], "relative path"),
        (vec!["docs/../..".to_owned()], "`..`"),
        (vec!["".to_owned()], "1 to 256 bytes"),
        (vec!["a".repeat(MAX_GLOB_LEN + 1)], "1 to 256 bytes"),
        (vec!["*".to_owned(); MAX_GLOBS + 1], "at most 100"),
    ] {
        let err = PathFilters::parse(include, vec![]).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
    assert!(PathFilters::parse(vec![], vec!["**/*.bin".into()]).is_ok());
}
