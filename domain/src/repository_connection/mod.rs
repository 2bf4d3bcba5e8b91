//! `RepositoryConnection`: a repository connected without the GitHub App, through a webhook
//! hooklog creates at the provider (GitHub repository webhooks, GitLab project hooks) with a
//! secret of its own, and removes again on disconnect.
//!
//! The connection is recorded first (`RepositoryConnected`, status `pending`) and the provider
//! is called afterwards, by the `repositories` role, which reports what came of it
//! (`WebhookCreated` or `WebhookFailed`). So an admin's request never waits on the provider,
//! a crash between the call and the report is finished by the next pass (which adopts the hook
//! it created, found by its URL), and every step is on record for auditors.
//!
//! Disconnecting is the same in reverse: `DisconnectRequested` stops the connection accepting
//! deliveries at once (status `disconnecting`); the role deletes the webhook at the provider
//! and reports `WebhookDeleted` (then the connection is `disconnected`) or
//! `WebhookDeleteFailed` (status `delete_failed`, retried by each pass).
//!
//! **Incidents.** The worker hands the connection each completed workflow run of its webhook;
//! a failing one (`failure`, `timed_out`, `startup_failure`) on the connection's branch opens an
//! incident unless that workflow is failing there already, and a later success of the same
//! workflow on that branch resolves it. Runs are ordered by their run number, not by arrival:
//! a run older than the one that last opened or resolved the workflow's incident (a late
//! redelivery, deliveries out of order) changes nothing. Pull requests are recorded the same way,
//! each change newer than the last one seen of it.
//!
//! Secrets are not in these events: the webhook secret and the provider token are kept
//! encrypted in the write side's vault; an event names the webhook secret only by its id (a
//! keyed digest that cannot be reversed), which is what each stored delivery names too.

mod aggregate;
mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use aggregate::{
    Connection, ConnectionStatus, RepositoryConnection, WorkflowState, FAILING_CONCLUSIONS,
};
pub use command::{ConnectionCommand, PullRequest, WorkflowRun};
pub use error::ConnectionError;
pub use event::{
    ConnectionEvent, ConnectionId, Provider, ProviderRepository, PullRequestState, RunRef,
};
