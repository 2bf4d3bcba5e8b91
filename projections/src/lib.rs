//! hooklog's read side: the read models admins and their dashboard query, the projector that
//! keeps them from `HOOKLOG_EVENTS` and `GITHUB_DELIVERIES`, and rebuild with its drift check.
//!
//! Two projections, one per stream, each with a checkpoint (the last stream sequence applied)
//! committed in the same transaction as its rows:
//! - `connector` (`HOOKLOG_EVENTS`): `instances`, `targets`, `sync_runs`, `delivery_effects`,
//!   `delivery_outcomes`, `dead_letters` (the worker's decisions, `Delivery` events),
//!   `github_deliveries` (the GitHub reconciler's findings, `GithubDelivery` events),
//!   `repository_connections`, `incidents` and `pull_requests` (repositories connected without
//!   the App, their CI incidents and pull requests);
//! - `deliveries` (`GITHUB_DELIVERIES`): `deliveries`.
//!
//! Rows are functions of the streams alone (message contents, sequences and stream timestamps),
//! so a projection replayed from sequence 1 writes the same bytes; [`rebuild`] checks that.
#![forbid(unsafe_code)]

mod checkpoint;
mod connector;
mod deliveries;
mod message;
mod projector;
pub mod query;
pub mod rebuild;
#[cfg(feature = "testing")]
pub mod testing;

pub use checkpoint::Checkpoint;
pub use message::StreamMessage;
pub use projector::{project_until, run, ProjectorConfig, ProjectorError};

use hooklog_infra::streams::{DELIVERIES_STREAM, EVENTS_STREAM};

/// A read model kept from one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Instances, targets, sync runs and what each delivery caused, from `HOOKLOG_EVENTS`.
    Connector,
    /// Every stored delivery, from `GITHUB_DELIVERIES`.
    Deliveries,
}

impl Projection {
    pub const ALL: [Projection; 2] = [Projection::Connector, Projection::Deliveries];

    /// The checkpoint name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connector => query::CONNECTOR,
            Self::Deliveries => query::DELIVERIES,
        }
    }

    pub fn stream(self) -> &'static str {
        match self {
            Self::Connector => EVENTS_STREAM,
            Self::Deliveries => DELIVERIES_STREAM,
        }
    }

    /// The tables the projection owns, in the order they are cleared and compared.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Self::Connector => &[
                "instances",
                "targets",
                "sync_runs",
                "delivery_effects",
                "delivery_outcomes",
                "dead_letters",
                "github_deliveries",
                "repository_connections",
                "incidents",
                "pull_requests",
            ],
            Self::Deliveries => &["deliveries"],
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}
