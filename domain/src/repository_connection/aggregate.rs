//! The `RepositoryConnection` aggregate: the rules in `decide`; `apply` only assigns.

use std::collections::BTreeMap;
use std::fmt;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::connector_target::TargetServices;
use crate::ids::Branch;

use super::command::{ConnectionCommand, PullRequest, WorkflowRun};
use super::error::ConnectionError;
use super::event::{ConnectionEvent, ConnectionId, Provider, ProviderRepository, RunRef};

/// Conclusions of a run that open (or keep open) an incident.
pub const FAILING_CONCLUSIONS: &[&str] = &["failure", "timed_out", "startup_failure"];

/// One workflow on the connection's branch: the last run decided on, and its incident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowState {
    /// `(run number, attempt)` of the last run that changed anything.
    pub last_run: (u64, u64),
    pub open_incident: Option<uuid::Uuid>,
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Never connected.
    #[default]
    Unknown,
    /// Connected; the webhook is being created.
    Pending,
    /// The webhook exists.
    Active,
    /// Creating the webhook failed; an operator may retry.
    Failed,
    /// Disconnect asked; the webhook is being deleted.
    Disconnecting,
    /// Deleting the webhook failed; it is retried.
    DeleteFailed,
    Disconnected,
}

impl ConnectionStatus {
    /// As the read model and the admin API say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Failed => "failed",
            Self::Disconnecting => "disconnecting",
            Self::DeleteFailed => "delete_failed",
            Self::Disconnected => "disconnected",
        }
    }

    /// Whether deliveries to the connection's URL are taken. A pending or failed connection's
    /// webhook may exist already (GitHub pings a new webhook before its creation is answered,
    /// and a failure may have come after the provider created it), so they take deliveries;
    /// from the disconnect on, nothing is taken.
    pub fn accepts_deliveries(self) -> bool {
        matches!(self, Self::Pending | Self::Active | Self::Failed)
    }

    /// Whether the `repositories` role has work to do: create (pending) or delete the webhook.
    pub fn awaits_provider(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Disconnecting | Self::DeleteFailed
        )
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the connection was given at connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub id: ConnectionId,
    pub provider: Provider,
    pub repository: ProviderRepository,
    pub branch: Branch,
    pub hook_url: String,
    pub secret_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryConnection {
    connection: Option<Connection>,
    status: ConnectionStatus,
    /// Creation attempts made (the one in flight included).
    attempt: u32,
    hook_id: Option<u64>,
    repository_id: Option<u64>,
    delete_attempts: u32,
    last_error: Option<String>,
    /// By workflow id.
    workflows: BTreeMap<u64, WorkflowState>,
    /// By pull request number: when the last change recorded was made.
    pull_requests: BTreeMap<u64, Timestamp>,
}

