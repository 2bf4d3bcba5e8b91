//! `Delivery`: what hooklog decided about one GitHub delivery, as events in the event store, so
//! auditors replay decisions like everything else and the outcome and dead-letter read models
//! are projections that `projections rebuild` covers. One aggregate per delivery id: a delivery
//! is decided once (processed with the commands it sent, ignored with the reason, or
//! dead-lettered with the reason); a redelivery, however late, finds the decision and changes
//! nothing.

mod aggregate;
mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use aggregate::{Delivery, DeliveryKey, Outcome};
pub use command::{DecideDelivery, Decision};
pub use error::DeliveryError;
pub use event::{DeliveryEvent, SentCommand, StreamPosition};
