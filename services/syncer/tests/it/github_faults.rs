//! The `GithubApp` source when the fake GitHub misbehaves: rate limits waited out or reported,
//! bad gateways retried, truncated trees completed by the walk, and unknown commits.

use std::time::{Duration, Instant};

use hooklog_domain::ids::{Branch, CommitSha};
use hooklog_syncer::source::github::{GithubApp, GithubAppConfig};
use hooklog_syncer::source::{RepoSource, SourceError};
use hooklog_syncer::testing::Fault;

use crate::github::{repo_ref, shas, unwrap_all, World};

#[tokio::test]
async fn a_403_rate_limit_with_a_reset_1_s_ahead_is_waited_out_and_the_call_succeeds() {
    let world = World::new().await;
    let app = world.app();
    world
        .fake
        .fail_next("/git/trees/", Fault::RateLimit403 { reset_in_secs: 1 }, 1);

    let started = Instant::now();
    let tree = app.tree(&repo_ref(), &world.commit).await.expect("a tree");

    assert_eq!(tree, world.git_listing());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_the_call_succeeds() {
    let world = World::new().await;
    let app = world.app();
    let listing = world.git_listing();
    world.fake.fail_next(
        "/git/blobs/",
        Fault::TooMany429 {
            retry_after_secs: 1,
        },
        1,
    );

    let started = Instant::now();
    let blobs = unwrap_all(app.blobs(&repo_ref(), &world.commit, &shas(&listing)).await);

    assert_eq!(blobs.len(), listing.len());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_wait_allowed_is_rate_limited_and_retryable() {
    let world = World::new().await;
    let app = world.app();
    world
        .fake
        .fail_next("/git/trees/", Fault::RateLimit403 { reset_in_secs: 600 }, 1);

    let started = Instant::now();
    let err = app.tree(&repo_ref(), &world.commit).await.unwrap_err();

    let SourceError::RateLimited { retry_after, .. } = &err else {
        panic!("expected RateLimited, got {err:?}");
    };
    assert!(retry_after.unwrap() > Duration::from_secs(500), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "it does not wait"
    );
}

#[tokio::test]
async fn a_502_twice_is_retried_and_the_call_succeeds() {
    let world = World::new().await;
    let app = world.app();
    world.fake.fail_next("/branches/", Fault::BadGateway, 2);

    let head = app
        .branch_head(&repo_ref(), &Branch::parse("main").unwrap())
        .await;

    assert_eq!(head.unwrap(), Some(world.commit.clone()));
}

#[tokio::test]
async fn a_502_that_outlasts_the_retries_is_unavailable_and_retryable() {
    let world = World::new().await;
    let app = GithubApp::new(GithubAppConfig {
        retries: 1,
        ..world.config()
    })
    .unwrap();
    world.fake.fail_next("/git/trees/", Fault::BadGateway, 10);

    let err = app.tree(&repo_ref(), &world.commit).await.unwrap_err();

    assert!(matches!(err, SourceError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("502"), "{err}");
}

#[tokio::test]
async fn a_truncated_tree_is_completed_by_the_walk_and_equals_the_full_listing() {
    let world = World::new().await;
    let app = world.app();
    world.fake.set_truncated(true);

    let tree = app.tree(&repo_ref(), &world.commit).await.expect("a tree");

    assert_eq!(tree, world.git_listing());
    assert!(
        world.fake.tree_fetches() > 2,
        "the walk listed each directory"
    );
}

#[tokio::test]
async fn an_unknown_commit_is_not_found_and_not_retryable() {
    let world = World::new().await;
    let app = world.app();
    let unknown = CommitSha::parse(&"d".repeat(40)).unwrap();

    let err = app.tree(&repo_ref(), &unknown).await.unwrap_err();

    assert!(matches!(err, SourceError::NotFound(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains(unknown.as_str()), "{err}");
}
