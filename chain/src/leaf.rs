//! A billed block as a leaf of an epoch's Merkle tree, encoded exactly as the settlement
//! contract (`GridplayTypes.hashLeaf`) encodes it.

use crate::abi;
use crate::merkle::{Hash, keccak256};

/// A 20-byte Ethereum address.
pub type Address = [u8; 20];

/// One billed 15-minute block of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Leaf {
    /// On-chain session id: the EIP-712 digest of the player's voucher.
    pub session_id: Hash,
    /// Index of the block within the session, from 0.
    pub block_index: u32,
    /// The payer (the voucher's signer).
    pub player: Address,
    /// The payee (the voucher's host).
    pub host: Address,
    /// Wei billed for the block (the contract's `uint256`; amounts fit in 128 bits).
    pub amount: u128,
    /// [`ProbeSummary::struct_hash`](crate::ProbeSummary::struct_hash) of the summary the
    /// block was billed on.
    pub probe_summary_hash: Hash,
}

impl Leaf {
    /// Length of [`Leaf::encode`]'s output: six ABI words.
    pub const ENCODED_LEN: usize = 6 * 32;

    /// `abi.encode(sessionId, blockIndex, player, host, amount, probeSummaryHash)`, with the
    /// Solidity types `bytes32, uint32, address, address, uint256, bytes32`.
    pub fn encode(&self) -> Vec<u8> {
        abi::encode([
            self.session_id,
            abi::uint(self.block_index.into()),
            abi::address(&self.player),
            abi::address(&self.host),
            abi::uint(self.amount),
            self.probe_summary_hash,
        ])
    }

    /// The leaf as the tree holds it: `keccak256(keccak256(encode()))`. Hashed twice, as
    /// OpenZeppelin's StandardMerkleTree does, so that no inner node can pass for a leaf.
    pub fn hash(&self) -> Hash {
        keccak256(&keccak256(&self.encode()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_land_in_their_words() {
        let leaf = Leaf {
            session_id: [1; 32],
            block_index: 0x0203_0405,
            player: [6; 20],
            host: [7; 20],
            amount: 0x0809,
            probe_summary_hash: [10; 32],
        };
        let bytes = leaf.encode();
        assert_eq!(bytes.len(), Leaf::ENCODED_LEN);
        assert_eq!(bytes[..32], [1; 32]);
        assert_eq!(bytes[60..64], [2, 3, 4, 5]);
        assert_eq!(bytes[32..60], [0; 28]);
        assert_eq!(bytes[76..96], [6; 20]);
        assert_eq!(bytes[108..128], [7; 20]);
        assert_eq!(bytes[158..160], [8, 9]);
        assert_eq!(bytes[160..], [10; 32]);
        assert_eq!(leaf.hash(), keccak256(&keccak256(&bytes)));
    }
}
