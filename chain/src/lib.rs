//! Settlement primitives: every billed block of every session in an epoch
//! becomes a leaf of one Merkle tree whose root is committed on-chain.
//!
//! The tree follows OpenZeppelin's `MerkleProof` conventions (keccak-256,
//! each pair hashed in sorted order), so a proof made here verifies in a
//! Solidity contract unchanged.

mod merkle;

pub use merkle::{Hash, MerkleError, MerkleTree, keccak256, verify};
