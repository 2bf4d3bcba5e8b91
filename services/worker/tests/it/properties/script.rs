//! A `Commands` that answers from a script and records what it was sent: the only stand-in in
//! these properties, for the write side's answers (which its own tests pin against PostgreSQL).

use std::collections::VecDeque;
use std::future::{ready, Future};
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use cqrs_es::Aggregate;
use hooklog_domain::connector_instance::{ConnectorInstance, InstanceCommand, InstanceError};
use hooklog_domain::connector_target::{ConnectorTarget, Push, TargetCommand, TargetError};
use hooklog_domain::ids::{InstanceId, TargetId};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_domain::repository_connection::{
    ConnectionCommand, ConnectionError, ConnectionId, RepositoryConnection,
};
use hooklog_write::{AggregateRef, CommandError, Commands, Executed};
use proptest::prelude::*;

/// One answer to one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Handled,
    AlreadyApplied,
    /// A target's `NotTracked`; an instance's `NotConnected`.
    NotTracked,
    /// Another refusal: a target's `Disabled`, an instance's `AutoTrackOff`.
    Refused,
    Conflict,
    Unavailable,
    Corrupt,
}

impl Reply {
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Conflict | Self::Unavailable)
    }

    /// Whether the aggregate took the command.
    pub fn took(self) -> bool {
        matches!(self, Self::Handled | Self::AlreadyApplied)
    }

    fn answer<E: std::error::Error>(
        self,
        not_tracked: E,
        refused: E,
    ) -> Result<Executed, CommandError<E>> {
        match self {
            Self::Handled => Ok(Executed::Handled),
            Self::AlreadyApplied => Ok(Executed::AlreadyApplied),
            Self::NotTracked => Err(CommandError::Rejected(not_tracked)),
            Self::Refused => Err(CommandError::Rejected(refused)),
            Self::Conflict => Err(CommandError::Conflict),
            Self::Unavailable => Err(CommandError::Unavailable("connection refused".into())),
            Self::Corrupt => Err(CommandError::Corrupt("unknown event type".into())),
        }
    }
}

impl Arbitrary for Reply {
    type Parameters = ();
    type Strategy = BoxedStrategy<Self>;

    fn arbitrary_with((): ()) -> Self::Strategy {
        prop_oneof![
            4 => Just(Self::Handled),
            1 => Just(Self::AlreadyApplied),
            3 => Just(Self::NotTracked),
            2 => Just(Self::Refused),
            1 => Just(Self::Conflict),
            1 => Just(Self::Unavailable),
            1 => Just(Self::Corrupt),
        ]
        .boxed()
    }
}

/// One command as `run` sent it, and what it was answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub aggregate: AggregateRef,
    pub command: &'static str,
    pub metadata: CommandMetadata,
    pub reply: Reply,
    /// The push of a target's `RecordPush`.
    pub push: Option<Push>,
}

impl Call {
    pub fn aggregate_id(&self) -> String {
        match &self.aggregate {
            AggregateRef::Instance(id) => id.to_string(),
            AggregateRef::Target(id) => id.to_string(),
            other => format!("{other:?}"),
        }
    }
}

/// Answers each command with the next scripted reply (`Handled` once the script runs out).
pub struct Script {
    replies: Mutex<VecDeque<Reply>>,
    calls: Mutex<Vec<Call>>,
}

impl Script {
    pub fn new(replies: Vec<Reply>) -> Self {
        Self {
            replies: Mutex::new(replies.into()),
            calls: Mutex::new(Vec::new()),
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn record(
        &self,
        aggregate: AggregateRef,
        command: &'static str,
        metadata: &CommandMetadata,
        push: Option<Push>,
    ) -> Reply {
        let reply = self
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Reply::Handled);
        self.calls.lock().unwrap().push(Call {
            aggregate,
            command,
            metadata: metadata.clone(),
            reply,
            push,
        });
        reply
    }
}

type Answer<A> = Result<Executed, CommandError<<A as Aggregate>::Error>>;

impl Commands for Script {
    fn instance(
        &self,
        id: InstanceId,
        command: InstanceCommand,
        metadata: &CommandMetadata,
    ) -> impl Future<Output = Answer<ConnectorInstance>> + Send {
        let reply = self.record(AggregateRef::Instance(id), command.name(), metadata, None);
        ready(reply.answer(InstanceError::NotConnected, InstanceError::AutoTrackOff))
    }

    fn target(
        &self,
        id: TargetId,
        command: TargetCommand,
        metadata: &CommandMetadata,
    ) -> impl Future<Output = Answer<ConnectorTarget>> + Send {
        let (name, push) = match command {
            TargetCommand::RecordPush(push) => ("RecordPush", Some(push)),
            other => panic!("the worker sends targets only RecordPush, not {other:?}"),
        };
        let reply = self.record(AggregateRef::Target(id), name, metadata, push);
        ready(reply.answer(TargetError::NotTracked, TargetError::Disabled))
    }

    fn connection(
        &self,
        id: ConnectionId,
        command: ConnectionCommand,
        metadata: &CommandMetadata,
    ) -> impl Future<Output = Answer<RepositoryConnection>> + Send {
        let name = match command {
            ConnectionCommand::RecordWorkflowRun(_) => "RecordWorkflowRun",
            ConnectionCommand::RecordPullRequest(_) => "RecordPullRequest",
            other => {
                panic!("the worker sends connections only what their webhooks tell, not {other:?}")
            }
        };
        let reply = self.record(AggregateRef::Connection(id), name, metadata, None);
        ready(reply.answer(ConnectionError::NotConnected, ConnectionError::Disconnected))
    }
}

/// Runs a future that never waits (every `Script` answer is ready) to its end.
pub fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future waited on something other than the script"),
    }
}
