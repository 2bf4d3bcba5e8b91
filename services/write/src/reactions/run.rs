//! Executes the process manager's steps for one committed event through the bus, each under the
//! idempotency key of its event and step. A refusal is a decision (the target was removed
//! meanwhile, the instance is gone) and the next step runs; a target tracked under an
//! installation that refuses it is removed again (the compensation). A retryable failure stops
//! the event: running it again later redoes only the steps that left no key.

use hooklog_domain::connector_target::TargetEvent;
use hooklog_domain::ids::TargetId;
use hooklog_domain::metadata::CommandMetadata;
use hooklog_domain::repository_connection::{ConnectionEvent, ConnectionId};

use super::{compensation, steps, Committed, Step};
use crate::bus::CommandBus;
use crate::error::{CommandError, ErrorClass};

/// Compensations run under step numbers past this, so they never share a key with a step.
const COMPENSATION_STEP: u32 = 1_000;

/// What the steps of one event did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reacted {
    /// Steps the event asked for.
    pub steps: usize,
    /// Steps an aggregate refused (a decision: nothing left to change).
    pub refused: usize,
    /// Targets removed again because their installation refused to attach them.
    pub compensated: usize,
}

/// Why the steps of an event could not all run now.
#[derive(Debug, thiserror::Error)]
pub enum ReactionError {
    /// Try the event again later; the steps done are not done twice.
    #[error("retryable: {0}")]
    Retry(String),
    /// Stored events cannot be read back: needs a person.
    #[error("{0}")]
    Corrupt(String),
}

fn failure<E: std::error::Error>(err: CommandError<E>) -> ReactionError {
    match err.class() {
        ErrorClass::Corrupt => ReactionError::Corrupt(err.to_string()),
        _ => ReactionError::Retry(err.to_string()),
    }
}

impl Committed {
    /// A target's event, with the installation its steps need (`TargetRemoved` detaches the
    /// target from it), read from the target's history.
    pub async fn target(
        bus: &CommandBus,
        target: TargetId,
        event: TargetEvent,
    ) -> Result<Self, ReactionError> {
        let installation = match event {
            TargetEvent::TargetRemoved { .. } => bus
                .load_target(target)
                .await
                .map_err(failure)?
                .installation_id(),
            _ => None,
        };
        Ok(Self::Target(target, installation, event))
    }
}

impl Committed {
    /// A connection's event, with what the connection was given at connect when the event's
    /// steps need it, read from the connection's history. A webhook recorded once a disconnect
    /// was asked (so that it is deleted too) comes without it: it tracks nothing.
    pub async fn connection(
        bus: &CommandBus,
        id: ConnectionId,
        event: ConnectionEvent,
    ) -> Result<Self, ReactionError> {
        use ConnectionEvent as E;
        let connection = match event {
            E::WebhookCreated { .. } | E::DisconnectRequested { .. } => {
                let state = bus.load_connection(id).await.map_err(failure)?;
                let tracks = !matches!(event, E::WebhookCreated { .. })
                    || state.status().accepts_deliveries();
                state.connection().cloned().filter(|_| tracks)
            }
            _ => None,
        };
        Ok(Self::Connection(id, connection, event))
    }
}

/// Runs the steps of `event` (`event_id`: `<aggregate type>:<aggregate id>:<sequence>`),
/// carrying its correlation and delivery on.
pub async fn run(
    bus: &CommandBus,
    event_id: &str,
    correlation_id: &str,
    delivery_id: Option<&str>,
    event: &Committed,
) -> Result<Reacted, ReactionError> {
    let steps = steps(event);
    let mut reacted = Reacted {
        steps: steps.len(),
        ..Reacted::default()
    };
    let meta =
        |step: u32| CommandMetadata::reacting_to(event_id, correlation_id, delivery_id, step);
    for (n, step) in (0u32..).zip(steps) {
        match step {
            Step::Target(target, command) => match bus.target(target, command, &meta(n)).await {
                Ok(_) => {}
                Err(CommandError::Rejected(reason)) => {
                    tracing::debug!(event_id, target_id = %target, reason = %reason, "step refused");
                    reacted.refused += 1;
                }
                Err(err) => return Err(failure(err)),
            },
            Step::Instance(instance, command) => {
                match bus.instance(instance, command, &meta(n)).await {
                    Ok(_) => {}
                    Err(CommandError::Rejected(reason)) => {
                        tracing::debug!(event_id, instance_id = %instance, reason = %reason, "step refused");
                        reacted.refused += 1;
                        let undo = match event {
                            Committed::Target(target, _, TargetEvent::TargetTracked { .. }) => {
                                compensation(*target, &reason)
                            }
                            _ => None,
                        };
                        if let Some(Step::Target(target, command)) = undo {
                            tracing::info!(event_id, target_id = %target, reason = %reason, "target tracked under an installation that refuses it; removing it");
                            match bus
                                .target(target, command, &meta(COMPENSATION_STEP + n))
                                .await
                            {
                                Ok(_) | Err(CommandError::Rejected(_)) => reacted.compensated += 1,
                                Err(err) => return Err(failure(err)),
                            }
                        }
                    }
                    Err(err) => return Err(failure(err)),
                }
            }
        }
    }
    Ok(reacted)
}
