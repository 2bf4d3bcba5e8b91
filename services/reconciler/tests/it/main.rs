//! The GitHub reconciler against real NATS, PostgreSQL and ingress, and the fake GitHub's
//! delivery log: what GitHub attempted and the stream lacks is redelivered once, what the stream
//! holds is never asked for, and the window, the bound and rate limits hold. Every test ends by
//! checking that the fake verified every App JWT it was sent with the App's public key.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use hooklog_syncer::testing::Fault;
use support::World;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Every App JWT the reconciler sent verified with the App's public key.
fn assert_jwts_verified(world: &World) {
    assert_eq!(
        world.github.rejected_jwts(),
        0,
        "App JWTs the fake rejected"
    );
    assert!(
        !world.github.verified_jwts().is_empty(),
        "no App JWT was sent"
    );
}

#[tokio::test]
async fn failed_and_lost_deliveries_are_redelivered_once_and_stored_ones_never_asked() {
    let world = World::start().await;
    // Three deliveries GitHub sent and hooklog stored.
    let mut stored = vec![];
    for n in 0..3 {
        let sent = world.github.deliver("push", &World::push_body(n)).await;
        assert_eq!(sent.status_code, 202, "the ingress stores delivery {n}");
        stored.push(sent.guid);
    }
    // One sent while hooklog was down (nothing listened), one GitHub counts as answered 200
    // that hooklog lost (a power cut before fsync), one that timed out as a 503.
    world.github.set_webhook_url("http://127.0.0.1:9/down");
    let down = world.github.deliver("push", &World::push_body(10)).await;
    assert_eq!(down.status_code, 0);
    world.github.set_webhook_url(&world.webhook_url);
    let now = SystemTime::now();
    let lost = world
        .github
        .record_lost("push", &World::push_body(11), now, 200);
    let failed = world
        .github
        .record_lost("installation", &World::push_body(12), now, 503);
    let missing: BTreeSet<String> = [&down.guid, &lost.guid, &failed.guid]
        .into_iter()
        .cloned()
        .collect();

    let first = world.pass().await;
    assert_eq!((first.found, first.asked), (3, 3), "{first:?}");
    let asked: Vec<String> = world.github.redelivered_guids();
    assert_eq!(asked.iter().cloned().collect::<BTreeSet<_>>(), missing);
    assert_eq!(asked.len(), 3, "each missing GUID asked once: {asked:?}");
    for guid in &stored {
        assert_eq!(world.events(guid, "DeliveryMissing").await, 0, "{guid}");
    }

    // The redeliveries reached the ingress; the next pass records them arrived, asks nothing.
    for guid in &missing {
        assert_eq!(world.stored(guid).await, 1, "{guid} is on the stream");
    }
    let second = world.pass().await;
    assert_eq!((second.asked, second.arrived), (0, 3), "{second:?}");
    let third = world.pass().await;
    assert_eq!(
        (third.found, third.asked, third.arrived),
        (0, 0, 0),
        "{third:?}"
    );
    assert_eq!(world.github.redelivery_requests().len(), 3);
    for guid in &missing {
        assert_eq!(world.events(guid, "RedeliveryRequested").await, 1, "{guid}");
        assert_eq!(world.events(guid, "RedeliveryArrived").await, 1, "{guid}");
        assert_eq!(world.read_status(guid, "arrived").await, "arrived");
    }
    assert_jwts_verified(&world);
}

