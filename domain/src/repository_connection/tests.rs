//! Given/when/then tests of `RepositoryConnection`: connected once, each creation attempt
//! reported once, retried only when failed, disconnect stops deliveries at once and finishes
//! only when the webhook is gone.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use cqrs_es::Aggregate;
use uuid::Uuid;

use super::*;
use crate::clock::{FixedClock, Timestamp};
use crate::connector_target::TargetServices;
use crate::ids::Branch;

use ConnectionCommand as C;
use ConnectionEvent as E;

fn t(secs: u64) -> Timestamp {
    Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs))
}

fn given(events: Vec<ConnectionEvent>) -> AggregateTestExecutor<RepositoryConnection> {
    TestFramework::<RepositoryConnection>::with(TargetServices {
        clock: Arc::new(FixedClock(t(5))),
    })
    .given(events)
}

fn id() -> ConnectionId {
    ConnectionId(Uuid::from_u128(7))
}

fn connect() -> ConnectionCommand {
    C::Connect {
        connection_id: id(),
        provider: Provider::Github,
        repository: ProviderRepository::parse(Provider::Github, "octo/docs").unwrap(),
        branch: Branch::parse("main").unwrap(),
        hook_url: "https://hooklog.example/v1/webhooks/repositories/x".to_owned(),
        secret_id: "s1".to_owned(),
    }
}

fn connected() -> ConnectionEvent {
    let C::Connect {
        connection_id,
        provider,
        repository,
        branch,
        hook_url,
        secret_id,
    } = connect()
    else {
        unreachable!()
    };
    E::RepositoryConnected {
        connection_id,
        provider,
        repository,
        branch,
        hook_url,
        secret_id,
        at: t(5),
    }
}

fn created(attempt: u32) -> ConnectionEvent {
    E::WebhookCreated {
        attempt,
        hook_id: 42,
        adopted: false,
        repository_id: 9,
        repository_path: None,
        clone_url: None,
        at: t(5),
    }
}

fn failed(attempt: u32) -> ConnectionEvent {
    E::WebhookFailed {
        attempt,
        reason: "401 Bad credentials".to_owned(),
        at: t(5),
    }
}

fn state(events: Vec<ConnectionEvent>) -> RepositoryConnection {
    let mut aggregate = RepositoryConnection::default();
    for event in events {
        aggregate.apply(event);
    }
    aggregate
}

fn refused_not_due(result: Result<Vec<ConnectionEvent>, ConnectionError>) {
    assert!(
        matches!(result, Err(ConnectionError::NotDue { .. })),
        "{result:?}"
    );
}

#[test]
fn a_connection_is_made_once_and_is_pending_until_its_webhook_exists() {
    given(vec![])
        .when(connect())
        .then_expect_events(vec![connected()]);
    given(vec![connected()])
        .when(connect())
        .then_expect_error(ConnectionError::AlreadyConnected);
    let pending = state(vec![connected()]);
    assert_eq!(pending.status(), ConnectionStatus::Pending);
    assert!(pending.status().accepts_deliveries());
    assert!(pending.status().awaits_provider());
}

#[test]
fn nothing_but_connect_is_taken_by_a_connection_never_made() {
    for command in [C::RetryWebhook, C::Disconnect] {
        given(vec![])
            .when(command)
            .then_expect_error(ConnectionError::NotConnected);
    }
}

#[test]
fn the_attempt_in_flight_is_reported_once() {
    given(vec![connected()])
        .when(C::RecordWebhookCreated {
            attempt: 1,
            hook_id: 42,
            adopted: false,
            repository_id: 9,
            repository_path: None,
            clone_url: None,
        })
        .then_expect_events(vec![created(1)]);
    let active = state(vec![connected(), created(1)]);
    assert_eq!(active.status(), ConnectionStatus::Active);
    assert_eq!(active.hook_id(), Some(42));
    // A second report of the same attempt (another replica) records nothing.
    refused_not_due(active.decide(
        C::RecordWebhookFailed {
            attempt: 1,
            reason: "late".to_owned(),
        },
        t(6),
    ));
    // Nor does a report of an attempt that is not the one in flight.
    let pending = state(vec![connected()]);
    refused_not_due(pending.decide(
        C::RecordWebhookCreated {
            attempt: 2,
            hook_id: 1,
            adopted: false,
            repository_id: 9,
            repository_path: None,
            clone_url: None,
        },
        t(6),
    ));
}

