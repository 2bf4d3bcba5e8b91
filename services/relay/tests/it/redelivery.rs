//! Rows left in the outbox after their events were published (a relay that died between the
//! PubAck and the delete) are not published again, even after the duplicate window.

use std::time::Duration;

use async_nats::header::{HeaderMap, NATS_MESSAGE_ID};

use crate::support::{eventually, fast_config, TestEnv, INSTANCE, INSTANCE_ID, TARGET, TARGET_ID};

const WINDOW: Duration = Duration::from_millis(200);

#[tokio::test]
async fn rows_already_published_by_an_earlier_relay_are_deleted_without_publishing_them_again() {
    let env = TestEnv::start_with_window(WINDOW).await;
    env.commit_events(INSTANCE, INSTANCE_ID, &[1, 2]).await;
    env.commit_events(TARGET, TARGET_ID, &[1]).await;
    let relay = env.spawn_relay(fast_config(), env.pool.clone());
    env.wait_until_relayed(3).await;
    relay.stop().await;

    // As if that relay had died before deleting its rows: they are back, in their order, and
    // followed by an event that was never published.
    sqlx::query(
        "INSERT INTO event_outbox (aggregate_type, aggregate_id, sequence, event_type, \
                                   event_version, payload, metadata) \
         SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata \
         FROM events ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    env.commit_events(INSTANCE, INSTANCE_ID, &[3]).await;
    assert_eq!(env.outbox_len().await, 4);
    wait_out_the_duplicate_window(&env).await;

    let relay = env.spawn_relay(fast_config(), env.pool.clone());
    eventually("the outbox is emptied", || async {
        env.outbox_len().await == 0
    })
    .await;
    let instance_subject = format!("hooklog.events.{INSTANCE}.{INSTANCE_ID}");
    let target_subject = format!("hooklog.events.{TARGET}.{TARGET_ID}");
    let mut events: Vec<(String, u64)> = env
        .published()
        .await
        .into_iter()
        .filter(|(subject, _)| *subject == instance_subject || *subject == target_subject)
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            (instance_subject.clone(), 1),
            (instance_subject.clone(), 2),
            (instance_subject, 3),
            (target_subject, 1),
        ],
        "each event once, the new one included"
    );
    relay.stop().await;
}

/// Waits until JetStream stores a message id it has seen before, which shows that the ids of
/// the events published earlier are no longer de-duplicated either. The probe messages go to a
/// subject of their own.
async fn wait_out_the_duplicate_window(env: &TestEnv) {
    let mut headers = HeaderMap::new();
    headers.insert(NATS_MESSAGE_ID, "window-probe");
    let publish_probe = || async {
        env.js
            .publish_with_headers(
                "hooklog.events.Probe.window",
                headers.clone(),
                "probe".into(),
            )
            .await
            .unwrap()
            .await
            .unwrap()
    };
    publish_probe().await;
    eventually("the duplicate window passes", || async {
        tokio::time::sleep(WINDOW / 4).await;
        !publish_probe().await.duplicate
    })
    .await;
}
