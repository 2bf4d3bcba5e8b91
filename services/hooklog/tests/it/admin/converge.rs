//! The synced copy converges to the branch head through `hooklog serve` with every role: pushes
//! that arrive out of order never leave the copy behind, and what their order cannot tell the
//! reconcile pass's head check corrects, even by syncing a head synced before.

use hooklog_syncer::testing::TestRepo;

use super::sync::{commit, finished_run, push_of};
use super::*;

#[tokio::test]
async fn out_of_order_pushes_leave_the_copy_at_the_branch_head_once_reconcile_checks_it() {
    let repo = TestRepo::new();
    let cache = tempfile::tempdir().unwrap();
    let stack = Stack::start_with(
        &[],
        &[
            (
                "HOOKLOG_SYNCER_GIT_CACHE_DIR",
                cache.path().display().to_string(),
            ),
            (
                "HOOKLOG_SYNCER_ALLOWED_SOURCES",
                repo.path().display().to_string(),
            ),
            ("HOOKLOG_SYNCER_RECONCILE_INTERVAL", "1s".to_owned()),
            ("HOOKLOG_SYNCER_HEAD_CHECK_INTERVAL", "1s".to_owned()),
        ],
    )
    .await;
    let installation = 4200;
    connect(&stack, installation).await;
    let source = json!({ "source": repo.path().display().to_string() });
    let (target, _) = track_with(&stack, installation, "main", source).await;

    let step = |name: &str| commit(&repo, &[(&format!("{name}.md"), Some(name.as_bytes()))]);
    let x = step("x");
    stack
        .send("push", "conv-x", &push_of(installation, &sha(0), &x))
        .await;
    assert_eq!(
        finished_run(&stack, &target, &x).await["status"],
        "completed"
    );
    // The branch moves on: x -> a -> b -> c -> d; d is its head.
    let [a, b, c, d] = ["a", "b", "c", "d"].map(step);

    // GitHub delivers c->d first, then a->b: nothing yet shows a->b to be older, so b is
    // synced after d and the copy ends on b. The late x->a is known older (a->b left a).
    stack
        .send("push", "conv-cd", &push_of(installation, &c, &d))
        .await;
    stack
        .send("push", "conv-ab", &push_of(installation, &a, &b))
        .await;
    stack
        .send("push", "conv-xa", &push_of(installation, &x, &a))
        .await;
    assert_eq!(
        finished_run(&stack, &target, &d).await["status"],
        "completed"
    );
    assert_eq!(
        finished_run(&stack, &target, &b).await["status"],
        "completed"
    );

    // The head check sees the branch at d while the copy holds b: d is requested again and the
    // copy comes back to the branch head.
    let shown = stack
        .until(&format!("/v1/admin/targets/{target}"), |t| {
            t["last_synced_sha"] == json!(d) && t["status"] == "idle"
        })
        .await;
    assert_eq!(shown["last_synced_sha"], json!(d), "{shown}");
    let runs = stack
        .read(&format!("/v1/admin/targets/{target}/syncs?limit=50"))
        .await;
    let of = |head: &str| -> Vec<String> {
        items(&runs)
            .iter()
            .filter(|r| r["head_sha"] == head)
            .map(|r| r["reason"].as_str().unwrap().to_owned())
            .collect()
    };
    // d was synced, then b over it, then d again by the head check (a head check may also have
    // caught the branch at d before the push c->d arrived; either way the newest run is it).
    assert!(of(&d).len() >= 2, "{runs}");
    let newest = items(&runs).last().unwrap();
    assert_eq!(newest["head_sha"], json!(d), "{runs}");
    assert_eq!(newest["reason"], "reconcile", "{runs}");
    assert!(of(&a).is_empty(), "the late x->a was requested: {runs}");
    // Nothing else happens once the copy is at the branch head.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let later = stack
        .read(&format!("/v1/admin/targets/{target}/syncs?limit=50"))
        .await;
    assert_eq!(items(&later).len(), items(&runs).len(), "{later}");
}
