//! Given/when/then tests of `GithubDelivery`: recorded once, each redelivery asked once when
//! due, bounded, never past the window, arrival whatever came before.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cqrs_es::test::{AggregateTestExecutor, TestFramework};

use super::*;
use crate::clock::{FixedClock, Timestamp};
use crate::connector_target::TargetServices;

use GithubDeliveryCommand as C;
use GithubDeliveryEvent as E;

const GUID: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
const MINUTE: u64 = 60;

/// 1,700,000,000 s after the epoch, plus `secs`.
fn t(secs: u64) -> Timestamp {
    Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs))
}

fn policy() -> RedeliveryPolicy {
    RedeliveryPolicy {
        window: Duration::from_secs(3 * 24 * 3600),
        arrival_timeout: Duration::from_secs(15 * MINUTE),
        max_attempts: 2,
    }
}

/// A framework whose clock says `t(now)`.
fn given_at(now: u64, events: Vec<GithubDeliveryEvent>) -> AggregateTestExecutor<GithubDelivery> {
    TestFramework::<GithubDelivery>::with(TargetServices {
        clock: Arc::new(FixedClock(t(now))),
    })
    .given(events)
}

fn seen() -> GithubAttempt {
    GithubAttempt {
        connection_id: None,
        github_id: 9001,
        event: "push".to_owned(),
        action: None,
        installation_id: Some(7),
        repository_id: Some(11),
        delivered_at: t(0),
        status: "Invalid HTTP Response: 503".to_owned(),
        status_code: 503,
        redelivery: false,
    }
}

fn missing() -> GithubDeliveryEvent {
    E::DeliveryMissing {
        guid: GUID.to_owned(),
        seen: seen(),
        at: t(MINUTE),
    }
}

fn requested(attempt: u32, at: u64) -> GithubDeliveryEvent {
    E::RedeliveryRequested {
        guid: GUID.to_owned(),
        attempt,
        github_id: 9001,
        by: Requester::Reconciler,
        at: t(at),
    }
}

fn ask(attempt: u32) -> GithubDeliveryCommand {
    C::RequestRedelivery {
        attempt,
        by: Requester::Reconciler,
        policy: policy(),
    }
}

fn state(events: &[GithubDeliveryEvent]) -> GithubDelivery {
    let mut state = GithubDelivery::default();
    for event in events {
        cqrs_es::Aggregate::apply(&mut state, event.clone());
    }
    state
}

#[test]
fn a_missing_delivery_is_recorded_once() {
    given_at(MINUTE, vec![])
        .when(C::RecordMissing {
            guid: GUID.to_owned(),
            seen: seen(),
        })
        .then_expect_events(vec![missing()]);
    given_at(2 * MINUTE, vec![missing()])
        .when(C::RecordMissing {
            guid: GUID.to_owned(),
            seen: GithubAttempt {
                connection_id: None,
                github_id: 9002,
                ..seen()
            },
        })
        .then_expect_events(vec![]);
}

#[test]
fn the_first_redelivery_is_due_at_once_and_asked_once() {
    given_at(MINUTE, vec![missing()])
        .when(ask(1))
        .then_expect_events(vec![requested(1, MINUTE)]);
    // A second replica (or pass) asking for the same attempt is refused: nothing is asked twice.
    given_at(MINUTE + 1, vec![missing(), requested(1, MINUTE)])
        .when(ask(1))
        .then_expect_error_message(&format!(
            "GitHub delivery {GUID}: the last redelivery may still arrive until {}",
            t(16 * MINUTE)
        ));
}

#[test]
fn a_redelivery_that_did_not_arrive_is_asked_again_after_the_arrival_timeout() {
    let history = vec![missing(), requested(1, MINUTE)];
    assert_eq!(
        state(&history).next_step(Requester::Reconciler, t(10 * MINUTE), &policy()),
        Step::Wait {
            until: t(16 * MINUTE)
        }
    );
    given_at(16 * MINUTE, history.clone())
        .when(ask(2))
        .then_expect_events(vec![requested(2, 16 * MINUTE)]);
    // The wrong number is refused even when an ask is due.
    given_at(16 * MINUTE, history)
        .when(ask(3))
        .then_expect_error_message(&format!(
            "GitHub delivery {GUID}: redelivery 2 is due, not 3"
        ));
}

#[test]
fn after_max_attempts_the_delivery_is_reported_not_asked() {
    let history = vec![missing(), requested(1, MINUTE), requested(2, 20 * MINUTE)];
    let step = state(&history).next_step(Requester::Reconciler, t(40 * MINUTE), &policy());
    assert_eq!(
        step,
        Step::GiveUp(Unrecoverable::NotArrived { attempts: 2 })
    );
    given_at(40 * MINUTE, history.clone())
        .when(ask(3))
        .then_expect_error_message(&format!(
            "GitHub delivery {GUID}: it is unrecoverable: asked 2 times; no redelivery arrived"
        ));
    given_at(40 * MINUTE, history)
        .when(C::GiveUp {
            reason: Unrecoverable::NotArrived { attempts: 2 },
            policy: policy(),
        })
        .then_expect_events(vec![E::DeliveryUnrecoverable {
            guid: GUID.to_owned(),
            reason: Unrecoverable::NotArrived { attempts: 2 },
            at: t(40 * MINUTE),
        }]);
}

