//! A keccak-256 Merkle tree with sorted-pair hashing.

use sha3::{Digest, Keccak256};

use crate::Error;

/// A 32-byte keccak-256 digest.
pub type Hash = [u8; 32];

/// keccak-256 of `bytes`.
pub fn keccak256(bytes: &[u8]) -> Hash {
    Keccak256::digest(bytes).into()
}

fn hash_pair(a: &Hash, b: &Hash) -> Hash {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut hasher = Keccak256::new();
    hasher.update(lo);
    hasher.update(hi);
    hasher.finalize().into()
}

/// A Merkle tree over leaf hashes; an odd node is carried up unpaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` are the leaves, the last level is the root alone.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the tree over `leaves` (already hashed), in order.
    pub fn new(leaves: Vec<Hash>) -> Result<Self, Error> {
        if leaves.is_empty() {
            return Err(Error::EmptyTree);
        }
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let next = levels
                .last()
                .expect("a level")
                .chunks(2)
                .map(|pair| match pair {
                    [a, b] => hash_pair(a, b),
                    [a] => *a,
                    _ => unreachable!("chunks(2)"),
                })
                .collect();
            levels.push(next);
        }
        Ok(Self { levels })
    }

    /// The root committed on-chain.
    pub fn root(&self) -> Hash {
        self.levels.last().expect("a root")[0]
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// Always false: a tree has at least one leaf.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The sibling hashes from leaf `index` up to the root.
    pub fn proof(&self, index: usize) -> Result<Vec<Hash>, Error> {
        if index >= self.len() {
            return Err(Error::LeafOutOfRange { index, len: self.len() });
        }
        let mut proof = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(i ^ 1) {
                proof.push(*sibling);
            }
            i /= 2;
        }
        Ok(proof)
    }
}

/// Checks that `leaf` is in the tree with `root`, as OpenZeppelin's
/// `MerkleProof.verify` does.
pub fn verify(proof: &[Hash], root: &Hash, leaf: &Hash) -> bool {
    proof.iter().fold(*leaf, |acc, sibling| hash_pair(&acc, sibling)) == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| keccak256(&i.to_le_bytes())).collect()
    }

    #[test]
    fn keccak_matches_the_known_empty_digest() {
        let hex: String = keccak256(b"").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
    }

    #[test]
    fn every_leaf_proves_for_every_size() {
        for n in 1..=17 {
            let tree = MerkleTree::new(leaves(n)).unwrap();
            for (i, leaf) in leaves(n).iter().enumerate() {
                let proof = tree.proof(i).unwrap();
                assert!(verify(&proof, &tree.root(), leaf), "n={n} i={i}");
            }
        }
    }

    #[test]
    fn a_wrong_leaf_or_root_does_not_verify() {
        let tree = MerkleTree::new(leaves(5)).unwrap();
        let proof = tree.proof(2).unwrap();
        assert!(!verify(&proof, &tree.root(), &keccak256(b"forged")));
        assert!(!verify(&proof, &keccak256(b"other root"), &leaves(5)[2]));
        assert_eq!(tree.proof(5), Err(Error::LeafOutOfRange { index: 5, len: 5 }));
        assert_eq!(MerkleTree::new(vec![]), Err(Error::EmptyTree));
    }

    #[test]
    fn pairs_hash_in_sorted_order() {
        let (a, b) = (keccak256(b"a"), keccak256(b"b"));
        assert_eq!(
            MerkleTree::new(vec![a, b]).unwrap().root(),
            MerkleTree::new(vec![b, a]).unwrap().root()
        );
        assert_eq!(MerkleTree::new(vec![a]).unwrap().root(), a);
    }
}
