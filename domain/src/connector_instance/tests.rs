//! Given/when/then tests of `ConnectorInstance`: one test per rule of `decide`, on histories built
//! from small helpers and a fixed clock, so the expected events compare equal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use cqrs_es::Aggregate;

use super::*;
use crate::clock::{FixedClock, Timestamp};
use crate::connector_target::Push;
use crate::ids::{Branch, CommitSha, InstallationId, RepositoryId, RepositoryName, TargetId};

use InstanceCommand as C;
use InstanceEvent as E;

const INSTALLATION: InstallationId = InstallationId(7);

fn at() -> Timestamp {
    Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn given(events: Vec<InstanceEvent>) -> AggregateTestExecutor<ConnectorInstance> {
    TestFramework::<ConnectorInstance>::with(InstanceServices {
        clock: Arc::new(FixedClock(at())),
    })
    .given(events)
}

fn name(full_name: &str) -> RepositoryName {
    RepositoryName::parse(full_name).unwrap()
}

fn branch(name: &str) -> Branch {
    Branch::parse(name).unwrap()
}

fn repo(id: u64, full_name: &str) -> Repository {
    Repository {
        id: RepositoryId(id),
        full_name: name(full_name),
    }
}

fn docs() -> Repository {
    repo(1, "octo/docs")
}

fn site() -> Repository {
    repo(2, "octo/site")
}

fn connect(installation_id: InstallationId) -> InstanceCommand {
    C::Connect {
        installation_id,
        account: "octo".to_owned(),
        repository_selection: Some("selected".to_owned()),
        repositories: vec![docs(), site()],
        auto_track: None,
    }
}

fn connected() -> InstanceEvent {
    E::InstanceConnected {
        installation_id: INSTALLATION,
        account: "octo".to_owned(),
        repository_selection: Some("selected".to_owned()),
        repositories: vec![docs(), site()],
        at: at(),
    }
}

fn target(repository: &Repository, branch_name: &str) -> AttachedTarget {
    AttachedTarget {
        target_id: TargetId::for_branch(INSTALLATION, repository.id, &branch(branch_name)),
        repository_id: repository.id,
        repository: repository.full_name.clone(),
        branch: branch(branch_name),
    }
}

fn target_id(repository: &Repository, branch_name: &str) -> TargetId {
    target(repository, branch_name).target_id
}

fn attach(repository: &Repository, branch_name: &str) -> InstanceCommand {
    C::AttachTarget {
        installation_id: INSTALLATION,
        repository_id: repository.id,
        repository: repository.full_name.clone(),
        branch: branch(branch_name),
    }
}

fn attached(repository: &Repository, branch_name: &str, auto_tracked: bool) -> InstanceEvent {
    E::TargetAttached {
        installation_id: INSTALLATION,
        target: target(repository, branch_name),
        auto_tracked,
        push: None,
        at: at(),
    }
}

/// A connected installation with targets on `docs` (main, dev) and `site` (main).
fn with_targets() -> Vec<InstanceEvent> {
    vec![
        connected(),
        attached(&docs(), "main", false),
        attached(&docs(), "dev", false),
        attached(&site(), "main", false),
    ]
}

fn auto_track_on() -> InstanceEvent {
    E::AutoTrackChanged {
        enabled: true,
        at: at(),
    }
}

fn auto_track(branch_name: &str) -> InstanceCommand {
    C::AutoTrack {
        repository_id: docs().id,
        repository: docs().full_name,
        branch: branch(branch_name),
        default_branch: branch("main"),
        push: push(),
    }
}

/// The push that asks auto-track for a target.
fn push() -> Push {
    Push {
        head_sha: CommitSha::parse(&"1".repeat(40)).unwrap(),
        before_sha: CommitSha::parse(&"0".repeat(40)).unwrap(),
        forced: false,
        deleted: false,
        delivery_id: "delivery-1".to_owned(),
    }
}

fn rename(repository: &Repository, to: &str) -> InstanceCommand {
    C::RenameRepository {
        repository_id: repository.id,
        repository: name(to),
    }
}

/// The state after `events`, to check what the getters say.
fn replayed(events: Vec<InstanceEvent>) -> ConnectorInstance {
    let mut instance = ConnectorInstance::default();
    for event in events {
        instance.apply(event);
    }
    instance
}

/// Every command but `Connect` (which has rules of its own after deletion and disconnection) and
/// `DetachTarget` (a no-op once the targets are gone), each valid on a connected installation.
fn every_command_but_connect() -> Vec<InstanceCommand> {
    vec![
        C::Suspend,
        C::Unsuspend,
        C::AcceptPermissions {
            permissions: BTreeMap::new(),
        },
        C::Delete,
        C::Disconnect,
        C::AddRepositories {
            repositories: vec![repo(3, "octo/blog")],
        },
        C::RemoveRepositories {
            repository_ids: vec![docs().id],
            deleted: false,
        },
        C::SetAutoTrack { enabled: true },
        C::RecordPing {
            hook_id: Some(1),
            zen: None,
        },
        attach(&docs(), "main"),
        auto_track("main"),
        rename(&docs(), "octo/handbook"),
    ]
}

// Connecting

#[test]
fn connecting_an_installation_records_its_account_and_repositories() {
    given(vec![])
        .when(connect(INSTALLATION))
        .then_expect_events(vec![connected()]);
}

#[test]
fn connecting_an_installation_already_connected_or_suspended_is_refused() {
    given(vec![connected()])
        .when(connect(INSTALLATION))
        .then_expect_error(InstanceError::AlreadyConnected);
    given(vec![connected(), E::InstanceSuspended { at: at() }])
        .when(connect(INSTALLATION))
        .then_expect_error(InstanceError::AlreadyConnected);
}

#[test]
fn connecting_a_deleted_installation_is_refused() {
    let deleted = E::InstanceDeleted {
        removed_targets: vec![],
        at: at(),
    };
    given(vec![connected(), deleted])
        .when(connect(INSTALLATION))
        .then_expect_error(InstanceError::Deleted);
}

#[test]
fn a_disconnected_installation_can_be_connected_again() {
    let disconnected = E::InstanceDisconnected {
        removed_targets: vec![],
        at: at(),
    };
    given(vec![connected(), disconnected])
        .when(connect(INSTALLATION))
        .then_expect_events(vec![connected()]);
}

#[test]
fn connecting_with_another_installation_than_the_aggregates_is_refused() {
    given(vec![attached(&docs(), "main", false)])
        .when(connect(InstallationId(8)))
        .then_expect_error_message(
            "a command for installation 8 was sent to the aggregate of installation 7",
        );
}

#[test]
fn a_pending_installation_connects_and_keeps_its_targets() {
    let history = vec![attached(&docs(), "main", false)];
    let events = given(history.clone())
        .when(connect(INSTALLATION))
        .inspect_result()
        .unwrap();
    assert_eq!(events, vec![connected()]);
    let instance = replayed([history, events].concat());
    assert_eq!(instance.status(), InstanceStatus::Connected);
    assert_eq!(instance.account(), Some("octo"));
    assert_eq!(
        instance.targets_of(docs().id),
        vec![target_id(&docs(), "main")]
    );
}

// Suspension and permissions

#[test]
fn suspending_a_connected_installation_is_recorded() {
    given(vec![connected()])
        .when(C::Suspend)
        .then_expect_events(vec![E::InstanceSuspended { at: at() }]);
}

#[test]
fn suspending_a_suspended_installation_is_refused() {
    given(vec![connected(), E::InstanceSuspended { at: at() }])
        .when(C::Suspend)
        .then_expect_error(InstanceError::AlreadySuspended);
}

#[test]
fn unsuspending_a_suspended_installation_is_recorded() {
    given(vec![connected(), E::InstanceSuspended { at: at() }])
        .when(C::Unsuspend)
        .then_expect_events(vec![E::InstanceUnsuspended { at: at() }]);
}

#[test]
fn unsuspending_an_installation_that_is_not_suspended_is_refused() {
    given(vec![connected()])
        .when(C::Unsuspend)
        .then_expect_error(InstanceError::NotSuspended);
}

#[test]
fn suspending_or_unsuspending_an_installation_not_connected_is_refused() {
    for history in [vec![], vec![attached(&docs(), "main", false)]] {
        for command in [C::Suspend, C::Unsuspend] {
            given(history.clone())
                .when(command)
                .then_expect_error(InstanceError::NotConnected);
        }
    }
}

#[test]
fn accepting_permissions_records_them() {
    let permissions = BTreeMap::from([
        ("contents".to_owned(), "read".to_owned()),
        ("metadata".to_owned(), "read".to_owned()),
    ]);
    given(vec![connected()])
        .when(C::AcceptPermissions {
            permissions: permissions.clone(),
        })
        .then_expect_events(vec![E::PermissionsAccepted {
            permissions,
            at: at(),
        }]);
}

#[test]
fn accepting_permissions_of_an_unknown_installation_is_refused() {
    given(vec![])
        .when(C::AcceptPermissions {
            permissions: BTreeMap::new(),
        })
        .then_expect_error(InstanceError::NotConnected);
}

// Deletion and disconnection

#[test]
fn deleting_an_installation_lists_every_attached_target_for_removal() {
    let mut removed_targets = vec![
        target_id(&docs(), "main"),
        target_id(&docs(), "dev"),
        target_id(&site(), "main"),
    ];
    removed_targets.sort();
    given(with_targets())
        .when(C::Delete)
        .then_expect_events(vec![E::InstanceDeleted {
            removed_targets,
            at: at(),
        }]);
}

#[test]
fn deleting_or_disconnecting_an_unknown_installation_is_refused() {
    for command in [C::Delete, C::Disconnect] {
        given(vec![])
            .when(command)
            .then_expect_error(InstanceError::NotConnected);
    }
}

#[test]
fn every_command_on_a_deleted_installation_is_refused() {
    let history = vec![
        connected(),
        E::InstanceDeleted {
            removed_targets: vec![],
            at: at(),
        },
    ];
    for command in every_command_but_connect() {
        given(history.clone())
            .when(command)
            .then_expect_error(InstanceError::Deleted);
    }
}

#[test]
fn disconnecting_an_installation_lists_every_attached_target_for_removal() {
    let mut removed_targets = vec![
        target_id(&docs(), "main"),
        target_id(&docs(), "dev"),
        target_id(&site(), "main"),
    ];
    removed_targets.sort();
    given(with_targets())
        .when(C::Disconnect)
        .then_expect_events(vec![E::InstanceDisconnected {
            removed_targets,
            at: at(),
        }]);
}

#[test]
fn every_command_but_connect_and_delete_on_a_disconnected_installation_is_refused() {
    let history = vec![
        connected(),
        E::InstanceDisconnected {
            removed_targets: vec![],
            at: at(),
        },
    ];
    for command in every_command_but_connect()
        .into_iter()
        .filter(|c| *c != C::Delete)
    {
        given(history.clone())
            .when(command)
            .then_expect_error(InstanceError::Disconnected);
    }
}

#[test]
fn github_deleting_a_disconnected_installation_is_still_recorded() {
    given(vec![
        connected(),
        E::InstanceDisconnected {
            removed_targets: vec![],
            at: at(),
        },
    ])
    .when(C::Delete)
    .then_expect_events(vec![E::InstanceDeleted {
        removed_targets: vec![],
        at: at(),
    }]);
}

#[test]
fn renaming_the_account_renames_its_repositories_and_targets() {
    let history = with_targets();
    let state = replayed(history.clone());
    let renamed: Vec<AttachedTarget> = state
        .targets()
        .filter(|t| t.repository.as_str().starts_with("octo/"))
        .map(|t| AttachedTarget {
            repository: name(&t.repository.as_str().replace("octo/", "octocat/")),
            ..t.clone()
        })
        .collect();
    assert!(!renamed.is_empty());
    let repositories = state
        .repositories()
        .iter()
        .map(|(id, full_name)| repo(id.0, &full_name.as_str().replace("octo/", "octocat/")))
        .collect();
    given(history)
        .when(C::RenameAccount {
            login: "octocat".to_owned(),
        })
        .then_expect_events(vec![E::AccountRenamed {
            from: Some("octo".to_owned()),
            to: "octocat".to_owned(),
            repositories,
            targets: renamed,
            at: at(),
        }]);
}

#[test]
fn renaming_the_account_to_its_current_login_changes_nothing() {
    given(vec![connected()])
        .when(C::RenameAccount {
            login: "octo".to_owned(),
        })
        .then_expect_events(vec![]);
}

// Repositories

#[test]
fn adding_repositories_records_only_new_or_renamed_ones() {
    let renamed = repo(2, "octo/website");
    let new = repo(3, "octo/blog");
    given(vec![connected()])
        .when(C::AddRepositories {
            repositories: vec![docs(), renamed.clone(), new.clone()],
        })
        .then_expect_events(vec![E::RepositoriesAdded {
            repositories: vec![renamed, new],
            at: at(),
        }]);
}

#[test]
fn adding_only_known_repositories_records_nothing() {
    given(vec![connected()])
        .when(C::AddRepositories {
            repositories: vec![site(), docs()],
        })
        .then_expect_events(vec![]);
}

#[test]
fn removing_repositories_disables_the_targets_of_those_repositories_only() {
    let mut disabled_targets = vec![target_id(&docs(), "main"), target_id(&docs(), "dev")];
    disabled_targets.sort();
    given(with_targets())
        .when(C::RemoveRepositories {
            repository_ids: vec![docs().id],
            deleted: false,
        })
        .then_expect_events(vec![E::RepositoriesRemoved {
            repository_ids: vec![docs().id],
            disabled_targets,
            deleted: false,
            at: at(),
        }]);
}

#[test]
fn deleting_repositories_says_so_for_their_targets_to_be_removed() {
    given(with_targets())
        .when(C::RemoveRepositories {
            repository_ids: vec![site().id],
            deleted: true,
        })
        .then_expect_events(vec![E::RepositoriesRemoved {
            repository_ids: vec![site().id],
            disabled_targets: vec![target_id(&site(), "main")],
            deleted: true,
            at: at(),
        }]);
}

#[test]
fn connecting_with_auto_track_turns_it_on_in_the_same_command() {
    let command = C::Connect {
        installation_id: INSTALLATION,
        account: "octo".to_owned(),
        repository_selection: Some("selected".to_owned()),
        repositories: vec![docs(), site()],
        auto_track: Some(true),
    };
    given(vec![])
        .when(command)
        .then_expect_events(vec![connected(), auto_track_on()]);
}

#[test]
fn renaming_a_repository_lists_its_targets_to_follow_the_new_name() {
    let mut targets = vec![target_id(&docs(), "main"), target_id(&docs(), "dev")];
    targets.sort();
    given(with_targets())
        .when(rename(&docs(), "octo/handbook"))
        .then_expect_events(vec![E::RepositoryRenamed {
            repository_id: docs().id,
            from: Some(name("octo/docs")),
            to: name("octo/handbook"),
            targets,
            at: at(),
        }]);
}

#[test]
fn renaming_a_repository_to_its_current_name_changes_nothing() {
    given(with_targets())
        .when(rename(&docs(), "octo/docs"))
        .then_expect_events(vec![]);
}

#[test]
fn renaming_an_unlisted_repository_to_the_name_its_targets_already_carry_changes_nothing() {
    given(vec![attached(&docs(), "main", false)])
        .when(rename(&docs(), "octo/docs"))
        .then_expect_events(vec![]);
}

#[test]
fn renaming_an_unlisted_repository_still_renames_its_targets() {
    given(vec![attached(&docs(), "main", false)])
        .when(rename(&docs(), "octo/handbook"))
        .then_expect_events(vec![E::RepositoryRenamed {
            repository_id: docs().id,
            from: None,
            to: name("octo/handbook"),
            targets: vec![target_id(&docs(), "main")],
            at: at(),
        }]);
}

// Settings and pings

#[test]
fn setting_auto_track_to_its_current_value_changes_nothing() {
    given(vec![connected()])
        .when(C::SetAutoTrack { enabled: false })
        .then_expect_events(vec![]);
}

#[test]
fn turning_auto_track_on_is_recorded() {
    given(vec![connected()])
        .when(C::SetAutoTrack { enabled: true })
        .then_expect_events(vec![auto_track_on()]);
}

#[test]
fn a_ping_is_recorded() {
    given(vec![connected()])
        .when(C::RecordPing {
            hook_id: Some(99),
            zen: Some("Keep it logically awesome.".to_owned()),
        })
        .then_expect_events(vec![E::WebhookPinged {
            hook_id: Some(99),
            zen: Some("Keep it logically awesome.".to_owned()),
            at: at(),
        }]);
}

// Targets

#[test]
fn attaching_a_target_to_an_unknown_installation_makes_it_pending() {
    let events = given(vec![])
        .when(attach(&docs(), "main"))
        .inspect_result()
        .unwrap();
    assert_eq!(events, vec![attached(&docs(), "main", false)]);
    let instance = replayed(events);
    assert_eq!(instance.status(), InstanceStatus::Pending);
    assert_eq!(instance.installation_id(), Some(INSTALLATION));
    assert_eq!(
        instance.targets().collect::<Vec<_>>(),
        vec![&target(&docs(), "main")]
    );
}

#[test]
fn attaching_the_same_target_twice_records_nothing() {
    given(vec![attached(&docs(), "main", false)])
        .when(attach(&docs(), "main"))
        .then_expect_events(vec![]);
}

#[test]
fn attaching_a_target_of_another_installation_is_refused() {
    let command = C::AttachTarget {
        installation_id: InstallationId(8),
        repository_id: docs().id,
        repository: docs().full_name,
        branch: branch("main"),
    };
    given(vec![connected()])
        .when(command)
        .then_expect_error(InstanceError::WrongInstallation {
            command: InstallationId(8),
            aggregate: INSTALLATION,
        });
}

#[test]
fn detaching_an_attached_target_is_recorded() {
    let target_id = target_id(&docs(), "dev");
    given(with_targets())
        .when(C::DetachTarget { target_id })
        .then_expect_events(vec![E::TargetDetached {
            target_id,
            at: at(),
        }]);
}

#[test]
fn detaching_a_target_that_is_not_attached_records_nothing() {
    given(vec![connected()])
        .when(C::DetachTarget {
            target_id: target_id(&docs(), "main"),
        })
        .then_expect_events(vec![]);
}

#[test]
fn auto_tracking_with_auto_track_off_is_refused() {
    given(vec![connected()])
        .when(auto_track("main"))
        .then_expect_error(InstanceError::AutoTrackOff);
}

#[test]
fn auto_tracking_a_branch_other_than_the_default_is_refused() {
    given(vec![connected(), auto_track_on()])
        .when(auto_track("feature"))
        .then_expect_error(InstanceError::NotDefaultBranch {
            repository: docs().full_name,
            branch: branch("feature"),
            default_branch: branch("main"),
        });
}

#[test]
fn auto_tracking_on_an_installation_not_connected_is_refused() {
    given(vec![auto_track_on()])
        .when(auto_track("main"))
        .then_expect_error(InstanceError::NotConnected);
}

#[test]
fn auto_tracking_the_default_branch_attaches_an_auto_tracked_target() {
    given(vec![connected(), auto_track_on()])
        .when(auto_track("main"))
        .then_expect_events(vec![auto_attached()]);
}

/// The target of docs@main attached by auto-track, carrying `push()`.
fn auto_attached() -> InstanceEvent {
    match attached(&docs(), "main", true) {
        E::TargetAttached {
            installation_id,
            target,
            auto_tracked,
            at,
            ..
        } => E::TargetAttached {
            installation_id,
            target,
            auto_tracked,
            push: Some(push()),
            at,
        },
        _ => unreachable!(),
    }
}

#[test]
fn auto_tracking_a_branch_already_attached_carries_the_push_again() {
    // A second push raced the first one's tracking: its head must still reach the target.
    given(vec![
        connected(),
        auto_track_on(),
        attached(&docs(), "main", false),
    ])
    .when(auto_track("main"))
    .then_expect_events(vec![auto_attached()]);
}
