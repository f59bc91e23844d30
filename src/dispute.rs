//! `gridplay dispute`: refunds the blocks of a session receipt that a checker's
//! signed block summaries (from `gridplay checker --out`) bill lower than the
//! host did, within their epochs' challenge windows. The contract accepts a
//! summary signed by a checker it has registered, or by the session's key.

use std::path::PathBuf;

use alloy::primitives::Bytes;
use anyhow::Context;
use clap::Args;
use gridplay_chain::ProbeSummary;
use gridplay_chain::settlement::{DisputeEvidence, Receipt, SettlementClient};
use gridplay_protocol::check::{CheckReport, SignedCheck};

/// `gridplay dispute` flags.
#[derive(Args)]
pub struct DisputeArgs {
    /// The session's receipt (JSON, as the broker serves it under `receipt`).
    receipt: PathBuf,
    /// The checker's signed report, holding its block summaries.
    #[arg(long)]
    check: PathBuf,
    /// EVM JSON-RPC endpoint.
    #[arg(long, env = "GRIDPLAY_RPC_URL")]
    rpc_url: String,
    /// File holding the secp256k1 key (hex) that sends the disputes.
    #[arg(long, env = "GRIDPLAY_KEY_FILE")]
    key_file: PathBuf,
}

/// Disputes every block the summaries bill lower; prints what was done.
pub async fn run(args: DisputeArgs) -> anyhow::Result<()> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let receipt = Receipt::from_json(&read(&args.receipt)?)
        .with_context(|| args.receipt.display().to_string())?;
    let signed: SignedCheck = serde_json::from_str(&read(&args.check)?)
        .with_context(|| format!("{} is not a signed check", args.check.display()))?;
    let report: CheckReport = serde_json::from_str(&signed.report).context("the check's report")?;
    let key_text = read(&args.key_file)?;
    let signer: alloy::signers::local::PrivateKeySigner =
        key_text.trim().parse().context("the key must be a hex secp256k1 private key")?;
    let client = SettlementClient::connect(&args.rpc_url, signer, receipt.contract).await?;
    let mut disputed = 0;
    for s in &report.block_summaries {
        let session_id: alloy::primitives::B256 =
            s.session_id.parse().context("summary session id")?;
        if session_id != receipt.session_id {
            continue;
        }
        let Some(block) = receipt.blocks.iter().find(|b| b.block_index == s.block_index) else {
            continue;
        };
        let summary = ProbeSummary {
            session_id: session_id.0,
            block_index: s.block_index,
            seconds_covered: s.seconds_covered,
            seconds_met: s.seconds_met,
            amount: s.amount.parse().context("summary amount")?,
        };
        if summary.amount >= block.amount {
            println!(
                "block {}: billed {} wei, the checker agrees",
                block.block_index, block.amount
            );
            continue;
        }
        let evidence = DisputeEvidence {
            at: block.block_at(),
            voucher: receipt.voucher.clone(),
            voucher_signature: receipt.voucher_signature.clone(),
        };
        let signature: Bytes = s.signature.parse().context("summary signature")?;
        let tx =
            client.dispute_probe_summary(block.epoch_id, &evidence, &summary, signature).await?;
        println!(
            "block {}: billed {} wei, the checker saw {} wei: refunded in {tx}",
            block.block_index, block.amount, summary.amount
        );
        disputed += 1;
    }
    println!("{disputed} block(s) disputed");
    Ok(())
}