#[test]
fn a_failed_creation_is_retried_only_when_asked_and_only_once() {
    given(vec![connected(), failed(1)])
        .when(C::RetryWebhook)
        .then_expect_events(vec![E::WebhookRetryRequested {
            attempt: 2,
            at: t(5),
        }]);
    let failed_state = state(vec![connected(), failed(1)]);
    assert_eq!(failed_state.status(), ConnectionStatus::Failed);
    assert_eq!(failed_state.last_error(), Some("401 Bad credentials"));
    assert!(!failed_state.status().awaits_provider());
    let retrying = state(vec![
        connected(),
        failed(1),
        E::WebhookRetryRequested {
            attempt: 2,
            at: t(5),
        },
    ]);
    assert_eq!(retrying.status(), ConnectionStatus::Pending);
    assert_eq!(retrying.attempt(), 2);
    refused_not_due(retrying.decide(C::RetryWebhook, t(6)));
    refused_not_due(state(vec![connected(), created(1)]).decide(C::RetryWebhook, t(6)));
    // The old attempt's late report is refused; the new one's is taken.
    refused_not_due(retrying.decide(
        C::RecordWebhookFailed {
            attempt: 1,
            reason: "x".to_owned(),
        },
        t(6),
    ));
    assert!(retrying
        .decide(
            C::RecordWebhookCreated {
                attempt: 2,
                hook_id: 3,
                adopted: true,
                repository_id: 9,
                repository_path: None,
                clone_url: None,
            },
            t(6)
        )
        .is_ok());
}

#[test]
fn disconnect_stops_deliveries_at_once_and_finishes_when_the_webhook_is_deleted() {
    given(vec![connected(), created(1)])
        .when(C::Disconnect)
        .then_expect_events(vec![E::DisconnectRequested { at: t(5) }]);
    let disconnecting = state(vec![
        connected(),
        created(1),
        E::DisconnectRequested { at: t(5) },
    ]);
    assert_eq!(disconnecting.status(), ConnectionStatus::Disconnecting);
    assert!(!disconnecting.status().accepts_deliveries());
    assert!(disconnecting.status().awaits_provider());
    // Asking again changes nothing.
    assert_eq!(disconnecting.decide(C::Disconnect, t(6)), Ok(vec![]));
    given(vec![
        connected(),
        created(1),
        E::DisconnectRequested { at: t(5) },
    ])
    .when(C::RecordWebhookDeleted { hook_ids: vec![42] })
    .then_expect_events(vec![
        E::WebhookDeleted {
            hook_ids: vec![42],
            at: t(5),
        },
        E::RepositoryDisconnected { at: t(5) },
    ]);
    given(vec![
        connected(),
        created(1),
        E::DisconnectRequested { at: t(5) },
        E::WebhookDeleted {
            hook_ids: vec![42],
            at: t(5),
        },
        E::RepositoryDisconnected { at: t(5) },
    ])
    .when(C::Disconnect)
    .then_expect_error(ConnectionError::Disconnected);
}

#[test]
fn a_failed_deletion_is_counted_and_retried_until_it_holds() {
    let requested = vec![connected(), created(1), E::DisconnectRequested { at: t(5) }];
    given(requested.clone())
        .when(C::RecordWebhookDeleteFailed {
            reason: "502".to_owned(),
        })
        .then_expect_events(vec![E::WebhookDeleteFailed {
            attempts: 1,
            reason: "502".to_owned(),
            at: t(5),
        }]);
    let mut events = requested;
    events.push(E::WebhookDeleteFailed {
        attempts: 1,
        reason: "502".to_owned(),
        at: t(5),
    });
    let delete_failed = state(events.clone());
    assert_eq!(delete_failed.status(), ConnectionStatus::DeleteFailed);
    assert!(delete_failed.status().awaits_provider());
    assert!(!delete_failed.status().accepts_deliveries());
    assert!(matches!(
        delete_failed.decide(C::RecordWebhookDeleteFailed { reason: "x".to_owned() }, t(6)),
        Ok(ref e) if matches!(e[..], [E::WebhookDeleteFailed { attempts: 2, .. }])
    ));
    given(events)
        .when(C::RecordWebhookDeleted { hook_ids: vec![42] })
        .then_expect_events(vec![
            E::WebhookDeleted {
                hook_ids: vec![42],
                at: t(5),
            },
            E::RepositoryDisconnected { at: t(5) },
        ]);
    // A deletion is reported only after a disconnect.
    refused_not_due(
        state(vec![connected(), created(1)])
            .decide(C::RecordWebhookDeleted { hook_ids: vec![] }, t(6)),
    );
}

