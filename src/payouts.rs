//! The host's earnings for its owner's dashboard: its total in each epoch, as
//! the broker that settles lists them, with where each stands on chain; and
//! claims from the page, as `gridplay claim --broker` makes them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use gridplay_chain::settlement::{EpochState, SettlementClient};
use gridplay_host::dashboard::{Payouts, Pending};
use gridplay_protocol::owner::{ClaimOutcome, EpochEarning, EpochPayout, OwnerEarnings};
use gridplay_protocol::settlement::SettlementInfo;

use crate::claim::{claim_final, listed_claims};

/// A host's payouts on the chain its broker settles on.
pub struct ChainPayouts {
    http: reqwest::Client,
    broker: String,
    /// The chain's JSON-RPC endpoint; the broker's when `None`.
    rpc_url: Option<String>,
    address: Address,
    /// The payout key, where the host holds it: only then can it claim.
    signer: Option<PrivateKeySigner>,
    /// Epochs whose payment can change no more (claimed or void), by id.
    settled: Mutex<HashMap<u32, EpochPayout>>,
    /// The settlement contract's client, once the broker named its chain.
    client: tokio::sync::OnceCell<SettlementClient>,
}

impl ChainPayouts {
    /// Payouts to `address` (whose key is `signer`, if held) of the sessions
    /// the broker at `broker` settles, read over `rpc_url` or the broker's endpoint.
    pub fn shared(
        http: reqwest::Client,
        broker: &str,
        rpc_url: Option<String>,
        address: Address,
        signer: Option<PrivateKeySigner>,
    ) -> Arc<dyn Payouts> {
        let broker = broker.trim_end_matches('/').to_owned();
        let (settled, client) = (Mutex::default(), tokio::sync::OnceCell::new());
        Arc::new(Self { http, broker, rpc_url, address, signer, settled, client })
    }

    /// The settlement contract's client, signing with the payout key (or a throwaway key,
    /// for reading alone), connected once; `None` while the broker settles on no chain.
    async fn chain(&self) -> anyhow::Result<Option<&SettlementClient>> {
        if let Some(client) = self.client.get() {
            return Ok(Some(client));
        }
        let url = format!("{}/v1/settlement", self.broker);
        let response = self.http.get(url).send().await.context("reaching the broker")?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let info: SettlementInfo = response.error_for_status()?.json().await?;
        let rpc_url = self.rpc_url.clone().or(info.rpc_url).context(
            "the broker names no JSON-RPC endpoint of its chain: give the host --rpc-url",
        )?;
        let contract: Address = info.contract.parse().context("the broker's contract")?;
        let signer = self.signer.clone().unwrap_or_else(PrivateKeySigner::random);
        let connect = SettlementClient::connect(&rpc_url, signer, contract);
        Ok(Some(self.client.get_or_try_init(|| connect).await?))
    }

    async fn try_earnings(&self) -> anyhow::Result<OwnerEarnings> {
        let mut earnings = OwnerEarnings {
            payout_address: Some(format!("{:#x}", self.address)),
            can_claim: self.signer.is_some(),
            ..OwnerEarnings::default()
        };
        let Some(client) = self.chain().await? else {
            earnings.note = Some("the broker does not settle sessions on a chain".into());
            return Ok(earnings);
        };
        let (_, listed) = listed_claims(&self.http, &self.broker, self.address).await?;
        for (epoch, claim) in listed {
            let payout = self.payout(client, epoch).await?;
            let amount = claim.at.leaf.amount.to_string();
            earnings.epochs.push(EpochEarning { epoch_id: epoch.into(), amount, payout });
        }
        Ok(earnings)
    }

    /// Where epoch `epoch`'s payment stands: asked of the chain until it can change no more.
    async fn payout(&self, client: &SettlementClient, epoch: u32) -> anyhow::Result<EpochPayout> {
        if let Some(settled) = self.settled.lock().unwrap_or_else(|p| p.into_inner()).get(&epoch) {
            return Ok(*settled);
        }
        let payout = if client.is_paid(self.address, epoch.into()).await? {
            EpochPayout::Claimed
        } else {
            match client.epoch(epoch.into()).await?.1 {
                EpochState::Pending => EpochPayout::Pending,
                EpochState::Final => EpochPayout::Claimable,
                EpochState::Void => EpochPayout::Void,
            }
        };
        if matches!(payout, EpochPayout::Claimed | EpochPayout::Void) {
            self.settled.lock().unwrap_or_else(|p| p.into_inner()).insert(epoch, payout);
        }
        Ok(payout)
    }

    async fn try_claim(&self) -> anyhow::Result<ClaimOutcome> {
        anyhow::ensure!(self.signer.is_some(), "this host has no payout key to claim with");
        let client = self.chain().await?.context("the broker does not settle sessions")?;
        let (_, listed) = listed_claims(&self.http, &self.broker, self.address).await?;
        let mut left = Vec::new();
        let claimed = claim_final(client, self.address, listed, |why| left.push(why)).await?;
        match claimed {
            Some((epochs, tx)) => Ok(ClaimOutcome {
                epochs: epochs.into_iter().map(u64::from).collect(),
                transactions: vec![format!("{tx:#x}")],
            }),
            None if left.is_empty() => anyhow::bail!("nothing to claim yet"),
            None => anyhow::bail!("nothing to claim: {}", left.join("; ")),
        }
    }
}

impl Payouts for ChainPayouts {
    fn earnings(&self) -> Pending<'_, OwnerEarnings> {
        Box::pin(async move {
            self.try_earnings().await.unwrap_or_else(|e| OwnerEarnings {
                payout_address: Some(format!("{:#x}", self.address)),
                can_claim: self.signer.is_some(),
                epochs: Vec::new(),
                note: Some(format!("{e:#}")),
            })
        })
    }

    fn claim(&self) -> Pending<'_, Result<ClaimOutcome, String>> {
        Box::pin(async move { self.try_claim().await.map_err(|e| format!("{e:#}")) })
    }
}
