//! The rows of the `connector` projection and how each event changes them. Every value comes
//! from the event or its message (timestamps are the events' own `at`), never from the clock.

use std::collections::BTreeMap;

use hooklog_domain::connector_instance::{InstanceEvent, Repository};
use hooklog_domain::connector_target::{PathFilters, TargetEvent};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{Envelope, Event, Rows};
use crate::projector::Applied;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RepositoryEntry {
    pub id: u64,
    pub full_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstanceRow {
    pub instance_id: String,
    pub installation_id: i64,
    pub account: Option<String>,
    pub status: String,
    pub repository_selection: Option<String>,
    pub repositories: Vec<RepositoryEntry>,
    pub permissions: BTreeMap<String, String>,
    pub auto_track: bool,
    pub last_ping_at: Option<String>,
    pub connected_at: Option<String>,
    pub updated_at: String,
    pub position: i64,
    pub updated_position: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Counts {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub skipped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TargetRow {
    pub target_id: String,
    pub instance_id: String,
    pub installation_id: i64,
    pub repository_id: i64,
    pub repository: String,
    pub branch: String,
    pub auto_sync: bool,
    pub path_filters: PathFilters,
    pub source: Option<String>,
    pub status: String,
    pub sync_state: String,
    pub disabled_reason: Option<String>,
    pub removed_reason: Option<String>,
    pub last_push_sha: Option<String>,
    pub last_requested_sha: Option<String>,
    pub last_synced_sha: Option<String>,
    pub queued_sha: Option<String>,
    pub last_sync_id: Option<String>,
    pub last_sync_status: Option<String>,
    pub last_counts: Option<Counts>,
    pub last_error: Option<String>,
    pub tracked_at: String,
    pub updated_at: String,
    pub position: i64,
    pub updated_position: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FailureEntry {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SyncRunRow {
    pub sync_id: String,
    pub target_id: String,
    pub installation_id: i64,
    pub repository: String,
    pub branch: String,
    pub head_sha: String,
    pub delivery_id: Option<String>,
    pub reason: String,
    pub forced: bool,
    pub status: String,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub skipped: u64,
    pub failures: Vec<FailureEntry>,
    pub error: Option<String>,
    pub retryable: Option<bool>,
    pub requested_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub position: i64,
    pub updated_position: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EffectRow {
    pub position: i64,
    pub delivery_id: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
}

/// The snake_case name serde gives a unit enum variant (`SyncReason::Push` → `push`).
fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => format!("{other:?}"),
    }
}

fn millis_between(from: &str, to: &str) -> Option<i64> {
    let from = OffsetDateTime::parse(from, &Rfc3339).ok()?;
    let to = OffsetDateTime::parse(to, &Rfc3339).ok()?;
    Some((to - from).whole_milliseconds() as i64)
}

pub(super) fn apply(
    rows: &mut Rows,
    envelope: &Envelope,
    applied: &mut Applied,
) -> Result<(), String> {
    if let Some(delivery_id) = &envelope.delivery_id {
        rows.effects.push(EffectRow {
            position: envelope.position,
            delivery_id: delivery_id.clone(),
            aggregate_type: match envelope.event {
                Event::Instance(_) => super::INSTANCE,
                Event::Target(_) => super::TARGET,
            }
            .to_owned(),
            aggregate_id: envelope.aggregate_id.clone(),
            sequence: envelope.sequence,
            event_type: envelope.event_type.clone(),
        });
    }
    match &envelope.event {
        Event::Instance(event) => apply_instance(rows, envelope, event),
        Event::Target(event) => apply_target(rows, envelope, event, applied),
    }
}

fn entries(repositories: &[Repository]) -> impl Iterator<Item = RepositoryEntry> + '_ {
    repositories.iter().map(|r| RepositoryEntry {
        id: r.id.0,
        full_name: r.full_name.to_string(),
    })
}

fn apply_instance(
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

fn target_at(event: &TargetEvent) -> hooklog_domain::clock::Timestamp {
    use TargetEvent as E;
    match event {
        E::TargetTracked { at, .. }
        | E::PushRecorded { at, .. }
        | E::PushSuperseded { at, .. }
        | E::SyncRequested { at, .. }
        | E::SyncQueued { at, .. }
        | E::SyncStarted { at, .. }
        | E::SyncCompleted { at, .. }
        | E::SyncFailed { at, .. }
        | E::RepositoryRenamed { at, .. }
        | E::AutoSyncChanged { at, .. }
        | E::PathFiltersChanged { at, .. }
        | E::TargetDisabled { at, .. }
        | E::TargetEnabled { at }
        | E::TargetRemoved { at, .. } => *at,
    }
}

fn apply_target(
    rows: &mut Rows,
    envelope: &Envelope,
    event: &TargetEvent,
    applied: &mut Applied,
) -> Result<(), String> {
    use TargetEvent as E;
    let id = &envelope.aggregate_id;
    let at = target_at(event).to_string();
    if let E::TargetTracked {
        installation_id,
        repository_id,
        repository,
        branch,
        auto_sync,
        source,
        path_filters,
        ..
    } = event
    {
        let position = rows
            .targets
            .get(id)
            .map_or(envelope.position, |t| t.position);
        rows.targets.insert(
            id.clone(),
            TargetRow {
                target_id: id.clone(),
                instance_id: format!("github-installation-{}", installation_id.0),
                installation_id: installation_id.0 as i64,
                repository_id: repository_id.0 as i64,
                repository: repository.to_string(),
                branch: branch.to_string(),
                auto_sync: *auto_sync,
                path_filters: path_filters.clone(),
                source: source.as_ref().map(ToString::to_string),
                status: "idle".to_owned(),
                sync_state: "idle".to_owned(),
                disabled_reason: None,
                removed_reason: None,
                last_push_sha: None,
                last_requested_sha: None,
                last_synced_sha: None,
                queued_sha: None,
                last_sync_id: None,
                last_sync_status: None,
                last_counts: None,
                last_error: None,
                tracked_at: at.clone(),
                updated_at: at,
                position,
                updated_position: envelope.position,
            },
        );
        return Ok(());
    }
    let target = rows
        .targets
        .get_mut(id)
        .ok_or_else(|| format!("target {id} has an event before TargetTracked"))?;
    target.updated_at = at.clone();
    target.updated_position = envelope.position;
    match event {
        E::TargetTracked { .. } => unreachable!("handled above"),
        E::PushRecorded { head_sha, .. } => target.last_push_sha = Some(head_sha.to_string()),
        // A push the chain showed older than a head seen (late or out of order): it moves
        // nothing (not the branch head, the copy nor any sync), so only the `updated_*`
        // bookkeeping every target event advances (above) changes.
        E::PushSuperseded { .. } => {}
        E::SyncRequested {
            sync_id,
            head_sha,
            delivery_id,
            reason,
            forced,
            ..
        } => {
            target.sync_state = "queued".to_owned();
            target.last_requested_sha = Some(head_sha.to_string());
            if delivery_id.is_some() {
                target.last_push_sha = Some(head_sha.to_string());
            }
            target.queued_sha = None;
            target.last_sync_id = Some(sync_id.to_string());
            rows.sync_runs.insert(
                sync_id.to_string(),
                SyncRunRow {
                    sync_id: sync_id.to_string(),
                    target_id: id.clone(),
                    installation_id: target.installation_id,
                    repository: target.repository.clone(),
                    branch: target.branch.clone(),
                    head_sha: head_sha.to_string(),
                    delivery_id: delivery_id.clone(),
                    reason: name_of(reason),
                    forced: *forced,
                    status: "queued".to_owned(),
                    created: 0,
                    updated: 0,
                    deleted: 0,
                    skipped: 0,
                    failures: vec![],
                    error: None,
                    retryable: None,
                    requested_at: at,
                    started_at: None,
                    completed_at: None,
                    duration_ms: None,
                    position: envelope.position,
                    updated_position: envelope.position,
                },
            );
        }
        E::SyncQueued {
            head_sha,
            delivery_id,
            ..
        } => {
            target.queued_sha = Some(head_sha.to_string());
            if delivery_id.is_some() {
                target.last_push_sha = Some(head_sha.to_string());
            }
        }
        E::SyncStarted { sync_id, .. } => {
            target.sync_state = "running".to_owned();
            let run = run_of(&mut rows.sync_runs, sync_id, envelope)?;
            run.status = "running".to_owned();
            run.started_at = Some(at);
        }
        E::SyncCompleted {
            sync_id,
            head_sha,
            status,
            created,
            updated,
            deleted,
            skipped,
            failures,
            ..
        } => {
            let status = status.as_str();
            let counts = Counts {
                created: *created,
                updated: *updated,
                deleted: *deleted,
                skipped: *skipped,
            };
            target.sync_state = "idle".to_owned();
            target.last_synced_sha = Some(head_sha.to_string());
            target.last_sync_status = Some(status.to_owned());
            target.last_counts = Some(counts.clone());
            target.last_error = None;
            let run = run_of(&mut rows.sync_runs, sync_id, envelope)?;
            run.status = status.to_owned();
            (run.created, run.updated, run.deleted, run.skipped) = (
                counts.created,
                counts.updated,
                counts.deleted,
                counts.skipped,
            );
            run.failures = failures
                .iter()
                .map(|f| FailureEntry {
                    path: f.path.clone(),
                    reason: f.reason.clone(),
                })
                .collect();
            run.duration_ms = millis_between(&run.requested_at, &at);
            run.completed_at = Some(at);
            applied.finished_syncs.push(status);
        }
        E::SyncFailed {
            sync_id,
            error,
            retryable,
            ..
        } => {
            target.sync_state = "failed".to_owned();
            target.last_sync_status = Some("failed".to_owned());
            target.last_error = Some(error.clone());
            let run = run_of(&mut rows.sync_runs, sync_id, envelope)?;
            run.status = "failed".to_owned();
            run.error = Some(error.clone());
            run.retryable = Some(*retryable);
            run.duration_ms = millis_between(&run.requested_at, &at);
            run.completed_at = Some(at);
            applied.finished_syncs.push("failed");
        }
        E::RepositoryRenamed { to, .. } => target.repository = to.to_string(),
        E::AutoSyncChanged { enabled, .. } => target.auto_sync = *enabled,
        E::PathFiltersChanged { filters, .. } => target.path_filters = filters.clone(),
        E::TargetDisabled { reason, .. } => target.disabled_reason = Some(name_of(reason)),
        E::TargetEnabled { .. } => target.disabled_reason = None,
        E::TargetRemoved { reason, .. } => {
            let reason = name_of(reason);
            // The aggregate drops the sync in flight and the follow-up: so does its run.
            let in_flight = rows.sync_runs.values_mut().find(|run| {
                run.target_id == *id && (run.status == "queued" || run.status == "running")
            });
            if let Some(run) = in_flight {
                run.status = "failed".to_owned();
                run.error = Some(format!(
                    "the target was removed ({reason}) while this sync was in flight"
                ));
                run.retryable = Some(false);
                run.duration_ms = millis_between(&run.requested_at, &at);
                run.completed_at = Some(at);
                run.updated_position = envelope.position;
                applied.finished_syncs.push("failed");
            }
            target.sync_state = "idle".to_owned();
            target.queued_sha = None;
            target.removed_reason = Some(reason);
        }
    }
    target.status = match (&target.removed_reason, &target.disabled_reason) {
        (Some(_), _) => "removed".to_owned(),
        (None, Some(_)) => "disabled".to_owned(),
        (None, None) => target.sync_state.clone(),
    };
    Ok(())
}

fn run_of<'a>(
    runs: &'a mut BTreeMap<String, SyncRunRow>,
    sync_id: &hooklog_domain::ids::SyncId,
    envelope: &Envelope,
) -> Result<&'a mut SyncRunRow, String> {
    let run = runs
        .get_mut(&sync_id.to_string())
        .ok_or_else(|| format!("sync {sync_id} is not a sync in flight"))?;
    run.updated_position = envelope.position;
    Ok(run)
}
