//! Settlement on the `GridplaySettlement` contract (`chain/contracts` states its rules): an
//! epoch's sections and positional tree, the client that talks to the contract on any EVM
//! JSON-RPC endpoint (alloy), receipts, and a local append-only ledger of signed epoch roots
//! for when no chain is configured, submitted later by `gridplay settle`, exactly once.

mod client;
mod epoch;
mod ledger;
mod local;
mod receipt;
mod sections;
mod tree;

pub use client::{CommitOutcome, DeployParams, EpochState, SettlementClient, SignedCommit};
pub use epoch::{
    BilledBlock, DisputeEvidence, Epoch, Voucher, probe_summary_digest, sign_probe_summary,
    sign_voucher, voucher_session_id,
};
pub use ledger::{Ledger, LedgerEpoch, Submission, settle};
pub use local::{BUNDLED_ANVIL, LocalChain};
pub use receipt::{
    BlockVerdict, Failure, Receipt, ReceiptBlock, ReceiptCheck, ReceiptHostTotal, verify_receipt,
};
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use receipt::{offline_checks, recover_player};
pub use sections::{Sections, block_hash, host_hash, player_hash};

alloy::sol!(
    #[allow(missing_docs, clippy::too_many_arguments)]
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    GridplaySettlement,
    "contracts/artifacts/GridplaySettlement.json"
);

pub use GridplaySettlement::{
    BlockAt, BlockLeaf, GridplaySettlementInstance, HostAt, HostClaim, HostLeaf, PlayerAt,
    PlayerLeaf,
};
