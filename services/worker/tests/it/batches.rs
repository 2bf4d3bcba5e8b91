//! Batches: deliveries that arrived together are decided together and committed in one
//! transaction, in stream order per aggregate; a poison delivery among them is dead-lettered
//! and the rest of its batch commits; a copy of a delivery in the same batch runs nothing.

use serde_json::json;

use crate::support::{push, sha, Harness};

const REPO: &str = "octo/batch";

#[tokio::test]
async fn deliveries_that_arrived_together_commit_together_and_a_poison_one_costs_only_itself() {
    let h = Harness::start_with(0, false).await;
    let target = h.track(REPO, "main").await;
    // Stored before any worker runs, so that they are handed out in batches.
    let mut valid = vec![];
    for i in 0..30u64 {
        let id = format!("b-{i}");
        h.publish(
            "push",
            &id,
            &push(REPO, "refs/heads/main", &sha(i), &sha(i + 1)),
        )
        .await;
        valid.push(id);
        if i == 20 {
            h.publish("push", "poison", &json!({ "ref": 5 })).await;
        }
        if i == 25 {
            // A copy of an earlier delivery, past the duplicate window: a new message.
            h.publish_as(
                "push",
                "b-3",
                "b-3-copy",
                &push(REPO, "refs/heads/main", &sha(3), &sha(4)),
            )
            .await;
        }
    }
    h.spawn_worker();
    h.drained().await;

    for id in &valid {
        let (outcome, detail) = h.outcome(id).await;
        assert_eq!(outcome, "processed", "{id}: {detail}");
    }
    let (outcome, reason) = h.outcome("poison").await;
    assert_eq!(outcome, "dead_letter");
    assert!(
        reason.contains("push payload"),
        "the reason names the problem: {reason}"
    );

    // Per aggregate order: the target's events follow the stream, each delivery once.
    let events = h.events("ConnectorTarget", &target.to_string()).await;
    let senders: Vec<&str> = events[1..]
        .iter()
        .map(|(_, _, meta)| meta["delivery_id"].as_str().unwrap())
        .collect();
    assert_eq!(senders, valid, "{events:?}");

    // Committed together: far fewer transactions than deliveries, and the poison delivery's
    // dead letter in the same transaction as valid ones.
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM events WHERE aggregate_type = 'Delivery'",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert!(
        transactions < 16,
        "31 decisions in {transactions} transactions: not batched"
    );
    let beside_poison: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e, events p \
         WHERE p.event_type = 'DeliveryDeadLettered' AND e.xmin = p.xmin \
           AND e.event_type <> 'DeliveryDeadLettered'",
    )
    .fetch_one(&h.pool)
    .await
    .unwrap();
    assert!(
        beside_poison > 0,
        "the poison delivery's batch committed nothing else"
    );
}
