//! C2SP tlog-tiles with tile height 8: which hashes make a tile, a tile's bytes, and entry
//! bundles. Paths (C2SP's and Go's) are in `tiles::path`.
//!
//! A tile at level `L`, index `N`, holds up to 256 consecutive hashes of the tree at height
//! `8·L`: hash `i` is `MTH(D[(N·256 + i)·256^L .. (N·256 + i + 1)·256^L])`. Level 0 holds leaf
//! hashes; a hash at level `L ≥ 1` is the root of a full tile at the level below, so only full
//! tiles are ever hashed upwards. A tree of size `s` has, at each level `L` with
//! `s / 256^L > 0`, `s / 256^(L+1)` full tiles and, when `(s / 256^L) mod 256` is not zero, one
//! partial tile of that width. The entry bundle with index `N` holds the entries whose leaf
//! hashes make the level-0 tile `N`, each as a u16 big-endian length and the bytes.
//!
//! A tile never changes once written (a partial tile is a different path from the full one),
//! which is what lets the audit service store tiles as it computes them and serve them as files.

mod path;

use std::ops::Range;

pub use path::{c2sp_to_go_path, go_to_c2sp_path, TilePathError};

use std::collections::{BTreeSet, HashMap};

use crate::tree::{root, Hash, Subtree, SubtreeHashes, HASH_SIZE};

/// Tiles are 8 levels of the tree high (C2SP fixes this; Go's paths spell it out).
pub const TILE_HEIGHT: u32 = 8;

/// A full tile holds 256 hashes (8,192 bytes); a full entry bundle 256 entries.
pub const TILE_WIDTH: u16 = 1 << TILE_HEIGHT;

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileLevel {
    /// Hashes of the tree at height `8·L` (C2SP allows levels 0 to 63).
    Hashes(u8),
    /// Entries: an entry bundle, aligned with the level-0 tile of the same index.
    Entries,
}

/// One tile or entry bundle of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub level: TileLevel,
    /// The index of the tile within its level.
    pub index: u64,
    /// How many hashes (or entries) it holds: 1 to 255 for a partial tile, 256 for a full one.
    pub width: u16,
}

/// Why a tile's bytes could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The tile reaches past the leaves given.
    #[error("tile {tile:?} reaches past a tree of size {size}")]
    NotInTree { tile: Tile, size: u64 },
    /// An entry bundle has no hashes to compute.
    #[error("an entry bundle is not a hash tile")]
    NotAHashTile,
}

/// Why entries could not be bundled or a bundle could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Bundles give each entry a u16 length.
    #[error("entry {index} is {len} bytes, more than a bundle's u16 allows")]
    EntryTooLong { index: usize, len: usize },
    /// The bundle ends inside an entry or its length.
    #[error("the bundle ends inside entry {index}")]
    Truncated { index: usize },
}

impl Tile {
    /// The hash tile at `level`, `index`, with `width` hashes (1 to 256).
    pub fn hashes(level: u8, index: u64, width: u16) -> Tile {
        Tile {
            level: TileLevel::Hashes(level),
            index,
            width,
        }
    }

    /// The entry bundle `index` with `width` entries (1 to 256).
    pub fn entries(index: u64, width: u16) -> Tile {
        Tile {
            level: TileLevel::Entries,
            index,
            width,
        }
    }

    /// Whether the tile holds all 256 hashes (or entries).
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The tree height of the tile's hashes in levels of 8; entries count as level 0.
    fn hash_level(&self) -> u32 {
        match self.level {
            TileLevel::Hashes(level) => u32::from(level),
            TileLevel::Entries => 0,
        }
    }

    /// The leaves under hash (or entry) `i` of this tile, `None` past `u64`.
    pub fn leaf_range(&self, i: u16) -> Option<Range<u64>> {
        let per_hash = 1u64.checked_shl(TILE_HEIGHT * self.hash_level())?;
        let position = self.index.checked_mul(u64::from(TILE_WIDTH))? + u64::from(i);
        let start = position.checked_mul(per_hash)?;
        Some(start..start.checked_add(per_hash)?)
    }

