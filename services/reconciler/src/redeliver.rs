//! Asking GitHub for one redelivery: the ask is committed as `RedeliveryRequested` first, and
//! only the command that committed it sends the `POST`, so no two passes, replicas or operators
//! send the same ask. What GitHub answered is recorded on the same aggregate: a 202 leaves the
//! ask open until the delivery arrives; a refusal (404, 422) makes the delivery unrecoverable; no
//! answer (network, 5xx, a rate limit longer than the wait) is `RedeliveryFailed`, and the next
//! ask waits the arrival timeout like any other. The `POST` is never retried blindly: GitHub may
//! have taken a request whose answer was lost.

use hooklog_domain::github_delivery::{
    GithubDeliveryCommand, GithubDeliveryError, RedeliveryPolicy, Requester,
};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_syncer::source::github::AppClient;
use hooklog_write::{CommandBus, CommandError};

use crate::hook::HookLog;
use crate::{ReconcileError, ASKED, REFUSED};

/// What became of an ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// GitHub accepted it (202): the redelivery is on its way.
    Accepted,
    /// Someone else asked first, or it is not due: nothing was sent.
    NotDue(String),
    /// GitHub refused it; the delivery is unrecoverable.
    Refused { status: u16, message: String },
    /// GitHub did not take it (recorded; asked again after the arrival timeout).
    Failed(String),
}

impl Asked {
    /// What to tell whoever asked; nothing when GitHub accepted.
    pub fn detail(&self) -> Option<String> {
        match self {
            Self::Accepted => None,
            Self::NotDue(reason) | Self::Failed(reason) => Some(reason.clone()),
            Self::Refused { status, message } => Some(
                hooklog_domain::github_delivery::Unrecoverable::Refused {
                    status: *status,
                    message: message.clone(),
                }
                .to_string(),
            ),
        }
    }
}

/// How an operator's redelivery ended, as `hooklog github redeliver` and the admin API's
/// `redeliver-missing` report each GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// GitHub took the request.
    Accepted,
    /// Not sent, or refused by GitHub: nothing more will come of it.
    Refused,
    /// Not taken (GitHub unreachable, the store unavailable): worth trying again.
    Failed,
}

/// `by_operator`'s result as what came of it and why (nothing when accepted).
pub fn reported(result: &Result<Asked, OperatorError>) -> (Reported, Option<String>) {
    match result {
        Ok(asked @ Asked::Accepted) => (Reported::Accepted, asked.detail()),
        Ok(asked @ (Asked::NotDue(_) | Asked::Refused { .. })) => {
            (Reported::Refused, asked.detail())
        }
        Ok(asked @ Asked::Failed(_)) => (Reported::Failed, asked.detail()),
        Err(err @ (OperatorError::NotFound(_) | OperatorError::Refused(_))) => {
            (Reported::Refused, Some(err.to_string()))
        }
        Err(err @ OperatorError::Failed(_)) => (Reported::Failed, Some(err.to_string())),
    }
}

/// Redelivery number `attempt` of GitHub's attempt `github_id` of `guid`, asked by `by`.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub guid: &'a str,
    pub attempt: u32,
    pub github_id: u64,
    pub by: Requester,
}

