//! What the broker asks of a settler, when it settles on a chain: the broker tells it of
//! each allocation and hands it players' vouchers; it answers receipts and host claims, and
//! runs its own rounds. The settler lives in its own crate (`gridplay-settler`); the broker
//! knows it only through this trait.

use gridplay_protocol::settlement::{
    HostClaims, SessionReceipt, SettlementInfo, VoucherSubmission,
};
use gridplay_protocol::{HostRegistration, SessionClaims};
use tokio::sync::watch;

use crate::BrokerError;

/// A settler, as the broker sees it.
#[async_trait::async_trait]
pub trait Settlement: Send + Sync {
    /// `GET /v1/settlement`: the chain and contract, and the bar sessions are billed against.
    fn info(&self) -> SettlementInfo;

    /// A session was allocated at `now_ms` on `host` with `claims`, at `price_per_block`
    /// wei (the host's price at its region's demand then; the voucher must name it). An
    /// error means the settler could not keep it, and the allocation must not stand.
    fn allocated(
        &self,
        claims: &SessionClaims,
        host: &HostRegistration,
        price_per_block: u64,
        now_ms: u64,
    ) -> Result<(), BrokerError>;

    /// `POST /v1/sessions/{id}/voucher` at `now_s` (Unix seconds).
    async fn submit_voucher(
        &self,
        session_id: &str,
        submission: &VoucherSubmission,
        now_s: u64,
    ) -> Result<(), BrokerError>;

    /// The bond a host's payout address (`0x…`) keeps in the contract and stands behind, in
    /// wei (0 when none, or unbonding).
    async fn host_bond(&self, payout_address: &str) -> Result<u128, BrokerError>;

    /// `GET /v1/settlement/claims/{host}`.
    fn host_claims(&self, host: &str) -> Result<HostClaims, BrokerError>;

    /// `GET /v1/sessions/{id}/receipt`.
    fn receipt(&self, session_id: &str) -> Result<SessionReceipt, BrokerError>;

    /// What the network delivered, as billed, as of `now_ms` (`GET /v1/network`).
    fn network(&self, now_ms: u64) -> gridplay_protocol::network::Delivered;

    /// Settles round after round, reading hosts' records with tokens signed by `token_key`,
    /// until `stop` turns true; a round under way then finishes, or is given up where
    /// nothing is lost.
    async fn run(&self, token_key: ed25519_dalek::SigningKey, stop: watch::Receiver<bool>);
}
