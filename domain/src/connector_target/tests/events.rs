//! How target events are stored (names, versions, payloads written before push chains) and
//! what the push-chain events leave in the state the accessors show.

use cqrs_es::{Aggregate, DomainEvent};

use super::*;

#[test]
fn a_superseded_push_is_stored_as_push_superseded_version_1() {
    assert_eq!(superseded(1, 2).event_type(), "PushSuperseded");
    assert_eq!(superseded(1, 2).event_version(), "1");
}

#[test]
fn events_stored_before_push_chains_load_without_a_before() {
    for event in [push_requested(1, 1), queued(2, None), push_recorded(3)] {
        let mut stored = serde_json::to_value(&event).unwrap();
        let payload = stored.as_object_mut().unwrap().values_mut().next().unwrap();
        assert!(payload
            .as_object_mut()
            .unwrap()
            .remove("before_sha")
            .is_some());
        let loaded: TargetEvent = serde_json::from_value(stored).unwrap();
        let before = match loaded {
            E::SyncRequested { before_sha, .. }
            | E::SyncQueued { before_sha, .. }
            | E::PushRecorded { before_sha, .. } => before_sha,
            other => panic!("{other:?}"),
        };
        assert_eq!(before, None);
    }
}

#[test]
fn requests_without_a_push_store_no_before() {
    let stored = serde_json::to_value(requested(1, 1, SyncReason::Reconcile)).unwrap();
    assert!(
        stored["SyncRequested"].get("before_sha").is_none(),
        "{stored}"
    );
}

#[test]
fn the_copy_head_is_the_last_synced_head_and_every_requested_head_is_remembered() {
    let history = [
        vec![tracked(true)],
        synced_from(1, 3, 4),
        vec![
            requested_from(2, 1, 2),
            started(2, 2),
            partial(completed(2, 2)),
        ],
        vec![push_requested(3, 5), failed(3, 5)],
    ]
    .concat();
    let mut target = ConnectorTarget::default();
    for event in history {
        target.apply(event);
    }
    assert_eq!(target.copy_head(), Some(&sha(2)));
    assert_eq!(target.last_head(), Some(&sha(5)));
    assert!([4, 2, 5].into_iter().all(|h| target.is_requested(&sha(h))));
    assert!(!target.is_requested(&sha(3)));
}
