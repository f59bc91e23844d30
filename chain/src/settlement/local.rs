//! A local chain for demos and tests: a fresh anvil with the settlement
//! contract deployed, the operator and a host bonded and a player funded.

use std::path::Path;

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;

use super::{DeployParams, SettlementClient};
use crate::Error;

/// The anvil binary `make chain-deps` installs (npm `@foundry-rs/anvil`).
pub const BUNDLED_ANVIL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
);

/// A running local chain; anvil stops when it is dropped.
pub struct LocalChain {
    /// The anvil process.
    pub anvil: AnvilInstance,
    /// The operator's handle on the deployed contract (anvil's account 0).
    pub operator: SettlementClient,
    /// The operator's key (it commits epochs and signs ledger roots).
    pub operator_key: PrivateKeySigner,
    /// The bonded host's key (account 1).
    pub host: PrivateKeySigner,
    /// The funded player's key (account 2).
    pub player: PrivateKeySigner,
}

impl DeployParams {
    /// Short windows for a local chain: a minute to prove a fault, two to unbond or
    /// withdraw; a bond of one ether, a tenth of it slashed per refunded block, a
    /// hundredth of one for a voucher challenge.
    pub fn local() -> Self {
        const ETHER: u128 = 1_000_000_000_000_000_000;
        Self {
            challenge_window: 60,
            unbonding_period: 120,
            withdrawal_delay: 120,
            min_bond: ETHER,
            slash_amount: ETHER / 10,
            challenge_bond: ETHER / 100,
        }
    }
}

impl LocalChain {
    /// Starts the anvil binary at `anvil_path`, deploys with `params`, bonds the
    /// operator and the host with `bond` wei each and deposits `deposit` wei for the player.
    pub async fn start(
        anvil_path: &Path,
        params: DeployParams,
        bond: u128,
        deposit: u128,
    ) -> Result<Self, Error> {
        if !anvil_path.exists() {
            return Err(Error::Chain(format!(
                "anvil not found at {} (run `make chain-deps`)",
                anvil_path.display()
            )));
        }
        let anvil = Anvil::new()
            .path(anvil_path)
            .try_spawn()
            .map_err(|e| Error::Chain(format!("starting {}: {e}", anvil_path.display())))?;
        let url = anvil.endpoint();
        let key = |i: usize| PrivateKeySigner::from(anvil.keys()[i].clone());
        let (operator, host, player) = (key(0), key(1), key(2));
        let operator_key = operator.clone();
        let operator = SettlementClient::deploy(&url, operator, params).await?;
        operator.bond_operator(U256::from(bond)).await?;
        operator.with_signer(&url, host.clone()).await?.bond(U256::from(bond)).await?;
        operator.with_signer(&url, player.clone()).await?.deposit(U256::from(deposit)).await?;
        Ok(Self { anvil, operator, operator_key, host, player })
    }

    /// The chain's JSON-RPC endpoint.
    pub fn rpc_url(&self) -> String {
        self.anvil.endpoint()
    }
}
