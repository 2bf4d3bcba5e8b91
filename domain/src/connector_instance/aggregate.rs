//! The `ConnectorInstance` aggregate: rules in `handle` (through `decide`), `apply` only assigns.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::ids::{InstallationId, RepositoryId, RepositoryName, TargetId};

use super::command::InstanceCommand;
use super::error::InstanceError;
use super::event::{AttachedTarget, InstanceEvent, Repository};
use super::services::InstanceServices;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceStatus {
    /// No event yet.
    #[default]
    Unknown,
    /// Targets were attached by an operator before GitHub said anything about the installation.
    Pending,
    Connected,
    Suspended,
    Deleted,
    Disconnected,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectorInstance {
    installation_id: Option<InstallationId>,
    status: InstanceStatus,
    account: Option<String>,
    repositories: BTreeMap<RepositoryId, RepositoryName>,
    auto_track: bool,
    targets: BTreeMap<TargetId, AttachedTarget>,
    permissions: BTreeMap<String, String>,
    last_ping: Option<Timestamp>,
}

impl ConnectorInstance {
    pub fn installation_id(&self) -> Option<InstallationId> {
        self.installation_id
    }
    pub fn status(&self) -> InstanceStatus {
        self.status
    }
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }
    pub fn auto_track(&self) -> bool {
        self.auto_track
    }
    pub fn repositories(&self) -> &BTreeMap<RepositoryId, RepositoryName> {
        &self.repositories
    }
    pub fn targets(&self) -> impl Iterator<Item = &AttachedTarget> {
        self.targets.values()
    }
    pub fn targets_of(&self, repository: RepositoryId) -> Vec<TargetId> {
        self.targets
            .values()
            .filter(|t| t.repository_id == repository)
            .map(|t| t.target_id)
            .collect()
    }

    fn all_targets(&self) -> Vec<TargetId> {
        self.targets.keys().copied().collect()
    }

    /// Why the installation takes no targets now (it was deleted or disconnected), if so.
    pub fn refuses_targets(&self) -> Option<InstanceError> {
        self.ensure_alive().err()
    }

    /// Refuses commands on an installation that is gone.
    fn ensure_alive(&self) -> Result<(), InstanceError> {
        match self.status {
            InstanceStatus::Deleted => Err(InstanceError::Deleted),
            InstanceStatus::Disconnected => Err(InstanceError::Disconnected),
            _ => Ok(()),
        }
    }

    /// Refuses commands that need GitHub to have told us about the installation.
    fn ensure_connected(&self) -> Result<(), InstanceError> {
        self.ensure_alive()?;
        match self.status {
            InstanceStatus::Connected | InstanceStatus::Suspended => Ok(()),
            _ => Err(InstanceError::NotConnected),
        }
    }

    fn ensure_installation(&self, command: InstallationId) -> Result<(), InstanceError> {
        match self.installation_id {
            Some(aggregate) if aggregate != command => {
                Err(InstanceError::WrongInstallation { command, aggregate })
            }
            _ => Ok(()),
        }
    }

    fn attach(
        &self,
        installation_id: InstallationId,
        target: AttachedTarget,
        auto_tracked: bool,
        at: Timestamp,
    ) -> Vec<InstanceEvent> {
        if self.targets.contains_key(&target.target_id) {
            return vec![];
        }
        vec![InstanceEvent::TargetAttached {
            installation_id,
            target,
            auto_tracked,
            push: None,
            at,
        }]
    }

    /// Renames `from/<name>` to `to/<name>` for every repository and target of the account.
    fn account_renamed(&self, from: String, to: String, at: Timestamp) -> Vec<InstanceEvent> {
        let rename = |name: &RepositoryName| -> Option<RepositoryName> {
            let (owner, repo) = name.as_str().split_once('/')?;
            (owner == from)
                .then(|| RepositoryName::parse(&format!("{to}/{repo}")).ok())
                .flatten()
        };
        let repositories = self
            .repositories
            .iter()
            .filter_map(|(id, name)| {
                rename(name).map(|full_name| Repository { id: *id, full_name })
            })
            .collect();
        let targets = self
            .targets
            .values()
            .filter_map(|t| {
                rename(&t.repository).map(|repository| AttachedTarget {
                    repository,
                    ..t.clone()
                })
            })
            .collect();
        vec![InstanceEvent::AccountRenamed {
            from: Some(from),
            to,
            repositories,
            targets,
            at,
        }]
    }

    /// The rules: what `command` makes happen, given the history so far.
    fn decide(
        &self,
        command: InstanceCommand,
        at: Timestamp,
    ) -> Result<Vec<InstanceEvent>, InstanceError> {
        use InstanceCommand as C;
        use InstanceEvent as E;
        Ok(match command {
            C::Connect {
                installation_id,
                account,
                repository_selection,
                repositories,
                auto_track,
            } => {
                self.ensure_installation(installation_id)?;
                match self.status {
                    InstanceStatus::Deleted => return Err(InstanceError::Deleted),
                    InstanceStatus::Connected | InstanceStatus::Suspended => {
                        return Err(InstanceError::AlreadyConnected)
                    }
                    _ => {}
                }
                let mut events = vec![E::InstanceConnected {
                    installation_id,
                    account,
                    repository_selection,
                    repositories,
                    at,
                }];
                if let Some(enabled) = auto_track.filter(|on| *on != self.auto_track) {
                    events.push(E::AutoTrackChanged { enabled, at });
                }
                events
            }
            C::Suspend => {
                self.ensure_connected()?;
                if self.status == InstanceStatus::Suspended {
                    return Err(InstanceError::AlreadySuspended);
                }
                vec![E::InstanceSuspended { at }]
            }
            C::Unsuspend => {
                self.ensure_connected()?;
                if self.status != InstanceStatus::Suspended {
                    return Err(InstanceError::NotSuspended);
                }
                vec![E::InstanceUnsuspended { at }]
            }
            C::AcceptPermissions { permissions } => {
                self.ensure_connected()?;
                vec![E::PermissionsAccepted { permissions, at }]
            }
            C::Delete => {
                // A disconnected installation can still be deleted on GitHub: record it.
                match self.status {
                    InstanceStatus::Deleted => return Err(InstanceError::Deleted),
                    InstanceStatus::Unknown => return Err(InstanceError::NotConnected),
                    _ => {}
                }
                vec![E::InstanceDeleted {
                    removed_targets: self.all_targets(),
                    at,
                }]
            }
            C::Disconnect => {
                self.ensure_alive()?;
                if self.status == InstanceStatus::Unknown {
                    return Err(InstanceError::NotConnected);
                }
                vec![E::InstanceDisconnected {
                    removed_targets: self.all_targets(),
                    at,
                }]
            }
            C::AddRepositories { repositories } => {
                self.ensure_connected()?;
                let new: Vec<_> = repositories
                    .into_iter()
                    .filter(|r| self.repositories.get(&r.id) != Some(&r.full_name))
                    .collect();
                if new.is_empty() {
                    vec![]
                } else {
                    vec![E::RepositoriesAdded {
                        repositories: new,
                        at,
                    }]
                }
            }
            C::RemoveRepositories {
                repository_ids,
                deleted,
            } => {
                self.ensure_connected()?;
                let disabled_targets = repository_ids
                    .iter()
                    .flat_map(|id| self.targets_of(*id))
                    .collect();
                vec![E::RepositoriesRemoved {
                    repository_ids,
                    disabled_targets,
                    deleted,
                    at,
                }]
            }
            C::SetAutoTrack { enabled } => {
                self.ensure_alive()?;
                if self.auto_track == enabled {
                    vec![]
                } else {
                    vec![E::AutoTrackChanged { enabled, at }]
                }
            }
            C::RecordPing { hook_id, zen } => {
                self.ensure_alive()?;
                vec![E::WebhookPinged { hook_id, zen, at }]
            }
            C::AttachTarget {
                installation_id,
                repository_id,
                repository,
                branch,
            } => {
                self.ensure_alive()?;
                self.ensure_installation(installation_id)?;
                let target =
                    AttachedTarget::new(installation_id, repository_id, repository, branch);
                self.attach(installation_id, target, false, at)
            }
            C::DetachTarget { target_id } => {
                if self.targets.contains_key(&target_id) {
                    vec![E::TargetDetached { target_id, at }]
                } else {
                    vec![]
                }
            }
            C::AutoTrack {
                repository_id,
                repository,
                branch,
                default_branch,
                push,
            } => {
                self.ensure_connected()?;
                if !self.auto_track {
                    return Err(InstanceError::AutoTrackOff);
                }
                if branch != default_branch {
                    return Err(InstanceError::NotDefaultBranch {
                        repository,
                        branch,
                        default_branch,
                    });
                }
                let installation_id = self.installation_id.ok_or(InstanceError::NotConnected)?;
                // Recorded even when the target is attached already (a second push raced the
                // first one's tracking): the event carries this push to the target.
                let target =
                    AttachedTarget::new(installation_id, repository_id, repository, branch);
                vec![E::TargetAttached {
                    installation_id,
                    target,
                    auto_tracked: true,
                    push: Some(push),
                    at,
                }]
            }
            C::RenameAccount { login } => {
                self.ensure_connected()?;
                match self.account.clone() {
                    Some(from) if from != login => self.account_renamed(from, login, at),
                    Some(_) => vec![],
                    None => vec![E::AccountRenamed {
                        from: None,
                        to: login,
                        repositories: vec![],
                        targets: vec![],
                        at,
                    }],
                }
            }
            C::RenameRepository {
                repository_id,
                repository,
            } => {
                self.ensure_alive()?;
                let from = self.repositories.get(&repository_id).cloned();
                let targets = self.targets_of(repository_id);
                let target_names_current = self
                    .targets
                    .values()
                    .filter(|t| t.repository_id == repository_id)
                    .all(|t| t.repository == repository);
                // A repository the installation does not list has no name of its own to change.
                if from.as_ref().is_none_or(|from| *from == repository) && target_names_current {
                    vec![]
                } else {
                    vec![E::RepositoryRenamed {
                        repository_id,
                        from,
                        to: repository,
                        targets,
                        at,
                    }]
                }
            }
        })
    }
}

