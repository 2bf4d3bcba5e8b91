//! The `GithubDelivery` aggregate: the rules in `decide` and `next_step`; `apply` only assigns.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::connector_target::TargetServices;

use super::command::{GithubDeliveryCommand, RedeliveryPolicy, Requester};
use super::error::GithubDeliveryError;
use super::event::{GithubAttempt, GithubDeliveryEvent, Unrecoverable};

/// Where a GitHub-side delivery stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GithubDeliveryStatus {
    /// Never recorded missing.
    #[default]
    Unknown,
    /// Recorded missing, nothing asked yet.
    Missing,
    /// A redelivery was asked for and has not arrived.
    Requested,
    Arrived,
    Unrecoverable,
}

impl GithubDeliveryStatus {
    /// As the read model stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Missing => "missing",
            Self::Requested => "requested",
            Self::Arrived => "arrived",
            Self::Unrecoverable => "unrecoverable",
        }
    }
}

/// What is due for a missing delivery, at a given time, under a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do: not missing, arrived, or already reported.
    Nothing,
    /// A redelivery was asked for; it may still arrive until `until`.
    Wait { until: Timestamp },
    /// Ask for redelivery number `attempt` of GitHub's attempt `github_id`.
    Ask { attempt: u32, github_id: u64 },
    /// Report it unrecoverable.
    GiveUp(Unrecoverable),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubDelivery {
    guid: Option<String>,
    seen: Option<GithubAttempt>,
    status: GithubDeliveryStatus,
    attempts: u32,
    last_asked_at: Option<Timestamp>,
}

impl GithubDelivery {
    pub fn status(&self) -> GithubDeliveryStatus {
        self.status
    }

    /// Redeliveries asked for so far (by the reconciler and operators).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The attempt in GitHub's log it was first seen as.
    pub fn seen(&self) -> Option<&GithubAttempt> {
        self.seen.as_ref()
    }

    /// When GitHub's redelivery window for it closes.
    fn window_closes_at(&self, seen: &GithubAttempt, policy: &RedeliveryPolicy) -> Timestamp {
        Timestamp(seen.delivered_at.0 + policy.window)
    }

    /// What `by` may do now under `policy`. The reconciler follows the policy; an operator
    /// may ask again whenever the window is open and nothing arrived.
    pub fn next_step(&self, by: Requester, now: Timestamp, policy: &RedeliveryPolicy) -> Step {
        let Some(seen) = &self.seen else {
            return Step::Nothing;
        };
        let open = matches!(
            self.status,
            GithubDeliveryStatus::Missing | GithubDeliveryStatus::Requested
        );
        if self.status == GithubDeliveryStatus::Arrived || (!open && by == Requester::Reconciler) {
            return Step::Nothing;
        }
        let window_closed_at = self.window_closes_at(seen, policy);
        if now >= window_closed_at {
            return if open || by == Requester::Operator {
                Step::GiveUp(Unrecoverable::PastWindow { window_closed_at })
            } else {
                Step::Nothing
            };
        }
        let ask = Step::Ask {
            attempt: self.attempts + 1,
            github_id: seen.github_id,
        };
        if by == Requester::Operator || self.attempts == 0 {
            return ask;
        }
        let until =
            Timestamp(self.last_asked_at.unwrap_or(seen.delivered_at).0 + policy.arrival_timeout);
        if now < until {
            Step::Wait { until }
        } else if self.attempts >= policy.max_attempts {
            Step::GiveUp(Unrecoverable::NotArrived {
                attempts: self.attempts,
            })
        } else {
            ask
        }
    }

    fn guid(&self) -> &str {
        self.guid.as_deref().unwrap_or_default()
    }

    fn not_due(&self, detail: impl Into<String>) -> GithubDeliveryError {
        GithubDeliveryError::NotDue {
            guid: self.guid().to_owned(),
            detail: detail.into(),
        }
    }

    /// Refuses a report about an ask that is not the latest one still open.
    fn ensure_latest_ask(&self, attempt: u32) -> Result<(), GithubDeliveryError> {
        if self.status == GithubDeliveryStatus::Requested && attempt == self.attempts {
            Ok(())
        } else {
            Err(self.not_due(format!(
                "redelivery {attempt} is not the open request (status {}, {} asked)",
                self.status.as_str(),
                self.attempts
            )))
        }
    }

