//! What the reconciler found about a GitHub-side delivery, and what became of it.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

use super::command::Requester;

/// One attempt in a webhook's delivery log, as GitHub lists it: the App's
/// (`GET /app/hook/deliveries`) or a repository connection's webhook's
/// (`GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubAttempt {
    /// The repository connection whose webhook's log listed it; absent for the App's log (and
    /// in every event stored before connections' logs were read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<crate::repository_connection::ConnectionId>,
    /// GitHub's id of this attempt (what `POST /app/hook/deliveries/{id}/attempts` takes).
    pub github_id: u64,
    /// `X-GitHub-Event`.
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<u64>,
    pub repository_id: Option<u64>,
    pub delivered_at: Timestamp,
    /// GitHub's `status` (`OK`, `Invalid HTTP Response: 503`, …) and `status_code` (0 when
    /// nothing answered).
    pub status: String,
    pub status_code: u16,
    pub redelivery: bool,
}

/// Why a missing delivery will not come back by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unrecoverable {
    /// GitHub redelivers only within its window; this one was first delivered before it.
    PastWindow { window_closed_at: Timestamp },
    /// Asked `attempts` times; none arrived within the arrival timeout.
    NotArrived { attempts: u32 },
    /// GitHub refused to redeliver (`status`, GitHub's message).
    Refused { status: u16, message: String },
}

impl std::fmt::Display for Unrecoverable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PastWindow { window_closed_at } => write!(
                f,
                "past GitHub's redelivery window (closed at {window_closed_at})"
            ),
            Self::NotArrived { attempts } => {
                write!(f, "asked {attempts} times; no redelivery arrived")
            }
            Self::Refused { status, message } => {
                write!(f, "GitHub refused to redeliver ({status}: {message})")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GithubDeliveryEvent {
    /// GitHub attempted `guid` (first seen as `seen`) and `GITHUB_DELIVERIES` lacks it.
    DeliveryMissing {
        guid: String,
        seen: GithubAttempt,
        at: Timestamp,
    },
    /// Redelivery number `attempt` of GitHub's attempt `github_id` is being asked for.
    RedeliveryRequested {
        guid: String,
        attempt: u32,
        github_id: u64,
        by: Requester,
        at: Timestamp,
    },
    /// GitHub did not take the request for `attempt` (unreachable, a server error): it counts
    /// as asked, and the next ask waits the arrival timeout like any other.
    RedeliveryFailed {
        guid: String,
        attempt: u32,
        error: String,
        at: Timestamp,
    },
    /// The delivery is on `GITHUB_DELIVERIES` now, at `stream_sequence`.
    RedeliveryArrived {
        guid: String,
        stream_sequence: u64,
        attempts: u32,
        at: Timestamp,
    },
    DeliveryUnrecoverable {
        guid: String,
        reason: Unrecoverable,
        at: Timestamp,
    },
}

impl DomainEvent for GithubDeliveryEvent {
    fn event_type(&self) -> String {
        match self {
            Self::DeliveryMissing { .. } => "DeliveryMissing",
            Self::RedeliveryRequested { .. } => "RedeliveryRequested",
            Self::RedeliveryFailed { .. } => "RedeliveryFailed",
            Self::RedeliveryArrived { .. } => "RedeliveryArrived",
            Self::DeliveryUnrecoverable { .. } => "DeliveryUnrecoverable",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
