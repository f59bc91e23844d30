//! The settlement client: talks to the `GridplaySettlement` contract on any
//! EVM JSON-RPC endpoint (alloy), and keeps a local append-only ledger of
//! signed epoch roots for when no chain is configured, submitted later by
//! `gridplay settle`, exactly once.

mod client;
mod epoch;
mod ledger;
mod local;
mod receipt;

pub(crate) use client::provider;
pub use client::{DeployParams, SettlementClient};
pub use epoch::{
    BilledBlock, DisputeEvidence, Epoch, Voucher, probe_summary_digest, sign_probe_summary,
    sign_voucher, voucher_session_id,
};
pub use ledger::{Ledger, LedgerEpoch, Submission, settle};
pub use local::{BUNDLED_ANVIL, LocalChain};
pub use receipt::{BlockVerdict, Failure, Receipt, ReceiptBlock, ReceiptCheck, verify_receipt};

alloy::sol!(
    #[allow(missing_docs, clippy::too_many_arguments)]
    #[sol(rpc)]
    #[derive(Debug)]
    GridplaySettlement,
    "contracts/artifacts/GridplaySettlement.json"
);
