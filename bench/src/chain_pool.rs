//! The netted pool's half of `gridplay-bench chain`: gas per session-hour when one root covers
//! the epoch and the host claims its total with one leaf (`GridplayPool`), on the same anvil.
//!
//! Each size bills `n` one-hour sessions (four blocks each) of `n` different players with one
//! host, carries every earlier player's cumulative spend forward (as a real operator would),
//! commits, waits out the challenge window and claims. It also measures what a withdrawing
//! player adds: recording its cumulative spend once.

use std::collections::BTreeMap;
use std::time::Instant;

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use gridplay_chain::pool::{GridplayPoolInstance, PoolEpoch, PoolParams, deploy_pool};
use gridplay_chain::{Leaf, ProbeSummary, keccak256};
use serde::Serialize;

use crate::chain::{BLOCKS_PER_SESSION_HOUR, CHALLENGE_WINDOW, PRICE, Txs, add_gas};

/// One size's figures.
#[derive(Debug, Serialize)]
pub struct PoolSize {
    pub sessions: usize,
    /// Leaves of all three sections.
    pub leaves: usize,
    pub tree_depth: usize,
    /// Building the sections and the tree.
    pub build_ms: f64,
    pub commit: Txs,
    pub claim: Txs,
    /// (commit + claim) / sessions.
    pub gas_per_session_hour: f64,
    /// `recordSpend` for one player: paid once per withdrawal, not per session.
    pub record_spend_gas: u64,
}

/// The pool deployed on the benchmark's anvil, its operator bonded, its host registered.
pub struct PoolBench {
    pool: GridplayPoolInstance<DynProvider>,
    host: Address,
    prior: BTreeMap<Address, u128>,
}

impl PoolBench {
    /// Deploys with `operator`, bonds `host` and funds the pool for every size from `funder`.
    pub async fn deploy(
        url: &str,
        operator: PrivateKeySigner,
        host: PrivateKeySigner,
        funder: PrivateKeySigner,
        funds: u128,
    ) -> anyhow::Result<Self> {
        let ether = 10u128.pow(18);
        let params = PoolParams {
            challenge_window: CHALLENGE_WINDOW,
            unbonding_period: CHALLENGE_WINDOW,
            withdrawal_delay: 2 * CHALLENGE_WINDOW,
            min_bond: ether,
            slash_amount: ether / 10,
            challenge_bond: ether / 100,
        };
        let pool = deploy_pool(url, operator, params).await?;
        mined(pool.bondOperator().value(U256::from(ether))).await?;
        let address = *pool.address();
        let host_address = host.address();
        mined(pool_as(url, host, address)?.registerHost().value(U256::from(ether))).await?;
        mined(pool_as(url, funder, address)?.deposit().value(U256::from(funds))).await?;
        Ok(Self { pool, host: host_address, prior: BTreeMap::new() })
    }

    /// Bills, commits and claims one epoch of `n` sessions.
    pub async fn measure(&mut self, round: usize, n: usize) -> anyhow::Result<PoolSize> {
        let mut billed = Vec::with_capacity(n * BLOCKS_PER_SESSION_HOUR as usize);
        for i in 0..n {
            let session_id = keccak256(format!("pool bench {round} {i}").as_bytes());
            let player: [u8; 20] = keccak256(&session_id)[..20].try_into()?;
            for block_index in 0..BLOCKS_PER_SESSION_HOUR {
                let summary = ProbeSummary {
                    session_id,
                    block_index,
                    seconds_covered: 900,
                    seconds_met: 897,
                    amount: PRICE,
                };
                billed.push(Leaf {
                    session_id,
                    block_index,
                    player,
                    host: self.host.0.0,
                    amount: PRICE,
                    probe_summary_hash: summary.struct_hash(),
                });
            }
        }
        let started = Instant::now();
        let epoch = PoolEpoch::build(&billed, &self.prior)?;
        let claim = epoch.host_claim(0, self.host).context("the host earned nothing")?;
        let build_ms = started.elapsed().as_secs_f64() * 1e3;
        let epoch_id = self.pool.epochCount().call().await?.to::<u32>();
        let claim = gridplay_chain::pool::HostClaim { epochId: epoch_id, ..claim };

        let (root, blocks, hosts, players, total) = epoch.commit_args();
        let mut commit = Txs::default();
        let call = self.pool.commitEpoch(root, blocks, hosts, players, total);
        add_gas(&mut commit, mined(call.clone()).await?, &call.calldata()[..]);
        let provider = self.pool.provider();
        let _: serde_json::Value =
            provider.raw_request("evm_increaseTime".into(), (CHALLENGE_WINDOW + 1,)).await?;
        let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await?;
        let mut claimed = Txs::default();
        let call = self.pool.claim(self.host, vec![claim.clone()]);
        add_gas(&mut claimed, mined(call.clone()).await?, &call.calldata()[..]);
        let player = epoch.players().last().context("no players")?.player;
        let at = epoch.player_lookup(player).remove(0);
        let record_spend_gas = mined(self.pool.recordSpend(player, U256::from(epoch_id), at)).await?;
        self.prior = epoch.cumulative();
        Ok(PoolSize {
            sessions: n,
            leaves: blocks as usize + hosts as usize + players as usize,
            tree_depth: claim.at.proof.len(),
            build_ms,
            commit,
            claim: claimed,
            gas_per_session_hour: (commit.gas + claimed.gas) as f64 / n as f64,
            record_spend_gas,
        })
    }
}

/// The pool at `address`, sending as `key`.
fn pool_as(
    url: &str,
    key: PrivateKeySigner,
    address: Address,
) -> anyhow::Result<GridplayPoolInstance<DynProvider>> {
    let provider = alloy::providers::ProviderBuilder::new()
        .wallet(alloy::network::EthereumWallet::from(key))
        .connect_http(url.parse()?)
        .erased();
    Ok(GridplayPoolInstance::new(address, provider))
}

/// Sends a call, waits for it, and returns its gas; fails if it reverted.
async fn mined<C: alloy::sol_types::SolCall>(
    call: alloy::contract::SolCallBuilder<&DynProvider, C>,
) -> anyhow::Result<u64> {
    let receipt = call.send().await?.get_receipt().await?;
    anyhow::ensure!(receipt.status(), "transaction reverted");
    Ok(receipt.gas_used)
}
