//! What can be asked of a `GithubDelivery`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::event::{GithubAttempt, Unrecoverable};

/// Who asked for a redelivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Requester {
    /// A reconcile pass, by the policy.
    Reconciler,
    /// An operator (`hooklog github redeliver`, the admin API): not held to the arrival
    /// timeout or the attempt bound, only to the window and to what already arrived.
    Operator,
}

/// When redeliveries are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedeliveryPolicy {
    /// GitHub redelivers an attempt only this long after it was first delivered (3 days).
    pub window: Duration,
    /// A redelivery not on the stream this long after it was asked for is asked again.
    pub arrival_timeout: Duration,
    /// Asks (by the reconciler) before the delivery is reported unrecoverable.
    pub max_attempts: u32,
}

impl Default for RedeliveryPolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(3 * 24 * 3600),
            arrival_timeout: Duration::from_secs(15 * 60),
            max_attempts: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GithubDeliveryCommand {
    /// GitHub attempted `guid` and the stream lacks it (recorded once; again: nothing).
    RecordMissing { guid: String, seen: GithubAttempt },
    /// Ask for redelivery number `attempt`, refused unless it is the one due.
    RequestRedelivery {
        attempt: u32,
        by: Requester,
        policy: RedeliveryPolicy,
    },
    /// GitHub did not take the request for `attempt`.
    RecordRequestFailed { attempt: u32, error: String },
    /// Report it unrecoverable, refused unless `reason` is what the state says.
    GiveUp {
        reason: Unrecoverable,
        policy: RedeliveryPolicy,
    },
    /// GitHub refused the request for `attempt` (a 4xx that is not a rate limit).
    RecordRefused {
        attempt: u32,
        status: u16,
        message: String,
    },
    /// The delivery is on the stream, at `stream_sequence`.
    RecordArrived { stream_sequence: u64 },
}