impl Aggregate for ConnectorInstance {
    const TYPE: &'static str = "ConnectorInstance";
    type Command = InstanceCommand;
    type Event = InstanceEvent;
    type Error = InstanceError;
    type Services = InstanceServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services.clock.now())? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use InstanceEvent as E;
        match event {
            E::InstanceConnected {
                installation_id,
                account,
                repositories,
                ..
            } => {
                self.installation_id = Some(installation_id);
                self.status = InstanceStatus::Connected;
                self.account = Some(account);
                self.repositories = repositories
                    .into_iter()
                    .map(|r| (r.id, r.full_name))
                    .collect();
            }
            E::InstanceSuspended { .. } => self.status = InstanceStatus::Suspended,
            E::InstanceUnsuspended { .. } => self.status = InstanceStatus::Connected,
            E::PermissionsAccepted { permissions, .. } => self.permissions = permissions,
            E::InstanceDeleted { .. } => {
                self.status = InstanceStatus::Deleted;
                self.targets.clear();
            }
            E::InstanceDisconnected { .. } => {
                self.status = InstanceStatus::Disconnected;
                self.targets.clear();
            }
            E::RepositoriesAdded { repositories, .. } => {
                for r in repositories {
                    self.repositories.insert(r.id, r.full_name);
                }
            }
            E::RepositoriesRemoved { repository_ids, .. } => {
                for id in repository_ids {
                    self.repositories.remove(&id);
                }
            }
            E::AutoTrackChanged { enabled, .. } => self.auto_track = enabled,
            E::WebhookPinged { at, .. } => self.last_ping = Some(at),
            E::TargetAttached {
                installation_id,
                target,
                ..
            } => {
                self.installation_id = Some(installation_id);
                if self.status == InstanceStatus::Unknown {
                    self.status = InstanceStatus::Pending;
                }
                self.targets.insert(target.target_id, target);
            }
            E::TargetDetached { target_id, .. } => {
                self.targets.remove(&target_id);
            }
            E::AccountRenamed {
                to,
                repositories,
                targets,
                ..
            } => {
                self.account = Some(to);
                for r in repositories {
                    self.repositories.insert(r.id, r.full_name);
                }
                for t in targets {
                    self.targets.insert(t.target_id, t);
                }
            }
            E::RepositoryRenamed {
                repository_id, to, ..
            } => {
                if let Some(name) = self.repositories.get_mut(&repository_id) {
                    *name = to.clone();
                }
                for target in self.targets.values_mut() {
                    if target.repository_id == repository_id {
                        target.repository = to.clone();
                    }
                }
            }
        }
    }
}
