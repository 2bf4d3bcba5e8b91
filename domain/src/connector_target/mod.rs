//! `ConnectorTarget`: one tracked branch of one repository (id = UUIDv5 of installation,
//! repository id and branch). It decides when a sync is requested: never twice for the same head
//! SHA, at most one in flight, and pushes that arrive meanwhile coalesce into one follow-up for
//! the newest head.

mod aggregate;
mod command;
mod error;
mod event;
mod services;
#[cfg(test)]
mod tests;

pub use aggregate::{ConnectorTarget, FollowUp, InFlightSync, TargetStatus};
pub use command::{Push, TargetCommand};
pub use error::TargetError;
pub use event::{
    DisableReason, FileFailure, PathFilters, RemovalReason, SyncReason, SyncStatus, TargetEvent,
    MAX_GLOBS, MAX_GLOB_LEN,
};
pub use services::TargetServices;
