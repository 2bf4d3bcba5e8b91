//! Why a `GithubDelivery` refused a command: decisions, not faults.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GithubDeliveryError {
    #[error("the GitHub delivery is not recorded missing")]
    NotMissing,
    #[error("GitHub delivery {0} has already arrived")]
    AlreadyArrived(String),
    /// What the command asks is not what the state makes due (another pass or replica acted
    /// first, or it is too early): nothing is asked.
    #[error("GitHub delivery {guid}: {detail}")]
    NotDue { guid: String, detail: String },
}
