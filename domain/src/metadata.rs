//! What every command carries besides its payload, stored with each event it produces: which
//! delivery caused it, the correlation and causation ids that tie a chain of decisions together,
//! and who acted.

use std::collections::HashMap;

/// Metadata keys as stored in the event store and copied into `HOOKLOG_EVENTS` headers.
pub mod keys {
    pub const DELIVERY_ID: &str = "delivery_id";
    pub const CORRELATION_ID: &str = "correlation_id";
    pub const CAUSATION_ID: &str = "causation_id";
    pub const ACTOR: &str = "actor";
}

/// Who issued a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A GitHub delivery, through the worker.
    Github,
    /// An operator: the admin token's name, or `cli` for the command line.
    Operator(String),
    /// hooklog itself (the syncer, the reconcile loop).
    System(String),
}

impl Actor {
    pub fn as_string(&self) -> String {
        match self {
            Self::Github => "github".to_owned(),
            Self::Operator(name) => format!("operator:{name}"),
            Self::System(name) => format!("system:{name}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMetadata {
    pub delivery_id: Option<String>,
    pub correlation_id: String,
    pub causation_id: String,
    pub actor: Actor,
}

impl CommandMetadata {
    /// A command caused by a GitHub delivery: the delivery both correlates and causes it.
    pub fn from_delivery(delivery_id: &str) -> Self {
        Self {
            delivery_id: Some(delivery_id.to_owned()),
            correlation_id: delivery_id.to_owned(),
            causation_id: delivery_id.to_owned(),
            actor: Actor::Github,
        }
    }

    /// A command an operator issued; `request_id` starts a new correlation.
    pub fn from_operator(name: &str, request_id: &str) -> Self {
        Self {
            delivery_id: None,
            correlation_id: request_id.to_owned(),
            causation_id: request_id.to_owned(),
            actor: Actor::Operator(name.to_owned()),
        }
    }

    /// A command that follows from an earlier one (a cascade), keeping its correlation.
    pub fn caused_by(&self, causation_id: &str) -> Self {
        Self {
            causation_id: causation_id.to_owned(),
            ..self.clone()
        }
    }

    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (keys::CORRELATION_ID.to_owned(), self.correlation_id.clone()),
            (keys::CAUSATION_ID.to_owned(), self.causation_id.clone()),
            (keys::ACTOR.to_owned(), self.actor.as_string()),
        ]);
        if let Some(delivery) = &self.delivery_id {
            map.insert(keys::DELIVERY_ID.to_owned(), delivery.clone());
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_correlates_and_causes_its_commands() {
        let meta = CommandMetadata::from_delivery("d-1").to_map();
        assert_eq!(meta[keys::DELIVERY_ID], "d-1");
        assert_eq!(meta[keys::CORRELATION_ID], "d-1");
        assert_eq!(meta[keys::ACTOR], "github");
        let cascade = CommandMetadata::from_delivery("d-1").caused_by("github-installation-1:4");
        assert_eq!(cascade.correlation_id, "d-1");
        assert_eq!(cascade.causation_id, "github-installation-1:4");
    }

    #[test]
    fn operator_commands_carry_no_delivery() {
        let meta = CommandMetadata::from_operator("cli", "r-1").to_map();
        assert!(!meta.contains_key(keys::DELIVERY_ID));
        assert_eq!(meta[keys::ACTOR], "operator:cli");
    }
}
