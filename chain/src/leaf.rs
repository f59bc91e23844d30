//! A billed block: what the settler bills and the epoch's blocks section holds (with running
//! sums added, `settlement::Sections`).

use crate::keccak::Hash;

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
