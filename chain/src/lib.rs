//! Settlement primitives: every billed block of every session in an epoch becomes a leaf of
//! one Merkle tree whose root is committed on-chain.
//!
//! - [`bill_block`]: the billing rule, one pure function from a block's per-second probe
//!   records and the session's [`Sla`] to the billable amount.
//! - [`ProbeSummary`]: a block's summary; its EIP-712 struct hash goes into the leaf.
//! - [`Leaf`]: a billed block, encoded and hashed exactly as the settlement contract in
//!   `chain/contracts` does (`abi.encode`, keccak-256 twice).
//! - [`MerkleTree`]: keccak-256 with each pair hashed in sorted order (OpenZeppelin's
//!   `MerkleProof`), so a proof made here verifies in the contract unchanged.
//!
//! - [`pool`]: netted settlement (`GridplayPool`): one root per epoch over blocks with
//!   running sums, host totals and players' cumulative spend; one claim per host per epoch.
//! - [`settlement`]: the client that deploys, commits, claims and disputes on any EVM
//!   JSON-RPC endpoint (alloy), and the local ledger of signed roots for when no chain
//!   is configured.
//!
//! Nothing here reads a clock: callers say which seconds a block covered.

mod abi;
mod billing;
mod error;
mod leaf;
mod merkle;
pub mod pool;
pub mod settlement;
mod summary;

pub use billing::{BLOCK_SECONDS, BlockBill, ProbeRecord, Sla, bill_block};
pub use error::Error;
pub use leaf::{Address, Leaf};
pub use merkle::{Hash, MerkleTree, keccak256, verify};
pub use summary::{PROBE_SUMMARY_TYPE, ProbeSummary};
