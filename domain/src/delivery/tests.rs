//! Given/when/then tests of `Delivery`: decided once, whatever the decision.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cqrs_es::test::TestFramework;

use super::*;
use crate::clock::{FixedClock, Timestamp};
use crate::connector_target::TargetServices;

fn at() -> Timestamp {
    Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn framework() -> TestFramework<Delivery> {
    TestFramework::with(TargetServices {
        clock: Arc::new(FixedClock(at())),
    })
}

fn position() -> StreamPosition {
    StreamPosition {
        event: "push".to_owned(),
        stream_sequence: 12,
        attempts: 1,
    }
}

fn decide(decision: Decision) -> DecideDelivery {
    DecideDelivery {
        delivery_id: "d-1".to_owned(),
        position: position(),
        decision,
    }
}

fn ignored() -> DeliveryEvent {
    DeliveryEvent::DeliveryIgnored {
        delivery_id: "d-1".to_owned(),
        position: position(),
        reason: "`star` deliveries are recorded, not acted on".to_owned(),
        at: at(),
    }
}

#[test]
fn a_processed_delivery_records_the_commands_it_sent() {
    let commands = vec![SentCommand {
        aggregate_type: "ConnectorTarget".to_owned(),
        aggregate_id: "t".to_owned(),
        command: "RecordPush".to_owned(),
    }];
    framework()
        .given_no_previous_events()
        .when(decide(Decision::Processed {
            detail: "push to octo/docs@main".to_owned(),
            commands: commands.clone(),
        }))
        .then_expect_events(vec![DeliveryEvent::DeliveryProcessed {
            delivery_id: "d-1".to_owned(),
            position: position(),
            detail: "push to octo/docs@main".to_owned(),
            commands,
            at: at(),
        }]);
}

#[test]
fn ignored_and_dead_lettered_deliveries_record_the_reason() {
    framework()
        .given_no_previous_events()
        .when(decide(Decision::Ignored {
            reason: "`star` deliveries are recorded, not acted on".to_owned(),
        }))
        .then_expect_events(vec![ignored()]);
    framework()
        .given_no_previous_events()
        .when(decide(Decision::DeadLettered {
            reason: "missing field `repository`".to_owned(),
        }))
        .then_expect_events(vec![DeliveryEvent::DeliveryDeadLettered {
            delivery_id: "d-1".to_owned(),
            position: position(),
            reason: "missing field `repository`".to_owned(),
            at: at(),
        }]);
}

#[test]
fn a_delivery_is_decided_once_whatever_the_second_decision() {
    for second in [
        Decision::Ignored {
            reason: "x".to_owned(),
        },
        Decision::DeadLettered {
            reason: "y".to_owned(),
        },
        Decision::Processed {
            detail: "z".to_owned(),
            commands: vec![],
        },
    ] {
        framework()
            .given(vec![ignored()])
            .when(decide(second))
            .then_expect_error(DeliveryError::AlreadyDecided("d-1".to_owned(), "ignored"));
    }
}

#[test]
fn a_decision_stores_its_position_flat_in_the_payload() {
    let json = serde_json::to_value(ignored()).unwrap();
    assert_eq!(json["DeliveryIgnored"]["stream_sequence"], 12);
    assert_eq!(json["DeliveryIgnored"]["event"], "push");
    assert_eq!(json["DeliveryIgnored"]["attempts"], 1);
}

#[test]
fn delivery_ids_that_are_not_subject_tokens_are_keyed_by_their_digest() {
    let guid = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    assert_eq!(DeliveryKey::for_delivery(guid).0, guid);
    let odd = DeliveryKey::for_delivery("a.b*c");
    assert!(
        odd.0.starts_with("sha256-") && odd.0.len() == 7 + 64,
        "{odd}"
    );
    assert_eq!(odd, DeliveryKey::for_delivery("a.b*c"));
    assert_ne!(odd, DeliveryKey::for_delivery("a.b*d"));
}

#[test]
fn a_dead_letter_is_redriven_then_decided_again_and_nothing_else_is_redriven() {
    let dead = DeliveryEvent::DeliveryDeadLettered {
        delivery_id: "d-1".to_owned(),
        position: position(),
        reason: "signature".to_owned(),
        at: at(),
    };
    let redriven = DeliveryEvent::DeliveryRedriven {
        delivery_id: "d-1".to_owned(),
        position: position(),
        by: "operator:admin".to_owned(),
        at: at(),
    };
    framework()
        .given(vec![dead.clone()])
        .when(decide(Decision::Redriven {
            by: "operator:admin".to_owned(),
        }))
        .then_expect_events(vec![redriven.clone()]);
    // Reopened, it takes a new decision, once.
    framework()
        .given(vec![dead.clone(), redriven.clone()])
        .when(decide(Decision::Ignored {
            reason: "`star` deliveries are recorded, not acted on".to_owned(),
        }))
        .then_expect_events(vec![ignored()]);
    framework()
        .given(vec![dead, redriven, ignored()])
        .when(decide(Decision::Redriven {
            by: "operator:admin".to_owned(),
        }))
        .then_expect_error(DeliveryError::NotDeadLettered("d-1".to_owned(), "ignored"));
    framework()
        .given_no_previous_events()
        .when(decide(Decision::Redriven {
            by: "operator:admin".to_owned(),
        }))
        .then_expect_error(DeliveryError::NotDeadLettered(
            "d-1".to_owned(),
            "not decided",
        ));
}
