//! Tile paths pinned as literals (C2SP's examples among them), tile contents checked against
//! the tree, and entry bundles.

use super::*;
use crate::tree::leaf_hash;

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

#[test]
fn indexes_are_written_in_groups_of_three_digits_with_x_prefixes() {
    let cases = [
        (Tile::hashes(0, 0, 256), "tile/0/000"),
        (Tile::hashes(0, 7, 256), "tile/0/007"),
        (Tile::hashes(1, 999, 256), "tile/1/999"),
        (Tile::hashes(2, 1000, 256), "tile/2/x001/000"),
        (Tile::hashes(4, 1_234_067, 256), "tile/4/x001/x234/067"),
        (
            Tile::hashes(0, 1_234_067, 112),
            "tile/0/x001/x234/067.p/112",
        ),
        (Tile::hashes(63, 5, 1), "tile/63/005.p/1"),
        (Tile::entries(0, 256), "tile/entries/000"),
        (
            Tile::entries(1_234_067, 3),
            "tile/entries/x001/x234/067.p/3",
        ),
        (
            Tile::hashes(0, u64::MAX, 256),
            "tile/0/x018/x446/x744/x073/x709/x551/615",
        ),
    ];
    for (tile, path) in cases {
        assert_eq!(tile.path(), path);
        assert_eq!(Tile::parse_path(path), Ok(tile), "{path}");
    }
}

#[test]
fn go_paths_carry_the_height_and_call_entries_data() {
    let cases = [
        (Tile::hashes(0, 0, 256), "tile/8/0/000", "tile/0/000"),
        (
            Tile::hashes(1, 1_234_067, 17),
            "tile/8/1/x001/x234/067.p/17",
            "tile/1/x001/x234/067.p/17",
        ),
        (
            Tile::entries(1000, 256),
            "tile/8/data/x001/000",
            "tile/entries/x001/000",
        ),
        (
            Tile::entries(2, 9),
            "tile/8/data/002.p/9",
            "tile/entries/002.p/9",
        ),
    ];
    for (tile, go, c2sp) in cases {
        assert_eq!(tile.go_path(), go);
        assert_eq!(Tile::parse_go_path(go), Ok(tile));
        assert_eq!(c2sp_to_go_path(c2sp).as_deref(), Ok(go));
        assert_eq!(go_to_c2sp_path(go).as_deref(), Ok(c2sp));
    }
}

#[test]
fn malformed_paths_are_refused_with_what_is_wrong() {
    use TilePathError::*;
    type Expected = fn(String) -> TilePathError;
    let cases: &[(&str, Expected)] = &[
        ("tiles/0/000", NotATilePath),
        ("tile/0", NotATilePath),
        ("", NotATilePath),
        ("tile/64/000", BadLevel),
        ("tile/01/000", BadLevel),
        ("tile/-1/000", BadLevel),
        ("tile/data/000", BadLevel),
        ("tile/0/00", BadIndex),
        ("tile/0/0000", BadIndex),
        ("tile/0/001/002", BadIndex),
        ("tile/0/x001", BadIndex),
        ("tile/0/x000/001", BadIndex),
        ("tile/0/x1a3/001", BadIndex),
        ("tile/0/x018/x446/x744/x073/x709/x551/616", BadIndex),
        ("tile/0/000/", BadIndex),
        ("tile/0/000.p/0", BadWidth),
        ("tile/0/000.p/256", BadWidth),
        ("tile/0/000.p/012", BadWidth),
        ("tile/0/000.p/", BadWidth),
        ("tile/0/000.p/5/6", BadWidth),
        ("tile/entries/000.p/300", BadWidth),
    ];
    for (path, error) in cases {
        assert_eq!(
            Tile::parse_path(path),
            Err(error(path.to_string())),
            "{path}"
        );
    }
    assert_eq!(
        Tile::parse_go_path("tile/10/0/000"),
        Err(WrongHeight("tile/10/0/000".into()))
    );
    assert_eq!(
        Tile::parse_go_path("tile/8/entries/000"),
        Err(BadLevel("tile/8/entries/000".into()))
    );
    assert_eq!(
        Tile::parse_go_path("tile/0/000"),
        Err(WrongHeight("tile/0/000".into()))
    );
}

