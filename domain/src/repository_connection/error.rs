//! Why a `RepositoryConnection` refused a command: decisions, not faults.

use super::aggregate::ConnectionStatus;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("the repository connection does not exist")]
    NotConnected,
    #[error("the repository connection exists already")]
    AlreadyConnected,
    #[error("the repository connection is disconnected")]
    Disconnected,
    /// A delivery about a repository other than the connection's (its webhook speaks for one).
    #[error("the delivery is about repository {got}, not the connection's {expected}")]
    OtherRepository { expected: u64, got: u64 },
    /// What the command reports or asks is not what the state is waiting for (another pass or
    /// replica acted first): nothing is recorded.
    #[error("the repository connection is {status}: {detail}")]
    NotDue {
        status: ConnectionStatus,
        detail: String,
    },
}
