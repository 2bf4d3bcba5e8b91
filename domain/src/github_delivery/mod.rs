//! `GithubDelivery`: what the GitHub reconciler found about one delivery GitHub attempted (one
//! GUID of the App's delivery log) that `GITHUB_DELIVERIES` lacks, and what was done about it,
//! as events, so that no later pass, second replica or operator asks GitHub twice for the same
//! attempt, and auditors can replay what was asked and when.
//!
//! A GUID is recorded missing once (`DeliveryMissing`); then each redelivery is asked for by
//! number (`RedeliveryRequested{attempt}`) and only when [`GithubDelivery::next_step`] says it
//! is due: at once the first time, again when the previous ask has not arrived within the
//! policy's arrival timeout, at most `max_attempts` times, never once GitHub's redelivery window
//! has closed. What GitHub refused, what never came and what is past the window is
//! `DeliveryUnrecoverable`; what came (found on the stream later) is `RedeliveryArrived`.
//!
//! The reconciler decides with `next_step` and sends the command it names; the aggregate
//! decides again on the state it holds when the command commits, so of two replicas asking for
//! the same attempt one commits and the other is refused (`NotDue`) and asks nothing.

mod aggregate;
mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use aggregate::{GithubDelivery, GithubDeliveryStatus, Step};
pub use command::{GithubDeliveryCommand, RedeliveryPolicy, Requester};
pub use error::GithubDeliveryError;
pub use event::{GithubAttempt, GithubDeliveryEvent, Unrecoverable};
