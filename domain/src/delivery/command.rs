//! What can be asked of a `Delivery`: only the worker's decision about it.

use super::event::{SentCommand, StreamPosition};

/// What the worker decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Commands were sent (whatever the aggregates decided); `detail` says what for.
    Processed {
        detail: String,
        commands: Vec<SentCommand>,
    },
    /// Nothing to do: an event or action hooklog does not act on, or an aggregate refused.
    Ignored { reason: String },
    /// Never processable (a payload without the fields its event needs, a forged message).
    DeadLettered { reason: String },
    /// An operator reopens a dead letter, so the stored delivery is decided again (once the
    /// cause is fixed: a secret added, a newer hooklog). Refused unless it is a dead letter.
    Redriven { by: String },
}

/// The decision about the delivery at `position`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecideDelivery {
    pub delivery_id: String,
    pub position: StreamPosition,
    pub decision: Decision,
}
