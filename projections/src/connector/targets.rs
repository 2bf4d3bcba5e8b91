//! How `ConnectorTarget` events change the `targets` and `sync_runs` rows.

use std::collections::BTreeMap;

use hooklog_domain::connector_target::TargetEvent;
use hooklog_domain::ids::InstanceId;

use super::rows::{millis_between, name_of, Counts, FailureEntry, SyncRunRow, TargetRow};
use super::{Envelope, Rows};
use crate::projector::Applied;

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

pub(super) fn apply(
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
        connection_id,
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
                instance_id: installation_id.map(|i| InstanceId(i).to_string()),
                installation_id: installation_id.map(|i| i.0 as i64),
                connection_id: connection_id.map(|c| c.to_string()),
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
