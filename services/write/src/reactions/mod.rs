//! The process manager's rules: which commands a committed event asks of other aggregates.
//! Pure: `steps` looks only at the event (and, for a target, the installation it belongs to),
//! so given/when/then tests pin each cascade. `run` executes the steps through the bus.
//!
//! | event | steps |
//! |---|---|
//! | `InstanceDeleted` / `InstanceDisconnected` | `Remove` each of its targets |
//! | `RepositoriesRemoved` | `Disable` the repositories' targets (`Remove` when the repositories were deleted) |
//! | `RepositoryRenamed` / `AccountRenamed` | each target follows the new full name |
//! | `TargetAttached` by auto-track | `Track` the target, then `RecordPush` the push that asked for it |
//! | `TargetTracked` under an installation | the instance attaches it (`AttachTarget`; nothing when attached) |
//! | `TargetRemoved` under an installation | the instance detaches it (`DetachTarget`; nothing when detached) |
//! | `WebhookCreated` of a connection taking deliveries | `Track` the connection's branch (auto-sync on; a GitLab project read with git; refused when tracked) |
//! | `DisconnectRequested` | `Remove` the connection's target |
//!
//! Each step of one event runs under its own idempotency key (`event:<event id>/<step>`), so a
//! crash anywhere is finished by running the event's steps again, and steps already done change
//! nothing.

mod run;

pub use run::{run, Reacted, ReactionError};

use hooklog_domain::connector_instance::{InstanceCommand, InstanceEvent};
use hooklog_domain::connector_target::{
    DisableReason, RemovalReason, TargetCommand, TargetEvent, TargetOwner,
};
use hooklog_domain::ids::{
    InstallationId, InstanceId, RepositoryId, RepositoryName, SourceLocation, TargetId,
};
use hooklog_domain::repository_connection::{Connection, ConnectionEvent, ConnectionId, Provider};

/// A command the process manager sends to another aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Target(TargetId, TargetCommand),
    Instance(InstanceId, InstanceCommand),
}

/// A committed event of either aggregate, with the aggregate it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub enum Committed {
    Instance(InstanceId, InstanceEvent),
    /// `installation`: the target's, when it is known (from its own history).
    Target(TargetId, Option<InstallationId>, TargetEvent),
    /// `connection`: what the connection was given at connect, when its steps need it (from its
    /// own history).
    Connection(ConnectionId, Option<Connection>, ConnectionEvent),
}

/// The steps `event` asks for, in order; empty for events that touch nothing else.
pub fn steps(event: &Committed) -> Vec<Step> {
    match event {
        Committed::Instance(_, event) => instance_steps(event),
        Committed::Target(target, installation, event) => {
            target_steps(*target, *installation, event)
        }
        Committed::Connection(id, connection, event) => {
            connection_steps(*id, connection.as_ref(), event)
        }
    }
}

fn to_all(targets: &[TargetId], command: TargetCommand) -> Vec<Step> {
    targets
        .iter()
        .map(|t| Step::Target(*t, command.clone()))
        .collect()
}

fn instance_steps(event: &InstanceEvent) -> Vec<Step> {
    use InstanceEvent as E;
    match event {
        E::InstanceDeleted {
            removed_targets, ..
        } => to_all(
            removed_targets,
            TargetCommand::Remove {
                reason: RemovalReason::InstallationDeleted,
            },
        ),
        E::InstanceDisconnected {
            removed_targets, ..
        } => to_all(
            removed_targets,
            TargetCommand::Remove {
                reason: RemovalReason::InstallationDisconnected,
            },
        ),
        E::RepositoriesRemoved {
            disabled_targets,
            deleted,
            ..
        } => {
            let command = if *deleted {
                TargetCommand::Remove {
                    reason: RemovalReason::RepositoryDeleted,
                }
            } else {
                TargetCommand::Disable {
                    reason: DisableReason::RepositoryRemoved,
                }
            };
            to_all(disabled_targets, command)
        }
        E::RepositoryRenamed { targets, to, .. } => to_all(
            targets,
            TargetCommand::RenameRepository {
                repository: to.clone(),
            },
        ),
        E::AccountRenamed { targets, .. } => targets
            .iter()
            .map(|t| {
                let command = TargetCommand::RenameRepository {
                    repository: t.repository.clone(),
                };
                Step::Target(t.target_id, command)
            })
            .collect(),
        E::TargetAttached {
            installation_id,
            target,
            auto_tracked: true,
            push: Some(push),
            ..
        } => vec![
            Step::Target(
                target.target_id,
                TargetCommand::Track {
                    owner: TargetOwner::Installation(*installation_id),
                    repository_id: target.repository_id,
                    repository: target.repository.clone(),
                    branch: target.branch.clone(),
                    auto_sync: true,
                    source: None,
                    path_filters: Default::default(),
                },
            ),
            Step::Target(target.target_id, TargetCommand::RecordPush(push.clone())),
        ],
        _ => vec![],
    }
}

