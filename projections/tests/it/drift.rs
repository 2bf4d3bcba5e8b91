//! Rebuild and drift: a projector killed mid-stream and restarted ends with the tables of an
//! uninterrupted replay; `verify` finds a tampered table; `replace` repairs it.

use hooklog_projections::rebuild;
use hooklog_projections::testing::EventFeed;
use hooklog_projections::{Projection, ProjectorConfig};

use crate::support::Env;

#[tokio::test]
async fn a_projector_killed_mid_stream_and_restarted_ends_with_the_tables_of_an_uninterrupted_run()
{
    let env = Env::start().await;
    let mut feed = EventFeed::new(env.js.clone());
    feed.lifecycle(21, 20, 12).await;
    let last = env.last_sequence(Projection::Connector).await;
    assert!(last > 800, "{last} events");

    // Small batches, so the kill lands between (or inside) many transactions.
    let first = env.projector(7);
    while env.position(Projection::Connector).await < last / 3 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    first.kill().await;
    let killed_at = env.position(Projection::Connector).await;
    assert!(killed_at < last, "killed at {killed_at} of {last}");

    let second = env.projector(7);
    env.caught_up(Projection::Connector).await;
    second.stop().await;

    let report = rebuild::verify(
        &env.pool,
        &env.js,
        Projection::Connector,
        &ProjectorConfig::default(),
    )
    .await
    .expect("rebuild");
    assert_eq!(report.position, last);
    for table in &report.tables {
        assert!(table.equal, "{} differs: {:?}", table.table, table);
        assert!(table.live.rows > 0, "{} is empty", table.table);
    }
    assert_eq!(report.tables.len(), 10);
}

#[tokio::test]
async fn verify_finds_a_tampered_table_and_replace_rebuilds_it_from_the_stream() {
    let env = Env::start().await;
    let mut feed = EventFeed::new(env.js.clone());
    feed.lifecycle(22, 5, 7).await;
    let projector = env.projector(1000);
    env.caught_up(Projection::Connector).await;
    projector.stop().await;

    let config = ProjectorConfig::default();
    let clean = rebuild::verify(&env.pool, &env.js, Projection::Connector, &config)
        .await
        .unwrap();
    assert!(clean.equal(), "{clean:?}");

    sqlx::query("UPDATE sync_runs SET status = 'completed', error = NULL WHERE status = 'failed'")
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM delivery_effects WHERE position % 2 = 0")
        .execute(&env.pool)
        .await
        .unwrap();
    let tampered = rebuild::verify(&env.pool, &env.js, Projection::Connector, &config)
        .await
        .unwrap();
    let differing: Vec<&str> = tampered
        .tables
        .iter()
        .filter(|t| !t.equal)
        .map(|t| t.table.as_str())
        .collect();
    assert_eq!(differing, ["sync_runs", "delivery_effects"]);

    let replaced = rebuild::replace(&env.pool, &env.js, Projection::Connector, &config)
        .await
        .unwrap();
    assert_eq!(
        replaced.position,
        env.last_sequence(Projection::Connector).await
    );
    let repaired = rebuild::verify(&env.pool, &env.js, Projection::Connector, &config)
        .await
        .unwrap();
    assert!(repaired.equal(), "{repaired:?}");
    // Sync 7 of each of the 5 targets failed.
    assert_eq!(
        env.count("SELECT count(*) FROM sync_runs WHERE status = 'failed'")
            .await,
        5
    );
    // 35 requests, 10 queued pushes (syncs 3 and 6) and the installation's delivery.
    assert_eq!(env.count("SELECT count(*) FROM delivery_effects").await, 46);
}
