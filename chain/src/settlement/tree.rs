//! A positional keccak-256 Merkle tree: a proof also proves the leaf's position.

use crate::Error;
use crate::keccak::{Hash, keccak256};

/// A binary tree over leaf hashes padded with zero hashes to a power of two; a node is
/// `keccak256(left ‖ right)`, so a proof fixes the leaf's index (`GridplaySettlement._verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PositionalTree {
    /// `levels[0]` are the padded leaves, the last level is the root alone.
    levels: Vec<Vec<Hash>>,
    /// Leaves before padding.
    len: usize,
}

impl PositionalTree {
    /// Builds the tree over `leaves`, in order.
    pub fn new(leaves: Vec<Hash>) -> Result<Self, Error> {
        let len = leaves.len();
        if len == 0 {
            return Err(Error::EmptyTree);
        }
        let mut level = leaves;
        level.resize(len.next_power_of_two(), [0; 32]);
        let mut levels = vec![level];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let next = levels
                .last()
                .expect("a level")
                .chunks_exact(2)
                .map(|pair| keccak256(&[pair[0], pair[1]].concat()))
                .collect();
            levels.push(next);
        }
        Ok(Self { levels, len })
    }

    /// The root committed on-chain.
    pub fn root(&self) -> Hash {
        self.levels.last().expect("a root")[0]
    }

    /// Number of leaves (before padding).
    pub fn len(&self) -> usize {
        self.len
    }

    /// The sibling hashes from leaf `index` up to the root, bottom first.
    pub fn proof(&self, index: usize) -> Result<Vec<Hash>, Error> {
        if index >= self.len {
            return Err(Error::LeafOutOfRange { index, len: self.len });
        }
        Ok(self.levels[..self.levels.len() - 1]
            .iter()
            .enumerate()
            .map(|(depth, level)| level[(index >> depth) ^ 1])
            .collect())
    }
}

/// Whether `proof` puts `leaf` at `index` under `root`. Levels past the index's bits read
/// its bit as 0, as the contract's `uint256` shift does (a proof of any length is untrusted
/// input, never a reason to panic).
pub(crate) fn verify_at(root: &Hash, leaf: Hash, index: usize, proof: &[Hash]) -> bool {
    let node = proof.iter().enumerate().fold(leaf, |node, (depth, sibling)| {
        let bit = u32::try_from(depth).ok().and_then(|d| index.checked_shr(d)).unwrap_or(0) & 1;
        if bit == 0 {
            keccak256(&[node, *sibling].concat())
        } else {
            keccak256(&[*sibling, node].concat())
        }
    });
    node == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<Hash> {
        (0..n).map(|i| keccak256(&[i])).collect()
    }

    #[test]
    fn every_proof_fixes_its_position() {
        for n in [1u8, 2, 3, 5, 8, 13] {
            let tree = PositionalTree::new(leaves(n)).unwrap();
            for i in 0..n as usize {
                let proof = tree.proof(i).unwrap();
                assert_eq!(proof.len(), (n as usize).next_power_of_two().trailing_zeros() as usize);
                assert!(verify_at(&tree.root(), leaves(n)[i], i, &proof));
                // The same leaf and proof at any other position fail.
                for j in (0..n as usize).filter(|&j| j != i) {
                    assert!(!verify_at(&tree.root(), leaves(n)[i], j, &proof), "n={n} i={i} j={j}");
                }
            }
            assert!(tree.proof(n as usize).is_err());
        }
    }

    /// Found by fuzzing receipts: a proof longer than 64 levels shifted the index by its
    /// width and panicked.
    #[test]
    fn a_proof_longer_than_the_index_is_wide_fails_without_panicking() {
        let tree = PositionalTree::new(leaves(2)).unwrap();
        let mut proof = tree.proof(1).unwrap();
        proof.resize(200, [0; 32]);
        assert!(!verify_at(&tree.root(), leaves(2)[1], 1, &proof));
        assert!(!verify_at(&tree.root(), leaves(2)[1], usize::MAX, &proof));
    }

    #[test]
    fn one_leaf_is_its_own_root() {
        let tree = PositionalTree::new(leaves(1)).unwrap();
        assert_eq!(tree.root(), leaves(1)[0]);
        assert!(tree.proof(0).unwrap().is_empty());
        assert_eq!(PositionalTree::new(Vec::new()), Err(Error::EmptyTree));
    }
}