impl RepositoryConnection {
    pub fn status(&self) -> ConnectionStatus {
        self.status
    }

    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }

    /// The creation attempt in flight (or the last one).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn hook_id(&self) -> Option<u64> {
        self.hook_id
    }

    pub fn repository_id(&self) -> Option<u64> {
        self.repository_id
    }

    pub fn delete_attempts(&self) -> u32 {
        self.delete_attempts
    }

    /// Why the last creation or deletion failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The incidents open, by workflow id.
    pub fn workflows(&self) -> &BTreeMap<u64, WorkflowState> {
        &self.workflows
    }

    fn same_repository(&self, got: u64) -> Result<(), ConnectionError> {
        match self.repository_id {
            Some(expected) if expected != got => {
                Err(ConnectionError::OtherRepository { expected, got })
            }
            _ => Ok(()),
        }
    }

    /// What a completed run decides: nothing for another branch, an older run, or a
    /// conclusion that neither fails nor succeeds (`cancelled`, `skipped`, …).
    fn workflow_run(
        &self,
        connection: &Connection,
        run: WorkflowRun,
        at: Timestamp,
    ) -> Result<Vec<ConnectionEvent>, ConnectionError> {
        use ConnectionEvent as E;
        self.same_repository(run.repository_id)?;
        if run.branch != connection.branch {
            return Ok(vec![]);
        }
        let state = self
            .workflows
            .get(&run.workflow_id)
            .cloned()
            .unwrap_or_default();
        if (run.run_number, run.run_attempt) <= state.last_run {
            return Ok(vec![]);
        }
        let conclusion = run.conclusion.clone().unwrap_or_default();
        let failing = FAILING_CONCLUSIONS.contains(&conclusion.as_str());
        if !failing && conclusion != "success" {
            return Ok(vec![]);
        }
        let reference = RunRef {
            run_id: run.run_id,
            run_number: run.run_number,
            run_attempt: run.run_attempt,
            head_sha: run.head_sha,
            url: run.url,
            updated_at: run.updated_at,
        };
        let (workflow_id, branch) = (run.workflow_id, run.branch);
        Ok(vec![match (failing, state.open_incident) {
            (true, None) => E::IncidentOpened {
                incident_id: uuid::Uuid::new_v5(
                    &connection.id.0,
                    format!(
                        "incident/{workflow_id}/{}/{}/{}",
                        branch.as_str(),
                        reference.run_id,
                        reference.run_attempt
                    )
                    .as_bytes(),
                ),
                workflow_id,
                workflow: run.name,
                branch,
                conclusion,
                run: reference,
                at,
            },
            (true, Some(incident_id)) => E::IncidentRecurred {
                incident_id,
                workflow_id,
                branch,
                conclusion,
                run: reference,
                at,
            },
            (false, Some(incident_id)) => E::IncidentResolved {
                incident_id,
                workflow_id,
                branch,
                run: reference,
                at,
            },
            (false, None) => E::WorkflowPassed {
                workflow_id,
                branch,
                run: reference,
                at,
            },
        }])
    }

    /// A change of a pull request, unless one made later was recorded already.
    fn pull_request(
        &self,
        pr: PullRequest,
        at: Timestamp,
    ) -> Result<Vec<ConnectionEvent>, ConnectionError> {
        self.same_repository(pr.repository_id)?;
        if self
            .pull_requests
            .get(&pr.number)
            .is_some_and(|seen| *seen > pr.updated_at)
        {
            return Ok(vec![]);
        }
        Ok(vec![ConnectionEvent::PullRequestUpdated {
            number: pr.number,
            title: pr.title,
            state: pr.state,
            action: pr.action,
            head_branch: pr.head_branch,
            base_branch: pr.base_branch,
            head_sha: pr.head_sha,
            url: pr.url,
            updated_at: pr.updated_at,
            at,
        }])
    }

    fn not_due(&self, detail: impl Into<String>) -> ConnectionError {
        ConnectionError::NotDue {
            status: self.status,
            detail: detail.into(),
        }
    }

    pub(super) fn decide(
        &self,
        command: ConnectionCommand,
        at: Timestamp,
    ) -> Result<Vec<ConnectionEvent>, ConnectionError> {
        use ConnectionCommand as C;
        use ConnectionEvent as E;
        use ConnectionStatus as S;
        if let C::Connect {
            connection_id,
            provider,
            repository,
            branch,
            hook_url,
            secret_id,
        } = command
        {
            if self.status != S::Unknown {
                return Err(ConnectionError::AlreadyConnected);
            }
            return Ok(vec![E::RepositoryConnected {
                connection_id,
                provider,
                repository,
                branch,
                hook_url,
                secret_id,
                at,
            }]);
        }
        match self.status {
            S::Unknown => return Err(ConnectionError::NotConnected),
            S::Disconnected => return Err(ConnectionError::Disconnected),
            _ => {}
        }
        let ensure_attempt = |attempt: u32| {
            if self.status == S::Pending && attempt == self.attempt {
                Ok(())
            } else {
                Err(self.not_due(format!(
                    "creation attempt {attempt} is not the one in flight (attempt {})",
                    self.attempt
                )))
            }
        };
        let connection = self
            .connection
            .as_ref()
            .ok_or(ConnectionError::NotConnected)?;
        Ok(match command {
            C::Connect { .. } => unreachable!("handled above"),
            C::RecordWorkflowRun(run) => return self.workflow_run(connection, run, at),
            C::RecordPullRequest(pr) => return self.pull_request(pr, at),
            C::RecordWebhookCreated {
                attempt,
                hook_id,
                adopted,
                repository_id,
                repository_path,
                clone_url,
            } => {
                // A webhook made while a disconnect was asked is recorded, so that the
                // deletion removes it.
                if !(matches!(self.status, S::Disconnecting | S::DeleteFailed)
                    && self.hook_id.is_none())
                {
                    ensure_attempt(attempt)?;
                }
                vec![E::WebhookCreated {
                    attempt,
                    hook_id,
                    adopted,
                    repository_id,
                    repository_path,
                    clone_url,
                    at,
                }]
            }
            C::RecordWebhookFailed { attempt, reason } => {
                ensure_attempt(attempt)?;
                vec![E::WebhookFailed {
                    attempt,
                    reason,
                    at,
                }]
            }
            C::RetryWebhook => {
                if self.status != S::Failed {
                    return Err(self.not_due("only a failed webhook creation is retried"));
                }
                vec![E::WebhookRetryRequested {
                    attempt: self.attempt + 1,
                    at,
                }]
            }
            C::Disconnect => match self.status {
                S::Disconnecting | S::DeleteFailed => vec![],
                _ => vec![E::DisconnectRequested { at }],
            },
            C::RecordWebhookDeleted { hook_ids } => {
                if !matches!(self.status, S::Disconnecting | S::DeleteFailed) {
                    return Err(self.not_due("no disconnect was asked"));
                }
                vec![
                    E::WebhookDeleted { hook_ids, at },
                    E::RepositoryDisconnected { at },
                ]
            }
            C::RecordWebhookDeleteFailed { reason } => {
                if !matches!(self.status, S::Disconnecting | S::DeleteFailed) {
                    return Err(self.not_due("no disconnect was asked"));
                }
                vec![E::WebhookDeleteFailed {
                    attempts: self.delete_attempts + 1,
                    reason,
                    at,
                }]
            }
        })
    }
}

