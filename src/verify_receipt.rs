//! `gridplay verify-receipt`: checks a session receipt against the chain alone and prints a
//! line per block; fails when any check fails.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use gridplay_chain::settlement::{Receipt, verify_receipt};

/// `gridplay verify-receipt` flags.
#[derive(Args)]
pub struct VerifyReceiptArgs {
    /// The receipt, as JSON (as `GET /v1/sessions/{id}/receipt` returns it).
    file: PathBuf,
    /// EVM JSON-RPC endpoint of the chain the receipt names.
    #[arg(long, env = "GRIDPLAY_RPC_URL")]
    rpc_url: String,
}

/// Verifies the receipt and prints the verdicts; an error when any check fails.
pub async fn run(args: VerifyReceiptArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let receipt = Receipt::from_json(&text).with_context(|| args.file.display().to_string())?;
    let check = verify_receipt(&receipt, &args.rpc_url).await?;
    let player = check.player.map_or("unknown".into(), |p| p.to_string());
    println!(
        "session {} on chain {} (contract {}), player {player}, host {}",
        receipt.session_id, receipt.chain_id, receipt.contract, receipt.voucher.host
    );
    for failure in &check.failures {
        println!("  FAILED: {failure}");
    }
    for block in &check.blocks {
        let settled =
            block.epoch_state.map_or("epoch not on chain".to_string(), |s| format!("epoch {s}"));
        let verdict = if block.ok() { "ok" } else { "FAILED" };
        println!(
            "  block {:>3}  epoch {:>4}  {:>22} wei  {verdict}  ({settled})",
            block.block_index, block.epoch_id, block.amount
        );
        for failure in &block.failures {
            println!("             {failure}");
        }
    }
    if !check.ok() {
        anyhow::bail!("the receipt does not check out against the chain");
    }
    println!("receipt ok: {} blocks, {} wei", check.blocks.len(), receipt.total());
    Ok(())
}
