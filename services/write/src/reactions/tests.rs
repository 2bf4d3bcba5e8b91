//! Given an event, then the steps: one test per cascade of the process manager.

use std::time::{Duration, SystemTime};

use hooklog_domain::clock::Timestamp;
use hooklog_domain::connector_instance::{
    AttachedTarget, InstanceCommand, InstanceError, InstanceEvent,
};
use hooklog_domain::connector_target::{
    DisableReason, PathFilters, Push, RemovalReason, TargetCommand, TargetEvent, TargetOwner,
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
                    owner: TargetOwner::Installation(INSTALLATION),
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
        installation_id: Some(INSTALLATION),
        connection_id: None,
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

fn connection(provider: Provider) -> Connection {
    let repository = match provider {
        Provider::Github => "octo/docs",
        Provider::Gitlab => "group/sub/docs",
    };
    Connection {
        id: ConnectionId(uuid::Uuid::from_u128(0xc0)),
        provider,
        repository: hooklog_domain::repository_connection::ProviderRepository::parse(
            provider, repository,
        )
        .unwrap(),
        branch: Branch::parse("main").unwrap(),
        hook_url: "https://hooks.example.com/v1/webhooks/repositories/c0".to_owned(),
        secret_id: "s".to_owned(),
    }
}

fn connection_steps_of(provider: Provider, event: ConnectionEvent) -> Vec<Step> {
    let connection = connection(provider);
    steps(&Committed::Connection(
        connection.id,
        Some(connection),
        event,
    ))
}

#[test]
fn a_github_connections_webhook_tracks_its_branch_and_its_disconnect_removes_the_target() {
    let id = connection(Provider::Github).id;
    let target = TargetId::for_connection(id, &Branch::parse("main").unwrap());
    let created = ConnectionEvent::WebhookCreated {
        attempt: 1,
        hook_id: 9,
        adopted: false,
        repository_id: 42,
        repository_path: None,
        clone_url: None,
        at: at(),
    };
    assert_eq!(
        connection_steps_of(Provider::Github, created),
        vec![Step::Target(
            target,
            TargetCommand::Track {
                owner: TargetOwner::Connection(id),
                repository_id: RepositoryId(42),
                repository: RepositoryName::parse("octo/docs").unwrap(),
                branch: Branch::parse("main").unwrap(),
                auto_sync: true,
                source: None,
                path_filters: PathFilters::default(),
            }
        )]
    );
    assert_eq!(
        connection_steps_of(
            Provider::Github,
            ConnectionEvent::DisconnectRequested { at: at() }
        ),
        vec![Step::Target(
            target,
            TargetCommand::Remove {
                reason: RemovalReason::ConnectionDisconnected
            }
        )]
    );
    // Its target has no installation to attach to or detach from.
    let tracked = TargetEvent::TargetTracked {
        target_id: target,
        installation_id: None,
        connection_id: Some(id),
        repository_id: RepositoryId(42),
        repository: RepositoryName::parse("octo/docs").unwrap(),
        branch: Branch::parse("main").unwrap(),
        auto_sync: true,
        source: None,
        path_filters: PathFilters::default(),
        at: at(),
    };
    assert_eq!(steps(&Committed::Target(target, None, tracked)), vec![]);
}

#[test]
fn a_gitlab_connections_webhook_tracks_its_project_read_with_git_and_other_events_ask_nothing() {
    let id = connection(Provider::Gitlab).id;
    let target = TargetId::for_connection(id, &Branch::parse("main").unwrap());
    let created = |path: Option<&str>, clone_url: Option<&str>| ConnectionEvent::WebhookCreated {
        attempt: 1,
        hook_id: 9,
        adopted: true,
        repository_id: 42,
        repository_path: path.map(str::to_owned),
        clone_url: clone_url.map(str::to_owned),
        at: at(),
    };
    let url = "https://gitlab.example.com/group/sub/docs.git";
    assert_eq!(
        connection_steps_of(Provider::Gitlab, created(Some("group/sub/docs"), Some(url))),
        vec![Step::Target(
            target,
            TargetCommand::Track {
                owner: TargetOwner::Connection(id),
                repository_id: RepositoryId(42),
                repository: RepositoryName::parse_project_path("group/sub/docs").unwrap(),
                branch: Branch::parse("main").unwrap(),
                auto_sync: true,
                source: Some(hooklog_domain::ids::SourceLocation::parse(url).unwrap()),
                path_filters: PathFilters::default(),
            }
        )]
    );
    // Without the project's path or git URL (an API URL not ending in /api/v4), or with a URL
    // that carries credentials, nothing is tracked.
    for (path, url) in [
        (None, Some(url)),
        (Some("group/sub/docs"), None),
        (
            Some("group/sub/docs"),
            Some("https://user:pw@gitlab.example.com/g/d.git"),
        ),
    ] {
        assert_eq!(
            connection_steps_of(Provider::Gitlab, created(path, url)),
            vec![]
        );
    }
    assert_eq!(
        connection_steps_of(
            Provider::Gitlab,
            ConnectionEvent::DisconnectRequested { at: at() }
        ),
        vec![Step::Target(
            target,
            TargetCommand::Remove {
                reason: RemovalReason::ConnectionDisconnected
            }
        )]
    );
    let failed = ConnectionEvent::WebhookFailed {
        attempt: 1,
        reason: "403".to_owned(),
        at: at(),
    };
    assert_eq!(connection_steps_of(Provider::Github, failed), vec![]);
    // Without what the connection was given (a webhook recorded while disconnecting), nothing.
    let created = created(Some("group/sub/docs"), Some(url));
    assert_eq!(steps(&Committed::Connection(id, None, created)), vec![]);
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
