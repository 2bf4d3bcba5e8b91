//! [`RelayError`]: what can go wrong in the relay, classified once.
//!
//! [`run`](crate::run) returns only [`RelayError::InvalidConfig`]. Every other error ends the
//! current lock session: it is logged and the relay goes back to taking the lock after
//! `lock_retry`, so an outage of Postgres or NATS never ends the process.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The settings cannot work; the only error `run` returns.
    #[error("invalid relay settings: {0}")]
    InvalidConfig(String),
    /// A Postgres query or connection failed (the lock is lost with the session).
    #[error("Postgres failed while {context}: {source}")]
    Postgres {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// Postgres did not answer in time; the session is treated as lost.
    #[error("Postgres did not answer within {timeout:?} while {context}")]
    PostgresTimedOut {
        context: &'static str,
        timeout: Duration,
    },
    /// An outbox row that can never be published as it is (for example an aggregate id that is
    /// not a subject token). The relay never skips a row: it stops at this one and retries, so
    /// the row must be fixed by hand.
    #[error("outbox row {outbox_id} cannot be published: {reason}")]
    Unpublishable { outbox_id: i64, reason: String },
}

impl RelayError {
    /// Wraps a sqlx error with what the relay was doing.
    pub(crate) fn postgres(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Postgres { context, source }
    }
}
