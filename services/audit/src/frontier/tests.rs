//! The frontier against the whole-tree functions: the same root and tiles at every size, the
//! same tree after a restart from its partial tiles, and proofs read from its tiles equal to
//! proofs computed from the leaves.

use std::collections::BTreeMap;

use super::*;
use crate::tiles::{tiles_for_subtrees, tree_tiles, TileHashes};
use crate::tree::{
    consistency_proof, consistency_proof_from, consistency_subtrees, inclusion_proof,
    inclusion_proof_from, inclusion_subtrees, leaf_hash, root, root_from, root_subtrees,
};

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// Grows a frontier over `leaves`, keeping every tile it hands out or has at the end.
fn grow(frontier: &mut Frontier, leaves: &[Hash], stored: &mut BTreeMap<Tile, Vec<u8>>) {
    let mut full = Vec::new();
    for leaf in leaves {
        frontier.push(*leaf, &mut full);
    }
    for (tile, bytes) in full.into_iter().chain(frontier.partial_tiles()) {
        assert!(
            stored
                .insert(tile, bytes.clone())
                .is_none_or(|old| old == bytes),
            "tile {} handed out twice with different bytes",
            tile.path()
        );
    }
}

#[test]
fn the_root_and_partial_tiles_match_the_whole_tree_at_every_size_to_600() {
    let all = leaves(600);
    let mut frontier = Frontier::new();
    assert_eq!(frontier.root(), root(&[]));
    let mut full = Vec::new();
    for n in 1..=600usize {
        frontier.push(all[n - 1], &mut full);
        assert_eq!(frontier.size(), n as u64);
        assert_eq!(frontier.root(), root(&all[..n]), "root at size {n}");
        let expected: Vec<(Tile, Vec<u8>)> = tree_tiles(&all[..n])
            .into_iter()
            .filter(|(tile, _)| !tile.is_full())
            .collect();
        assert_eq!(
            frontier.partial_tiles(),
            expected,
            "partial tiles at size {n}"
        );
    }
    // Sizes 256 and 512 filled level-0 tiles 0 and 1, and nothing else filled.
    let paths: Vec<String> = full.iter().map(|(tile, _)| tile.path()).collect();
    assert_eq!(paths, ["tile/0/000", "tile/0/001"]);
}

#[test]
fn every_tile_of_a_three_level_tree_is_handed_out_once_with_the_whole_trees_bytes() {
    let n = 65_536 + 256 * 3 + 5;
    let all = leaves(n);
    let mut stored = BTreeMap::new();
    let mut frontier = Frontier::new();
    grow(&mut frontier, &all, &mut stored);
    let expected: BTreeMap<Tile, Vec<u8>> = tree_tiles(&all).into_iter().collect();
    assert_eq!(stored, expected);
    assert_eq!(frontier.root(), root(&all));
    assert!(
        stored.contains_key(&Tile::hashes(2, 0, 1)),
        "level 2 has its first hash"
    );
}

#[test]
fn a_frontier_rebuilt_from_its_partial_tiles_grows_into_the_same_tree() {
    let all = leaves(70_000);
    for stop in [0u64, 1, 255, 256, 257, 511, 65_535, 65_536, 65_537, 66_000] {
        let mut before = Frontier::new();
        let mut stored = BTreeMap::new();
        grow(&mut before, &all[..stop as usize], &mut stored);
        let partial = before.partial_tiles();
        let mut after = Frontier::from_partial_tiles(
            stop,
            partial
                .iter()
                .map(|(tile, bytes)| (*tile, bytes.as_slice())),
        )
        .unwrap();
        assert_eq!(after, before, "restored at size {stop}");
        grow(&mut after, &all[stop as usize..], &mut stored);
        assert_eq!(after.root(), root(&all), "grown on from size {stop}");
    }
}

#[test]
fn a_missing_or_short_partial_tile_is_named() {
    let all = leaves(300);
    let mut frontier = Frontier::new();
    grow(&mut frontier, &all, &mut BTreeMap::new());
    let partial = frontier.partial_tiles();
    assert_eq!(partial.len(), 2, "level 0 (44 hashes) and level 1 (1 hash)");
    let only_level_0 = partial[..1].iter().map(|(t, b)| (*t, b.as_slice()));
    assert_eq!(
        Frontier::from_partial_tiles(300, only_level_0),
        Err(FrontierError::MissingTile("tile/1/000.p/1".into()))
    );
    let short = partial
        .iter()
        .map(|(t, b)| (*t, &b[..b.len().min(32 * 43)]));
    assert_eq!(
        Frontier::from_partial_tiles(300, short),
        Err(FrontierError::BadTile {
            path: "tile/0/001.p/44".into(),
            len: 32 * 43,
            width: 44
        })
    );
}

#[test]
fn roots_and_proofs_read_from_tiles_equal_those_from_the_leaves() {
    for n in [1u64, 2, 255, 256, 257, 1_000, 65_536, 65_536 + 300] {
        let all = leaves(n);
        let all_tiles = tree_tiles(&all);
        let mut tiles = TileHashes::new(n, all_tiles.clone());
        assert_eq!(root_from(&mut tiles, n), Ok(root(&all)), "root of {n}");
        assert!(tiles_for_subtrees(&root_subtrees(n), n).is_some());
        let step = (n / 13).max(1);
        for m in (0..n).step_by(step as usize).chain([n - 1]) {
            assert_eq!(
                inclusion_proof_from(&mut tiles, n, m).unwrap(),
                Ok(inclusion_proof(&all, m).unwrap()),
                "inclusion of {m} in {n}"
            );
            let needed = tiles_for_subtrees(&inclusion_subtrees(n, m).unwrap(), n).unwrap();
            let mut only_needed = TileHashes::new(
                n,
                all_tiles
                    .iter()
                    .filter(|(t, _)| needed.contains(t))
                    .cloned(),
            );
            assert_eq!(
                inclusion_proof_from(&mut only_needed, n, m).unwrap(),
                Ok(inclusion_proof(&all, m).unwrap()),
                "inclusion of {m} in {n} from the tiles it names"
            );
            let old = m + 1;
            assert_eq!(
                consistency_proof_from(&mut tiles, old, n).unwrap(),
                Ok(consistency_proof(&all, old).unwrap()),
                "consistency of {old} with {n}"
            );
            assert!(tiles_for_subtrees(&consistency_subtrees(old, n).unwrap(), n).is_some());
        }
    }
}

#[test]
fn a_proof_that_needs_a_tile_not_stored_names_it() {
    let all = leaves(600);
    let tiles = tree_tiles(&all)
        .into_iter()
        .filter(|(tile, _)| *tile != Tile::hashes(0, 1, 256));
    let mut tiles = TileHashes::new(600, tiles);
    assert_eq!(
        inclusion_proof_from(&mut tiles, 600, 300).unwrap(),
        Err(crate::tiles::TileReadError::MissingTile(
            "tile/0/001".into(),
            256
        ))
    );
}
