//! The sealer against its own `nats-server` and a fresh PostgreSQL database: every checkpoint
//! is checked against a tree computed here, independently, from the streams' messages read one
//! by one (`STREAM.MSG.GET`, not the sealer's consumer).

mod bundle;
mod key;
mod support;
mod verify;

use std::time::Duration;

use hooklog_audit::tiles::{tiles_for_subtrees, tree_tiles, TileHashes};
use hooklog_audit::tree::{
    consistency_proof, consistency_proof_from, consistency_subtrees, root, verify_consistency,
};
use hooklog_audit::Log;
use hooklog_sealer::store;
use support::*;

#[tokio::test]
async fn every_checkpoint_covers_its_stream_in_order_and_extends_the_one_before() {
    let t = Test::start().await;
    let _sealer = t.sealer();
    t.deliver(0..300).await;
    t.publish_events(0..40).await;
    let first = t.wait_checkpoint(Log::Deliveries, 300).await;
    let leaves = t.leaves(Log::Deliveries).await;
    assert_eq!(first.root(), root(&leaves), "the deliveries root after 300");
    let events = t.wait_checkpoint(Log::Events, 40).await;
    assert_eq!(
        events.root(),
        root(&t.leaves(Log::Events).await),
        "the events root"
    );

    t.deliver(300..700).await;
    let second = t.wait_checkpoint(Log::Deliveries, 700).await;
    let leaves = t.leaves(Log::Deliveries).await;
    assert_eq!(
        second.root(),
        root(&leaves),
        "the deliveries root after 700"
    );

    // The stored tiles prove the second extends the first, and are the tree's own tiles.
    let needed = tiles_for_subtrees(&consistency_subtrees(300, 700).unwrap(), 700).unwrap();
    let stored = store::read_tiles(&t.backends.pool, Log::Deliveries, &needed)
        .await
        .unwrap();
    let proof = consistency_proof_from(&mut TileHashes::new(700, stored), 300, 700)
        .unwrap()
        .unwrap();
    assert_eq!(proof, consistency_proof(&leaves, 300).unwrap());
    verify_consistency(300, 700, &first.root(), &second.root(), &proof).unwrap();
    for (tile, bytes) in tree_tiles(&leaves).into_iter().filter(|(t, _)| t.is_full()) {
        let stored = store::read_tile(&t.backends.pool, Log::Deliveries, tile)
            .await
            .unwrap();
        assert_eq!(stored, Some(bytes), "stored {}", tile.path());
    }

    // Every checkpoint on HOOKLOG_AUDIT, in order: growing, each a prefix of the last tree.
    let all = t.checkpoints(Log::Deliveries).await;
    assert!(all.len() >= 2, "{} checkpoints", all.len());
    for pair in all.windows(2) {
        assert!(pair[0].size() < pair[1].size(), "sizes grow: {all:?}");
    }
    for checkpoint in &all {
        let n = checkpoint.size() as usize;
        assert_eq!(checkpoint.root(), root(&leaves[..n]), "checkpoint of {n}");
    }
}

#[tokio::test]
async fn leaves_are_committed_within_the_commit_delay_without_waiting_for_a_checkpoint() {
    let t = Test::start().await;
    let _sealer = t.sealer_with(hooklog_sealer::SealerConfig {
        checkpoint_interval: Duration::from_secs(3600),
        commit_delay: Duration::from_millis(50),
        ..Test::config()
    });
    // The checkpoint interval's first tick, at the start, passes before anything is stored.
    tokio::time::sleep(Duration::from_secs(1)).await;
    t.deliver(1..11).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let size = store::tree_size(&t.backends.pool, Log::Deliveries)
            .await
            .unwrap();
        if size == 10 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tree holds {size} of 10 leaves 10 s after they were stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        t.latest(Log::Deliveries).await.is_none(),
        "committed by a checkpoint, not by the commit delay"
    );
}

#[tokio::test]
async fn a_restarted_sealer_goes_on_from_its_stored_tree() {
    let t = Test::start().await;
    let sealer = t.sealer();
    t.deliver(0..300).await;
    t.wait_checkpoint(Log::Deliveries, 300).await;
    sealer.stop().await;

    t.deliver(300..600).await;
    assert_eq!(t.latest(Log::Deliveries).await.unwrap().size(), 300);
    let _again = t.sealer();
    let checkpoint = t.wait_checkpoint(Log::Deliveries, 600).await;
    assert_eq!(checkpoint.root(), root(&t.leaves(Log::Deliveries).await));
    let sizes: Vec<u64> = t
        .checkpoints(Log::Deliveries)
        .await
        .iter()
        .map(|c| c.size())
        .collect();
    assert!(sizes.contains(&300), "{sizes:?}");
    assert_eq!(sizes.last(), Some(&600), "{sizes:?}");
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
}

