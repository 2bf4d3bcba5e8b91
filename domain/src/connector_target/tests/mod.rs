//! Given/when/then tests of `ConnectorTarget`: one test per rule of `decide`, on histories built
//! from the small helpers here (a tracked target, a push, a SHA from a digit) and a fixed clock,
//! so the expected events compare equal. Stories of several commands (deliveries out of order,
//! copies of a push) run through `emitted`, each command given the history so far.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cqrs_es::test::{AggregateTestExecutor, TestFramework};

use super::*;
use crate::clock::{FixedClock, Timestamp};
use crate::ids::{
    Branch, CommitSha, InstallationId, RepositoryId, RepositoryName, SyncId, TargetId,
};

use TargetCommand as C;
use TargetEvent as E;

mod convergence;
mod events;
mod lifecycle;
mod push;
mod requests;
mod sync;

fn at() -> Timestamp {
    Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn given(events: Vec<TargetEvent>) -> AggregateTestExecutor<ConnectorTarget> {
    TestFramework::<ConnectorTarget>::with(TargetServices {
        clock: Arc::new(FixedClock(at())),
    })
    .given(events)
}

fn repository(name: &str) -> RepositoryName {
    RepositoryName::parse(name).unwrap()
}

fn main_branch() -> Branch {
    Branch::parse("main").unwrap()
}

fn target_id() -> TargetId {
    TargetId::for_branch(InstallationId(7), RepositoryId(42), &main_branch())
}

fn sync(n: u64) -> SyncId {
    SyncId::nth(target_id(), n)
}

/// A SHA made of one repeated digit: `sha(0)` is GitHub's all-zero SHA.
fn sha(digit: u8) -> CommitSha {
    CommitSha::parse(&digit.to_string().repeat(40)).unwrap()
}

fn delivery(head: u8) -> String {
    format!("delivery-{head}")
}

fn track(auto_sync: bool) -> TargetCommand {
    C::Track {
        owner: TargetOwner::Installation(InstallationId(7)),
        repository_id: RepositoryId(42),
        repository: repository("octo/docs"),
        branch: main_branch(),
        auto_sync,
        source: None,
        path_filters: PathFilters::default(),
    }
}

fn tracked(auto_sync: bool) -> TargetEvent {
    E::TargetTracked {
        target_id: target_id(),
        installation_id: Some(InstallationId(7)),
        connection_id: None,
        repository_id: RepositoryId(42),
        repository: repository("octo/docs"),
        branch: main_branch(),
        auto_sync,
        source: None,
        path_filters: PathFilters::default(),
        at: at(),
    }
}

/// A push of `head` in its own delivery, from `sha(9)`: a head the tests never push, so the
/// push links to nothing else in the history.
fn push(head: u8) -> Push {
    push_from(9, head)
}

fn pushed(head: u8) -> TargetCommand {
    C::RecordPush(push(head))
}

/// A push moving the branch from `before` to `head`, in its own delivery.
fn push_from(before: u8, head: u8) -> Push {
    Push {
        head_sha: sha(head),
        before_sha: sha(before),
        forced: false,
        deleted: false,
        delivery_id: delivery(head),
    }
}

fn pushed_from(before: u8, head: u8) -> TargetCommand {
    C::RecordPush(push_from(before, head))
}

/// A force push moving the branch from `before` to `head`.
fn moved(before: u8, head: u8) -> TargetCommand {
    C::RecordPush(Push {
        forced: true,
        ..push_from(before, head)
    })
}

/// Copy `k` of `push`: the same push in another delivery (a redelivery, or a duplicate).
fn copy_of(push: Push, k: usize) -> TargetCommand {
    C::RecordPush(Push {
        delivery_id: format!("{}-copy-{k}", push.delivery_id),
        ..push
    })
}

fn branch_deleted() -> TargetCommand {
    C::RecordPush(Push {
        head_sha: sha(0),
        deleted: true,
        ..push(0)
    })
}

fn push_recorded(head: u8) -> TargetEvent {
    push_recorded_from(9, head)
}

fn push_recorded_from(before: u8, head: u8) -> TargetEvent {
    E::PushRecorded {
        head_sha: sha(head),
        before_sha: Some(sha(before)),
        forced: false,
        delivery_id: delivery(head),
        at: at(),
    }
}

/// Sync number `n` requested by the push of `head`.
fn push_requested(n: u64, head: u8) -> TargetEvent {
    requested_from(n, 9, head)
}

/// Sync number `n` requested by the push from `before` to `head`.
fn requested_from(n: u64, before: u8, head: u8) -> TargetEvent {
    E::SyncRequested {
        sync_id: sync(n),
        head_sha: sha(head),
        before_sha: Some(sha(before)),
        delivery_id: Some(delivery(head)),
        reason: SyncReason::Push,
        forced: false,
        at: at(),
    }
}

/// Sync number `n` requested without a delivery (operator, retry, reconcile).
fn requested(n: u64, head: u8, reason: SyncReason) -> TargetEvent {
    E::SyncRequested {
        sync_id: sync(n),
        head_sha: sha(head),
        before_sha: None,
        delivery_id: None,
        reason,
        forced: false,
        at: at(),
    }
}

/// The push of `head` queued behind the sync in flight, replacing the queued push of `replaces`.
fn queued(head: u8, replaces: Option<u8>) -> TargetEvent {
    queued_from(9, head, replaces)
}

/// The push from `before` to `head` queued behind the sync in flight.
fn queued_from(before: u8, head: u8, replaces: Option<u8>) -> TargetEvent {
    E::SyncQueued {
        head_sha: sha(head),
        before_sha: Some(sha(before)),
        delivery_id: Some(delivery(head)),
        reason: SyncReason::Push,
        forced: false,
        replaces: replaces.map(sha),
        at: at(),
    }
}

/// The push from `before` to `head`, which the chain already showed older than a head seen.
fn superseded(before: u8, head: u8) -> TargetEvent {
    E::PushSuperseded {
        head_sha: sha(head),
        before_sha: sha(before),
        delivery_id: delivery(head),
        at: at(),
    }
}

fn started(n: u64, head: u8) -> TargetEvent {
    E::SyncStarted {
        sync_id: sync(n),
        head_sha: sha(head),
        at: at(),
    }
}

fn complete(n: u64) -> TargetCommand {
    C::CompleteSync {
        sync_id: sync(n),
        status: SyncStatus::Completed,
        created: 3,
        updated: 2,
        deleted: 1,
        skipped: 0,
        failures: vec![],
    }
}

fn completed(n: u64, head: u8) -> TargetEvent {
    E::SyncCompleted {
        sync_id: sync(n),
        head_sha: sha(head),
        status: SyncStatus::Completed,
        created: 3,
        updated: 2,
        deleted: 1,
        skipped: 0,
        failures: vec![],
        at: at(),
    }
}

fn fail(n: u64) -> TargetCommand {
    C::FailSync {
        sync_id: sync(n),
        error: "tree fetch timed out".to_owned(),
        retryable: true,
    }
}

fn failed(n: u64, head: u8) -> TargetEvent {
    E::SyncFailed {
        sync_id: sync(n),
        head_sha: sha(head),
        error: "tree fetch timed out".to_owned(),
        retryable: true,
        at: at(),
    }
}

fn request(head: Option<u8>, reason: SyncReason) -> TargetCommand {
    C::RequestSync {
        head_sha: head.map(sha),
        reason,
    }
}

fn disabled(reason: DisableReason) -> TargetEvent {
    E::TargetDisabled { reason, at: at() }
}

fn enabled() -> TargetEvent {
    E::TargetEnabled { at: at() }
}

fn removed() -> TargetEvent {
    E::TargetRemoved {
        reason: RemovalReason::Operator,
        at: at(),
    }
}

/// A target with auto_sync on whose push of `head` is sync 1, requested but not started.
fn in_flight(head: u8) -> Vec<TargetEvent> {
    vec![tracked(true), push_requested(1, head)]
}

/// A target with auto_sync on whose push of `head` is sync 1, started.
fn started_sync(head: u8) -> Vec<TargetEvent> {
    vec![tracked(true), push_requested(1, head), started(1, head)]
}

/// A target with auto_sync on whose push of `head` was synced as sync 1.
fn synced(head: u8) -> Vec<TargetEvent> {
    vec![
        tracked(true),
        push_requested(1, head),
        started(1, head),
        completed(1, head),
    ]
}

/// Everything `commands` make happen when they arrive one after the other on `history`, each
/// given the history so far (the events of the commands before it included).
fn emitted(
    mut history: Vec<TargetEvent>,
    commands: impl IntoIterator<Item = TargetCommand>,
) -> Vec<TargetEvent> {
    let mut all = vec![];
    for command in commands {
        let events = given(history.clone())
            .when(command.clone())
            .inspect_result()
            .unwrap_or_else(|err| panic!("{command:?} refused: {err}"));
        history.extend(events.clone());
        all.extend(events);
    }
    all
}

/// Sync number `n` of the push from `before` to `head`, requested, started and completed.
fn synced_from(n: u64, before: u8, head: u8) -> Vec<TargetEvent> {
    vec![
        requested_from(n, before, head),
        started(n, head),
        completed(n, head),
    ]
}

/// `event` (a `SyncCompleted`) as a partial sync.
fn partial(mut event: TargetEvent) -> TargetEvent {
    if let E::SyncCompleted { status, .. } = &mut event {
        *status = SyncStatus::Partial;
    }
    event
}

fn with(
    mut history: Vec<TargetEvent>,
    more: impl IntoIterator<Item = TargetEvent>,
) -> Vec<TargetEvent> {
    history.extend(more);
    history
}

fn docs_only() -> PathFilters {
    PathFilters::parse(vec!["docs/**".into()], vec!["**/*.tmp".into()]).unwrap()
}

/// Every command but `Track`, each valid on an active target with sync 1 in flight.
fn every_command_but_track() -> Vec<TargetCommand> {
    vec![
        pushed(2),
        request(Some(2), SyncReason::Manual),
        C::StartSync { sync_id: sync(1) },
        complete(1),
        fail(1),
        C::RenameRepository {
            repository: repository("octo/handbook"),
        },
        C::SetAutoSync { enabled: false },
        C::SetPathFilters {
            filters: docs_only(),
        },
        C::Disable {
            reason: DisableReason::Operator,
        },
        C::Enable,
        C::Remove {
            reason: RemovalReason::Operator,
        },
    ]
}
