//! The `Delivery` aggregate: one decision per delivery id, in `handle`; `apply` only assigns.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::connector_target::TargetServices;

use super::command::{DecideDelivery, Decision};
use super::error::DeliveryError;
use super::event::DeliveryEvent;

/// The aggregate id of a delivery: its id when that is a safe subject token (GitHub's GUIDs
/// are), else `sha256-` and the hex SHA-256 of it, so any id a stream message carries names
/// one aggregate and one `HOOKLOG_EVENTS` subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryKey(pub String);

impl DeliveryKey {
    pub fn for_delivery(delivery_id: &str) -> Self {
        let safe = !delivery_id.is_empty()
            && delivery_id.len() <= 128
            && delivery_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if safe {
            Self(delivery_id.to_owned())
        } else {
            Self(format!(
                "sha256-{}",
                hex::encode(Sha256::digest(delivery_id))
            ))
        }
    }
}

impl std::fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Processed,
    Ignored,
    DeadLetter,
}

impl Outcome {
    /// As the outcome read model stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Ignored => "ignored",
            Self::DeadLetter => "dead_letter",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    decided: Option<Outcome>,
}

impl Delivery {
    /// The outcome decided, if any.
    pub fn decided(&self) -> Option<Outcome> {
        self.decided
    }

    fn decide(
        &self,
        command: DecideDelivery,
        at: crate::clock::Timestamp,
    ) -> Result<Vec<DeliveryEvent>, DeliveryError> {
        if let Decision::Redriven { by } = command.decision {
            return match self.decided {
                Some(Outcome::DeadLetter) => Ok(vec![DeliveryEvent::DeliveryRedriven {
                    delivery_id: command.delivery_id,
                    position: command.position,
                    by,
                    at,
                }]),
                decided => Err(DeliveryError::NotDeadLettered(
                    command.delivery_id,
                    decided.map_or("not decided", Outcome::as_str),
                )),
            };
        }
        if let Some(outcome) = self.decided {
            return Err(DeliveryError::AlreadyDecided(
                command.delivery_id,
                outcome.as_str(),
            ));
        }
        let DecideDelivery {
            delivery_id,
            position,
            decision,
        } = command;
        Ok(vec![match decision {
            Decision::Processed { detail, commands } => DeliveryEvent::DeliveryProcessed {
                delivery_id,
                position,
                detail,
                commands,
                at,
            },
            Decision::Ignored { reason } => DeliveryEvent::DeliveryIgnored {
                delivery_id,
                position,
                reason,
                at,
            },
            Decision::DeadLettered { reason } => DeliveryEvent::DeliveryDeadLettered {
                delivery_id,
                position,
                reason,
                at,
            },
            Decision::Redriven { .. } => unreachable!("decided above"),
        }])
    }
}

impl Aggregate for Delivery {
    const TYPE: &'static str = "Delivery";
    type Command = DecideDelivery;
    type Event = DeliveryEvent;
    type Error = DeliveryError;
    /// Only the clock, like a target's.
    type Services = TargetServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services.clock.now())? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.decided = match event {
            DeliveryEvent::DeliveryProcessed { .. } => Some(Outcome::Processed),
            DeliveryEvent::DeliveryIgnored { .. } => Some(Outcome::Ignored),
            DeliveryEvent::DeliveryDeadLettered { .. } => Some(Outcome::DeadLetter),
            DeliveryEvent::DeliveryRedriven { .. } => None,
        };
    }
}
