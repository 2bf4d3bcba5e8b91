//! The repositories connected without the App (`RepositoryConnection` events) as the
//! `repository_connections` read model (one row per connection and its webhook's status),
//! `incidents` (failing streaks of a CI workflow on a connection's branch) and `pull_requests`
//! (each pull request as its latest change left it): every value from the events, never a
//! secret (the events hold none).

use hooklog_domain::repository_connection::ConnectionEvent;
use serde::{Deserialize, Serialize};

use super::{Envelope, Rows};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConnectionRow {
    pub connection_id: String,
    pub provider: String,
    pub repository: String,
    pub branch: String,
    pub status: String,
    pub hook_url: String,
    pub secret_id: String,
    pub hook_id: Option<i64>,
    pub repository_id: Option<i64>,
    pub adopted: bool,
    pub attempt: i32,
    pub delete_attempts: i32,
    pub last_error: Option<String>,
    pub connected_at: String,
    pub updated_at: String,
    pub disconnected_at: Option<String>,
    pub position: i64,
    pub updated_position: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IncidentRow {
    pub incident_id: String,
    pub connection_id: String,
    pub provider: String,
    pub repository: String,
    pub branch: String,
    pub workflow_id: i64,
    pub workflow: String,
    pub status: String,
    pub conclusion: String,
    pub failures: i32,
    pub run_id: i64,
    pub run_url: String,
    pub head_sha: String,
    pub failed_at: String,
    pub last_run_id: i64,
    pub last_run_url: String,
    pub last_head_sha: String,
    pub last_failed_at: String,
    pub resolved_by_run_id: Option<i64>,
    pub resolved_by_run_url: Option<String>,
    pub resolved_head_sha: Option<String>,
    pub resolved_at: Option<String>,
    pub opened_at: String,
    pub updated_at: String,
    pub position: i64,
    pub updated_position: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PullRequestRow {
    pub pull_request_key: String,
    pub connection_id: String,
    pub repository: String,
    pub number: i64,
    pub title: String,
    pub state: String,
    pub action: String,
    pub head_branch: String,
    pub base_branch: String,
    pub head_sha: String,
    pub url: String,
    pub updated_at: String,
    pub recorded_at: String,
    pub position: i64,
}

/// The incident an event is about, if any (its row's key).
pub(super) fn incident_of(event: &ConnectionEvent) -> Option<String> {
    match event {
        ConnectionEvent::IncidentRecurred { incident_id, .. }
        | ConnectionEvent::IncidentResolved { incident_id, .. } => Some(incident_id.to_string()),
        _ => None,
    }
}

pub(super) fn apply(
    rows: &mut Rows,
    envelope: &Envelope,
    event: &ConnectionEvent,
) -> Result<(), String> {
    use ConnectionEvent as E;
    let id = &envelope.aggregate_id;
    if let E::RepositoryConnected {
        connection_id,
        provider,
        repository,
        branch,
        hook_url,
        secret_id,
        at,
    } = event
    {
        rows.connections.insert(
            id.clone(),
            ConnectionRow {
                connection_id: connection_id.to_string(),
                provider: provider.as_str().to_owned(),
                repository: repository.to_string(),
                branch: branch.to_string(),
                status: "pending".to_owned(),
                hook_url: hook_url.clone(),
                secret_id: secret_id.clone(),
                hook_id: None,
                repository_id: None,
                adopted: false,
                attempt: 1,
                delete_attempts: 0,
                last_error: None,
                connected_at: at.to_string(),
                updated_at: at.to_string(),
                disconnected_at: None,
                position: envelope.position,
                updated_position: envelope.position,
            },
        );
        return Ok(());
    }
    let row = rows.connections.get_mut(id).ok_or_else(|| {
        format!(
            "{} of repository connection {id} comes before its RepositoryConnected",
            envelope.event_type
        )
    })?;
    row.updated_position = envelope.position;
    match event {
        E::RepositoryConnected { .. } => unreachable!("handled above"),
        E::WebhookCreated {
            hook_id,
            adopted,
            repository_id,
            at,
            ..
        } => {
            row.hook_id = Some(*hook_id as i64);
            row.repository_id = Some(*repository_id as i64);
            row.adopted = *adopted;
            row.last_error = None;
            if row.status == "pending" {
                row.status = "active".to_owned();
            }
            row.updated_at = at.to_string();
        }
        E::WebhookFailed { reason, at, .. } => {
            row.status = "failed".to_owned();
            row.last_error = Some(reason.clone());
            row.updated_at = at.to_string();
        }
        E::WebhookRetryRequested { attempt, at } => {
            row.status = "pending".to_owned();
            row.attempt = super::rows::count(*attempt);
            row.updated_at = at.to_string();
        }
        E::DisconnectRequested { at } => {
            row.status = "disconnecting".to_owned();
            row.updated_at = at.to_string();
        }
        E::WebhookDeleteFailed {
            attempts,
            reason,
            at,
        } => {
            row.status = "delete_failed".to_owned();
            row.delete_attempts = super::rows::count(*attempts);
            row.last_error = Some(reason.clone());
            row.updated_at = at.to_string();
        }
        E::WebhookDeleted { at, .. } => {
            row.hook_id = None;
            row.updated_at = at.to_string();
        }
        E::RepositoryDisconnected { at } => {
            row.status = "disconnected".to_owned();
            row.last_error = None;
            row.disconnected_at = Some(at.to_string());
            row.updated_at = at.to_string();
        }
        E::IncidentOpened {
            incident_id,
            workflow_id,
            workflow,
            branch,
            conclusion,
            run,
            at,
        } => {
            let (provider, repository) = (row.provider.clone(), row.repository.clone());
            rows.incidents.insert(
                incident_id.to_string(),
                IncidentRow {
                    incident_id: incident_id.to_string(),
                    connection_id: id.clone(),
                    provider,
                    repository,
                    branch: branch.to_string(),
                    workflow_id: *workflow_id as i64,
                    workflow: workflow.clone(),
                    status: "open".to_owned(),
                    conclusion: conclusion.clone(),
                    failures: 1,
                    run_id: run.run_id as i64,
                    run_url: run.url.clone(),
                    head_sha: run.head_sha.to_string(),
                    failed_at: run.updated_at.to_string(),
                    last_run_id: run.run_id as i64,
                    last_run_url: run.url.clone(),
                    last_head_sha: run.head_sha.to_string(),
                    last_failed_at: run.updated_at.to_string(),
                    resolved_by_run_id: None,
                    resolved_by_run_url: None,
                    resolved_head_sha: None,
                    resolved_at: None,
                    opened_at: at.to_string(),
                    updated_at: at.to_string(),
                    position: envelope.position,
                    updated_position: envelope.position,
                },
            );
        }
        E::IncidentRecurred {
            incident_id,
            conclusion,
            run,
            at,
            ..
        } => {
            let incident = incident_row(rows, envelope, incident_id)?;
            incident.conclusion = conclusion.clone();
            incident.failures = incident.failures.saturating_add(1);
            incident.last_run_id = run.run_id as i64;
            incident.last_run_url = run.url.clone();
            incident.last_head_sha = run.head_sha.to_string();
            incident.last_failed_at = run.updated_at.to_string();
            incident.updated_at = at.to_string();
        }
        E::IncidentResolved {
            incident_id,
            run,
            at,
            ..
        } => {
            let incident = incident_row(rows, envelope, incident_id)?;
            incident.status = "resolved".to_owned();
            incident.resolved_by_run_id = Some(run.run_id as i64);
            incident.resolved_by_run_url = Some(run.url.clone());
            incident.resolved_head_sha = Some(run.head_sha.to_string());
            incident.resolved_at = Some(run.updated_at.to_string());
            incident.updated_at = at.to_string();
        }
        // A passing run with no incident open leaves no row.
        E::WorkflowPassed { .. } => {}
        E::PullRequestUpdated {
            number,
            title,
            state,
            action,
            head_branch,
            base_branch,
            head_sha,
            url,
            updated_at,
            at,
        } => {
            let repository = row.repository.clone();
            let key = format!("{id}#{number}");
            rows.pull_requests.insert(
                key.clone(),
                PullRequestRow {
                    pull_request_key: key,
                    connection_id: id.clone(),
                    repository,
                    number: *number as i64,
                    title: title.clone(),
                    state: state.as_str().to_owned(),
                    action: action.clone(),
                    head_branch: head_branch.clone(),
                    base_branch: base_branch.clone(),
                    head_sha: head_sha.to_string(),
                    url: url.clone(),
                    updated_at: updated_at.to_string(),
                    recorded_at: at.to_string(),
                    position: envelope.position,
                },
            );
        }
    }
    Ok(())
}

fn incident_row<'r>(
    rows: &'r mut Rows,
    envelope: &Envelope,
    incident_id: &uuid::Uuid,
) -> Result<&'r mut IncidentRow, String> {
    let row = rows
        .incidents
        .get_mut(&incident_id.to_string())
        .ok_or_else(|| {
            format!(
                "{} of incident {incident_id} comes before its IncidentOpened",
                envelope.event_type
            )
        })?;
    row.updated_position = envelope.position;
    Ok(row)
}
