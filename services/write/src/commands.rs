//! What an edge that sends commands to instances, targets and repository connections needs of the write side, whether
//! each command commits alone (`CommandBus`, here) or with the rest of a batch (`Batch`, in
//! `crate::batch`): the worker decides a delivery the same way on either.

use std::future::Future;

use cqrs_es::Aggregate;
use hooklog_domain::connector_instance::ConnectorInstance;
use hooklog_domain::connector_target::ConnectorTarget;
use hooklog_domain::ids::{InstanceId, TargetId};
use hooklog_domain::metadata::CommandMetadata;
use hooklog_domain::repository_connection::{ConnectionId, RepositoryConnection};

use crate::bus::{CommandBus, Executed};
use crate::error::CommandError;

pub(crate) type Result<A> = std::result::Result<Executed, CommandError<<A as Aggregate>::Error>>;

pub trait Commands: Sync {
    fn instance(
        &self,
        id: InstanceId,
        command: <ConnectorInstance as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> impl Future<Output = Result<ConnectorInstance>> + Send;

    fn target(
        &self,
        id: TargetId,
        command: <ConnectorTarget as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> impl Future<Output = Result<ConnectorTarget>> + Send;

    fn connection(
        &self,
        id: ConnectionId,
        command: <RepositoryConnection as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> impl Future<Output = Result<RepositoryConnection>> + Send;
}

impl Commands for CommandBus {
    fn instance(
        &self,
        id: InstanceId,
        command: <ConnectorInstance as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> impl Future<Output = Result<ConnectorInstance>> + Send {
        CommandBus::instance(self, id, command, metadata)
    }

    fn target(
        &self,
        id: TargetId,
        command: <ConnectorTarget as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> impl Future<Output = Result<ConnectorTarget>> + Send {
        CommandBus::target(self, id, command, metadata)
    }

    fn connection(
        &self,
        id: ConnectionId,
        command: <RepositoryConnection as Aggregate>::Command,
        metadata: &CommandMetadata,
    ) -> impl Future<Output = Result<RepositoryConnection>> + Send {
        CommandBus::connection(self, id, command, metadata)
    }
}
