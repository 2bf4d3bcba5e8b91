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
    /// Set on commands that run at most once per aggregate (see `CommandMetadata::idempotency_key`).
    pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
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
    /// For a process manager's command: which step of its reaction to the causing event
    /// (`causation_id`) this is, so each step runs once.
    pub reaction_step: Option<u32>,
}

impl CommandMetadata {
    /// A command caused by a GitHub delivery: the delivery both correlates and causes it.
    pub fn from_delivery(delivery_id: &str) -> Self {
        Self {
            delivery_id: Some(delivery_id.to_owned()),
            correlation_id: delivery_id.to_owned(),
            causation_id: delivery_id.to_owned(),
            actor: Actor::Github,
            reaction_step: None,
        }
    }

    /// A command an operator issued; `request_id` starts a new correlation.
    pub fn from_operator(name: &str, request_id: &str) -> Self {
        Self {
            delivery_id: None,
            correlation_id: request_id.to_owned(),
            causation_id: request_id.to_owned(),
            actor: Actor::Operator(name.to_owned()),
            reaction_step: None,
        }
    }

    /// A command hooklog itself issues (the syncer, the reconcile loop).
    pub fn from_system(name: &str, correlation_id: &str, causation_id: &str) -> Self {
        Self {
            delivery_id: None,
            correlation_id: correlation_id.to_owned(),
            causation_id: causation_id.to_owned(),
            actor: Actor::System(name.to_owned()),
            reaction_step: None,
        }
    }

    /// Step `step` of the process manager's reaction to the event `event_id`
    /// (`<aggregate type>:<aggregate id>:<sequence>`), keeping that event's correlation and
    /// delivery.
    pub fn reacting_to(
        event_id: &str,
        correlation_id: &str,
        delivery_id: Option<&str>,
        step: u32,
    ) -> Self {
        Self {
            delivery_id: delivery_id.map(str::to_owned),
            correlation_id: correlation_id.to_owned(),
            causation_id: event_id.to_owned(),
            actor: Actor::System("process-manager".to_owned()),
            reaction_step: Some(step),
        }
    }

    /// What makes a command run at most once per aggregate, if anything: a process manager's
    /// step of its reaction to one event, or a delivery and its cause. Operator and syncer
    /// commands have none: sending one twice is asking twice.
    pub fn idempotency_key(&self) -> Option<String> {
        match (self.reaction_step, &self.delivery_id) {
            (Some(step), _) => Some(format!("event:{}/{step}", self.causation_id)),
            (None, Some(delivery)) => Some(format!("delivery:{delivery}/{}", self.causation_id)),
            (None, None) => None,
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
        if let Some(key) = self.idempotency_key() {
            map.insert(keys::IDEMPOTENCY_KEY.to_owned(), key);
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
    fn delivery_commands_and_reactions_have_idempotency_keys_and_operator_commands_none() {
        let delivery = CommandMetadata::from_delivery("d-1");
        assert_eq!(
            delivery.idempotency_key().as_deref(),
            Some("delivery:d-1/d-1")
        );
        let cascade = delivery.caused_by("github-installation-1");
        assert_eq!(
            cascade.idempotency_key().as_deref(),
            Some("delivery:d-1/github-installation-1")
        );
        let reaction = CommandMetadata::reacting_to("ConnectorInstance:i:3", "c", Some("d-1"), 2);
        assert_eq!(
            reaction.idempotency_key().as_deref(),
            Some("event:ConnectorInstance:i:3/2")
        );
        assert_eq!(
            reaction.to_map()[keys::IDEMPOTENCY_KEY],
            "event:ConnectorInstance:i:3/2"
        );
        let operator = CommandMetadata::from_operator("cli", "r-1");
        assert_eq!(operator.idempotency_key(), None);
        assert!(!operator.to_map().contains_key(keys::IDEMPOTENCY_KEY));
    }

    #[test]
    fn operator_commands_carry_no_delivery() {
        let meta = CommandMetadata::from_operator("cli", "r-1").to_map();
        assert!(!meta.contains_key(keys::DELIVERY_ID));
        assert_eq!(meta[keys::ACTOR], "operator:cli");
    }
}
