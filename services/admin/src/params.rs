//! Turning path and query strings into typed values (a bad one is the client's 400), and the
//! read-your-writes wait behind `min_position`.

use hooklog_domain::clock::Timestamp;
use hooklog_domain::ids::{CommitSha, InstallationId, InstanceId, SyncId, TargetId};
use hooklog_domain::repository_connection::ConnectionId;
use hooklog_projections::query::{self, PageRequest};

use crate::error::ApiError;
use crate::state::AdminState;

/// `github-installation-<n>`, or the bare installation number `<n>`.
pub fn instance_id(raw: &str) -> Result<InstanceId, ApiError> {
    match raw.parse::<u64>() {
        Ok(n) => Ok(InstanceId(InstallationId(n))),
        Err(_) => {
            InstanceId::parse(raw).map_err(|err| ApiError::bad_request("bad_id", err.to_string()))
        }
    }
}

pub fn target_id(raw: &str) -> Result<TargetId, ApiError> {
    TargetId::parse(raw).map_err(|err| ApiError::bad_request("bad_id", err.to_string()))
}

pub fn connection_id(raw: &str) -> Result<ConnectionId, ApiError> {
    ConnectionId::parse(raw).map_err(|err| ApiError::bad_request("bad_id", err.to_string()))
}

pub fn sync_id(raw: &str) -> Result<SyncId, ApiError> {
    uuid::Uuid::parse_str(raw)
        .map(SyncId)
        .map_err(|_| ApiError::bad_request("bad_id", format!("{raw:?} is not a sync id (a UUID)")))
}

/// A head SHA given in a body: 422 when malformed.
pub fn head_sha(raw: &str) -> Result<CommitSha, ApiError> {
    CommitSha::parse(raw).map_err(|err| ApiError::invalid("invalid_head_sha", err.to_string()))
}

/// An RFC 3339 time in a query filter.
pub fn timestamp(name: &str, raw: &str) -> Result<Timestamp, ApiError> {
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(|t| Timestamp(t.into()))
        .map_err(|_| {
            ApiError::bad_request(
                "bad_filter",
                format!("{name}: {raw:?} is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)"),
            )
        })
}

pub fn page(cursor: Option<String>, limit: Option<u32>) -> PageRequest {
    PageRequest { cursor, limit }
}

impl AdminState {
    /// Waits until `projection` applied `min_position` (when given); 503 `position_not_reached`
    /// when it does not within the wait.
    pub(crate) async fn reach(
        &self,
        projection: &str,
        min_position: Option<u64>,
    ) -> Result<(), ApiError> {
        let Some(position) = min_position else {
            return Ok(());
        };
        match query::wait_for(&self.db, projection, position, self.waits.position).await? {
            true => Ok(()),
            false => Err(ApiError::PositionNotReached {
                projection: projection.to_owned(),
                position,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_named_by_its_id_or_its_installation_number() {
        assert_eq!(
            instance_id("42").unwrap().to_string(),
            "github-installation-42"
        );
        assert_eq!(
            instance_id("github-installation-42").unwrap().to_string(),
            "github-installation-42"
        );
        assert!(instance_id("installation-42").is_err());
        assert!(instance_id("-1").is_err());
    }

    #[test]
    fn times_are_rfc_3339() {
        assert!(timestamp("since", "2026-01-31T12:00:00Z").is_ok());
        assert!(timestamp("since", "2026-01-31T12:00:00.5+02:00").is_ok());
        assert!(timestamp("since", "yesterday").is_err());
    }
}
