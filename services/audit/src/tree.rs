//! RFC 6962 Merkle trees: the hashes, the root of a tree, and inclusion and consistency proofs
//! with the RFC 9162 (§2.1.3, §2.1.4) generation and verification algorithms.
//!
//! Leaf `i` of a hooklog tree is the canonical entry of the message at stream sequence `i + 1`
//! (see `entry`). Every function here is pure; the verifiers take only what a client holds
//! (sizes, hashes, a proof), so they are as small as the RFC's pseudocode. Generation reads the
//! hashes of perfect subtrees from a [`SubtreeHashes`]: the leaves themselves (O(n) hashing per
//! proof, for tests), a `Frontier`, or stored tiles (`tiles::TileHashes`, where C2SP tlog-tiles
//! make every full subtree's hash a lookup); the `*_subtrees` functions list what a proof will
//! read, so a server fetches exactly those tiles first.

use std::fmt;

use sha2::{Digest, Sha256};

/// The size of a SHA-256 hash, the only hash these trees use.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash: a leaf hash, a node hash or a tree's root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// The hash in a byte slice of exactly [`HASH_SIZE`] bytes, or `None`.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        bytes.try_into().ok().map(Hash)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", hex::encode(self.0))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf {index} is not in a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A consistency proof needs the old size to be at most the new one.
    #[error("a tree of size {old_size} cannot be a prefix of one of size {new_size}")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    /// The proof has the wrong number of hashes, or its hashes do not lead to the given root.
    #[error("the proof does not verify")]
    Invalid,
}

/// `SHA-256(0x00 || entry)`: the hash of one leaf.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    Hash(
        Sha256::new()
            .chain_update([0x00])
            .chain_update(entry)
            .finalize()
            .into(),
    )
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash(
        Sha256::new()
            .chain_update([0x01])
            .chain_update(left.0)
            .chain_update(right.0)
            .finalize()
            .into(),
    )
}

/// The root of the empty tree, `SHA-256("")` (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// The largest power of two smaller than `n` (`n >= 2`): where RFC 6962 splits a tree.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[0:n]), the root of a tree with these leaf hashes.
///
/// Computed left to right with a stack of the full subtrees seen so far (at most 64), then
/// folded right to left, which is the same tree as RFC 6962's recursive split.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut stack: Vec<(u64, Hash)> = Vec::new();
    for leaf in leaves {
        let mut top = (1u64, *leaf);
        while let Some(&(size, left)) = stack.last() {
            if size != top.0 {
                break;
            }
            stack.pop();
            top = (size * 2, node_hash(&left, &top.1));
        }
        stack.push(top);
    }
    let mut hashes = stack.into_iter().rev().map(|(_, hash)| hash);
    match hashes.next() {
        None => empty_root(),
        Some(last) => hashes.fold(last, |right, left| node_hash(&left, &right)),
    }
}

/// A perfect subtree: the `2^height` leaves from leaf `index << height`. Every hash a root or
/// a proof needs is the root of one of these or a fold of several, which is what lets a server
/// read them from its tiles instead of rehashing leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subtree {
    pub height: u8,
    pub index: u64,
}

/// Where roots and proofs read the hashes of perfect subtrees.
pub trait SubtreeHashes {
    type Error;
    /// The root of `subtree`, which lies wholly inside the tree being proved.
    fn hash(&mut self, subtree: Subtree) -> Result<Hash, Self::Error>;
}

/// The leaf hashes of a whole tree, as a [`SubtreeHashes`]: each subtree is rehashed.
struct Leaves<'a>(&'a [Hash]);

impl SubtreeHashes for Leaves<'_> {
    type Error = std::convert::Infallible;
    fn hash(&mut self, subtree: Subtree) -> Result<Hash, Self::Error> {
        let start = (subtree.index << subtree.height) as usize;
        Ok(root(&self.0[start..start + (1usize << subtree.height)]))
    }
}

/// Records which subtrees an algorithm asks for; the algorithms here never branch on a hash's
/// value, so one run with this source lists exactly what a run with real hashes reads.
struct Recorder(Vec<Subtree>);

impl SubtreeHashes for Recorder {
    type Error = std::convert::Infallible;
    fn hash(&mut self, subtree: Subtree) -> Result<Hash, Self::Error> {
        self.0.push(subtree);
        Ok(Hash::default())
    }
}

