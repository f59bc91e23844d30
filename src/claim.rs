//! `gridplay claim`: a host claims its totals for the epochs of session
//! receipts (from `GET /v1/sessions/{id}/receipt`) once the epochs are final:
//! one leaf per epoch, whatever number of the host's sessions it holds, all
//! in one transaction per contract.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use gridplay_chain::settlement::{Receipt, SettlementClient};

/// `gridplay claim` flags.
#[derive(Args)]
pub struct ClaimArgs {
    /// Receipt files (JSON, as the broker serves them under `receipt`).
    #[arg(required = true)]
    receipts: Vec<PathBuf>,
    /// EVM JSON-RPC endpoint.
    #[arg(long, env = "GRIDPLAY_RPC_URL")]
    rpc_url: String,
    /// File holding the host's payout key (hex secp256k1): the address the vouchers name.
    #[arg(long, env = "GRIDPLAY_PAYOUT_KEY_FILE")]
    payout_key_file: PathBuf,
}

/// Claims every block of the receipts and prints the transactions.
pub async fn run(args: ClaimArgs) -> anyhow::Result<()> {
    let key_text = std::fs::read_to_string(&args.payout_key_file)
        .with_context(|| format!("reading {}", args.payout_key_file.display()))?;
    let signer: alloy::signers::local::PrivateKeySigner =
        key_text.trim().parse().context("the payout key must be a hex secp256k1 private key")?;
    let host = signer.address();
    // One claim per (contract, epoch): receipts of several sessions share the host's total.
    let mut by_contract: BTreeMap<_, BTreeMap<u32, _>> = BTreeMap::new();
    for path in &args.receipts {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let receipt: Receipt = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a receipt", path.display()))?;
        anyhow::ensure!(
            receipt.voucher.host == host,
            "{} is for host {}, not {host}",
            path.display(),
            receipt.voucher.host
        );
        for claim in receipt.claims() {
            by_contract.entry(receipt.contract).or_default().insert(claim.epochId, claim);
        }
    }
    for (contract, epochs) in by_contract {
        let client = SettlementClient::connect(&args.rpc_url, signer.clone(), contract).await?;
        let mut claims = Vec::new();
        for (epoch, claim) in epochs {
            if client.is_paid(host, epoch.into()).await? {
                println!("epoch {epoch} on {contract} was already paid");
            } else {
                claims.push(claim);
            }
        }
        if claims.is_empty() {
            continue;
        }
        let epochs: Vec<String> = claims.iter().map(|c| c.epochId.to_string()).collect();
        let tx = client.claim(host, claims).await?;
        println!("claimed the host's totals of epoch(s) {} on {contract}: {tx}", epochs.join(", "));
    }
    Ok(())
}
