//! The `HOOKLOG_EVENTS` stream contract as created by `ensure_events_stream`.

use std::time::Duration;

use async_nats::jetstream::stream::{RetentionPolicy, StorageType};
use hooklog_infra::streams::{self, EVENTS_STREAM};

use crate::support::TestEnv;

#[tokio::test]
async fn the_events_stream_keeps_everything_and_refuses_deletes_and_purges() {
    let env = TestEnv::start().await;
    // Ensuring again, with another window, updates the stream in place.
    streams::ensure_events_stream(&env.js, Duration::from_secs(300))
        .await
        .expect("idempotent");
    let mut stream = env.js.get_stream(EVENTS_STREAM).await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(config.subjects, ["hooklog.events.>"]);
    assert_eq!(config.storage, StorageType::File);
    assert_eq!(config.retention, RetentionPolicy::Limits);
    assert_eq!(config.max_age, Duration::ZERO);
    assert_eq!(config.duplicate_window, Duration::from_secs(300));
    assert!(config.deny_delete && config.deny_purge && config.allow_direct);

    env.js
        .publish(
            "hooklog.events.ConnectorInstance.github-installation-1",
            "{}".into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(stream.delete_message(1).await.is_err(), "deny_delete holds");
    assert!(stream.purge().await.is_err(), "deny_purge holds");
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
}
