//! Why a `Delivery` refused a decision.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// A second decision: a redelivery raced the first one (the first decision stands).
    #[error("delivery {0} is already decided ({1})")]
    AlreadyDecided(String, &'static str),
}
