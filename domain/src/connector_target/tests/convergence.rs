//! Convergence and dedupe: pushes delivered out of order, late redeliveries and copies of a
//! push never move the copy back nor request a head twice; a push that moves the branch on
//! from the newest head does, even onto an old head.

use super::*;

#[test]
fn a_swapped_pair_of_pushes_requests_only_the_newer_head_and_records_the_older_as_superseded() {
    // Synced at 1; the pushes 1->2 and 2->4 are delivered as 2->4, then 1->2.
    given(synced(1))
        .when(pushed_from(2, 4))
        .then_expect_events(vec![requested_from(2, 2, 4)]);
    given(with(synced(1), [requested_from(2, 2, 4)]))
        .when(pushed_from(1, 2))
        .then_expect_events(vec![superseded(1, 2)]);
}

#[test]
fn a_chain_of_three_pushes_arriving_reversed_requests_only_the_newest_head() {
    // 1->2, 2->3 and 3->4 were pushed in turn and are delivered as 3->4, 2->3, 1->2.
    let pushes = [pushed_from(3, 4), pushed_from(2, 3), pushed_from(1, 2)];
    assert_eq!(
        emitted(vec![tracked(true)], pushes),
        vec![requested_from(1, 3, 4), superseded(2, 3), superseded(1, 2)]
    );
}

#[test]
fn copies_of_pushes_the_chain_already_knows_record_nothing() {
    let history = vec![
        tracked(true),
        requested_from(1, 3, 4),
        superseded(2, 3),
        superseded(1, 2),
    ];
    let copies = [
        copy_of(push_from(3, 4), 1),
        copy_of(push_from(2, 3), 1),
        copy_of(push_from(1, 2), 1),
    ];
    assert_eq!(emitted(history, copies), vec![]);
}

#[test]
fn pushes_out_of_order_while_a_sync_is_in_flight_converge_on_the_newest_head() {
    // Synced at 1; 2->3 and 3->4 arrive, then the late 1->2, and sync 2 (of 3) completes.
    let commands = [
        pushed_from(2, 3),
        pushed_from(3, 4),
        pushed_from(1, 2),
        C::StartSync { sync_id: sync(2) },
        complete(2),
    ];
    assert_eq!(
        emitted(synced(1), commands),
        vec![
            requested_from(2, 2, 3),
            queued_from(3, 4, None),
            superseded(1, 2),
            started(2, 3),
            completed(2, 3),
            requested_from(3, 3, 4),
        ]
    );
}

#[test]
fn a_late_redelivery_of_an_old_push_after_newer_heads_synced_does_not_bring_the_copy_back() {
    // 1, then 3 (from 2), then 4 (from 3) synced; days later the push 1->2 is redelivered
    // twice, and the push of 1 once.
    let history = [synced(1), synced_from(2, 2, 3), synced_from(3, 3, 4)].concat();
    let late = [
        copy_of(push_from(1, 2), 1),
        copy_of(push_from(1, 2), 2),
        copy_of(push(1), 1),
    ];
    assert_eq!(
        emitted(history, late),
        vec![E::PushSuperseded {
            head_sha: sha(2),
            before_sha: sha(1),
            delivery_id: "delivery-2-copy-1".to_owned(),
            at: at(),
        }]
    );
}

#[test]
fn a_late_push_that_created_the_branch_teaches_nothing_and_records_nothing() {
    // 2->3 requested, so 2 is older than 3; the push creating the branch at 2 comes late.
    given(vec![tracked(true), requested_from(1, 2, 3)])
        .when(pushed_from(0, 2))
        .then_expect_events(vec![]);
}

#[test]
fn a_force_push_back_onto_an_old_head_requests_it_though_the_chain_shows_it_older() {
    // 1->2 then 2->3 synced, so 2 is older than 3; the branch is then forced from 3 back to 2.
    let history = [
        vec![tracked(true)],
        synced_from(1, 1, 2),
        synced_from(2, 2, 3),
    ]
    .concat();
    let mut expected = requested_from(3, 3, 2);
    if let E::SyncRequested { forced, .. } = &mut expected {
        *forced = true;
    }
    given(history)
        .when(moved(3, 2))
        .then_expect_events(vec![expected]);
}

#[test]
fn a_revert_is_a_new_head_and_is_requested() {
    // 1->2 then 2->3 synced; reverting 3 makes commit 4, whose tree is 2's: only the SHA counts.
    let history = [
        vec![tracked(true)],
        synced_from(1, 1, 2),
        synced_from(2, 2, 3),
    ]
    .concat();
    given(history)
        .when(pushed_from(3, 4))
        .then_expect_events(vec![requested_from(3, 3, 4)]);
}

#[test]
fn a_hundred_copies_of_a_push_whose_sync_failed_request_nothing_again() {
    // Sync 1 of head 1 fails at once, among a hundred more deliveries of that push.
    let copies = |ks: std::ops::RangeInclusive<usize>| ks.map(|k| copy_of(push(1), k));
    let commands = copies(1..=10).chain([fail(1)]).chain(copies(11..=100));
    assert_eq!(emitted(in_flight(1), commands), vec![failed(1, 1)]);
    // The retry policy (or an operator) still may.
    given(with(in_flight(1), [failed(1, 1)]))
        .when(request(None, SyncReason::Retry))
        .then_expect_events(vec![requested(2, 1, SyncReason::Retry)]);
}

#[test]
fn a_copy_of_a_push_whose_sync_completed_or_partly_completed_requests_nothing() {
    given(synced(1))
        .when(copy_of(push(1), 1))
        .then_expect_events(vec![]);
    let partly = with(started_sync(1), [partial(completed(1, 1))]);
    given(partly)
        .when(copy_of(push(1), 1))
        .then_expect_events(vec![]);
}

#[test]
fn with_auto_sync_off_a_late_push_does_not_move_the_last_head() {
    // 2->3 then 3->4 recorded; the late 1->2 and a copy of 2->3 arrive, then an operator syncs
    // the last head.
    let history = vec![
        tracked(false),
        push_recorded_from(2, 3),
        push_recorded_from(3, 4),
    ];
    let commands = [
        pushed_from(1, 2),
        copy_of(push_from(2, 3), 1),
        request(None, SyncReason::Manual),
    ];
    assert_eq!(
        emitted(history, commands),
        vec![superseded(1, 2), requested(1, 4, SyncReason::Manual)]
    );
}

#[test]
fn with_auto_sync_off_a_force_push_back_onto_an_old_head_moves_the_last_head() {
    given(vec![tracked(false), push_recorded_from(2, 3)])
        .when(moved(3, 2))
        .then_expect_events(vec![E::PushRecorded {
            head_sha: sha(2),
            before_sha: Some(sha(3)),
            forced: true,
            delivery_id: delivery(2),
            at: at(),
        }]);
}
