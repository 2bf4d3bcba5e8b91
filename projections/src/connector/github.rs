//! What the GitHub reconciler found and did (`GithubDelivery` events) as the
//! `github_deliveries` read model: one row per GUID GitHub attempted that the stream lacked,
//! its status and what was asked, every value from the events.

use hooklog_domain::github_delivery::{GithubDeliveryEvent, Unrecoverable};
use serde::{Deserialize, Serialize};

use super::{Envelope, Rows};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GithubDeliveryRow {
    pub guid: String,
    pub github_id: i64,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repository_id: Option<i64>,
    /// The repository connection whose webhook's log listed it; `None`: the App's.
    pub connection_id: Option<String>,
    pub delivered_at: String,
    pub github_status: String,
    pub github_status_code: i32,
    pub status: String,
    pub attempts: i32,
    pub last_requested_at: Option<String>,
    pub last_requested_by: Option<String>,
    pub last_error: Option<String>,
    pub unrecoverable: Option<String>,
    pub reason: Option<String>,
    pub stream_sequence: Option<i64>,
    pub found_at: String,
    pub updated_at: String,
    pub position: i64,
    pub updated_position: i64,
}

pub(super) fn apply(
    rows: &mut Rows,
    envelope: &Envelope,
    event: &GithubDeliveryEvent,
) -> Result<(), String> {
    use GithubDeliveryEvent as E;
    if let E::DeliveryMissing { guid, seen, at } = event {
        rows.github_deliveries.insert(
            guid.clone(),
            GithubDeliveryRow {
                guid: guid.clone(),
                github_id: seen.github_id as i64,
                event: seen.event.clone(),
                action: seen.action.clone(),
                installation_id: seen.installation_id.map(|id| id as i64),
                repository_id: seen.repository_id.map(|id| id as i64),
                connection_id: seen.connection_id.map(|id| id.to_string()),
                delivered_at: seen.delivered_at.to_string(),
                github_status: seen.status.clone(),
                github_status_code: i32::from(seen.status_code),
                status: "missing".to_owned(),
                attempts: 0,
                last_requested_at: None,
                last_requested_by: None,
                last_error: None,
                unrecoverable: None,
                reason: None,
                stream_sequence: None,
                found_at: at.to_string(),
                updated_at: at.to_string(),
                position: envelope.position,
                updated_position: envelope.position,
            },
        );
        return Ok(());
    }
    let guid = guid_of(event);
    let row = rows.github_deliveries.get_mut(guid).ok_or_else(|| {
        format!(
            "{} of GitHub delivery {guid} comes before its DeliveryMissing",
            envelope.event_type
        )
    })?;
    row.updated_position = envelope.position;
    match event {
        E::DeliveryMissing { .. } => unreachable!("handled above"),
        E::RedeliveryRequested {
            attempt, by, at, ..
        } => {
            row.status = "requested".to_owned();
            row.attempts = super::rows::count(*attempt);
            row.last_requested_at = Some(at.to_string());
            row.last_requested_by = Some(super::rows::name_of(by));
            row.last_error = None;
            row.updated_at = at.to_string();
        }
        E::RedeliveryFailed { error, at, .. } => {
            row.last_error = Some(error.clone());
            row.updated_at = at.to_string();
        }
        E::RedeliveryArrived {
            stream_sequence,
            at,
            ..
        } => {
            row.status = "arrived".to_owned();
            row.stream_sequence = Some(*stream_sequence as i64);
            row.updated_at = at.to_string();
        }
        E::DeliveryUnrecoverable { reason, at, .. } => {
            row.status = "unrecoverable".to_owned();
            row.unrecoverable = Some(
                match reason {
                    Unrecoverable::PastWindow { .. } => "past_window",
                    Unrecoverable::NotArrived { .. } => "not_arrived",
                    Unrecoverable::Refused { .. } => "refused",
                }
                .to_owned(),
            );
            row.reason = Some(reason.to_string());
            row.updated_at = at.to_string();
        }
    }
    Ok(())
}

/// The GUID an event is about (the row's key).
pub(super) fn guid_of(event: &GithubDeliveryEvent) -> &str {
    use GithubDeliveryEvent as E;
    match event {
        E::DeliveryMissing { guid, .. }
        | E::RedeliveryRequested { guid, .. }
        | E::RedeliveryFailed { guid, .. }
        | E::RedeliveryArrived { guid, .. }
        | E::DeliveryUnrecoverable { guid, .. } => guid,
    }
}
