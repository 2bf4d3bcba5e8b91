//! Outages: nothing committed is lost while NATS is down, and a relay whose Postgres session
//! dies takes the lock again; the relay outlives both.

use std::time::Duration;

use std::str::FromStr;

use hooklog_infra::testing::TcpOutage;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::support::{eventually, fast_config, TestEnv, INSTANCE, INSTANCE_ID, TARGET, TARGET_ID};

#[tokio::test]
async fn events_committed_while_nats_is_down_are_published_once_when_it_is_back() {
    let mut env = TestEnv::start().await;
    let relay = env.spawn_relay(fast_config(), env.pool.clone());
    env.commit_events(INSTANCE, INSTANCE_ID, &[1]).await;
    env.wait_until_relayed(1).await;

    env.nats.stop().await;
    env.commit_events(INSTANCE, INSTANCE_ID, &[2, 3]).await;
    env.commit_events(TARGET, TARGET_ID, &[1]).await;
    env.commit_events(INSTANCE, INSTANCE_ID, &[4]).await;
    // Let the relay fail at publishing for a while (several publish timeouts).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.outbox_len().await,
        4,
        "no row is deleted without its PubAck"
    );
    assert!(!relay.task.is_finished(), "the relay outlives the outage");

    env.nats.restart().await.expect("nats-server restarts");
    env.wait_until_relayed(5).await;

    let instance_subject = format!("hooklog.events.{INSTANCE}.{INSTANCE_ID}");
    let target_subject = format!("hooklog.events.{TARGET}.{TARGET_ID}");
    let published = env.published().await;
    assert_eq!(published.len(), 5, "each event once: {published:?}");
    let instance: Vec<u64> = published
        .iter()
        .filter(|(subject, _)| *subject == instance_subject)
        .map(|(_, sequence)| *sequence)
        .collect();
    assert_eq!(instance, [1, 2, 3, 4], "in sequence order");
    assert!(published.contains(&(target_subject, 1)));
    relay.stop().await;
}

#[tokio::test]
async fn a_relay_whose_postgres_sessions_are_terminated_takes_the_lock_again_and_carries_on() {
    let env = TestEnv::start().await;
    let relay = env.spawn_relay(fast_config(), env.pool_named("relay-killed").await);
    env.commit_events(INSTANCE, INSTANCE_ID, &[1]).await;
    env.wait_until_relayed(1).await;
    assert_eq!(env.lock_holder().await.as_deref(), Some("relay-killed"));

    terminate_sessions(&env, "relay-killed").await;
    env.commit_events(INSTANCE, INSTANCE_ID, &[2, 3]).await;

    env.wait_until_relayed(3).await;
    eventually("the relay holds the lock again", || async {
        env.lock_holder().await.as_deref() == Some("relay-killed")
    })
    .await;
    let instance: Vec<u64> = env
        .published()
        .await
        .into_iter()
        .map(|(_, sequence)| sequence)
        .collect();
    assert_eq!(instance, [1, 2, 3]);
    relay.stop().await;
}

#[tokio::test]
async fn a_relay_waiting_out_a_nats_outage_notices_a_lost_postgres_session_and_takes_the_lock_again(
) {
    let mut env = TestEnv::start().await;
    let relay = env.spawn_relay(fast_config(), env.pool_named("relay-stuck").await);
    eventually("the relay holds the lock", || async {
        env.lock_holder().await.is_some()
    })
    .await;
    env.nats.stop().await;
    env.commit_events(INSTANCE, INSTANCE_ID, &[1, 2]).await;
    // Let the relay read the rows and get stuck retrying the first publish.
    tokio::time::sleep(Duration::from_secs(1)).await;

    terminate_sessions(&env, "relay-stuck").await;
    // Still without NATS, the relay sees its session go and holds the lock again on a new one.
    eventually("the relay holds the lock on a new session", || async {
        env.lock_holder().await.as_deref() == Some("relay-stuck")
    })
    .await;

    env.nats.restart().await.expect("nats-server restarts");
    env.wait_until_relayed(2).await;
    let sequences: Vec<u64> = env
        .published()
        .await
        .into_iter()
        .map(|(_, sequence)| sequence)
        .collect();
    assert_eq!(sequences, [1, 2]);
    relay.stop().await;
}

async fn terminate_sessions(env: &TestEnv, application_name: &str) {
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(application_name)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(!terminated.is_empty(), "{application_name} has sessions");
}

#[tokio::test]
async fn events_committed_while_the_relay_cannot_reach_postgres_are_published_once_it_can_again() {
    let env = TestEnv::start().await;
    let direct = PgConnectOptions::from_str(&env.database_url).unwrap();
    let upstream = format!("{}:{}", direct.get_host(), direct.get_port());
    let mut outage = TcpOutage::start(&upstream).await;
    let through_proxy = direct
        .clone()
        .host("127.0.0.1")
        .port(outage.addr().port())
        .application_name("relay-cut-off");
    let pool = PgPoolOptions::new().connect_lazy_with(through_proxy);
    let relay = env.spawn_relay(fast_config(), pool);
    env.commit_events(TARGET, TARGET_ID, &[1]).await;
    env.wait_until_relayed(1).await;

    outage.cut();
    env.commit_events(TARGET, TARGET_ID, &[2, 3]).await;
    // Let the relay fail to reach Postgres for a while.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!relay.task.is_finished(), "the relay outlives the outage");
    assert_eq!(env.outbox_len().await, 2);

    outage.restore().await;
    env.wait_until_relayed(3).await;
    let sequences: Vec<u64> = env
        .published()
        .await
        .into_iter()
        .map(|(_, sequence)| sequence)
        .collect();
    assert_eq!(sequences, [1, 2, 3]);
    relay.stop().await;
}
