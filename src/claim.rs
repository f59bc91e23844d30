//! `gridplay claim`: a host claims its totals for final epochs, one leaf per
//! epoch whatever number of its sessions the epoch holds, all in one
//! transaction per contract. The leaves come from the broker that settles
//! (`GET /v1/settlement/claims/{host}`, with `--broker`) or from session
//! receipts (`GET /v1/sessions/{id}/receipt`); epochs already paid or not
//! yet final are left for later.

use std::collections::BTreeMap;
use std::path::PathBuf;

use alloy::primitives::Address;
use anyhow::Context;
use clap::Args;
use gridplay_chain::settlement::{
    EpochState, HostAt, HostClaim, HostLeaf, Receipt, ReceiptHostTotal, SettlementClient,
};
use gridplay_protocol::settlement::HostClaims;

/// `gridplay claim` flags.
#[derive(Args)]
pub struct ClaimArgs {
    /// Receipt files (JSON, as the broker serves them under `receipt`).
    #[arg(required_unless_present = "broker")]
    receipts: Vec<PathBuf>,
    /// The broker that settles: claim every epoch it has a receipt of for this host.
    #[arg(long, env = "GRIDPLAY_BROKER_URL")]
    broker: Option<String>,
    /// EVM JSON-RPC endpoint.
    #[arg(long, env = "GRIDPLAY_RPC_URL")]
    rpc_url: String,
    /// File holding the host's payout key (hex secp256k1): the address the vouchers name.
    #[arg(long, env = "GRIDPLAY_PAYOUT_KEY_FILE")]
    payout_key_file: PathBuf,
}

/// Claims the host's totals of every final epoch listed and prints the transactions.
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
    if let Some(broker) = &args.broker {
        let (contract, listed) = listed_claims(&reqwest::Client::new(), broker, host).await?;
        by_contract.entry(contract).or_default().extend(listed);
    }
    for (contract, epochs) in by_contract {
        let client = SettlementClient::connect(&args.rpc_url, signer.clone(), contract).await?;
        let said = |line: String| println!("{line} on {contract}");
        if let Some((epochs, tx)) = claim_final(&client, host, epochs, said).await? {
            let epochs: Vec<String> = epochs.iter().map(u32::to_string).collect();
            println!(
                "claimed the host's totals of epoch(s) {} on {contract}: {tx}",
                epochs.join(", ")
            );
        }
    }
    Ok(())
}

/// The host's total in each epoch, as the broker that settles lists them
/// (`GET /v1/settlement/claims/{host}`), ready to claim with; and the contract.
pub async fn listed_claims(
    http: &reqwest::Client,
    broker: &str,
    host: Address,
) -> anyhow::Result<(Address, BTreeMap<u32, HostClaim>)> {
    let url = format!("{}/v1/settlement/claims/{host:#x}", broker.trim_end_matches('/'));
    let response = http.get(url).send().await.context("reaching the broker")?;
    let listed: HostClaims = response.error_for_status()?.json().await?;
    let contract: Address = listed.contract.parse().context("the broker's contract")?;
    let mut claims = BTreeMap::new();
    for total in listed.totals {
        let total: ReceiptHostTotal = serde_json::from_value(total)?;
        let leaf = HostLeaf {
            host,
            amount: alloy::primitives::U256::from(total.amount),
            running: alloy::primitives::U256::from(total.running),
        };
        let at = HostAt { index: total.position, leaf, proof: total.proof };
        let epoch = u32::try_from(total.epoch_id).context("epoch id")?;
        claims.insert(epoch, HostClaim { epochId: epoch, at });
    }
    Ok((contract, claims))
}

/// Makes what it can of `epochs` final and claims those final and unpaid, in one
/// transaction; `say` hears why each other epoch was left. Returns the epochs
/// claimed and the transaction, or `None` when none could be.
pub async fn claim_final(
    client: &SettlementClient,
    host: Address,
    epochs: BTreeMap<u32, HostClaim>,
    mut say: impl FnMut(String),
) -> anyhow::Result<Option<(Vec<u32>, alloy::primitives::B256)>> {
    let last = epochs.keys().next_back().copied().map(u64::from).unwrap_or(0);
    let final_through = client.finalize_through(last).await?;
    let mut claims = Vec::new();
    for (epoch, claim) in epochs {
        let state = client.epoch(epoch.into()).await?.1;
        if client.is_paid(host, epoch.into()).await? {
            say(format!("epoch {epoch} was already paid"));
        } else if state == EpochState::Void {
            say(format!("epoch {epoch} was voided: nothing to claim"));
        } else if final_through.is_none_or(|f| u64::from(epoch) > f) {
            say(format!("epoch {epoch} is not final yet: claim it later"));
        } else {
            claims.push(claim);
        }
    }
    if claims.is_empty() {
        return Ok(None);
    }
    let claimed = claims.iter().map(|c| c.epochId).collect();
    Ok(Some((claimed, client.claim(host, claims).await?)))
}
