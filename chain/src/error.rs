//! The crate's one error type.

use thiserror::Error;

/// Why a tree, proof or bill could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// A Merkle tree needs at least one leaf.
    #[error("a Merkle tree needs at least one leaf")]
    EmptyTree,
    /// The leaf index is past the end of the tree.
    #[error("leaf {index} out of range (tree has {len})")]
    LeafOutOfRange {
        /// Requested index.
        index: usize,
        /// Number of leaves.
        len: usize,
    },
    /// A block cannot cover more seconds than a block has.
    #[error("a block covers at most {max} seconds, not {covered}")]
    BlockTooLong {
        /// Seconds claimed as covered.
        covered: u32,
        /// Seconds in a block.
        max: u32,
    },
    /// There are more probe records than covered seconds (at most one record a second).
    #[error("{records} probe records for {covered} covered seconds")]
    TooManyRecords {
        /// Records given.
        records: usize,
        /// Seconds covered.
        covered: u32,
    },
    /// The share of seconds that must meet the bar is outside 1..=10 000 basis points.
    #[error("min_met_bps must be in 1..=10000, not {0}")]
    InvalidSla(u16),
    /// A host's record of a session was refused whole: why.
    #[error("host record refused: {0}")]
    BadRecord(String),
    /// The contract refused a transaction: it would revert, with the contract's own error
    /// (for example `LeafWithinVoucher` for a dispute of a block its voucher allows).
    #[error("{call} refused by the contract: {reason}")]
    Reverted {
        /// The contract function called.
        call: String,
        /// The contract's custom error and its arguments, or what is known of the revert.
        reason: String,
    },
    /// The chain, its RPC endpoint or a transaction failed.
    #[error("chain: {0}")]
    Chain(String),
    /// The local ledger could not be read or written.
    #[error("ledger: {0}")]
    Ledger(String),
    /// An epoch holds no block of the session a receipt was asked for.
    #[error("no block of session {0} in the epoch")]
    SessionNotInEpoch(String),
    /// A pool epoch cannot be built from these blocks.
    #[error("pool epoch: {0}")]
    InvalidEpoch(String),
    /// A receipt is malformed, or cannot be built or merged as asked.
    #[error("receipt: {0}")]
    Receipt(String),
}