#[test]
fn a_webhook_made_while_disconnecting_is_recorded_so_it_is_deleted() {
    let events = vec![connected(), E::DisconnectRequested { at: t(5) }];
    given(events.clone())
        .when(C::RecordWebhookCreated {
            attempt: 1,
            hook_id: 42,
            adopted: false,
            repository_id: 9,
            repository_path: None,
            clone_url: None,
        })
        .then_expect_events(vec![created(1)]);
    let mut with_hook = events;
    with_hook.push(created(1));
    let state = state(with_hook);
    assert_eq!(state.status(), ConnectionStatus::Disconnecting);
    assert_eq!(state.hook_id(), Some(42));
}

#[test]
fn repositories_are_checked_per_provider() {
    for good in ["octo/docs", "octo/.github"] {
        assert!(
            ProviderRepository::parse(Provider::Github, good).is_ok(),
            "{good}"
        );
    }
    for good in ["group/sub/name", "12345", "group/name"] {
        assert!(
            ProviderRepository::parse(Provider::Gitlab, good).is_ok(),
            "{good}"
        );
    }
    for bad in [
        "octo",
        "octo/docs/x",
        "octo/..",
        "octo/ docs",
        "o/d?x",
        "o/%2e%2e",
        "",
    ] {
        assert!(
            ProviderRepository::parse(Provider::Github, bad).is_err(),
            "{bad}"
        );
    }
    for bad in ["name", "group//name", "group/../x", "a/b#c", "a\\b/c"] {
        assert!(
            ProviderRepository::parse(Provider::Gitlab, bad).is_err(),
            "{bad}"
        );
    }
    assert!(Provider::parse("bitbucket").is_err());
}

fn run(number: u64, attempt: u64, conclusion: &str) -> WorkflowRun {
    WorkflowRun {
        repository_id: 9,
        run_id: 1000 + number,
        workflow_id: 77,
        name: "CI".to_owned(),
        branch: Branch::parse("main").unwrap(),
        head_sha: crate::ids::CommitSha::parse(&format!("{number:040x}")).unwrap(),
        run_number: number,
        run_attempt: attempt,
        conclusion: Some(conclusion.to_owned()),
        url: format!(
            "https://github.com/octo/docs/actions/runs/{}",
            1000 + number
        ),
        updated_at: t(600 + number * 60),
    }
}

/// The state after `runs`, each decided and applied in turn; the event types decided.
fn decide_runs(runs: &[WorkflowRun]) -> (RepositoryConnection, Vec<String>) {
    use cqrs_es::DomainEvent;
    let mut state = state(vec![connected(), created(1)]);
    let mut decided = vec![];
    for run in runs {
        for event in state
            .decide(C::RecordWorkflowRun(run.clone()), t(9))
            .unwrap()
        {
            decided.push(event.event_type());
            state.apply(event);
        }
    }
    (state, decided)
}