#[test]
fn a_tree_of_70000_leaves_has_the_tiles_c2sp_lists() {
    // C2SP tlog-tiles: 273 full level-0 tiles, a partial one of width 112, one full level-1
    // tile, a partial level-1 tile of width 17 and a partial level-2 tile of width 1.
    let tiles = tiles_for_size(70_000);
    assert_eq!(tiles.len(), 273 + 1 + 1 + 1 + 1);
    assert_eq!(tiles[272], Tile::hashes(0, 272, 256));
    assert_eq!(
        &tiles[273..],
        &[
            Tile::hashes(0, 273, 112),
            Tile::hashes(1, 0, 256),
            Tile::hashes(1, 1, 17),
            Tile::hashes(2, 0, 1),
        ]
    );
    assert_eq!(
        tiles_for_size(256),
        [Tile::hashes(0, 0, 256), Tile::hashes(1, 0, 1)]
    );
    assert!(tiles_for_size(0).is_empty());
    assert_eq!(
        bundles_for_size(513),
        [
            Tile::entries(0, 256),
            Tile::entries(1, 256),
            Tile::entries(2, 1)
        ]
    );
}

#[test]
fn tile_hashes_are_the_roots_of_the_subtrees_they_cover() {
    let leaves = leaves(66_000);
    let tiles = tree_tiles(&leaves);
    let listed: Vec<Tile> = tiles.iter().map(|(tile, _)| *tile).collect();
    assert_eq!(listed, tiles_for_size(66_000));
    for (tile, data) in &tiles {
        assert_eq!(data.len(), usize::from(tile.width) * HASH_SIZE);
        if tile.level != TileLevel::Hashes(0) {
            assert_eq!(&tile_data(tile, &leaves).unwrap(), data, "{tile:?}");
        }
    }
    let (level0, data) = &tiles[3];
    assert_eq!(*level0, Tile::hashes(0, 3, 256));
    assert_eq!(&data[..32], &leaves[768].0);
    let (level1, data) = &tiles[tiles.len() - 2];
    assert_eq!(*level1, Tile::hashes(1, 1, 1));
    assert_eq!(&data[..], &root(&leaves[65_536..65_792]).0);
    assert_eq!(tiles.last().unwrap().1, root(&leaves[..65_536]).0);
    assert_eq!(
        Tile::hashes(1, 0, 2).leaf_range(1),
        Some(256..512),
        "hash 1 of the first level-1 tile"
    );
}

#[test]
fn tiles_past_the_tree_have_no_data() {
    let leaves = leaves(300);
    assert_eq!(
        tile_data(&Tile::hashes(0, 1, 45), &leaves),
        Err(TileError::NotInTree {
            tile: Tile::hashes(0, 1, 45),
            size: 300
        })
    );
    assert!(tile_data(&Tile::hashes(1, 0, 2), &leaves).is_err());
    assert_eq!(
        tile_data(&Tile::entries(0, 1), &leaves),
        Err(TileError::NotAHashTile)
    );
    let pair = tile_data(&Tile::hashes(0, 1, 2), &leaves).unwrap();
    assert_eq!(pair[..32], leaves[256].0);
    assert_eq!(pair[32..], leaves[257].0);
    assert!(tile_data(&Tile::hashes(63, u64::MAX, 256), &leaves).is_err());
}

#[test]
fn bundles_prefix_each_entry_with_its_u16_length() {
    let entries: Vec<Vec<u8>> = vec![b"ab".to_vec(), vec![], vec![7; 300]];
    let bundle = encode_bundle(&entries).unwrap();
    assert_eq!(&bundle[..6], b"\x00\x02ab\x00\x00");
    assert_eq!(&bundle[6..8], &[0x01, 0x2c]);
    assert_eq!(bundle.len(), 2 + 2 + 2 + 2 + 300);
    let decoded = decode_bundle(&bundle).unwrap();
    assert_eq!(
        decoded,
        entries.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );
    assert_eq!(
        decode_bundle(&bundle[..bundle.len() - 1]),
        Err(BundleError::Truncated { index: 2 })
    );
    assert_eq!(
        decode_bundle(&bundle[..7]),
        Err(BundleError::Truncated { index: 2 })
    );
    assert_eq!(
        encode_bundle(&[vec![0u8; 65_536]]),
        Err(BundleError::EntryTooLong {
            index: 0,
            len: 65_536
        })
    );
}

#[test]
fn entries_are_bundled_256_at_a_time_like_the_level_0_tiles() {
    let mut entries: Vec<Vec<u8>> = (0..600u32).map(|i| i.to_be_bytes().to_vec()).collect();
    let bundles = entry_bundles(&entries).unwrap();
    let tiles: Vec<Tile> = bundles.iter().map(|(t, _)| *t).collect();
    assert_eq!(tiles, bundles_for_size(600));
    let last = decode_bundle(&bundles[2].1).unwrap();
    assert_eq!(last.len(), 88);
    assert_eq!(last[0], &512u32.to_be_bytes());

    entries[300] = vec![0; 70_000];
    assert_eq!(
        entry_bundles(&entries),
        Err(BundleError::EntryTooLong {
            index: 300,
            len: 70_000
        })
    );
}
