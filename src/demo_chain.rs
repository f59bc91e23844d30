//! The local chain `gridplay up --anvil` runs: a fresh anvil, the settlement
//! contract deployed, the host bonded and a demo player funded, so that the
//! demo's sessions are billed, committed and claimable like real ones.

use std::path::Path;
use std::time::Duration;

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use gridplay_chain::settlement::{DeployParams, SettlementClient};
use gridplay_session_broker::settlement::SettlementConfig;

/// One ether, in wei.
const ETHER: u128 = 1_000_000_000_000_000_000;

/// What the host charges per 15-minute block on the demo chain (0.01 ETH).
pub const DEMO_PRICE_PER_BLOCK: u64 = 10_000_000_000_000_000;

/// A running demo chain.
pub struct DemoChain {
    /// Keeps anvil alive; it stops when this is dropped.
    _anvil: AnvilInstance,
    /// The broker's settlement settings (the operator commits epochs).
    pub settlement: SettlementConfig,
    /// The host's payout address (bonded).
    pub payout_address: Address,
}

/// Starts anvil from `anvil_path`, deploys, bonds the host and funds the
/// demo player; epochs every `epoch`.
pub async fn start(anvil_path: &Path, epoch: Duration) -> anyhow::Result<DemoChain> {
    anyhow::ensure!(
        anvil_path.exists(),
        "anvil not found at {} (run `make chain-deps`)",
        anvil_path.display()
    );
    let anvil = Anvil::new().path(anvil_path).try_spawn().context("starting anvil")?;
    let url = anvil.endpoint();
    let key = |i: usize| PrivateKeySigner::from(anvil.keys()[i].clone());
    let (operator, host, player) = (key(0), key(1), key(2));
    let params = DeployParams {
        challenge_window: 60,
        unbonding_period: 120,
        withdrawal_delay: 120,
        min_bond: ETHER,
        slash_amount: ETHER / 10,
    };
    let client = SettlementClient::deploy(&url, operator, params).await?;
    client.with_signer(&url, host.clone()).await?.bond(U256::from(ETHER)).await?;
    client.with_signer(&url, player.clone()).await?.deposit(U256::from(10 * ETHER)).await?;
    tracing::info!(contract = %client.address(), %url, "demo chain: contract deployed, host bonded, player funded");
    let player_key = format!("0x{}", alloy::hex::encode(player.to_bytes()));
    Ok(DemoChain {
        settlement: SettlementConfig {
            client,
            epoch,
            rpc_url: Some(url),
            demo_player_key: Some(player_key),
            min_met_bps: 7_500,
        },
        payout_address: host.address(),
        _anvil: anvil,
    })
}
