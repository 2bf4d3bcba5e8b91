//! Given an event, then the steps: one test per cascade of the process manager.

use std::time::{Duration, SystemTime};

use hooklog_domain::clock::Timestamp;
use hooklog_domain::connector_instance::{
    AttachedTarget, InstanceCommand, InstanceError, InstanceEvent,
};
use hooklog_domain::connector_target::{
    DisableReason, PathFilters, Push, RemovalReason, TargetCommand, TargetEvent,
};
use hooklog_domain::ids::{
    Branch, CommitSha, InstallationId, InstanceId, RepositoryId, RepositoryName, TargetId,
};

use super::*;

const INSTALLATION: InstallationId = InstallationId(7);

fn at() -> Timestamp {
    Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn attached(branch: &str) -> AttachedTarget {
    AttachedTarget::new(
        INSTALLATION,
        RepositoryId(42),
        RepositoryName::parse("octo/docs").unwrap(),
        Branch::parse(branch).unwrap(),
    )
}

fn target(branch: &str) -> TargetId {
    attached(branch).target_id
}

fn instance(event: InstanceEvent) -> Vec<Step> {
    steps(&Committed::Instance(InstanceId(INSTALLATION), event))
}

fn remove_all(reason: RemovalReason) -> Vec<Step> {
    ["main", "dev"]
        .into_iter()
        .map(|b| Step::Target(target(b), TargetCommand::Remove { reason }))
        .collect()
}

#[test]
fn a_deleted_installation_removes_each_of_its_targets() {
    let event = InstanceEvent::InstanceDeleted {
        removed_targets: vec![target("main"), target("dev")],
        at: at(),
    };
    assert_eq!(
        instance(event),
        remove_all(RemovalReason::InstallationDeleted)
    );
}

#[test]
fn a_disconnected_installation_removes_each_of_its_targets() {
    let event = InstanceEvent::InstanceDisconnected {
        removed_targets: vec![target("main"), target("dev")],
        at: at(),
    };
    assert_eq!(
        instance(event),
        remove_all(RemovalReason::InstallationDisconnected)
    );
}

#[test]
fn removed_repositories_disable_their_targets_and_deleted_ones_remove_them() {
    let removed = |deleted| InstanceEvent::RepositoriesRemoved {
        repository_ids: vec![RepositoryId(42)],
        disabled_targets: vec![target("main"), target("dev")],
        deleted,
        at: at(),
    };
    let disable = TargetCommand::Disable {
        reason: DisableReason::RepositoryRemoved,
    };
    assert_eq!(
        instance(removed(false)),
        vec![
            Step::Target(target("main"), disable.clone()),
            Step::Target(target("dev"), disable)
        ]
    );
    assert_eq!(
        instance(removed(true)),
        remove_all(RemovalReason::RepositoryDeleted)
    );
}

#[test]
fn targets_follow_a_renamed_repository_and_a_renamed_account() {
    let to = RepositoryName::parse("octo/handbook").unwrap();
    let renamed = InstanceEvent::RepositoryRenamed {
        repository_id: RepositoryId(42),
        from: None,
        to: to.clone(),
        targets: vec![target("main")],
        at: at(),
    };
    let follow = |repository: &RepositoryName| {
        vec![Step::Target(
            target("main"),
            TargetCommand::RenameRepository {
                repository: repository.clone(),
            },
        )]
    };
    assert_eq!(instance(renamed), follow(&to));
    let moved = RepositoryName::parse("acme/docs").unwrap();
    let account = InstanceEvent::AccountRenamed {
        from: Some("octo".to_owned()),
        to: "acme".to_owned(),
        repositories: vec![],
        targets: vec![AttachedTarget {
            repository: moved.clone(),
            ..attached("main")
        }],
        at: at(),
    };
    assert_eq!(instance(account), follow(&moved));
}

#[test]
fn an_auto_tracked_target_is_tracked_then_given_the_push_that_asked_for_it() {
    let push = Push {
        head_sha: CommitSha::parse(&"1".repeat(40)).unwrap(),
        before_sha: CommitSha::parse(&"0".repeat(40)).unwrap(),
        forced: false,
        deleted: false,
        delivery_id: "d-1".to_owned(),
    };
    let event = InstanceEvent::TargetAttached {
        installation_id: INSTALLATION,
        target: attached("main"),
        auto_tracked: true,
        push: Some(push.clone()),
        at: at(),
    };
    assert_eq!(
        instance(event),
        vec![
            Step::Target(
                target("main"),
                TargetCommand::Track {
                    installation_id: INSTALLATION,
                    repository_id: RepositoryId(42),
                    repository: RepositoryName::parse("octo/docs").unwrap(),
                    branch: Branch::parse("main").unwrap(),
                    auto_sync: true,
                    source: None,
                    path_filters: PathFilters::default(),
                }
            ),
            Step::Target(target("main"), TargetCommand::RecordPush(push)),
        ]
    );
}

#[test]
fn a_target_attached_by_an_operator_needs_nothing_more() {
    let event = InstanceEvent::TargetAttached {
        installation_id: INSTALLATION,
        target: attached("main"),
        auto_tracked: false,
        push: None,
        at: at(),
    };
    assert_eq!(instance(event), vec![]);
}

#[test]
fn a_tracked_target_is_attached_to_its_installation_and_a_removed_one_detached() {
    let tracked = TargetEvent::TargetTracked {
        target_id: target("main"),
        installation_id: INSTALLATION,
        repository_id: RepositoryId(42),
        repository: RepositoryName::parse("octo/docs").unwrap(),
        branch: Branch::parse("main").unwrap(),
        auto_sync: true,
        source: None,
        path_filters: PathFilters::default(),
        at: at(),
    };
    let attach = InstanceCommand::AttachTarget {
        installation_id: INSTALLATION,
        repository_id: RepositoryId(42),
        repository: RepositoryName::parse("octo/docs").unwrap(),
        branch: Branch::parse("main").unwrap(),
    };
    assert_eq!(
        steps(&Committed::Target(target("main"), None, tracked)),
        vec![Step::Instance(InstanceId(INSTALLATION), attach)]
    );
    let removed = TargetEvent::TargetRemoved {
        reason: RemovalReason::Operator,
        at: at(),
    };
    assert_eq!(
        steps(&Committed::Target(
            target("main"),
            Some(INSTALLATION),
            removed
        )),
        vec![Step::Instance(
            InstanceId(INSTALLATION),
            InstanceCommand::DetachTarget {
                target_id: target("main")
            }
        )]
    );
}

#[test]
fn a_target_tracked_under_a_gone_installation_is_removed_for_the_same_reason() {
    assert_eq!(
        compensation(target("main"), &InstanceError::Deleted),
        Some(Step::Target(
            target("main"),
            TargetCommand::Remove {
                reason: RemovalReason::InstallationDeleted
            }
        ))
    );
    assert_eq!(
        compensation(target("main"), &InstanceError::Disconnected),
        Some(Step::Target(
            target("main"),
            TargetCommand::Remove {
                reason: RemovalReason::InstallationDisconnected
            }
        ))
    );
    assert_eq!(
        compensation(target("main"), &InstanceError::AutoTrackOff),
        None
    );
}

#[test]
fn sync_events_ask_nothing_of_other_aggregates() {
    let requested = TargetEvent::SyncStarted {
        sync_id: hooklog_domain::ids::SyncId::nth(target("main"), 1),
        head_sha: CommitSha::parse(&"1".repeat(40)).unwrap(),
        at: at(),
    };
    assert_eq!(
        steps(&Committed::Target(
            target("main"),
            Some(INSTALLATION),
            requested
        )),
        vec![]
    );
}
