//! The sync in flight: what the syncer's reports (start, complete, fail) do, and what follows
//! when a sync ends.

use super::*;

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