#[tokio::test]
async fn two_replicas_ask_once_for_each_missing_delivery() {
    let world = World::start().await;
    let now = SystemTime::now();
    let missing: Vec<String> = (0..20)
        .map(|n| {
            world
                .github
                .record_lost("push", &World::push_body(n), now, 0)
                .guid
        })
        .collect();
    // Two passes at once (as two replicas whose leases overlapped): the aggregate lets one ask.
    let config = world.config();
    let (a, b) = tokio::join!(world.pass_with(&config), world.pass_with(&config));
    assert_eq!(a.asked + b.asked, 20, "{a:?} {b:?}");
    // And two running reconcilers, each with its lease loop, for a few intervals.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let runs = [
        tokio::spawn(hooklog_reconciler::run(
            world.reconciler(config.clone()),
            shutdown.clone(),
        )),
        tokio::spawn(hooklog_reconciler::run(
            world.reconciler(config.clone()),
            shutdown.clone(),
        )),
    ];
    let more: Vec<String> = (20..30)
        .map(|n| {
            world
                .github
                .record_lost("push", &World::push_body(n), SystemTime::now(), 0)
                .guid
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.github.redelivery_requests().len() < 30 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.cancel();
    for run in runs {
        run.await.unwrap();
    }
    world.github.redeliveries_settled().await;
    let asked = world.github.redelivered_guids();
    let unique: BTreeSet<&String> = asked.iter().collect();
    assert_eq!(asked.len(), 30, "asked: {asked:?}");
    assert_eq!(unique.len(), 30);
    for guid in missing.iter().chain(&more) {
        assert_eq!(world.events(guid, "RedeliveryRequested").await, 1, "{guid}");
    }
    assert_jwts_verified(&world);
}

#[tokio::test]
async fn the_three_day_window_holds_paging_stops_there_and_older_ones_are_reported_not_asked() {
    let world = World::start().await;
    let now = SystemTime::now();
    // 150 attempts from four days ago and more, one from two days ago, one from now.
    let mut old = vec![];
    for n in 0..150 {
        let at = now - 4 * DAY - Duration::from_secs(n);
        old.push(
            world
                .github
                .record_lost("push", &World::push_body(n), at, 0)
                .guid,
        );
    }
    let recent = world
        .github
        .record_lost("push", &World::push_body(500), now - 2 * DAY, 0)
        .guid;
    let fresh = world
        .github
        .record_lost("push", &World::push_body(501), now, 0)
        .guid;
    // The log is newest first: `fresh`, `recent`, then the old ones (ids were given in order,
    // so the old ones come last in the log).
    let report = world.pass().await;
    assert_eq!(
        world.github.delivery_pages(),
        1,
        "the first page already reaches past the window: no second page"
    );
    let asked: BTreeSet<String> = world.github.redelivered_guids().into_iter().collect();
    assert_eq!(asked, [recent.clone(), fresh.clone()].into_iter().collect());
    // The old ones seen on that page are reported past the window; none is asked.
    let reported = report.unrecoverable;
    assert!(reported >= 1, "{report:?}");
    let mut past_window = 0;
    for guid in &old {
        assert_eq!(world.events(guid, "RedeliveryRequested").await, 0, "{guid}");
        past_window += world.events(guid, "DeliveryUnrecoverable").await;
    }
    assert_eq!(past_window as usize, reported);
    // The read model says why, once the projector has them all.
    let deadline = Instant::now() + Duration::from_secs(15);
    let past_window_rows = loop {
        let rows: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM github_deliveries WHERE guid = ANY($1) \
             AND status = 'unrecoverable' AND unrecoverable = 'past_window'",
        )
        .bind(&old)
        .fetch_one(&world.backends.pool)
        .await
        .unwrap();
        if rows as usize == reported || Instant::now() > deadline {
            break rows as usize;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(past_window_rows, reported, "rows reported past the window");

    // The next pass starts from its checkpoint: one page, nothing past the window judged again.
    let again = world.pass().await;
    assert_eq!((again.found, again.unrecoverable), (0, 0), "{again:?}");
    assert_eq!(world.github.delivery_pages(), 2);
    assert_jwts_verified(&world);
}

#[tokio::test]
async fn a_redelivery_that_never_arrives_is_asked_again_a_bounded_number_of_times() {
    let world = World::start().await;
    // GitHub accepts the redeliveries, but they never reach hooklog.
    world.github.set_webhook_url("http://127.0.0.1:9/down");
    let guid = world
        .github
        .record_lost("push", &World::push_body(1), SystemTime::now(), 0)
        .guid;
    let mut config = world.config();
    config.policy.arrival_timeout = Duration::from_millis(300);
    config.policy.max_attempts = 2;
    assert_eq!(world.pass_with(&config).await.asked, 1);
    // Within the arrival timeout nothing is asked.
    assert_eq!(world.pass_with(&config).await.asked, 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(world.pass_with(&config).await.asked, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let last = world.pass_with(&config).await;
    assert_eq!((last.asked, last.unrecoverable), (0, 1), "{last:?}");
    assert_eq!(
        world.github.redelivered_guids(),
        vec![guid.clone(), guid.clone()]
    );
    assert_eq!(
        world.read_status(&guid, "unrecoverable").await,
        "unrecoverable"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(world.pass_with(&config).await.asked, 0);
    assert_eq!(world.github.redelivery_requests().len(), 2);
    assert_jwts_verified(&world);
}

#[tokio::test]
async fn rate_limits_are_waited_out_and_a_failed_request_is_not_repeated_at_once() {
    let world = World::start().await;
    let guid = world
        .github
        .record_lost("push", &World::push_body(1), SystemTime::now(), 0)
        .guid;
    world.github.fail_next(
        "/app/hook/deliveries?",
        Fault::TooMany429 {
            retry_after_secs: 1,
        },
        1,
    );
    world.github.fail_next("/attempts", Fault::BadGateway, 1);
    let started = Instant::now();
    let report = world.pass().await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the 429's Retry-After was waited out"
    );
    assert_eq!(report.found, 1, "{report:?}");
    // The POST met a 502: recorded, not retried within the pass (GitHub may have taken it).
    assert_eq!(report.asked, 0, "{report:?}");
    assert_eq!(world.events(&guid, "RedeliveryFailed").await, 1);
    assert!(world.github.redelivery_requests().is_empty());
    // The next pass waits the arrival timeout before asking again.
    assert_eq!(world.pass().await.asked, 0);
    let mut config = world.config();
    config.policy.arrival_timeout = Duration::ZERO;
    assert_eq!(world.pass_with(&config).await.asked, 1);
    assert_eq!(world.stored(&guid).await, 1);
    assert_jwts_verified(&world);
}

#[tokio::test]
async fn a_jwt_github_cannot_verify_fails_the_pass_with_an_error_naming_the_settings() {
    let world = World::start().await;
    world
        .github
        .record_lost("push", &World::push_body(1), SystemTime::now(), 0);
    let mut app = world.github.app_config();
    app.app_id = Some(1); // another App: the fake cannot verify its JWT
    let client = hooklog_syncer::source::github::AppClient::new(&app).unwrap();
    let err = hooklog_reconciler::run_pass(
        &world.config(),
        &world.backends.pool,
        &world.bus,
        &world.backends.js,
        &client,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("HOOKLOG_GITHUB_APP_ID"), "{err}");
    assert_eq!(world.github.rejected_jwts(), 1);
    assert!(world.github.redelivery_requests().is_empty());
}