    pub(super) fn decide(
        &self,
        command: GithubDeliveryCommand,
        at: Timestamp,
    ) -> Result<Vec<GithubDeliveryEvent>, GithubDeliveryError> {
        use GithubDeliveryCommand as C;
        use GithubDeliveryEvent as E;
        if let C::RecordMissing { guid, seen } = command {
            return Ok(match self.status {
                GithubDeliveryStatus::Unknown => vec![E::DeliveryMissing { guid, seen, at }],
                _ => vec![],
            });
        }
        if self.status == GithubDeliveryStatus::Unknown {
            return Err(GithubDeliveryError::NotMissing);
        }
        let guid = self.guid().to_owned();
        Ok(match command {
            C::RecordMissing { .. } => unreachable!("handled above"),
            C::RequestRedelivery {
                attempt,
                by,
                policy,
            } => {
                if self.status == GithubDeliveryStatus::Arrived {
                    return Err(GithubDeliveryError::AlreadyArrived(guid));
                }
                match self.next_step(by, at, &policy) {
                    Step::Ask {
                        attempt: due,
                        github_id,
                    } if due == attempt => vec![E::RedeliveryRequested {
                        guid,
                        attempt,
                        github_id,
                        by,
                        at,
                    }],
                    step => return Err(self.not_due(describe(&step, attempt))),
                }
            }
            C::GiveUp { reason, policy } => {
                match self.next_step(Requester::Reconciler, at, &policy) {
                    Step::GiveUp(due) if due == reason => {
                        vec![E::DeliveryUnrecoverable { guid, reason, at }]
                    }
                    step => return Err(self.not_due(describe(&step, 0))),
                }
            }
            C::RecordRequestFailed { attempt, error } => {
                self.ensure_latest_ask(attempt)?;
                vec![E::RedeliveryFailed {
                    guid,
                    attempt,
                    error,
                    at,
                }]
            }
            C::RecordRefused {
                attempt,
                status,
                message,
            } => {
                self.ensure_latest_ask(attempt)?;
                vec![E::DeliveryUnrecoverable {
                    guid,
                    reason: Unrecoverable::Refused { status, message },
                    at,
                }]
            }
            C::RecordArrived { stream_sequence } => match self.status {
                GithubDeliveryStatus::Arrived => vec![],
                _ => vec![E::RedeliveryArrived {
                    guid,
                    stream_sequence,
                    attempts: self.attempts,
                    at,
                }],
            },
        })
    }
}

/// Why a command does not match the step that is due, in words.
fn describe(step: &Step, asked: u32) -> String {
    match step {
        Step::Nothing => "nothing is due".to_owned(),
        Step::Wait { until } => {
            format!("the last redelivery may still arrive until {until}")
        }
        Step::Ask { attempt, .. } => {
            format!("redelivery {attempt} is due, not {asked}")
        }
        Step::GiveUp(reason) => format!("it is unrecoverable: {reason}"),
    }
}

impl Aggregate for GithubDelivery {
    const TYPE: &'static str = "GithubDelivery";
    type Command = GithubDeliveryCommand;
    type Event = GithubDeliveryEvent;
    type Error = GithubDeliveryError;
    /// Only the clock.
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
        use GithubDeliveryEvent as E;
        match event {
            E::DeliveryMissing { guid, seen, .. } => {
                self.guid = Some(guid);
                self.seen = Some(seen);
                self.status = GithubDeliveryStatus::Missing;
            }
            E::RedeliveryRequested { attempt, at, .. } => {
                self.attempts = attempt;
                self.last_asked_at = Some(at);
                self.status = GithubDeliveryStatus::Requested;
            }
            E::RedeliveryFailed { .. } => {}
            E::RedeliveryArrived { .. } => self.status = GithubDeliveryStatus::Arrived,
            E::DeliveryUnrecoverable { .. } => self.status = GithubDeliveryStatus::Unrecoverable,
        }
    }
}
