//! A block's probe summary: what an observer (the client's session key, a checker) saw of one
//! block and what the billing rule makes of it. Its EIP-712 struct hash is the leaf's
//! `probe_summary_hash`; signing it (under the contract's domain) is the settlement client's job.

use crate::abi;
use crate::billing::BlockBill;
use crate::keccak::{Hash, keccak256};

/// The EIP-712 type of [`ProbeSummary`], as `GridplayTypes.PROBE_SUMMARY_TYPEHASH` spells it.
pub const PROBE_SUMMARY_TYPE: &str = concat!(
    "ProbeSummary(bytes32 sessionId,uint32 blockIndex,",
    "uint32 secondsCovered,uint32 secondsMet,uint256 amount)"
);

/// The summary of one block of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeSummary {
    /// On-chain session id: the EIP-712 digest of the player's voucher.
    pub session_id: Hash,
    /// Index of the block within the session, from 0.
    pub block_index: u32,
    /// Seconds of the block the session covered.
    pub seconds_covered: u32,
    /// Covered seconds whose probes met the session's bar.
    pub seconds_met: u32,
    /// Billable wei by [`bill_block`](crate::bill_block).
    pub amount: u128,
}

impl ProbeSummary {
    /// The summary of a block billed as `bill`.
    pub fn from_bill(session_id: Hash, block_index: u32, bill: &BlockBill) -> Self {
        Self {
            session_id,
            block_index,
            seconds_covered: bill.covered_seconds,
            seconds_met: bill.met_seconds,
            amount: bill.amount,
        }
    }

    /// EIP-712 `hashStruct`: `keccak256(abi.encode(typeHash, sessionId, blockIndex,
    /// secondsCovered, secondsMet, amount))`.
    pub fn struct_hash(&self) -> Hash {
        keccak256(&abi::encode([
            keccak256(PROBE_SUMMARY_TYPE.as_bytes()),
            self.session_id,
            abi::uint(self.block_index.into()),
            abi::uint(self.seconds_covered.into()),
            abi::uint(self.seconds_met.into()),
            abi::uint(self.amount),
        ]))
    }
}
