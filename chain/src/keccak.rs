//! keccak-256, the hash of every leaf, tree node and EIP-712 struct here.

use sha3::{Digest, Keccak256};

/// A 32-byte keccak-256 digest.
pub type Hash = [u8; 32];

/// keccak-256 of `bytes`.
pub fn keccak256(bytes: &[u8]) -> Hash {
    Keccak256::digest(bytes).into()
}
