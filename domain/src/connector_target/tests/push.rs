//! Pushes: with `auto_sync` on, a push requests its head (or queues it behind the sync in
//! flight); with it off, it only records the head.

use super::*;

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

#[test]
fn a_force_push_back_to_a_synced_head_requests_it_again() {
    // 1 synced, then 2 synced, then the branch is forced back from 2 to 1.
    let history = with(
        synced(1),
        [push_requested(2, 2), started(2, 2), completed(2, 2)],
    );
    let mut expected = requested_from(3, 2, 1);
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
    let mut expected = queued_from(2, 1, Some(2));
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
            before_sha: Some(sha(9)),
            delivery_id: Some(delivery(1)),
            reason: SyncReason::Push,
            forced: true,
            at: at(),
        }]);
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
            before_sha: Some(sha(9)),
            forced: true,
            delivery_id: delivery(1),
            at: at(),
        }]);
}