impl Aggregate for RepositoryConnection {
    const TYPE: &'static str = "RepositoryConnection";
    type Command = ConnectionCommand;
    type Event = ConnectionEvent;
    type Error = ConnectionError;
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
        use ConnectionEvent as E;
        use ConnectionStatus as S;
        match event {
            E::RepositoryConnected {
                connection_id,
                provider,
                repository,
                branch,
                hook_url,
                secret_id,
                ..
            } => {
                self.connection = Some(Connection {
                    id: connection_id,
                    provider,
                    repository,
                    branch,
                    hook_url,
                    secret_id,
                });
                self.status = S::Pending;
                self.attempt = 1;
            }
            E::WebhookCreated {
                hook_id,
                repository_id,
                ..
            } => {
                self.hook_id = Some(hook_id);
                self.repository_id = Some(repository_id);
                self.last_error = None;
                if self.status == S::Pending {
                    self.status = S::Active;
                }
            }
            E::WebhookFailed { reason, .. } => {
                self.status = S::Failed;
                self.last_error = Some(reason);
            }
            E::WebhookRetryRequested { attempt, .. } => {
                self.attempt = attempt;
                self.status = S::Pending;
            }
            E::DisconnectRequested { .. } => self.status = S::Disconnecting,
            E::WebhookDeleteFailed {
                attempts, reason, ..
            } => {
                self.delete_attempts = attempts;
                self.last_error = Some(reason);
                self.status = S::DeleteFailed;
            }
            E::WebhookDeleted { .. } => self.hook_id = None,
            E::RepositoryDisconnected { .. } => self.status = S::Disconnected,
            E::IncidentOpened {
                incident_id,
                workflow_id,
                run,
                ..
            }
            | E::IncidentRecurred {
                incident_id,
                workflow_id,
                run,
                ..
            } => {
                self.workflows.insert(
                    workflow_id,
                    WorkflowState {
                        last_run: (run.run_number, run.run_attempt),
                        open_incident: Some(incident_id),
                    },
                );
            }
            E::IncidentResolved {
                workflow_id, run, ..
            }
            | E::WorkflowPassed {
                workflow_id, run, ..
            } => {
                self.workflows.insert(
                    workflow_id,
                    WorkflowState {
                        last_run: (run.run_number, run.run_attempt),
                        open_incident: None,
                    },
                );
            }
            E::PullRequestUpdated {
                number, updated_at, ..
            } => {
                self.pull_requests.insert(number, updated_at);
            }
        }
    }
}
