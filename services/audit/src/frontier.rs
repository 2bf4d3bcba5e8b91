//! A tree that grows one leaf at a time, holding only its right edge: at each level, the
//! hashes of the tile being filled. This is what the sealer keeps per stream.
//!
//! Appending a leaf hashes at most one full tile per level (256 leaves fill a level-0 tile,
//! whose root becomes the next hash of level 1, and so on), so a tree of `n` leaves costs about
//! `n · (1 + 1/255 + …)` node hashes in all and never rereads a leaf. Every full tile is handed
//! out once, when it fills, to be stored; the partial tiles of the current size are there to be
//! stored beside a checkpoint; and the frontier can be rebuilt from those partial tiles, which
//! is how a restarted sealer continues where its last commit left off.
//!
//! The root is the fold of the perfect subtrees the frontier's hashes make up, which is RFC
//! 6962's tree: the test compares it with [`crate::tree::root`] for every size up to well past
//! two levels.

use crate::tiles::{self, Tile, TileLevel, TILE_HEIGHT, TILE_WIDTH};
use crate::tree::{self, Hash, Subtree, SubtreeHashes, HASH_SIZE};

/// The right edge of a tree of `size` leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `levels[L]`: the hashes of the partial tile at level `L`, fewer than 256.
    levels: Vec<Vec<Hash>>,
}

/// Why partial tiles do not make the frontier of a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontierError {
    /// A partial tile the size needs is not among those given.
    #[error("the partial tile {0} of the tree is missing")]
    MissingTile(String),
    /// A tile's bytes are not `width` hashes.
    #[error("the tile {path} holds {len} bytes, not {width} hashes")]
    BadTile {
        path: String,
        len: usize,
        width: u16,
    },
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The frontier of a tree of `size` leaves from its partial tiles (those
    /// [`Frontier::partial_tiles`] returns at that size); other tiles are ignored.
    pub fn from_partial_tiles<'a>(
        size: u64,
        tiles: impl IntoIterator<Item = (Tile, &'a [u8])>,
    ) -> Result<Frontier, FrontierError> {
        let given: Vec<(Tile, &[u8])> = tiles.into_iter().collect();
        let mut levels = Vec::new();
        for level in 0..level_count(size) {
            let width = width_at(size, level);
            if width == 0 {
                levels.push(Vec::new());
                continue;
            }
            let wanted = Tile::hashes(level as u8, size >> (TILE_HEIGHT * (level + 1)), width);
            let bytes = given
                .iter()
                .find(|(tile, _)| *tile == wanted)
                .map(|(_, bytes)| *bytes)
                .ok_or_else(|| FrontierError::MissingTile(wanted.path()))?;
            levels.push(hashes_of(&wanted, bytes)?);
        }
        Ok(Frontier { size, levels })
    }

    /// How many leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf; each tile the leaf fills (at most one per level, bottom up) is pushed
    /// onto `full` with its bytes.
    pub fn push(&mut self, leaf: Hash, full: &mut Vec<(Tile, Vec<u8>)>) {
        self.size += 1;
        let mut hash = leaf;
        for level in 0.. {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let hashes = &mut self.levels[level];
            hashes.push(hash);
            if hashes.len() < usize::from(TILE_WIDTH) {
                return;
            }
            let index = (self.size >> (TILE_HEIGHT * (level as u32 + 1))) - 1;
            let bytes: Vec<u8> = hashes.iter().flat_map(|h| h.0).collect();
            hash = tree::root(hashes);
            hashes.clear();
            full.push((Tile::hashes(level as u8, index, TILE_WIDTH), bytes));
        }
    }

    /// The partial tiles of the tree at its current size, with their bytes, bottom up.
    pub fn partial_tiles(&self) -> Vec<(Tile, Vec<u8>)> {
        self.levels
            .iter()
            .enumerate()
            .filter(|(_, hashes)| !hashes.is_empty())
            .map(|(level, hashes)| {
                let index = self.size >> (TILE_HEIGHT * (level as u32 + 1));
                let tile = Tile::hashes(level as u8, index, hashes.len() as u16);
                (tile, hashes.iter().flat_map(|h| h.0).collect())
            })
            .collect()
    }

    /// The tree's root (the empty tree's for size 0).
    pub fn root(&self) -> Hash {
        let mut source = self;
        match tree::root_from(&mut source, self.size) {
            Ok(root) => root,
            Err(missing) => {
                unreachable!("the frontier holds every subtree of its root: {missing:?}")
            }
        }
    }
}

/// The root reads only the subtrees on the right edge, which are all in the partial tiles.
impl SubtreeHashes for &Frontier {
    type Error = Subtree;
    fn hash(&mut self, subtree: Subtree) -> Result<Hash, Subtree> {
        let (tile, range) = tiles::locate(subtree, self.size).ok_or(subtree)?;
        let TileLevel::Hashes(level) = tile.level else {
            return Err(subtree);
        };
        let hashes = self.levels.get(usize::from(level)).ok_or(subtree)?;
        if tile.is_full() || hashes.len() != usize::from(tile.width) {
            return Err(subtree);
        }
        Ok(tree::root(&hashes[range]))
    }
}

/// How many levels a tree of `size` leaves has hashes at.
fn level_count(size: u64) -> u32 {
    let mut levels = 0;
    while size.checked_shr(TILE_HEIGHT * levels).unwrap_or(0) > 0 {
        levels += 1;
    }
    levels
}

/// The width of the partial tile at `level` of a tree of `size` (0: none).
fn width_at(size: u64, level: u32) -> u16 {
    (size.checked_shr(TILE_HEIGHT * level).unwrap_or(0) % u64::from(TILE_WIDTH)) as u16
}

/// The partial hash tiles a tree of `size` leaves has, bottom up.
pub fn partial_tiles_for_size(size: u64) -> Vec<Tile> {
    (0..level_count(size))
        .filter_map(|level| {
            let width = width_at(size, level);
            let index = size >> (TILE_HEIGHT * (level + 1));
            (width > 0).then(|| Tile::hashes(level as u8, index, width))
        })
        .collect()
}

/// A hash tile's bytes as hashes, checked against its width.
pub fn hashes_of(tile: &Tile, bytes: &[u8]) -> Result<Vec<Hash>, FrontierError> {
    let bad = || FrontierError::BadTile {
        path: tile.path(),
        len: bytes.len(),
        width: tile.width,
    };
    if tile.level == TileLevel::Entries || bytes.len() != usize::from(tile.width) * HASH_SIZE {
        return Err(bad());
    }
    Ok(bytes
        .chunks_exact(HASH_SIZE)
        .map(|chunk| Hash::from_slice(chunk).expect("chunks of HASH_SIZE"))
        .collect())
}

#[cfg(test)]
mod tests;