/// Asks `hook`'s GitHub webhook for `ask`, if it is due under `policy` when it commits.
pub async fn ask(
    bus: &CommandBus,
    client: &AppClient,
    hook: &HookLog,
    ask: Ask<'_>,
    policy: RedeliveryPolicy,
    meta: &CommandMetadata,
) -> Result<Asked, ReconcileError> {
    let Ask {
        guid,
        attempt,
        github_id,
        by,
    } = ask;
    let command = GithubDeliveryCommand::RequestRedelivery {
        attempt,
        by,
        policy,
    };
    match bus.github_delivery(guid, command, meta).await {
        Ok(_) => {}
        Err(CommandError::Rejected(refusal @ GithubDeliveryError::NotDue { .. }))
        | Err(CommandError::Rejected(refusal @ GithubDeliveryError::AlreadyArrived(_))) => {
            return Ok(Asked::NotDue(refusal.to_string()))
        }
        Err(err) => return Err(ReconcileError::write(guid, err)),
    }
    metrics::counter!(ASKED).increment(1);
    let path = hook.attempts_path(github_id)?;
    let (asked, command) = match client.post(&path).await {
        Ok(answer) if (200..300).contains(&answer.status) => {
            tracing::info!(guid, attempt, github_id, "asked GitHub for a redelivery");
            return Ok(Asked::Accepted);
        }
        Ok(answer) if (400..500).contains(&answer.status) => {
            metrics::counter!(REFUSED).increment(1);
            (
                Asked::Refused {
                    status: answer.status,
                    message: answer.message.clone(),
                },
                GithubDeliveryCommand::RecordRefused {
                    attempt,
                    status: answer.status,
                    message: answer.message,
                },
            )
        }
        Ok(answer) => {
            let error = format!("GitHub answered {} ({})", answer.status, answer.message);
            (
                Asked::Failed(error.clone()),
                GithubDeliveryCommand::RecordRequestFailed { attempt, error },
            )
        }
        Err(err) => (
            Asked::Failed(err.to_string()),
            GithubDeliveryCommand::RecordRequestFailed {
                attempt,
                error: err.to_string(),
            },
        ),
    };
    tracing::warn!(guid, attempt, github_id, outcome = ?asked, "GitHub did not take a redelivery request");
    bus.github_delivery(guid, command, meta)
        .await
        .map_err(|err| ReconcileError::write(guid, err))?;
    Ok(asked)
}

/// Why an operator's redelivery was not sent.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// No pass recorded this GUID missing.
    #[error(
        "GitHub delivery {0} is not recorded missing (see `hooklog github deliveries --missing`)"
    )]
    NotFound(String),
    /// Arrived, or past GitHub's window: nothing GitHub can do.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Failed(#[from] ReconcileError),
}

/// An operator's ask (`hooklog github redeliver`, the admin API): the next redelivery of `guid`
/// whatever the arrival timeout and the attempt bound, while GitHub's window is open and the
/// delivery has not arrived.
pub async fn by_operator(
    bus: &CommandBus,
    client: &AppClient,
    guid: &str,
    policy: RedeliveryPolicy,
    meta: &CommandMetadata,
) -> Result<Asked, OperatorError> {
    use hooklog_domain::clock::Timestamp;
    use hooklog_domain::github_delivery::{GithubDeliveryStatus, Step};
    let state = bus
        .load_github_delivery(guid)
        .await
        .map_err(|err| ReconcileError::write(guid, err))?;
    if let Some(connection) = state.seen().and_then(|seen| seen.connection_id) {
        return Err(OperatorError::Refused(format!(
            "GitHub delivery {guid} is one of repository connection {connection}'s webhook, \
             which the repositories role asks to redeliver"
        )));
    }
    match state.status() {
        GithubDeliveryStatus::Unknown => return Err(OperatorError::NotFound(guid.to_owned())),
        GithubDeliveryStatus::Arrived => {
            return Err(OperatorError::Refused(format!(
                "GitHub delivery {guid} has already arrived"
            )))
        }
        _ => {}
    }
    let now = Timestamp(std::time::SystemTime::now());
    match state.next_step(Requester::Operator, now, &policy) {
        Step::Ask { attempt, github_id } => {
            let ask = Ask {
                guid,
                attempt,
                github_id,
                by: Requester::Operator,
            };
            // The path of an ask names no App: any id reads it.
            let app = HookLog::App { app_id: 0 };
            Ok(self::ask(bus, client, &app, ask, policy, meta).await?)
        }
        Step::GiveUp(reason) => Err(OperatorError::Refused(format!(
            "GitHub delivery {guid} cannot be redelivered: {reason}"
        ))),
        Step::Nothing | Step::Wait { .. } => Err(OperatorError::Refused(format!(
            "GitHub delivery {guid} cannot be redelivered now"
        ))),
    }
}
