//! `gridplay settle`: submits the signed epoch roots of a local ledger to the
//! settlement contract, exactly once each.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use gridplay_chain::settlement::{Ledger, SettlementClient, settle};

/// `gridplay settle` flags.
#[derive(Args)]
pub struct SettleArgs {
    /// The ledger of signed epoch roots.
    #[arg(long, env = "GRIDPLAY_LEDGER", default_value = "gridplay-ledger.jsonl")]
    ledger: PathBuf,
    /// EVM JSON-RPC endpoint.
    #[arg(long, env = "GRIDPLAY_RPC_URL")]
    rpc_url: String,
    /// Address of the settlement contract.
    #[arg(long, env = "GRIDPLAY_CONTRACT")]
    contract: alloy::primitives::Address,
    /// File holding the operator's secp256k1 private key (hex).
    #[arg(long, env = "GRIDPLAY_OPERATOR_KEY_FILE")]
    operator_key_file: PathBuf,
}

/// Submits every pending root and prints what was done.
pub async fn run(args: SettleArgs) -> anyhow::Result<()> {
    let key_text = std::fs::read_to_string(&args.operator_key_file)
        .with_context(|| format!("reading {}", args.operator_key_file.display()))?;
    let signer: alloy::signers::local::PrivateKeySigner =
        key_text.trim().parse().context("the operator key must be a hex secp256k1 private key")?;
    let client = SettlementClient::connect(&args.rpc_url, signer, args.contract).await?;
    let ledger = Ledger::new(&args.ledger);
    let done = settle(&ledger, &client).await?;
    for s in &done {
        match s.tx {
            Some(tx) => println!("committed {} as epoch {} in {tx}", s.root, s.epoch_id),
            None => println!("{} was already epoch {}; recorded", s.root, s.epoch_id),
        }
    }
    if done.is_empty() {
        println!("nothing to submit");
    }
    Ok(())
}