#[tokio::test]
async fn two_sealers_take_turns_and_never_sign_the_same_log_twice_over() {
    let t = Test::start().await;
    let a = t.sealer();
    let b = t.sealer();
    for chunk in 0..5u64 {
        t.deliver(chunk * 200..(chunk + 1) * 200).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    t.wait_checkpoint(Log::Deliveries, 1000).await;
    // Whichever held the lease stops; the other takes over and goes on.
    a.stop().await;
    t.deliver(1000..1200).await;
    t.wait_checkpoint(Log::Deliveries, 1200).await;
    b.stop().await;

    let leaves = t.leaves(Log::Deliveries).await;
    let all = t.checkpoints(Log::Deliveries).await;
    for pair in all.windows(2) {
        assert!(
            pair[0].size() < pair[1].size(),
            "one sealer at a time: {all:?}"
        );
    }
    for checkpoint in &all {
        assert_eq!(
            checkpoint.root(),
            root(&leaves[..checkpoint.size() as usize])
        );
    }
}

#[tokio::test]
async fn a_gap_in_a_stream_is_never_sealed_past() {
    let t = Test::start().await;
    let stream = t.events_stream_allowing_deletes().await;
    t.publish_events(0..5).await;
    assert!(stream.delete_message(3).await.unwrap());
    let _sealer = t.sealer();
    let checkpoint = t.wait_checkpoint(Log::Events, 2).await;
    assert_eq!(checkpoint.root(), root(&t.leaves(Log::Events).await[..2]));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(t.latest(Log::Events).await.unwrap().size(), 2);
    assert_eq!(
        store::tree_size(&t.backends.pool, Log::Events)
            .await
            .unwrap(),
        2,
        "nothing past the gap is even stored"
    );
}

#[tokio::test]
async fn a_tampered_tile_is_never_signed_over() {
    let t = Test::start().await;
    let _sealer = t.sealer();
    t.deliver(0..300).await;
    t.wait_checkpoint(Log::Deliveries, 300).await;
    // The level-1 tile of the first 256 leaves: the partial tile both 300 and 310 share, which
    // the root of 310 and the proof from 300 both read.
    let flip = "UPDATE audit_tiles SET data = set_byte(data, 7, get_byte(data, 7) # 1)
                WHERE log = 'deliveries' AND level = 1 AND idx = 0 AND width = 1";
    assert_eq!(
        sqlx::query(flip)
            .execute(&t.backends.pool)
            .await
            .unwrap()
            .rows_affected(),
        1
    );
    t.deliver(300..310).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        t.latest(Log::Deliveries).await.unwrap().size(),
        300,
        "no checkpoint over a tampered tile"
    );
    // Flipped back, the same tree is signed at once: it was the tile that stopped it.
    sqlx::query(flip).execute(&t.backends.pool).await.unwrap();
    let checkpoint = t.wait_checkpoint(Log::Deliveries, 310).await;
    assert_eq!(checkpoint.root(), root(&t.leaves(Log::Deliveries).await));
}

#[tokio::test]
async fn a_printed_inclusion_proof_verifies_against_its_checkpoint_and_a_bad_one_is_never_printed()
{
    use hooklog_audit::proof::TlogProof;
    use hooklog_audit::tree::{leaf_hash, verify_inclusion};
    use hooklog_audit::StreamMessage;
    use hooklog_sealer::prove::{inclusion, ProveError};

    let t = Test::start().await;
    let _sealer = t.sealer();
    let (pool, js) = (&t.backends.pool, &t.backends.js);
    assert!(matches!(
        inclusion(pool, js, Log::Deliveries, 1).await,
        Err(ProveError::NoCheckpoint("deliveries"))
    ));
    t.deliver(0..300).await;
    let checkpoint = t.wait_checkpoint(Log::Deliveries, 300).await;

    let text = inclusion(pool, js, Log::Deliveries, 137).await.unwrap();
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{text}");
    let proof = TlogProof::parse(&text).unwrap();
    let entry = proof.extra.clone().unwrap();
    assert_eq!(StreamMessage::decode(&entry).unwrap().sequence, 137);
    assert_eq!(proof.index, 136);
    let opened = hooklog_audit::Checkpoint::open(
        &proof.checkpoint,
        &t.key.verifier(),
        &Log::Deliveries.origin(t.key.name()),
    )
    .unwrap();
    assert_eq!(opened, checkpoint, "the checkpoint, verbatim");
    verify_inclusion(
        136,
        300,
        &leaf_hash(&entry),
        &proof.hashes,
        &checkpoint.root(),
    )
    .unwrap();

    assert!(matches!(
        inclusion(pool, js, Log::Deliveries, 301).await,
        Err(ProveError::NotSealedYet {
            sequence: 301,
            size: 300,
            ..
        })
    ));
    // A stored tile the proof reads (the root of leaves 0..256, the sibling of 280's subtree),
    // edited: refused, not printed.
    sqlx::query(
        "UPDATE audit_tiles SET data = set_byte(data, 0, get_byte(data, 0) # 1)
         WHERE log = 'deliveries' AND level = 1 AND idx = 0 AND width = 1",
    )
    .execute(pool)
    .await
    .unwrap();
    assert!(matches!(
        inclusion(pool, js, Log::Deliveries, 280).await,
        Err(ProveError::Invalid { sequence: 280, .. })
    ));
}
