//! Requests from operators (manual, retry) and from the syncer's reconcile loop.

use super::*;

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
            before_sha: None,
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

#[test]
fn a_reconcile_of_a_head_synced_earlier_requests_it_when_the_copy_holds_another() {
    // 3->4 synced, then the push 1->2, which the chain could not show older, synced too: the
    // copy holds 2 while the source's branch is at 4.
    let history = [
        vec![tracked(true)],
        synced_from(1, 3, 4),
        synced_from(2, 1, 2),
    ]
    .concat();
    given(history.clone())
        .when(request(Some(4), SyncReason::Reconcile))
        .then_expect_events(vec![requested(3, 4, SyncReason::Reconcile)]);
    // A push of 4 still requests nothing: repairing the copy is reconcile's.
    given(history)
        .when(copy_of(push_from(3, 4), 1))
        .then_expect_events(vec![]);
}

#[test]
fn a_reconcile_of_the_head_the_copy_holds_requests_nothing() {
    // The copy holds 2, partly synced, after 4 was synced and requested.
    let history = [
        vec![tracked(true)],
        synced_from(1, 3, 4),
        vec![
            requested_from(2, 1, 2),
            started(2, 2),
            partial(completed(2, 2)),
        ],
    ]
    .concat();
    given(history)
        .when(request(Some(2), SyncReason::Reconcile))
        .then_expect_events(vec![]);
}

#[test]
fn a_reconcile_of_the_head_of_the_last_failed_sync_leaves_it_to_the_retry_policy() {
    let history = with(synced(1), [push_requested(2, 2), failed(2, 2)]);
    given(history)
        .when(request(Some(2), SyncReason::Reconcile))
        .then_expect_events(vec![]);
}

#[test]
fn a_reconcile_of_the_head_in_flight_or_queued_requests_nothing() {
    given(in_flight(1))
        .when(request(Some(1), SyncReason::Reconcile))
        .then_expect_events(vec![]);
    given(with(in_flight(1), [queued(2, None)]))
        .when(request(Some(2), SyncReason::Reconcile))
        .then_expect_events(vec![]);
}