#[test]
fn past_the_window_nothing_is_asked_and_the_delivery_is_reported() {
    let closed = t(3 * 24 * 3600);
    let step = state(&[missing()]).next_step(Requester::Reconciler, closed, &policy());
    let reason = Unrecoverable::PastWindow {
        window_closed_at: closed,
    };
    assert_eq!(step, Step::GiveUp(reason.clone()));
    given_at(3 * 24 * 3600, vec![missing()])
        .when(ask(1))
        .then_expect_error_message(&format!(
            "GitHub delivery {GUID}: it is unrecoverable: past GitHub's redelivery window \
             (closed at {closed})"
        ));
    // An operator is held to the window too.
    given_at(3 * 24 * 3600, vec![missing()])
        .when(C::RequestRedelivery {
            attempt: 1,
            by: Requester::Operator,
            policy: policy(),
        })
        .then_expect_error_message(&format!(
            "GitHub delivery {GUID}: it is unrecoverable: past GitHub's redelivery window \
             (closed at {closed})"
        ));
    given_at(3 * 24 * 3600, vec![missing()])
        .when(C::GiveUp {
            reason: reason.clone(),
            policy: policy(),
        })
        .then_expect_events(vec![E::DeliveryUnrecoverable {
            guid: GUID.to_owned(),
            reason,
            at: closed,
        }]);
}

#[test]
fn a_give_up_that_is_not_due_is_refused() {
    given_at(MINUTE, vec![missing()])
        .when(C::GiveUp {
            reason: Unrecoverable::NotArrived { attempts: 0 },
            policy: policy(),
        })
        .then_expect_error_message(&format!(
            "GitHub delivery {GUID}: redelivery 1 is due, not 0"
        ));
}

#[test]
fn an_operator_may_ask_again_before_the_timeout_and_after_the_bound() {
    let history = vec![
        missing(),
        requested(1, MINUTE),
        requested(2, 20 * MINUTE),
        E::DeliveryUnrecoverable {
            guid: GUID.to_owned(),
            reason: Unrecoverable::NotArrived { attempts: 2 },
            at: t(40 * MINUTE),
        },
    ];
    assert_eq!(
        state(&history).next_step(Requester::Reconciler, t(41 * MINUTE), &policy()),
        Step::Nothing
    );
    given_at(41 * MINUTE, history)
        .when(C::RequestRedelivery {
            attempt: 3,
            by: Requester::Operator,
            policy: policy(),
        })
        .then_expect_events(vec![E::RedeliveryRequested {
            guid: GUID.to_owned(),
            attempt: 3,
            github_id: 9001,
            by: Requester::Operator,
            at: t(41 * MINUTE),
        }]);
}

#[test]
fn a_failed_or_refused_request_is_recorded_only_for_the_open_ask() {
    let history = vec![missing(), requested(1, MINUTE)];
    given_at(MINUTE, history.clone())
        .when(C::RecordRequestFailed {
            attempt: 1,
            error: "GitHub did not answer".to_owned(),
        })
        .then_expect_events(vec![E::RedeliveryFailed {
            guid: GUID.to_owned(),
            attempt: 1,
            error: "GitHub did not answer".to_owned(),
            at: t(MINUTE),
        }]);
    given_at(MINUTE, history.clone())
        .when(C::RecordRefused {
            attempt: 1,
            status: 422,
            message: "Validation Failed".to_owned(),
        })
        .then_expect_events(vec![E::DeliveryUnrecoverable {
            guid: GUID.to_owned(),
            reason: Unrecoverable::Refused {
                status: 422,
                message: "Validation Failed".to_owned(),
            },
            at: t(MINUTE),
        }]);
    given_at(MINUTE, history)
        .when(C::RecordRefused {
            attempt: 2,
            status: 422,
            message: "x".to_owned(),
        })
        .then_expect_error_message(&format!(
            "GitHub delivery {GUID}: redelivery 2 is not the open request (status requested, 1 \
             asked)"
        ));
}

#[test]
fn arrival_is_recorded_once_whatever_came_before() {
    let unrecoverable = E::DeliveryUnrecoverable {
        guid: GUID.to_owned(),
        reason: Unrecoverable::NotArrived { attempts: 1 },
        at: t(40 * MINUTE),
    };
    for history in [
        vec![missing()],
        vec![missing(), requested(1, MINUTE)],
        vec![missing(), requested(1, MINUTE), unrecoverable],
    ] {
        let attempts = state(&history).attempts();
        given_at(50 * MINUTE, history)
            .when(C::RecordArrived {
                stream_sequence: 42,
            })
            .then_expect_events(vec![E::RedeliveryArrived {
                guid: GUID.to_owned(),
                stream_sequence: 42,
                attempts,
                at: t(50 * MINUTE),
            }]);
    }
    let arrived = E::RedeliveryArrived {
        guid: GUID.to_owned(),
        stream_sequence: 42,
        attempts: 1,
        at: t(50 * MINUTE),
    };
    given_at(
        51 * MINUTE,
        vec![missing(), requested(1, MINUTE), arrived.clone()],
    )
    .when(C::RecordArrived {
        stream_sequence: 43,
    })
    .then_expect_events(vec![]);
    given_at(51 * MINUTE, vec![missing(), requested(1, MINUTE), arrived])
        .when(ask(2))
        .then_expect_error(GithubDeliveryError::AlreadyArrived(GUID.to_owned()));
}

#[test]
fn commands_about_an_unknown_delivery_are_refused() {
    given_at(0, vec![])
        .when(ask(1))
        .then_expect_error(GithubDeliveryError::NotMissing);
}

#[test]
fn events_keep_their_shape_in_the_store() {
    let json = serde_json::to_value(E::DeliveryUnrecoverable {
        guid: GUID.to_owned(),
        reason: Unrecoverable::NotArrived { attempts: 3 },
        at: t(0),
    })
    .unwrap();
    assert_eq!(
        json["DeliveryUnrecoverable"]["reason"],
        serde_json::json!({"kind": "not_arrived", "attempts": 3})
    );
    let json = serde_json::to_value(requested(1, 0)).unwrap();
    assert_eq!(json["RedeliveryRequested"]["by"], "reconciler");
}