    /// The leaves the whole tile spans, `None` past `u64`.
    pub fn leaf_span(&self) -> Option<Range<u64>> {
        let first = self.leaf_range(0)?;
        let last = self.leaf_range(self.width.checked_sub(1)?)?;
        Some(first.start..last.end)
    }
}

/// The hash tiles of a tree of `size` leaves: every full tile, and the partial ones that exist
/// at this size, level by level, by index.
pub fn tiles_for_size(size: u64) -> Vec<Tile> {
    let mut tiles = Vec::new();
    for level in 0u8.. {
        let hashes = size
            .checked_shr(TILE_HEIGHT * u32::from(level))
            .unwrap_or(0);
        if hashes == 0 {
            break;
        }
        let full = hashes / u64::from(TILE_WIDTH);
        tiles.extend((0..full).map(|index| Tile::hashes(level, index, TILE_WIDTH)));
        let partial = (hashes % u64::from(TILE_WIDTH)) as u16;
        if partial > 0 {
            tiles.push(Tile::hashes(level, full, partial));
        }
    }
    tiles
}

/// The entry bundles of a tree of `size` leaves: the full ones and the partial one, if any.
pub fn bundles_for_size(size: u64) -> Vec<Tile> {
    let full = size / u64::from(TILE_WIDTH);
    let partial = (size % u64::from(TILE_WIDTH)) as u16;
    let mut bundles: Vec<Tile> = (0..full).map(|n| Tile::entries(n, TILE_WIDTH)).collect();
    if partial > 0 {
        bundles.push(Tile::entries(full, partial));
    }
    bundles
}

/// The bytes of one hash tile (its hashes concatenated), from the leaf hashes of the tree.
///
/// Costs hashing every leaf the tile spans; [`tree_tiles`] computes a whole tree's tiles at once.
pub fn tile_data(tile: &Tile, leaves: &[Hash]) -> Result<Vec<u8>, TileError> {
    if tile.level == TileLevel::Entries {
        return Err(TileError::NotAHashTile);
    }
    let size = leaves.len() as u64;
    let not_in_tree = TileError::NotInTree { tile: *tile, size };
    match tile.leaf_span() {
        Some(span) if span.end <= size && (1..=TILE_WIDTH).contains(&tile.width) => {}
        _ => return Err(not_in_tree),
    }
    let mut data = Vec::with_capacity(usize::from(tile.width) * HASH_SIZE);
    for i in 0..tile.width {
        let range = tile.leaf_range(i).ok_or(not_in_tree.clone())?;
        data.extend_from_slice(&root(&leaves[range.start as usize..range.end as usize]).0);
    }
    Ok(data)
}

/// Every hash tile of the tree of these leaf hashes with its bytes, as [`tiles_for_size`]
/// lists them. Each level's hashes are the roots of the full tiles below, so this hashes each
/// leaf once per level.
pub fn tree_tiles(leaves: &[Hash]) -> Vec<(Tile, Vec<u8>)> {
    let mut out = Vec::new();
    let mut hashes: Vec<Hash> = leaves.to_vec();
    for level in 0u8.. {
        if hashes.is_empty() {
            break;
        }
        let chunks = hashes.chunks(usize::from(TILE_WIDTH));
        for (index, chunk) in chunks.enumerate() {
            let tile = Tile::hashes(level, index as u64, chunk.len() as u16);
            out.push((tile, chunk.iter().flat_map(|h| h.0).collect()));
        }
        hashes = hashes
            .chunks_exact(usize::from(TILE_WIDTH))
            .map(root)
            .collect();
    }
    out
}

/// Where the hashes of `subtree` sit in the tiles of a tree of `size` leaves: the tile, and the
/// range of its hashes whose root is the subtree's. `None` when the subtree is not wholly in
/// the tree.
pub fn locate(subtree: Subtree, size: u64) -> Option<(Tile, Range<usize>)> {
    let level = u32::from(subtree.height) / TILE_HEIGHT;
    let shift = u32::from(subtree.height) % TILE_HEIGHT;
    let first = subtree.index.checked_shl(shift)?;
    let hashes = size.checked_shr(TILE_HEIGHT * level).unwrap_or(0);
    if first.checked_add(1 << shift)? > hashes {
        return None;
    }
    let index = first / u64::from(TILE_WIDTH);
    let width = (hashes - index * u64::from(TILE_WIDTH)).min(u64::from(TILE_WIDTH)) as u16;
    let offset = (first % u64::from(TILE_WIDTH)) as usize;
    Some((
        Tile::hashes(level as u8, index, width),
        offset..offset + (1 << shift),
    ))
}

