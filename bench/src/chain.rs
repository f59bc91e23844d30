//! `gridplay-bench chain`: settlement gas per session-hour on a real anvil.
//!
//! A session-hour is four billed 15-minute blocks. For each size (sessions per epoch, one
//! hour each, every session a different player, one host) it bills the epoch, carrying every
//! earlier player's cumulative spend forward as a real operator does, commits its root, waits
//! out the challenge window and has the host claim its total, and sums the gas of the
//! receipts. In the same run, on the same anvil, it measures the alternative of sending every
//! block's signed probe summary on-chain, five per transaction, to the comparison contract
//! `ReportBatch` (chain/contracts/src), and prints both with their ratio. It also measures
//! what a withdrawing player adds (recording its cumulative spend once). Writes `chain.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use alloy::node_bindings::Anvil;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use anyhow::{Context, bail};
use gridplay_chain::settlement::{DeployParams, Sections, SettlementClient, sign_probe_summary};
use gridplay_chain::{Leaf, ProbeSummary, keccak256};
use serde::Serialize;

alloy::sol!(
    #[allow(missing_docs)]
    #[sol(rpc)]
    ReportBatch,
    "../chain/contracts/artifacts/ReportBatch.json"
);

/// The goal: gas per session-hour at 1,000 sessions per epoch.
const GOAL_GAS_PER_SESSION_HOUR: f64 = 1_000.0;
/// Sessions per epoch the goal is stated at.
const GOAL_SESSIONS: usize = 1_000;
/// Billed 15-minute blocks in a session-hour.
const BLOCKS_PER_SESSION_HOUR: u32 = 4;
/// Wei per block.
const PRICE: u128 = 1_000_000_000_000_000;
/// Seconds of the settlement's challenge window.
const CHALLENGE_WINDOW: u64 = 3_600;
/// One ether, in wei.
const ETHER: u128 = 1_000_000_000_000_000_000;

/// Arguments of `gridplay-bench chain`.
#[derive(clap::Args)]
pub struct ChainArgs {
    /// Directory the JSON results go to.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Sessions per epoch to measure, one session-hour each.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 100, 1_000, 10_000])]
    sizes: Vec<usize>,
    /// Signed reports per transaction in the comparison.
    #[arg(long, default_value_t = 5)]
    reports_per_tx: usize,
    /// Most sessions whose reports are sent in the comparison; above it a sample this large
    /// is measured (each report transaction costs the same whatever the epoch's size).
    #[arg(long, default_value_t = 1_000)]
    report_sessions: usize,
    /// The anvil binary.
    #[arg(long, default_value = gridplay_chain::settlement::BUNDLED_ANVIL)]
    anvil: PathBuf,
}

/// Gas figures of a set of transactions.
#[derive(Debug, Default, Clone, Copy, Serialize)]
struct Txs {
    /// Transactions sent.
    count: usize,
    /// Sum of the receipts' `gasUsed`.
    gas: u64,
    /// Calldata bytes, all transactions.
    calldata_bytes: usize,
}

/// One size's figures.
#[derive(Debug, Serialize)]
struct SizeReport {
    sessions: usize,
    /// Leaves of all three sections (blocks, hosts, players).
    leaves: usize,
    tree_depth: usize,
    /// Building the sections and the tree.
    build_ms: f64,
    commit: Txs,
    claim: Txs,
    /// (commit + claim) / sessions.
    gas_per_session_hour: f64,
    /// `recordSpend` for one player: paid once per withdrawal, whatever it played.
    record_spend_gas: u64,
    reports: ReportFigures,
    /// Report gas per session-hour over settlement gas per session-hour.
    ratio_reports_to_settlement: f64,
}

/// The per-report comparison.
#[derive(Debug, Serialize)]
struct ReportFigures {
    /// Sessions whose reports were sent (all of them, or a sample).
    sessions_measured: usize,
    reports_per_tx: usize,
    txs: Txs,
    gas_per_session_hour: f64,
}

/// The whole run.
#[derive(Debug, Serialize)]
struct Report {
    note: &'static str,
    anvil: String,
    hardfork: String,
    blocks_per_session_hour: u32,
    sizes: Vec<SizeReport>,
    goal: Goal,
}

#[derive(Debug, Serialize)]
struct Goal {
    sessions_per_epoch: usize,
    gas_per_session_hour: f64,
    measured: Option<f64>,
    met: Option<bool>,
}

/// Runs the benchmark.
pub fn run(args: ChainArgs) -> anyhow::Result<()> {
    if args.reports_per_tx == 0 || args.sizes.contains(&0) {
        bail!("sizes and --reports-per-tx must be positive");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run_async(args))
}

/// The deployed contracts and who acts on them.
struct Chain {
    settlement: SettlementClient,
    reports: ReportBatch::ReportBatchInstance<DynProvider>,
    host: Address,
    chain_id: u64,
    /// Every player's cumulative spend after the last epoch.
    prior: BTreeMap<Address, u128>,
}

