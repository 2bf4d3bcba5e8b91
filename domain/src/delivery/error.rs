//! Why a `Delivery` refused a decision.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// A second decision: a redelivery raced the first one (the first decision stands).
    #[error("delivery {0} is already decided ({1})")]
    AlreadyDecided(String, &'static str),
    /// Only a dead letter is redriven.
    #[error("delivery {0} is {1}, not a dead letter: only dead letters are redriven")]
    NotDeadLettered(String, &'static str),
}
