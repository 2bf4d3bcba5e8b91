//! Rebuild benchmark: publishes a connector history of at least `EVENTS` events (default
//! 200,000) to a fresh `HOOKLOG_EVENTS` on a `nats-server` of its own, then replays it from
//! sequence 1 into the shadow schema and prints the rate.
//!
//!     cargo run --release -p hooklog-projections --features testing --example rebuild_bench
//!
//! `EVENTS`, `TARGETS` (default 1000) and `TEST_POSTGRES_URL` change the set-up.

use std::time::{Duration, Instant};

use hooklog_infra::nats::{self, EmbeddedNats};
use hooklog_infra::testing::{fresh_database_url, nats_server_bin};
use hooklog_infra::{postgres, streams};
use hooklog_projections::testing::EventFeed;
use hooklog_projections::{rebuild, Projection, ProjectorConfig};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let events = setting("EVENTS", 200_000);
    let targets = setting("TARGETS", 1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = EmbeddedNats::start(&nats_server_bin(), dir.path())
        .await
        .expect("nats-server starts");
    let js =
        async_nats::jetstream::new(nats::connect(&server.url(), "rebuild-bench").await.unwrap());
    streams::ensure_events_stream(&js, Duration::from_secs(120))
        .await
        .unwrap();
    let (url, name) = fresh_database_url();
    let pool = postgres::connect_and_migrate(&url).await.unwrap();

    // Per target and sync: requested, started, finished, and a queued push every third sync.
    let per_sync = 3.34;
    let syncs =
        ((events as f64 - 2.0 * targets as f64) / (targets as f64 * per_sync)).ceil() as u64;
    let started = Instant::now();
    let mut feed = EventFeed::new(js.clone());
    feed.lifecycle(1, targets, syncs).await;
    let mut stream = js.get_stream(streams::EVENTS_STREAM).await.unwrap();
    let published = stream.info().await.unwrap().state.last_sequence;
    println!(
        "published {published} events ({targets} targets x {syncs} syncs) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let config = ProjectorConfig::default();
    let report = rebuild::replace(&pool, &js, Projection::Connector, &config)
        .await
        .expect("rebuild");
    println!(
        "rebuild: {} events in {:.2} s = {:.0} events/s (batch {})",
        report.messages, report.seconds, report.messages_per_second, config.batch_size
    );
    let verified = rebuild::verify(&pool, &js, Projection::Connector, &config)
        .await
        .expect("verify");
    println!(
        "verify (a second replay, compared with the first): {:.0} events/s, tables equal: {}",
        verified.messages_per_second,
        verified.equal()
    );
    for table in &verified.tables {
        println!(
            "  {:<17} {:>8} rows  {}",
            table.table, table.live.rows, table.live.digest
        );
    }
    pool.close().await;
    println!(
        "database {name} left for inspection; drop it with: dropdb -h 127.0.0.1 -U postgres {name}"
    );
}
