//! What the relay publishes: the stream contract, per-aggregate order, and rows deleted only
//! once acknowledged.

use std::time::Duration;

use hooklog_infra::streams::event_headers as h;
use hooklog_relay::RelayConfig;

use crate::support::{
    eventually, fast_config, header, insert_event, payload, TestEnv, INSTANCE, INSTANCE_ID, TARGET,
    TARGET_ID,
};

#[tokio::test]
async fn events_are_published_to_their_aggregate_subject_in_sequence_order_with_the_contract_headers_and_then_deleted(
) {
    let env = TestEnv::start().await;
    env.commit_events(INSTANCE, INSTANCE_ID, &[1, 2, 3]).await;
    env.commit_events(TARGET, TARGET_ID, &[1, 2]).await;
    env.commit_events(INSTANCE, INSTANCE_ID, &[4]).await;
    // Small batches, so the outbox is read several times.
    let config = RelayConfig {
        batch_size: 2,
        ..fast_config()
    };
    let relay = env.spawn_relay(config, env.pool.clone());
    env.wait_until_relayed(6).await;

    let messages = env.stream_messages().await;
    assert_eq!(messages.len(), 6, "each event once");
    let instance_subject = format!("hooklog.events.{INSTANCE}.{INSTANCE_ID}");
    let target_subject = format!("hooklog.events.{TARGET}.{TARGET_ID}");
    let mut instance_sequences = Vec::new();
    let mut target_sequences = Vec::new();
    for message in &messages {
        let (aggregate_type, aggregate_id) = if message.subject.as_str() == instance_subject {
            (INSTANCE, INSTANCE_ID)
        } else {
            assert_eq!(message.subject.as_str(), target_subject);
            (TARGET, TARGET_ID)
        };
        let sequence: i64 = header(message, h::SEQUENCE).unwrap().parse().unwrap();
        assert_eq!(
            header(message, "Nats-Msg-Id"),
            Some(format!("{aggregate_type}:{aggregate_id}:{sequence}").as_str())
        );
        assert_eq!(header(message, h::AGGREGATE_TYPE), Some(aggregate_type));
        assert_eq!(header(message, h::AGGREGATE_ID), Some(aggregate_id));
        assert_eq!(
            header(message, h::EVENT_TYPE),
            Some(format!("Happened{sequence}").as_str())
        );
        assert_eq!(header(message, h::EVENT_VERSION), Some("1.0"));
        assert_eq!(
            header(message, "Hooklog-Meta-delivery_id"),
            Some(format!("delivery-{sequence}").as_str())
        );
        assert_eq!(header(message, "Hooklog-Meta-actor"), Some("github"));
        assert_eq!(
            &message.payload[..],
            payload(aggregate_id, sequence).as_bytes(),
            "the payload is the stored JSON, byte for byte"
        );
        if aggregate_type == INSTANCE {
            instance_sequences.push(sequence);
        } else {
            target_sequences.push(sequence);
        }
    }
    assert_eq!(instance_sequences, [1, 2, 3, 4]);
    assert_eq!(target_sequences, [1, 2]);
    relay.stop().await;
}

#[tokio::test]
async fn interleaved_events_of_many_aggregates_published_together_keep_each_aggregates_order() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(fast_config(), env.pool.clone());
    // Committed after the relay took the lock and read the end of the outbox, so no first
    // pass: the rows go in waves of one event per aggregate.
    eventually("the relay holds the lock", || async {
        env.lock_holder().await.is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let aggregates: Vec<String> = (0..40).map(|i| format!("aggregate-{i:02}")).collect();
    let mut tx = env.pool.begin().await.unwrap();
    for sequence in 1..=5 {
        for aggregate in &aggregates {
            insert_event(&mut tx, TARGET, aggregate, sequence).await;
        }
    }
    tx.commit().await.unwrap();
    hooklog_infra::postgres::wake_outbox(&env.pool)
        .await
        .unwrap();
    env.wait_until_relayed(200).await;

    let published = env.published().await;
    assert_eq!(published.len(), 200, "each event once");
    for aggregate in &aggregates {
        let subject = format!("hooklog.events.{TARGET}.{aggregate}");
        let sequences: Vec<u64> = published
            .iter()
            .filter(|(s, _)| *s == subject)
            .map(|(_, sequence)| *sequence)
            .collect();
        assert_eq!(sequences, [1, 2, 3, 4, 5], "{subject} in sequence order");
    }
    relay.stop().await;
}

#[tokio::test]
async fn a_commit_wakes_an_idle_relay_without_waiting_for_the_poll() {
    let env = TestEnv::start().await;
    // A poll far longer than the test's patience: only the notification can wake the relay.
    let config = RelayConfig {
        poll_interval: Duration::from_secs(3600),
        ..fast_config()
    };
    let relay = env.spawn_relay(config, env.pool.clone());
    eventually("the relay holds the lock", || async {
        env.lock_holder().await.is_some()
    })
    .await;
    // The relay listens before its first read; give that first read a moment to finish, so the
    // commits below can only be seen through a notification.
    tokio::time::sleep(Duration::from_millis(300)).await;

    env.commit_events(TARGET, TARGET_ID, &[1]).await;
    env.wait_until_relayed(1).await;
    env.commit_events(TARGET, TARGET_ID, &[2, 3]).await;
    env.wait_until_relayed(3).await;

    let target_subject = format!("hooklog.events.{TARGET}.{TARGET_ID}");
    assert_eq!(
        env.published().await,
        [1, 2, 3].map(|sequence| (target_subject.clone(), sequence))
    );
    relay.stop().await;
}
