//! One relay at a time: the advisory lock elects it, the others stand by and take over.

use std::collections::HashSet;

use crate::support::{
    eventually, fast_config, header, TestEnv, INSTANCE, INSTANCE_ID, TARGET, TARGET_ID,
};

#[tokio::test]
async fn of_two_relays_started_at_once_one_holds_the_lock_every_event_is_stored_once_and_the_other_takes_over_when_it_stops(
) {
    let env = TestEnv::start().await;
    let first = env.spawn_relay(fast_config(), env.pool_named("relay-a").await);
    let second = env.spawn_relay(fast_config(), env.pool_named("relay-b").await);

    eventually("one relay holds the lock", || async {
        env.lock_holder().await.is_some()
    })
    .await;
    for sequence in 1..=5 {
        env.commit_events(INSTANCE, INSTANCE_ID, &[sequence]).await;
        env.commit_events(TARGET, TARGET_ID, &[sequence]).await;
    }
    env.wait_until_relayed(10).await;
    let holder = env.lock_holder().await.expect("still held");

    // Stop whichever relay holds the lock: the other one takes over.
    let (stopped, standby, standby_name) = if holder == "relay-a" {
        (first, second, "relay-b")
    } else {
        (second, first, "relay-a")
    };
    stopped.stop().await;
    eventually("the standby relay takes the lock", || async {
        env.lock_holder().await.as_deref() == Some(standby_name)
    })
    .await;
    for sequence in 6..=8 {
        env.commit_events(INSTANCE, INSTANCE_ID, &[sequence]).await;
    }
    env.wait_until_relayed(13).await;

    let messages = env.stream_messages().await;
    assert_eq!(messages.len(), 13, "every event exactly once");
    let ids: HashSet<&str> = messages
        .iter()
        .map(|message| header(message, "Nats-Msg-Id").unwrap())
        .collect();
    assert_eq!(ids.len(), 13, "no message id twice");
    let instance_subject = format!("hooklog.events.{INSTANCE}.{INSTANCE_ID}");
    let instance_sequences: Vec<u64> = env
        .published()
        .await
        .into_iter()
        .filter(|(subject, _)| *subject == instance_subject)
        .map(|(_, sequence)| sequence)
        .collect();
    assert_eq!(instance_sequences, [1, 2, 3, 4, 5, 6, 7, 8]);
    standby.stop().await;
}