async fn run_async(args: ChainArgs) -> anyhow::Result<()> {
    if !args.anvil.exists() {
        bail!("anvil not found at {} (run `make chain-deps`)", args.anvil.display());
    }
    let anvil = Anvil::new().path(&args.anvil).try_spawn().context("starting anvil")?;
    let url = anvil.endpoint();
    let key = |i: usize| -> anyhow::Result<PrivateKeySigner> {
        Ok(PrivateKeySigner::from(anvil.keys().get(i).context("anvil key")?.clone()))
    };
    let (operator, host, funder) = (key(0)?, key(1)?, key(2)?);
    let params = DeployParams {
        challenge_window: CHALLENGE_WINDOW,
        unbonding_period: CHALLENGE_WINDOW,
        withdrawal_delay: 2 * CHALLENGE_WINDOW,
        min_bond: ETHER,
        slash_amount: ETHER / 10,
        challenge_bond: ETHER / 100,
    };
    let settlement = SettlementClient::deploy(&url, operator, params).await?;
    settlement.bond_operator(U256::from(ETHER)).await?;
    settlement.with_signer(&url, host.clone()).await?.bond(U256::from(ETHER)).await?;
    // The players' deposits, pooled (set-up, not measured).
    let funds =
        args.sizes.iter().sum::<usize>() as u128 * PRICE * u128::from(BLOCKS_PER_SESSION_HOUR);
    settlement.with_signer(&url, funder).await?.deposit(U256::from(funds)).await?;
    let provider = settlement.contract().provider().clone();
    let reports = ReportBatch::deploy(provider.clone()).await.context("deploying ReportBatch")?;
    let info: serde_json::Value = provider.raw_request("anvil_nodeInfo".into(), ()).await?;
    let version: String = provider.raw_request("web3_clientVersion".into(), ()).await?;
    let mut chain = Chain {
        chain_id: settlement.chain_id(),
        settlement,
        reports,
        host: host.address(),
        prior: BTreeMap::new(),
    };

    println!(
        "settlement gas per session-hour (4 blocks) on {version}, hardfork {}: one commit and one host claim per epoch",
        info["hardFork"].as_str().unwrap_or("?")
    );
    println!(
        "  {:>8} {:>7} {:>6} {:>9} {:>8} {:>8} {:>10} | {:>10} {:>9} {:>7}",
        "sessions",
        "leaves",
        "depth",
        "build ms",
        "commit",
        "claim",
        "gas/s-h",
        "5-report",
        "gas/s-h",
        "ratio"
    );
    std::fs::create_dir_all(&args.out)?;
    let path = args.out.join("chain.json");
    let mut report = Report {
        note: "one host; every session a different player, one hour (4 blocks) each; earlier players' \
               cumulative spend carried forward; gas from receipts; the host claims after the challenge \
               window; the comparison sends each block's signed probe summary to ReportBatch (signature \
               recovery + one settled bit + host credit, a lower bound for that design), reports_per_tx \
               per transaction",
        anvil: version.clone(),
        hardfork: info["hardFork"].as_str().unwrap_or("unknown").to_string(),
        blocks_per_session_hour: BLOCKS_PER_SESSION_HOUR,
        sizes: Vec::new(),
        goal: Goal {
            sessions_per_epoch: GOAL_SESSIONS,
            gas_per_session_hour: GOAL_GAS_PER_SESSION_HOUR,
            measured: None,
            met: None,
        },
    };
    for (round, &n) in args.sizes.iter().enumerate() {
        let r = measure(&mut chain, &args, round, n).await?;
        println!(
            "  {:>8} {:>7} {:>6} {:>9.1} {:>8} {:>8} {:>10.1} | {:>10} {:>9.0} {:>6.1}x",
            r.sessions,
            r.leaves,
            r.tree_depth,
            r.build_ms,
            r.commit.gas,
            r.claim.gas,
            r.gas_per_session_hour,
            r.reports.txs.count,
            r.reports.gas_per_session_hour,
            r.ratio_reports_to_settlement
        );
        if r.sessions == GOAL_SESSIONS {
            report.goal.measured = Some(r.gas_per_session_hour);
            report.goal.met = Some(r.gas_per_session_hour <= GOAL_GAS_PER_SESSION_HOUR);
        }
        report.sizes.push(r);
        // Written after every size, so a long run leaves what it has measured.
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    if let Some(r) = report.sizes.last() {
        println!(
            "  a withdrawing player adds one recordSpend: {} gas, once per withdrawal whatever it played",
            r.record_spend_gas
        );
    }
    if let Some(gas) = report.goal.measured {
        println!(
            "  at {GOAL_SESSIONS} sessions per epoch: {gas:.1} gas per session-hour vs goal {GOAL_GAS_PER_SESSION_HOUR}: {}",
            crate::verdict(gas, GOAL_GAS_PER_SESSION_HOUR)
        );
    }
    println!("wrote {}", path.display());
    drop(anvil);
    Ok(())
}

/// One session of the epoch: its session key and its blocks' summaries.
struct Session {
    session_key: PrivateKeySigner,
    summaries: Vec<ProbeSummary>,
}

async fn measure(
    chain: &mut Chain,
    args: &ChainArgs,
    round: usize,
    n: usize,
) -> anyhow::Result<SizeReport> {
    let mut billed = Vec::with_capacity(n * BLOCKS_PER_SESSION_HOUR as usize);
    let mut sessions = Vec::with_capacity(n.min(args.report_sessions));
    for i in 0..n {
        let session_id = keccak256(format!("bench {round} {i}").as_bytes());
        let player: [u8; 20] = keccak256(&session_id)[..20].try_into()?;
        let summaries: Vec<ProbeSummary> = (0..BLOCKS_PER_SESSION_HOUR)
            .map(|block_index| ProbeSummary {
                session_id,
                block_index,
                seconds_covered: 900,
                seconds_met: 897,
                amount: PRICE,
            })
            .collect();
        for s in &summaries {
            billed.push(Leaf {
                session_id,
                block_index: s.block_index,
                player,
                host: chain.host.0.0,
                amount: PRICE,
                probe_summary_hash: s.struct_hash(),
            });
        }
        if sessions.len() < args.report_sessions {
            sessions.push(Session { session_key: PrivateKeySigner::random(), summaries });
        }
    }
    let started = Instant::now();
    let epoch = Sections::build(&billed, &chain.prior)?;
    let build_ms = started.elapsed().as_secs_f64() * 1e3;

    let contract = chain.settlement.contract();
    let (root, blocks, hosts, players, total) = epoch.commit_args();
    let epoch_id = chain.settlement.epoch_count().await?;
    let mut commit = Txs::default();
    let call = contract.commitEpoch(root, blocks, hosts, players, total);
    add_gas(&mut commit, mined(call.clone()).await?, &call.calldata()[..]);
    let provider = contract.provider();
    let _: serde_json::Value =
        provider.raw_request("evm_increaseTime".into(), (CHALLENGE_WINDOW + 1,)).await?;
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await?;
    let host_claim = epoch.host_claim(epoch_id, chain.host).context("the host earned nothing")?;
    let tree_depth = host_claim.at.proof.len();
    let mut claim = Txs::default();
    let call = contract.claim(chain.host, vec![host_claim]);
    add_gas(&mut claim, mined(call.clone()).await?, &call.calldata()[..]);
    let player = epoch.players().last().context("no players")?.player;
    let at = epoch.player_lookup(player).remove(0);
    let record_spend_gas = mined(contract.recordSpend(player, U256::from(epoch_id), at)).await?;
    chain.prior = epoch.cumulative();
    let gas_per_session_hour = (commit.gas + claim.gas) as f64 / n as f64;

    // The comparison: every block's signed summary on-chain, a few per transaction.
    let reports = send_reports(chain, args.reports_per_tx, &sessions).await?;
    let report_gas = reports.gas as f64 / sessions.len() as f64;
    Ok(SizeReport {
        sessions: n,
        leaves: blocks as usize + hosts as usize + players as usize,
        tree_depth,
        build_ms,
        commit,
        claim,
        gas_per_session_hour,
        record_spend_gas,
        reports: ReportFigures {
            sessions_measured: sessions.len(),
            reports_per_tx: args.reports_per_tx,
            txs: reports,
            gas_per_session_hour: report_gas,
        },
        ratio_reports_to_settlement: report_gas / gas_per_session_hour,
    })
}

/// Sends a call, waits for it, and returns its gas; fails if it reverted.
async fn mined<C: SolCall>(
    call: alloy::contract::SolCallBuilder<&DynProvider, C>,
) -> anyhow::Result<u64> {
    let receipt = call.send().await?.get_receipt().await?;
    anyhow::ensure!(receipt.status(), "transaction reverted");
    Ok(receipt.gas_used)
}

/// Sends each session's signed block summaries to `ReportBatch`, `per_tx` per transaction.
async fn send_reports(chain: &Chain, per_tx: usize, sessions: &[Session]) -> anyhow::Result<Txs> {
    let target = *chain.reports.address();
    let mut signed = Vec::new();
    for s in sessions {
        for summary in &s.summaries {
            let signature = sign_probe_summary(&s.session_key, summary, chain.chain_id, target)?;
            signed.push((report_summary(summary), signature));
        }
    }
    let mut txs = Txs::default();
    for batch in signed.chunks(per_tx) {
        let summaries: Vec<_> = batch.iter().map(|(s, _)| s.clone()).collect();
        let signatures: Vec<Bytes> = batch.iter().map(|(_, sig)| sig.clone()).collect();
        let call = chain.reports.submitReports(chain.host, summaries, signatures);
        add_gas(&mut txs, mined(call.clone()).await?, &call.calldata()[..]);
    }
    Ok(txs)
}

/// A summary as the comparison contract's binding types it.
fn report_summary(s: &ProbeSummary) -> GridplayTypes::ProbeSummary {
    GridplayTypes::ProbeSummary {
        sessionId: B256::from(s.session_id),
        blockIndex: s.block_index,
        secondsCovered: s.seconds_covered,
        secondsMet: s.seconds_met,
        amount: U256::from(s.amount),
    }
}

fn add_gas(txs: &mut Txs, gas: u64, input: &[u8]) {
    txs.count += 1;
    txs.gas += gas;
    txs.calldata_bytes += input.len();
}