fn into_ok<T>(result: Result<T, std::convert::Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

/// The perfect subtrees that make up the leaves `start..end`, left to right: from `start`, each
/// time the largest one aligned there that still fits.
pub fn range_subtrees(mut start: u64, end: u64) -> Vec<Subtree> {
    let mut subtrees = Vec::new();
    while start < end {
        let aligned = if start == 0 {
            63
        } else {
            start.trailing_zeros()
        };
        let fits = 63 - (end - start).leading_zeros();
        let height = aligned.min(fits);
        subtrees.push(Subtree {
            height: height as u8,
            index: start >> height,
        });
        start += 1 << height;
    }
    subtrees
}

/// MTH(D[start:end]) from the hashes of its perfect subtrees. RFC 6962 splits a range at the
/// largest power of two below its size; for every range a root or proof of a tree from leaf 0
/// needs, that is the same tree as folding the range's perfect subtrees right to left.
fn range_root<S: SubtreeHashes>(source: &mut S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let mut hashes = Vec::new();
    for subtree in range_subtrees(start, end) {
        hashes.push(source.hash(subtree)?);
    }
    let mut hashes = hashes.into_iter().rev();
    Ok(match hashes.next() {
        None => empty_root(),
        Some(last) => hashes.fold(last, |right, left| node_hash(&left, &right)),
    })
}

/// The subtrees [`root_from`] reads for a tree of `size` leaves.
pub fn root_subtrees(size: u64) -> Vec<Subtree> {
    range_subtrees(0, size)
}

/// The root of the tree of the first `size` leaves, from `source`.
pub fn root_from<S: SubtreeHashes>(source: &mut S, size: u64) -> Result<Hash, S::Error> {
    range_root(source, 0, size)
}

/// The inclusion proof of leaf `index` in the tree of all `leaves` (RFC 9162 §2.1.3.1 PATH),
/// ordered from the leaf's sibling up to the root's child.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    inclusion_proof_from(&mut Leaves(leaves), leaves.len() as u64, index).map(into_ok)
}

/// [`inclusion_proof`] of leaf `index` in the tree of `size` leaves, reading `source`. The
/// outer error is a bad index, the inner one the source's.
pub fn inclusion_proof_from<S: SubtreeHashes>(
    source: &mut S,
    size: u64,
    index: u64,
) -> Result<Result<Vec<Hash>, S::Error>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    Ok(path(source, index, 0, size, &mut proof).map(|()| proof))
}

/// The subtrees [`inclusion_proof_from`] reads for leaf `index` of a tree of `size` leaves.
pub fn inclusion_subtrees(size: u64, index: u64) -> Result<Vec<Subtree>, ProofError> {
    let mut recorder = Recorder(Vec::new());
    into_ok(inclusion_proof_from(&mut recorder, size, index)?);
    Ok(recorder.0)
}

/// PATH(m, D[start:end]), pushing the hashes from the bottom up.
fn path<S: SubtreeHashes>(
    source: &mut S,
    m: u64,
    start: u64,
    end: u64,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(source, m, start, start + k, proof)?;
        proof.push(range_root(source, start + k, end)?);
    } else {
        path(source, m - k, start + k, end, proof)?;
        proof.push(range_root(source, start, start + k)?);
    }
    Ok(())
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::Invalid);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && r == *root {
        Ok(())
    } else {
        Err(ProofError::Invalid)
    }
}

/// The consistency proof from the tree of the first `old_size` leaves to the tree of all
/// `leaves` (RFC 9162 §2.1.4.1 PROOF). Empty when `old_size` is 0 or the whole tree.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    consistency_proof_from(&mut Leaves(leaves), old_size, leaves.len() as u64).map(into_ok)
}

/// [`consistency_proof`] from the tree of `old_size` leaves to the one of `new_size`, reading
/// `source`. The outer error is sizes out of order, the inner one the source's.
pub fn consistency_proof_from<S: SubtreeHashes>(
    source: &mut S,
    old_size: u64,
    new_size: u64,
) -> Result<Result<Vec<Hash>, S::Error>, ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    let mut proof = Vec::new();
    if old_size == 0 {
        return Ok(Ok(proof));
    }
    Ok(subproof(source, old_size, 0, new_size, true, &mut proof).map(|()| proof))
}

/// The subtrees [`consistency_proof_from`] reads.
pub fn consistency_subtrees(old_size: u64, new_size: u64) -> Result<Vec<Subtree>, ProofError> {
    let mut recorder = Recorder(Vec::new());
    into_ok(consistency_proof_from(&mut recorder, old_size, new_size)?);
    Ok(recorder.0)
}

/// SUBPROOF(m, D[start:end], whole).
fn subproof<S: SubtreeHashes>(
    source: &mut S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            proof.push(range_root(source, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(source, m, start, start + k, whole, proof)?;
        proof.push(range_root(source, start + k, end)?);
    } else {
        subproof(source, m - k, start + k, end, false, proof)?;
        proof.push(range_root(source, start, start + k)?);
    }
    Ok(())
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof
/// and equal roots; the empty tree is a prefix of every tree, with an empty proof.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        let roots_agree = old_size == new_size && old_root == new_root;
        let empty = old_size == 0 && *old_root == empty_root();
        return if proof.is_empty() && (roots_agree || empty) {
            Ok(())
        } else {
            Err(ProofError::Invalid)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::Invalid);
    }
    let mut path = proof.iter();
    let first = if old_size.is_power_of_two() {
        *old_root
    } else {
        *path.next().ok_or(ProofError::Invalid)?
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in path {
        if sn == 0 {
            return Err(ProofError::Invalid);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(ProofError::Invalid)
    }
}

#[cfg(test)]
mod tests;
