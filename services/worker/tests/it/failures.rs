//! What goes wrong: poison payloads become dead letters; PostgreSQL outages are waited out with
//! nothing lost; two workers share one consumer without handling a delivery twice.

use std::time::Duration;

use hooklog_domain::ids::TargetId;

use crate::support::{push, sha, Harness};

const REPO: &str = "octo/docs";

#[tokio::test]
async fn a_payload_without_the_fields_its_event_needs_is_a_dead_letter_and_is_not_redelivered() {
    let h = Harness::start().await;
    let mut body = push(REPO, "refs/heads/main", &sha(0xa), &sha(1));
    body.as_object_mut().unwrap().remove("repository");
    let seq = h.publish("push", "poison", &body).await;
    h.publish(
        "push",
        "bad-sha",
        &push(REPO, "refs/heads/main", "not-a-sha", &sha(1)),
    )
    .await;
    let (outcome, detail) = h.outcome("poison").await;
    assert_eq!(outcome, "dead_letter");
    assert!(detail.contains("missing field `repository`"), "{detail}");
    let (seq_recorded, reason): (i64, String) = sqlx::query_as(
        "SELECT stream_sequence, reason FROM dead_letters WHERE delivery_id = 'poison'",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(seq_recorded as u64, seq);
    assert_eq!(reason, detail);
    let (outcome, detail) = h.outcome("bad-sha").await;
    assert_eq!(outcome, "dead_letter");
    assert!(detail.contains("not-a-sha"), "{detail}");
    // Terminated: nothing pending, nothing redelivered, and the raw delivery is still stored.
    h.drained().await;
    let stored =
        h.js.get_stream(hooklog_infra::streams::DELIVERIES_STREAM)
            .await
            .unwrap();
    assert!(stored.get_raw_message(seq).await.is_ok());
}

#[tokio::test]
async fn deliveries_wait_out_a_postgres_outage_and_none_is_lost() {
    let mut h = Harness::start_with(1, true).await;
    let targets: Vec<TargetId> = {
        let mut ids = vec![];
        for branch in ["b0", "b1", "b2", "b3", "b4"] {
            ids.push(h.track(REPO, branch).await);
        }
        ids
    };
    h.outage.as_mut().unwrap().cut();
    for (i, branch) in ["b0", "b1", "b2", "b3", "b4"].iter().enumerate() {
        for n in 0..4u64 {
            let body = push(
                REPO,
                &format!("refs/heads/{branch}"),
                &sha(0xa),
                &sha(100 + n),
            );
            h.publish("push", &format!("outage-{i}-{n}"), &body).await;
        }
    }
    // The worker is failing and backing off meanwhile: nothing is decided.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let decided: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_outcomes")
        .fetch_one(&h.pool)
        .await
        .unwrap();
    assert_eq!(decided, 0);
    h.outage.as_mut().unwrap().restore().await;
    for i in 0..5 {
        for n in 0..4 {
            assert_eq!(h.outcome(&format!("outage-{i}-{n}")).await.0, "processed");
        }
    }
    // Per target: the first head processed is requested, the three others queue behind it.
    for target in targets {
        let mut events = h.target_events(target).await;
        events.sort();
        assert_eq!(
            events,
            [
                "SyncQueued",
                "SyncQueued",
                "SyncQueued",
                "SyncRequested",
                "TargetTracked"
            ]
        );
    }
}

#[tokio::test]
async fn two_workers_share_the_work_and_each_delivery_is_handed_out_once() {
    let h = Harness::start_with(2, false).await;
    // One push per target: no two deliveries touch the same aggregate, so nothing conflicts
    // and any second attempt could only be a double hand-out.
    let mut targets = vec![];
    for t in 0..100 {
        targets.push(h.track(REPO, &format!("branch-{t}")).await);
    }
    for t in 0..100u64 {
        let body = push(
            REPO,
            &format!("refs/heads/branch-{t}"),
            &sha(0xa),
            &sha(1000 + t),
        );
        h.publish("push", &format!("shared-{t}"), &body).await;
    }
    h.drained().await;
    let (rows, max_attempts): (i64, i32) = sqlx::query_as(
        "SELECT count(*), max(attempts) FROM delivery_outcomes WHERE outcome = 'processed'",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert_eq!(rows, 100);
    assert_eq!(max_attempts, 1, "a delivery was handed out more than once");
    for target in targets {
        let events = h.target_events(target).await;
        assert_eq!(
            events.iter().filter(|e| *e == "SyncRequested").count(),
            1,
            "{events:?}"
        );
    }
}
