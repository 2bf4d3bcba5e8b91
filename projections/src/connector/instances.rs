//! How `ConnectorInstance` events change the `instances` rows.

use std::collections::BTreeMap;

use hooklog_domain::connector_instance::{InstanceEvent, Repository};

use super::rows::{InstanceRow, RepositoryEntry};
use super::{Envelope, Rows};

fn entries(repositories: &[Repository]) -> impl Iterator<Item = RepositoryEntry> + '_ {
    repositories.iter().map(|r| RepositoryEntry {
        id: r.id.0,
        full_name: r.full_name.to_string(),
    })
}

pub(super) fn apply(
    rows: &mut Rows,
    envelope: &Envelope,
    event: &InstanceEvent,
) -> Result<(), String> {
    use InstanceEvent as E;
    let id = &envelope.aggregate_id;
    let installation_id = id
        .strip_prefix("github-installation-")
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or_else(|| format!("{id:?} is not an instance id"))?;
    let at = instance_at(event).to_string();
    let row = rows
        .instances
        .entry(id.clone())
        .or_insert_with(|| InstanceRow {
            instance_id: id.clone(),
            installation_id,
            account: None,
            status: "pending".to_owned(),
            repository_selection: None,
            repositories: vec![],
            permissions: BTreeMap::new(),
            auto_track: false,
            last_ping_at: None,
            connected_at: None,
            updated_at: at.clone(),
            position: envelope.position,
            updated_position: envelope.position,
        });
    row.updated_at = at.clone();
    row.updated_position = envelope.position;
    match event {
        E::InstanceConnected {
            account,
            repository_selection,
            repositories,
            ..
        } => {
            row.account = Some(account.clone());
            row.status = "connected".to_owned();
            row.repository_selection = repository_selection.clone();
            row.repositories = entries(repositories).collect();
            row.connected_at = Some(at);
        }
        E::InstanceSuspended { .. } => row.status = "suspended".to_owned(),
        E::InstanceUnsuspended { .. } => row.status = "connected".to_owned(),
        E::PermissionsAccepted { permissions, .. } => row.permissions = permissions.clone(),
        E::InstanceDeleted { .. } => row.status = "deleted".to_owned(),
        E::InstanceDisconnected { .. } => row.status = "disconnected".to_owned(),
        E::RepositoriesAdded { repositories, .. } => {
            for added in entries(repositories) {
                row.repositories.retain(|r| r.id != added.id);
                row.repositories.push(added);
            }
        }
        E::RepositoriesRemoved { repository_ids, .. } => row
            .repositories
            .retain(|r| !repository_ids.iter().any(|id| id.0 == r.id)),
        E::AutoTrackChanged { enabled, .. } => row.auto_track = *enabled,
        E::WebhookPinged { .. } => row.last_ping_at = Some(at),
        E::TargetAttached { .. } | E::TargetDetached { .. } => {}
        E::AccountRenamed {
            to, repositories, ..
        } => {
            row.account = Some(to.clone());
            for renamed in entries(repositories) {
                if let Some(entry) = row.repositories.iter_mut().find(|r| r.id == renamed.id) {
                    entry.full_name = renamed.full_name;
                }
            }
        }
        E::RepositoryRenamed {
            repository_id, to, ..
        } => {
            if let Some(entry) = row
                .repositories
                .iter_mut()
                .find(|r| r.id == repository_id.0)
            {
                entry.full_name = to.to_string();
            }
        }
    }
    row.repositories.sort_by_key(|r| r.id);
    Ok(())
}

fn instance_at(event: &InstanceEvent) -> hooklog_domain::clock::Timestamp {
    use InstanceEvent as E;
    match event {
        E::InstanceConnected { at, .. }
        | E::InstanceSuspended { at }
        | E::InstanceUnsuspended { at }
        | E::PermissionsAccepted { at, .. }
        | E::InstanceDeleted { at, .. }
        | E::InstanceDisconnected { at, .. }
        | E::RepositoriesAdded { at, .. }
        | E::RepositoriesRemoved { at, .. }
        | E::AutoTrackChanged { at, .. }
        | E::WebhookPinged { at, .. }
        | E::TargetAttached { at, .. }
        | E::TargetDetached { at, .. }
        | E::AccountRenamed { at, .. }
        | E::RepositoryRenamed { at, .. } => *at,
    }
}
