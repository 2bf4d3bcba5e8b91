//! Why a command did not commit, and the one classification of it that every edge (worker,
//! admin API, CLI, syncer, process manager) maps to its own answer, once:
//!
//! | class | what it means | worker | admin API | CLI |
//! |---|---|---|---|---|
//! | `Refused` | the aggregate said no, with its reason: a decision, final | recorded as the decision | `409` | exit 1 |
//! | `Invalid` | the input cannot form a command (a bad id, branch, filter or source, or a source `HOOKLOG_SYNCER_ALLOWED_SOURCES` does not allow) | dead letter | `422` | exit 2 |
//! | `NotFound` | the aggregate has no history | dead letter | `404` | exit 1 |
//! | `Conflict` | other writers kept changing the aggregate; the same command may succeed later | `nak` with a delay | `503` | exit 75 |
//! | `Retryable` | PostgreSQL could not be reached or failed; the same command may succeed later | `nak` with a delay | `503` | exit 75 |
//! | `Corrupt` | stored events cannot be read back: needs a person | dead letter | `500` | exit 70 |
//! | `Unconfigured` | a setting the use case needs is not set (the message names it) | dead letter | `503` | exit 78 |

use cqrs_es::AggregateError;

/// What kind of failure a command or use case met; see the module doc for what each edge does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Refused,
    Invalid,
    NotFound,
    Conflict,
    Retryable,
    Corrupt,
    /// A setting the use case needs is not set; the message names it.
    Unconfigured,
}

impl ErrorClass {
    /// Whether sending the same command again later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Conflict | Self::Retryable)
    }
}

/// Why a command did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused: a decision, final.
    #[error("{0}")]
    Rejected(E),
    /// Another command committed to the same aggregate first, too many times in a row.
    #[error("another command changed the aggregate at the same time")]
    Conflict,
    /// PostgreSQL could not be reached or failed; run it again later.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// Stored events could not be read back: needs a person.
    #[error("stored events of the aggregate cannot be read: {0}")]
    Corrupt(String),
}

impl<E: std::error::Error> CommandError<E> {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Rejected(_) => ErrorClass::Refused,
            Self::Conflict => ErrorClass::Conflict,
            Self::Unavailable(_) => ErrorClass::Retryable,
            Self::Corrupt(_) => ErrorClass::Corrupt,
        }
    }

    /// Whether running the same command again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.class().is_retryable()
    }

    /// The aggregate's refusal, if that is what this is.
    pub fn refusal(&self) -> Option<&E> {
        match self {
            Self::Rejected(reason) => Some(reason),
            _ => None,
        }
    }
}

impl<E: std::error::Error> From<AggregateError<E>> for CommandError<E> {
    fn from(err: AggregateError<E>) -> Self {
        match err {
            AggregateError::UserError(e) => Self::Rejected(e),
            AggregateError::AggregateConflict => Self::Conflict,
            AggregateError::DatabaseConnectionError(e) | AggregateError::UnexpectedError(e) => {
                Self::Unavailable(e.to_string())
            }
            AggregateError::DeserializationError(e) => Self::Corrupt(e.to_string()),
        }
    }
}

/// Why a use case (track, untrack, connect, disconnect) did not happen: its class, a stable
/// snake_case code the admin API answers with, the input field at fault (each edge names it its
/// own way: `--branch`, `branch`), and a message for people that names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UseCaseError {
    pub class: ErrorClass,
    pub code: &'static str,
    pub field: Option<&'static str>,
    pub message: String,
}

impl UseCaseError {
    pub fn new(class: ErrorClass, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            class,
            code,
            field: None,
            message: message.into(),
        }
    }

    /// Input that cannot form a command; `field` names it (`repository`, `branch`, …).
    pub fn invalid(
        field: &'static str,
        code: &'static str,
        reason: impl std::fmt::Display,
    ) -> Self {
        Self {
            field: Some(field),
            ..Self::new(ErrorClass::Invalid, code, reason.to_string())
        }
    }

    pub fn not_found(code: &'static str, what: impl std::fmt::Display) -> Self {
        Self::new(ErrorClass::NotFound, code, format!("{what} not found"))
    }

    /// A command error, with `code` for a refusal.
    pub fn command<E: std::error::Error>(code: &'static str, err: CommandError<E>) -> Self {
        let class = err.class();
        let code = match class {
            ErrorClass::Refused => code,
            ErrorClass::Conflict => "conflict",
            ErrorClass::Retryable => "store_unavailable",
            _ => "internal",
        };
        Self::new(class, code, err.to_string())
    }
}