fn target_steps(
    target: TargetId,
    installation: Option<InstallationId>,
    event: &TargetEvent,
) -> Vec<Step> {
    use TargetEvent as E;
    match event {
        E::TargetTracked {
            installation_id: Some(installation_id),
            repository_id,
            repository,
            branch,
            ..
        } => vec![Step::Instance(
            InstanceId(*installation_id),
            InstanceCommand::AttachTarget {
                installation_id: *installation_id,
                repository_id: *repository_id,
                repository: repository.clone(),
                branch: branch.clone(),
            },
        )],
        E::TargetRemoved { .. } => match installation {
            Some(installation) => vec![Step::Instance(
                InstanceId(installation),
                InstanceCommand::DetachTarget { target_id: target },
            )],
            None => vec![],
        },
        _ => vec![],
    }
}

/// A connection's branch is tracked once its webhook exists (the repository's id, and a GitLab
/// project's path and git URL, are known then); the target goes when the connection stops
/// taking deliveries. A GitHub connection's target reads GitHub's API; a GitLab one's reads the
/// project with git (its `source`).
fn connection_steps(
    id: ConnectionId,
    connection: Option<&Connection>,
    event: &ConnectionEvent,
) -> Vec<Step> {
    use ConnectionEvent as E;
    let Some(connection) = connection else {
        return vec![];
    };
    let target = TargetId::for_connection(id, &connection.branch);
    match event {
        E::WebhookCreated {
            repository_id,
            repository_path,
            clone_url,
            ..
        } => {
            let read = match connection.provider {
                Provider::Github => RepositoryName::parse(connection.repository.as_str())
                    .ok()
                    .map(|name| (name, None)),
                Provider::Gitlab => {
                    let name = repository_path
                        .as_deref()
                        .and_then(|path| RepositoryName::parse_project_path(path).ok());
                    let source = clone_url
                        .as_deref()
                        .and_then(|url| SourceLocation::parse(url).ok());
                    name.zip(source).map(|(name, source)| (name, Some(source)))
                }
            };
            let Some((repository, source)) = read else {
                return vec![];
            };
            vec![Step::Target(
                target,
                TargetCommand::Track {
                    owner: TargetOwner::Connection(id),
                    repository_id: RepositoryId(*repository_id),
                    repository,
                    branch: connection.branch.clone(),
                    auto_sync: true,
                    source,
                    path_filters: Default::default(),
                },
            )]
        }
        E::DisconnectRequested { .. } => vec![Step::Target(
            target,
            TargetCommand::Remove {
                reason: RemovalReason::ConnectionDisconnected,
            },
        )],
        _ => vec![],
    }
}

/// A target tracked under an installation that refuses it (deleted or disconnected meanwhile) is
/// removed again, for the same reason: the compensation of a `TargetTracked` whose attach failed.
pub fn compensation(
    target: TargetId,
    refusal: &hooklog_domain::connector_instance::InstanceError,
) -> Option<Step> {
    use hooklog_domain::connector_instance::InstanceError as R;
    let reason = match refusal {
        R::Deleted => RemovalReason::InstallationDeleted,
        R::Disconnected => RemovalReason::InstallationDisconnected,
        _ => return None,
    };
    Some(Step::Target(target, TargetCommand::Remove { reason }))
}

#[cfg(test)]
mod tests;
