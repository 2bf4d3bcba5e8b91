//! Tracking, branch deletion and recreation, settings, removal and path filters.

use super::*;

// Tracking

#[test]
fn tracking_a_branch_tracks_it_under_the_id_derived_from_installation_repository_and_branch() {
    given(vec![])
        .when(track(true))
        .then_expect_events(vec![tracked(true)]);
}

#[test]
fn a_repository_connections_target_is_named_after_the_connection_and_branch_and_has_no_installation(
) {
    let connection = crate::ids::ConnectionId(uuid::Uuid::from_u128(0xc0));
    let id = TargetId::for_connection(connection, &main_branch());
    assert_ne!(id, target_id(), "an App target's id is another name");
    assert_ne!(
        id,
        TargetId::for_connection(
            crate::ids::ConnectionId(uuid::Uuid::from_u128(0xc1)),
            &main_branch()
        )
    );
    let track = C::Track {
        owner: TargetOwner::Connection(connection),
        repository_id: RepositoryId(42),
        repository: repository("octo/docs"),
        branch: main_branch(),
        auto_sync: true,
        source: None,
        path_filters: PathFilters::default(),
    };
    let tracked = E::TargetTracked {
        target_id: id,
        installation_id: None,
        connection_id: Some(connection),
        repository_id: RepositoryId(42),
        repository: repository("octo/docs"),
        branch: main_branch(),
        auto_sync: true,
        source: None,
        path_filters: PathFilters::default(),
        at: at(),
    };
    given(vec![])
        .when(track)
        .then_expect_events(vec![tracked.clone()]);
    // The same rules as an App target's: a push requests its head once.
    let requested = E::SyncRequested {
        sync_id: SyncId::nth(id, 1),
        head_sha: sha(1),
        before_sha: Some(sha(9)),
        delivery_id: Some(delivery(1)),
        reason: SyncReason::Push,
        forced: false,
        at: at(),
    };
    given(vec![tracked.clone()])
        .when(pushed(1))
        .then_expect_events(vec![requested.clone()]);
    given(vec![tracked, requested])
        .when(pushed(1))
        .then_expect_events(vec![]);
}

#[test]
fn a_target_tracked_before_connections_existed_decodes_with_its_installation() {
    let stored = serde_json::json!({"TargetTracked": {
        "target_id": target_id(), "installation_id": 7, "repository_id": 42,
        "repository": "octo/docs", "branch": "main", "auto_sync": true,
        "at": at(),
    }});
    let event: TargetEvent = serde_json::from_value(stored).unwrap();
    assert_eq!(event, tracked(true));
    let written = serde_json::to_value(tracked(true)).unwrap();
    assert!(
        written["TargetTracked"].get("connection_id").is_none(),
        "{written}"
    );
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
