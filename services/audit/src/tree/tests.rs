//! The tree checked against a naive transcription of RFC 6962 §2.1 / RFC 9162 §2.1.3–2.1.4
//! over raw entries (hashing with SHA-256 directly, recursing on every split), for every tree
//! size from 1 to 40 and every leaf and prefix in it.

use sha2::{Digest, Sha256};

use super::*;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn k(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(d: &[Vec<u8>]) -> [u8; 32] {
    match d.len() {
        0 => sha256(&[]),
        1 => sha256(&[&[0], &d[0]]),
        n => sha256(&[&[1], &mth(&d[..k(n)]), &mth(&d[k(n)..])]),
    }
}

fn naive_path(m: usize, d: &[Vec<u8>]) -> Vec<[u8; 32]> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = k(n);
    if m < k {
        let mut p = naive_path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

fn naive_subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<[u8; 32]> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = k(n);
    if m <= k {
        let mut p = naive_subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

fn entries(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("entry {i}").into_bytes()).collect()
}

fn raw(hashes: &[Hash]) -> Vec<[u8; 32]> {
    hashes.iter().map(|h| h.0).collect()
}

fn flipped(proof: &[Hash], at: usize) -> Vec<Hash> {
    let mut proof = proof.to_vec();
    proof[at].0[at % HASH_SIZE] ^= 0x01;
    proof
}

#[test]
fn the_empty_tree_has_the_hash_of_the_empty_string_as_its_root() {
    // SHA-256 of zero bytes, as RFC 6962 §2.1 defines MTH({}).
    let expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(root(&[]).to_string(), expected);
    assert_eq!(empty_root().to_string(), expected);
}

#[test]
fn a_leaf_hash_is_prefixed_with_zero_and_a_node_hash_with_one() {
    // SHA-256 of the single byte 0x00: the well-known RFC 6962 hash of an empty leaf.
    let empty_leaf = leaf_hash(b"");
    assert_eq!(
        empty_leaf.to_string(),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    let node = node_hash(&empty_leaf, &leaf_hash(b"x"));
    assert_eq!(node.0, sha256(&[&[1], &empty_leaf.0, &leaf_hash(b"x").0]));
}

#[test]
fn split_point_is_the_largest_power_of_two_below_n() {
    let cases = [
        (2, 1),
        (3, 2),
        (4, 2),
        (5, 4),
        (8, 4),
        (9, 8),
        (1 << 40, 1 << 39),
    ];
    for (n, k) in cases {
        assert_eq!(split_point(n), k, "n = {n}");
    }
}

#[test]
fn roots_match_the_recursive_definition_for_sizes_1_to_40() {
    for n in 0..=40 {
        let d = entries(n);
        let leaves: Vec<Hash> = d.iter().map(|e| leaf_hash(e)).collect();
        assert_eq!(root(&leaves).0, mth(&d), "size {n}");
    }
}

#[test]
fn inclusion_proofs_match_rfc_path_verify_and_fail_when_flipped() {
    for n in 1..=40u64 {
        let d = entries(n as usize);
        let leaves: Vec<Hash> = d.iter().map(|e| leaf_hash(e)).collect();
        let tree_root = root(&leaves);
        for m in 0..n {
            let proof = inclusion_proof(&leaves, m).unwrap();
            assert_eq!(raw(&proof), naive_path(m as usize, &d), "PATH({m}, D[{n}])");
            let leaf = leaves[m as usize];
            assert_eq!(verify_inclusion(m, n, &leaf, &proof, &tree_root), Ok(()));

            for at in 0..proof.len() {
                let bad = flipped(&proof, at);
                assert!(verify_inclusion(m, n, &leaf, &bad, &tree_root).is_err());
            }
            let mut bad_leaf = leaf;
            bad_leaf.0[7] ^= 0x80;
            assert!(verify_inclusion(m, n, &bad_leaf, &proof, &tree_root).is_err());
            let other = (m + 1) % n;
            if other != m {
                assert!(verify_inclusion(other, n, &leaf, &proof, &tree_root).is_err());
            }
            let mut short = proof.clone();
            if short.pop().is_some() {
                assert!(verify_inclusion(m, n, &leaf, &short, &tree_root).is_err());
            }
            let mut long = proof.clone();
            long.push(leaf);
            assert!(verify_inclusion(m, n, &leaf, &long, &tree_root).is_err());
        }
        assert_eq!(
            inclusion_proof(&leaves, n),
            Err(ProofError::IndexOutOfRange { index: n, size: n })
        );
    }
}

#[test]
fn consistency_proofs_match_rfc_proof_verify_and_fail_when_flipped() {
    for n in 1..=40u64 {
        let d = entries(n as usize);
        let leaves: Vec<Hash> = d.iter().map(|e| leaf_hash(e)).collect();
        let new_root = root(&leaves);
        for m in 0..=n {
            let old_root = root(&leaves[..m as usize]);
            let proof = consistency_proof(&leaves, m).unwrap();
            let expected = if m == 0 {
                vec![]
            } else {
                naive_subproof(m as usize, &d, true)
            };
            assert_eq!(raw(&proof), expected, "PROOF({m}, D[{n}])");
            assert_eq!(
                verify_consistency(m, n, &old_root, &new_root, &proof),
                Ok(()),
                "{m} -> {n}"
            );

            for at in 0..proof.len() {
                let bad = flipped(&proof, at);
                assert!(verify_consistency(m, n, &old_root, &new_root, &bad).is_err());
            }
            let mut bad_old = old_root;
            bad_old.0[0] ^= 0x01;
            assert!(verify_consistency(m, n, &bad_old, &new_root, &proof).is_err());
            if m > 0 {
                // Every tree extends the empty one, whatever its root.
                let mut bad_new = new_root;
                bad_new.0[31] ^= 0x01;
                assert!(verify_consistency(m, n, &old_root, &bad_new, &proof).is_err());
            }
            if m > 0 && m < n {
                assert!(verify_consistency(m, n, &old_root, &new_root, &[]).is_err());
                let mut long = proof.clone();
                long.push(new_root);
                assert!(verify_consistency(m, n, &old_root, &new_root, &long).is_err());
            }
        }
        assert_eq!(
            consistency_proof(&leaves, n + 1),
            Err(ProofError::SizesOutOfOrder {
                old_size: n + 1,
                new_size: n
            })
        );
    }
}

#[test]
fn a_root_pinned_for_seven_leaves_stays_the_same() {
    // Computed once with Python's hashlib from RFC 6962 §2.1 (leaves "entry 0".."entry 6")
    // and pasted; larger trees of this kind are checked against Go's
    // golang.org/x/mod/sumdb/tlog in the integration test (there over 66,770 leaves).
    let leaves: Vec<Hash> = entries(7).iter().map(|e| leaf_hash(e)).collect();
    assert_eq!(root(&leaves).to_string(), SEVEN_LEAF_ROOT);
}

const SEVEN_LEAF_ROOT: &str = "98c97f0ba3175cd08b031dd084b9dc4e649b64d1a28e6ea694646503173ab587";
