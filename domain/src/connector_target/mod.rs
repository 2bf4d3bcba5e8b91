//! `ConnectorTarget`: one tracked branch of one repository, owned by an App installation (id =
//! UUIDv5 of installation, repository id and branch) or by a repository connection (UUIDv5 of
//! connection and branch; see `TargetOwner`). It decides when a sync is requested, the same way
//! whoever owns it:
//!
//! - **Dedupe**: a push never requests a head already requested or queued since the target was
//!   tracked, whatever became of that sync (in flight, completed, partial or failed); failed
//!   heads are retried by the retry policy or an operator only.
//! - **One in flight, coalesce**: at most one sync in flight; requests that arrive meanwhile
//!   coalesce into one follow-up for the newest head.
//! - **Convergence**: the copy follows the branch head. Deliveries come out of order and
//!   redeliveries come late, so a push whose head the `before`/`after` chain already shows older
//!   than a head seen moves neither the copy nor the last head (`PushSuperseded` records what
//!   it taught, if anything); a push that moves the branch on from the last head is requested
//!   even onto a head synced before (a force push back). Reconcile, which reads the branch head
//!   from the source, requests it whenever the copy holds another head, even one synced before,
//!   except a head in flight or queued, and the head of the last failed sync (the retry
//!   policy's).
//!
//! `aggregate` holds the state and `apply`; `decide` the command rules; `request` the rules
//! above.

mod aggregate;
mod command;
mod decide;
mod error;
mod event;
mod request;
mod services;
#[cfg(test)]
mod tests;

pub use aggregate::{ConnectorTarget, FollowUp, InFlightSync, TargetStatus};
pub use command::{Push, TargetCommand, TargetOwner};
pub use error::TargetError;
pub use event::{
    DisableReason, FileFailure, PathFilters, RemovalReason, SyncReason, SyncStatus, TargetEvent,
    MAX_GLOBS, MAX_GLOB_LEN,
};
pub use services::TargetServices;
