//! The local chain `gridplay up --anvil` runs: a fresh anvil, the settlement
//! contract deployed, the host bonded and a demo player funded, so that the
//! demo's sessions are billed, committed and claimable like real ones.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use gridplay_chain::settlement::{DeployParams, LocalChain};
use gridplay_protocol::settlement::ServiceLevel;
use gridplay_settler::SettlementConfig;

/// One ether, in wei.
const ETHER: u128 = 1_000_000_000_000_000_000;

/// What the host charges per 15-minute block on the demo chain (0.01 ETH).
pub const DEMO_PRICE_PER_BLOCK: u64 = 10_000_000_000_000_000;

/// A running demo chain.
pub struct DemoChain {
    /// Keeps anvil alive; it stops when this is dropped.
    _chain: LocalChain,
    /// The broker's settlement settings (the operator commits epochs).
    pub settlement: SettlementConfig,
    /// The host's payout key, whose address is bonded.
    pub payout_key: k256::ecdsa::SigningKey,
}

/// Starts anvil from `anvil_path`, deploys, bonds the operator and the host
/// and funds the demo player; epochs every `epoch`.
pub async fn start(anvil_path: &Path, epoch: Duration) -> anyhow::Result<DemoChain> {
    let params = DeployParams::local();
    let chain = LocalChain::start(anvil_path, params, ETHER, 10 * ETHER)
        .await
        .context("starting the demo chain")?;
    let url = chain.rpc_url();
    // A fresh chain: nobody has spent anything yet.
    let state_dir =
        std::env::temp_dir().join(format!("gridplay-demo-settlement-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_dir);
    tracing::info!(contract = %chain.operator.address(), %url, "demo chain: contract deployed, operator and host bonded, player funded");
    let player_key = format!("0x{}", alloy::hex::encode(chain.player.to_bytes()));
    Ok(DemoChain {
        settlement: SettlementConfig {
            client: chain.operator.clone(),
            epoch,
            rpc_url: Some(url),
            demo_player_key: Some(player_key),
            service_level: ServiceLevel::standard(7_500),
            state_dir,
            // Everything of `gridplay up` is on this machine.
            allow_private_hosts: true,
        },
        payout_key: k256::ecdsa::SigningKey::from_slice(&chain.host.to_bytes()[..])
            .context("the demo host's key")?,
        _chain: chain,
    })
}
