//! Deploying `GridplayPool` and speaking its types.

use alloy::primitives::Address;
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;

use super::{GridplayPool, GridplayPoolInstance, GridplayTypes};
use crate::Error;
use crate::settlement::{Voucher, provider};

/// Constructor arguments of the pool (seconds and wei).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolParams {
    /// Seconds after a commit during which faults and disputes can be proven.
    pub challenge_window: u64,
    /// Seconds a host waits between asking to unbond and withdrawing; at least the window.
    pub unbonding_period: u64,
    /// Seconds a player waits to withdraw; at least twice the window.
    pub withdrawal_delay: u64,
    /// Smallest host and operator bond.
    pub min_bond: u128,
    /// Bond slashed from a host per refunded block.
    pub slash_amount: u128,
    /// Wei a voucher challenge carries.
    pub challenge_bond: u128,
}

/// Deploys a new pool with `signer` as its operator.
pub async fn deploy_pool(
    rpc_url: &str,
    signer: PrivateKeySigner,
    params: PoolParams,
) -> Result<GridplayPoolInstance<DynProvider>, Error> {
    let operator: Address = signer.address();
    let provider = provider(rpc_url, signer).await?;
    GridplayPool::deploy(
        provider,
        operator,
        params.challenge_window,
        params.unbonding_period,
        params.withdrawal_delay,
        params.min_bond,
        params.slash_amount,
        params.challenge_bond,
    )
    .await
    .map_err(|e| Error::Chain(format!("deploying GridplayPool: {e}")))
}

/// A voucher as the pool's binding types it (the same record and EIP-712 type).
pub fn pool_voucher(v: &Voucher) -> GridplayTypes::Voucher {
    GridplayTypes::Voucher {
        host: v.host,
        sessionKey: v.sessionKey,
        pricePerBlock: v.pricePerBlock,
        maxBlocks: v.maxBlocks,
        expiry: v.expiry,
        nonce: v.nonce,
    }
}
