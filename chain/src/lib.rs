//! Settlement primitives: every billed block of every session in an epoch becomes a leaf of
//! one positional Merkle tree whose root is committed on-chain, next to each host's total and
//! each player's cumulative spend.
//!
//! - [`bill_block`]: the billing rule, one pure function from a block's per-second probe
//!   records and the session's [`Sla`] to the billable amount.
//! - [`evidence`]: a host's signed record of a session read as per-second evidence: only
//!   the client's own signed reports that pass every check count.
//! - [`ProbeSummary`]: a block's summary; its EIP-712 struct hash goes into the block's leaf.
//! - [`Leaf`]: a billed block.
//! - [`settlement`]: the epoch's sections and tree (hashed exactly as the contract in
//!   `chain/contracts` hashes them), the client that deploys, commits, claims, records spend
//!   and proves faults on any EVM JSON-RPC endpoint (alloy), receipts, and the local ledger of
//!   signed roots for when no chain is configured.
//!
//! Nothing here reads a clock: callers say which seconds a block covered.

mod abi;
mod billing;
mod error;
pub mod evidence;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod keccak;
mod leaf;
pub mod settlement;
mod summary;

pub use billing::{BLOCK_SECONDS, BlockBill, ProbeRecord, Sla, bill_block};
pub use error::Error;
pub use keccak::{Hash, keccak256};
pub use leaf::{Address, Leaf};
pub use summary::{PROBE_SUMMARY_TYPE, ProbeSummary};