#[test]
fn a_failing_run_opens_an_incident_that_the_next_success_resolves() {
    let (state, decided) = decide_runs(&[
        run(1, 1, "success"),
        run(2, 1, "failure"),
        run(3, 1, "timed_out"),
        run(4, 1, "success"),
    ]);
    assert_eq!(
        decided,
        [
            "WorkflowPassed",
            "IncidentOpened",
            "IncidentRecurred",
            "IncidentResolved"
        ]
    );
    assert_eq!(state.workflows()[&77].open_incident, None);
    // One incident, by one id, from its opening to its resolution.
    let mut events = vec![];
    let mut s = self::state(vec![connected(), created(1)]);
    for r in [run(2, 1, "failure"), run(3, 1, "success")] {
        for e in s.decide(C::RecordWorkflowRun(r), t(9)).unwrap() {
            events.push(e.clone());
            s.apply(e);
        }
    }
    match (&events[0], &events[1]) {
        (E::IncidentOpened { incident_id: a, .. }, E::IncidentResolved { incident_id: b, .. }) => {
            assert_eq!(a, b)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn runs_older_than_the_last_decided_change_nothing_whatever_order_they_arrive_in() {
    // The success of run 4 arrives before the failure of run 3: no incident opens.
    let (state, decided) = decide_runs(&[run(4, 1, "success"), run(3, 1, "failure")]);
    assert_eq!(decided, ["WorkflowPassed"]);
    assert_eq!(state.workflows()[&77].open_incident, None);
    // A failure redelivered after the success that resolved it does not reopen it.
    let (_, decided) = decide_runs(&[
        run(5, 1, "failure"),
        run(6, 1, "success"),
        run(5, 1, "failure"),
    ]);
    assert_eq!(decided, ["IncidentOpened", "IncidentResolved"]);
    // A re-run (same number, next attempt) that succeeds resolves it.
    let (state, decided) = decide_runs(&[run(7, 1, "failure"), run(7, 2, "success")]);
    assert_eq!(decided, ["IncidentOpened", "IncidentResolved"]);
    assert_eq!(state.workflows()[&77].last_run, (7, 2));
}

#[test]
fn other_branches_other_conclusions_and_other_repositories_open_nothing() {
    let mut other_branch = run(1, 1, "failure");
    other_branch.branch = Branch::parse("feature").unwrap();
    let (_, decided) = decide_runs(&[other_branch, run(2, 1, "cancelled"), run(3, 1, "skipped")]);
    assert!(decided.is_empty(), "{decided:?}");
    let mut elsewhere = run(4, 1, "failure");
    elsewhere.repository_id = 10;
    let active = state(vec![connected(), created(1)]);
    assert_eq!(
        active.decide(C::RecordWorkflowRun(elsewhere), t(9)),
        Err(ConnectionError::OtherRepository {
            expected: 9,
            got: 10
        })
    );
    let gone = state(vec![
        connected(),
        created(1),
        E::DisconnectRequested { at: t(5) },
        E::WebhookDeleted {
            hook_ids: vec![42],
            at: t(5),
        },
        E::RepositoryDisconnected { at: t(5) },
    ]);
    assert_eq!(
        gone.decide(C::RecordWorkflowRun(run(5, 1, "failure")), t(9)),
        Err(ConnectionError::Disconnected)
    );
}

#[test]
fn a_pull_request_change_older_than_the_last_recorded_one_is_dropped() {
    let pr = |action: &str, state: PullRequestState, updated_at: u64| PullRequest {
        repository_id: 9,
        number: 12,
        title: "Docs".to_owned(),
        state,
        action: action.to_owned(),
        head_branch: "docs".to_owned(),
        base_branch: "main".to_owned(),
        head_sha: crate::ids::CommitSha::parse(&"a".repeat(40)).unwrap(),
        url: "https://github.com/octo/docs/pull/12".to_owned(),
        updated_at: t(updated_at),
    };
    let mut s = state(vec![connected(), created(1)]);
    let merged = pr("closed", PullRequestState::Merged, 300);
    for e in s.decide(C::RecordPullRequest(merged), t(9)).unwrap() {
        s.apply(e);
    }
    let late = pr("opened", PullRequestState::Open, 100);
    assert_eq!(s.decide(C::RecordPullRequest(late), t(9)), Ok(vec![]));
    let reopened = pr("reopened", PullRequestState::Open, 500);
    assert!(matches!(
        s.decide(C::RecordPullRequest(reopened), t(9)).as_deref(),
        Ok([E::PullRequestUpdated {
            state: PullRequestState::Open,
            ..
        }])
    ));
}
