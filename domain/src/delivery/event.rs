//! What hooklog decided about a delivery, with where the delivery sits on `GITHUB_DELIVERIES`
//! and how often it was handed out, which the outcome and dead-letter read models show.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// Where a delivery sits on `GITHUB_DELIVERIES`, and how often the worker was handed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// `X-GitHub-Event`.
    pub event: String,
    pub stream_sequence: u64,
    pub attempts: u64,
}

/// A command the worker sent for a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentCommand {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The command's name (`RecordPush`, `Connect`, …).
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryEvent {
    DeliveryProcessed {
        delivery_id: String,
        #[serde(flatten)]
        position: StreamPosition,
        detail: String,
        commands: Vec<SentCommand>,
        at: Timestamp,
    },
    DeliveryIgnored {
        delivery_id: String,
        #[serde(flatten)]
        position: StreamPosition,
        reason: String,
        at: Timestamp,
    },
    DeliveryDeadLettered {
        delivery_id: String,
        #[serde(flatten)]
        position: StreamPosition,
        reason: String,
        at: Timestamp,
    },
    /// A dead letter reopened by `by` (`operator:<name>`): the next decision is its own.
    DeliveryRedriven {
        delivery_id: String,
        #[serde(flatten)]
        position: StreamPosition,
        by: String,
        at: Timestamp,
    },
}

impl DomainEvent for DeliveryEvent {
    fn event_type(&self) -> String {
        match self {
            Self::DeliveryProcessed { .. } => "DeliveryProcessed",
            Self::DeliveryIgnored { .. } => "DeliveryIgnored",
            Self::DeliveryDeadLettered { .. } => "DeliveryDeadLettered",
            Self::DeliveryRedriven { .. } => "DeliveryRedriven",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
