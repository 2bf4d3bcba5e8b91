//! The trigger on `events`: the outbox holds exactly the committed events.

use sqlx::postgres::PgListener;
use sqlx::Row;

use crate::support::{insert_event, metadata, payload, TestEnv, INSTANCE, INSTANCE_ID, PATIENCE};

#[tokio::test]
async fn an_inserted_event_is_in_the_outbox_within_its_transaction_and_a_rollback_leaves_no_row() {
    let env = TestEnv::start().await;

    let mut tx = env.pool.begin().await.unwrap();
    insert_event(&mut tx, INSTANCE, INSTANCE_ID, 1).await;
    insert_event(&mut tx, INSTANCE, INSTANCE_ID, 2).await;
    let inside: i64 = sqlx::query_scalar("SELECT count(*) FROM event_outbox")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        inside, 2,
        "the trigger runs inside the inserting transaction"
    );
    assert_eq!(env.outbox_len().await, 0, "nothing visible before commit");
    tx.rollback().await.unwrap();
    assert_eq!(
        env.outbox_len().await,
        0,
        "a rolled-back insert leaves no row"
    );

    env.commit_events(INSTANCE, INSTANCE_ID, &[1]).await;
    let row = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, \
                payload::text AS payload, metadata::text AS metadata, committed_at IS NOT NULL AS dated \
         FROM event_outbox",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("aggregate_type"), INSTANCE);
    assert_eq!(row.get::<String, _>("aggregate_id"), INSTANCE_ID);
    assert_eq!(row.get::<i64, _>("sequence"), 1);
    assert_eq!(row.get::<String, _>("event_type"), "Happened1");
    assert_eq!(row.get::<String, _>("event_version"), "1.0");
    assert_eq!(
        row.get::<String, _>("payload"),
        payload(INSTANCE_ID, 1),
        "the JSON text is copied byte for byte"
    );
    assert_eq!(row.get::<String, _>("metadata"), metadata(1));
    assert!(row.get::<bool, _>("dated"));
}

#[tokio::test]
async fn waking_the_outbox_notifies_the_relay_channel_but_the_trigger_does_not() {
    let env = TestEnv::start().await;
    let mut listener = PgListener::connect_with(&env.pool).await.unwrap();
    listener
        .listen(hooklog_relay::NOTIFY_CHANNEL)
        .await
        .unwrap();

    // The trigger alone sends nothing: a NOTIFY inside the events transaction would serialize
    // every commit on the notification lock.
    let mut tx = env.pool.begin().await.unwrap();
    crate::support::insert_event(&mut tx, INSTANCE, INSTANCE_ID, 1).await;
    tx.commit().await.unwrap();
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), listener.recv())
            .await
            .is_err()
    );

    env.commit_events(INSTANCE, INSTANCE_ID, &[2, 3]).await;
    let notification = tokio::time::timeout(PATIENCE, listener.recv())
        .await
        .expect("a notification after the commit")
        .unwrap();
    assert_eq!(notification.channel(), "hooklog_outbox");
    assert_eq!(notification.payload(), "");
}