/// The tiles of a tree of `size` leaves that hold `subtrees` (as `tree::root_subtrees`,
/// `inclusion_subtrees` or `consistency_subtrees` list them); `None` if one is not in the tree.
pub fn tiles_for_subtrees(subtrees: &[Subtree], size: u64) -> Option<BTreeSet<Tile>> {
    subtrees
        .iter()
        .map(|subtree| locate(*subtree, size).map(|(tile, _)| tile))
        .collect()
}

/// Stored tiles of a tree of one size, read as subtree hashes.
#[derive(Debug, Clone, Default)]
pub struct TileHashes {
    size: u64,
    tiles: HashMap<Tile, Vec<u8>>,
}

/// A subtree the tiles do not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileReadError {
    #[error("the subtree {0:?} is not in the tree of size {1}")]
    NotInTree(Subtree, u64),
    #[error("the tile {0} is missing or not {1} hashes long")]
    MissingTile(String, u16),
}

impl TileHashes {
    /// The tiles of the tree of `size` leaves.
    pub fn new(size: u64, tiles: impl IntoIterator<Item = (Tile, Vec<u8>)>) -> TileHashes {
        TileHashes {
            size,
            tiles: tiles.into_iter().collect(),
        }
    }
}

impl SubtreeHashes for TileHashes {
    type Error = TileReadError;
    fn hash(&mut self, subtree: Subtree) -> Result<Hash, TileReadError> {
        let (tile, range) =
            locate(subtree, self.size).ok_or(TileReadError::NotInTree(subtree, self.size))?;
        let missing = || TileReadError::MissingTile(tile.path(), tile.width);
        let bytes = self.tiles.get(&tile).ok_or_else(missing)?;
        if bytes.len() != usize::from(tile.width) * HASH_SIZE {
            return Err(missing());
        }
        let hashes: Vec<Hash> = bytes[range.start * HASH_SIZE..range.end * HASH_SIZE]
            .chunks_exact(HASH_SIZE)
            .map(|chunk| Hash::from_slice(chunk).expect("chunks of HASH_SIZE"))
            .collect();
        Ok(root(&hashes))
    }
}

/// An entry bundle: each entry as a u16 big-endian length and its bytes.
pub fn encode_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, BundleError> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let entry = entry.as_ref();
        let len = u16::try_from(entry.len()).map_err(|_| BundleError::EntryTooLong {
            index,
            len: entry.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// The entries of a bundle, in order.
pub fn decode_bundle(mut bytes: &[u8]) -> Result<Vec<&[u8]>, BundleError> {
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        let index = entries.len();
        let truncated = BundleError::Truncated { index };
        let (len, rest) = bytes.split_first_chunk::<2>().ok_or(truncated.clone())?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return Err(truncated);
        }
        let (entry, rest) = rest.split_at(len);
        entries.push(entry);
        bytes = rest;
    }
    Ok(entries)
}

/// The entry bundles of a log holding these entries (leaf `i` is `entries[i]`), with bytes.
pub fn entry_bundles<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<(Tile, Vec<u8>)>, BundleError> {
    let mut bundles = Vec::new();
    for (index, chunk) in entries.chunks(usize::from(TILE_WIDTH)).enumerate() {
        let tile = Tile::entries(index as u64, chunk.len() as u16);
        let bytes = encode_bundle(chunk).map_err(|err| match err {
            BundleError::EntryTooLong { index: i, len } => BundleError::EntryTooLong {
                index: index * usize::from(TILE_WIDTH) + i,
                len,
            },
            other => other,
        })?;
        bundles.push((tile, bytes));
    }
    Ok(bundles)
}

#[cfg(test)]
mod tests;
