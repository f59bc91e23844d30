//! `gridplay-bench chain`: settlement gas per session-hour on a real anvil, per-block claims
//! here and the netted pool in `chain_pool`.
//!
//! A session-hour is four billed 15-minute blocks. For each size (sessions per epoch, one
//! hour each, every session a different player, one host) it deploys nothing new but commits
//! one epoch root over all the blocks and claims them all for the host with Merkle proofs,
//! many sessions per `claim` transaction (as many as fit under `--max-claim-bytes` of
//! calldata), and sums the gas of the receipts. In the same run, on the same anvil, it
//! measures the alternative of sending every block's signed probe summary on-chain, five per
//! transaction, to the comparison contract `ReportBatch` (chain/contracts/src), and prints
//! both with their ratio. Writes `chain.json`.
//!
//! Player funding and deposits are set-up, not settlement, and are not counted.

use std::path::PathBuf;
use std::time::Instant;

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use anyhow::{Context, bail};
use gridplay_chain::settlement::GridplaySettlement::{self, SessionClaim};
use gridplay_chain::settlement::{
    BilledBlock, DeployParams, Epoch, SettlementClient, Voucher, sign_probe_summary, sign_voucher,
    voucher_session_id,
};
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
pub(crate) const BLOCKS_PER_SESSION_HOUR: u32 = 4;
/// Wei per block.
pub(crate) const PRICE: u128 = 1_000_000_000_000_000;
/// Seconds of the settlement's challenge window.
pub(crate) const CHALLENGE_WINDOW: u64 = 3_600;
/// Deposits and fundings in flight at once.
const SETUP_CONCURRENCY: usize = 32;

/// Arguments of `gridplay-bench chain`.
#[derive(clap::Args)]
pub struct ChainArgs {
    /// Directory the JSON results go to.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Sessions per epoch to measure, one session-hour each. 10,000 is left out by default:
    /// funding 10,000 players on anvil alone takes about four minutes on two cores.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 100, 1_000])]
    sizes: Vec<usize>,
    /// Sessions per epoch to measure on the netted pool (no player funding needed there).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 100, 1_000, 10_000])]
    pool_sizes: Vec<usize>,
    /// Most calldata bytes in one claim transaction (nodes' default pool limit is 128 KiB).
    #[arg(long, default_value_t = 120_000)]
    max_claim_bytes: usize,
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
pub(crate) struct Txs {
    /// Transactions sent.
    count: usize,
    /// Sum of the receipts' `gasUsed`.
    pub(crate) gas: u64,
    /// Calldata bytes, all transactions.
    calldata_bytes: usize,
    /// Transactions whose gas was the EIP-7623 calldata floor (21,000 + 10 per token).
    at_calldata_floor: usize,
}

/// One size's figures.
#[derive(Debug, Serialize)]
struct SizeReport {
    sessions: usize,
    leaves: usize,
    tree_depth: usize,
    /// Building the tree and every claim's proofs.
    proofs_ms: f64,
    commit: Txs,
    claims: Txs,
    /// Sessions per claim transaction (the last may hold fewer).
    sessions_per_claim_tx: usize,
    /// (commit + claims) / sessions.
    gas_per_session_hour: f64,
    /// commit / sessions: the epoch root alone.
    commit_gas_per_session_hour: f64,
    /// Wall time of the commit and every claim, receipts included.
    settle_s: f64,
    reports: ReportFigures,
    /// Report gas per session-hour over batched-settlement gas per session-hour.
    ratio_reports_to_batched: f64,
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
    block_gas_limit: u64,
    blocks_per_session_hour: u32,
    max_claim_bytes: usize,
    /// Per-block claims (`GridplaySettlement`), with the per-report comparison.
    sizes: Vec<SizeReport>,
    /// Netted settlement (`GridplayPool`): one commit and one host claim per epoch.
    pool: Vec<crate::chain_pool::PoolSize>,
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

/// A running anvil with the settlement and the comparison contract deployed.
struct Chain {
    _anvil: AnvilInstance,
    url: String,
    settlement: SettlementClient,
    reports: ReportBatch::ReportBatchInstance<DynProvider>,
    host: Address,
    chain_id: u64,
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
    let (operator, host) = (key(0)?, key(1)?);
    let pool_keys = (operator.clone(), host.clone(), key(2)?);
    let params = DeployParams {
        challenge_window: CHALLENGE_WINDOW,
        unbonding_period: CHALLENGE_WINDOW,
        withdrawal_delay: CHALLENGE_WINDOW,
        min_bond: 10u128.pow(18),
        slash_amount: 10u128.pow(17),
    };
    let settlement = SettlementClient::deploy(&url, operator, params).await?;
    settlement.with_signer(&url, host.clone()).await?.bond(U256::from(10u128.pow(18))).await?;
    let provider = settlement.contract().provider().clone();
    let reports = ReportBatch::deploy(provider.clone()).await.context("deploying ReportBatch")?;
    let info: serde_json::Value = provider.raw_request("anvil_nodeInfo".into(), ()).await?;
    let version: String = provider.raw_request("web3_clientVersion".into(), ()).await?;
    let latest = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .context("no latest block")?;
    let chain = Chain {
        chain_id: settlement.chain_id(),
        _anvil: anvil,
        url,
        settlement,
        reports,
        host: host.address(),
    };

    println!(
        "settlement gas per session-hour (4 blocks) on {version}, hardfork {}:",
        info["hardFork"].as_str().unwrap_or("?")
    );
    println!(
        "  {:>8} {:>7} {:>6} {:>8} {:>7} {:>12} {:>10} {:>9} | {:>10} {:>9} {:>6}",
        "sessions",
        "leaves",
        "depth",
        "commit",
        "claimTx",
        "claims gas",
        "gas/s-h",
        "settle s",
        "5-report",
        "gas/s-h",
        "ratio"
    );
    std::fs::create_dir_all(&args.out)?;
    let path = args.out.join("chain.json");
    let mut report = Report {
        note: "one host; every session a different player, one hour (4 blocks) each; gas from receipts; \
               claims batched by calldata size, sent after the challenge window; the comparison sends each \
               block's signed probe summary to ReportBatch (signature recovery + one settled bit + host credit, \
               a lower bound for that design), reports_per_tx per transaction",
        anvil: version.clone(),
        hardfork: info["hardFork"].as_str().unwrap_or("unknown").to_string(),
        block_gas_limit: latest.header.gas_limit,
        blocks_per_session_hour: BLOCKS_PER_SESSION_HOUR,
        max_claim_bytes: args.max_claim_bytes,
        sizes: Vec::new(),
        pool: Vec::new(),
        goal: Goal {
            sessions_per_epoch: GOAL_SESSIONS,
            gas_per_session_hour: GOAL_GAS_PER_SESSION_HOUR,
            measured: None,
            met: None,
        },
    };
    for (round, &n) in args.sizes.iter().enumerate() {
        let r = measure(&chain, &args, round, n).await?;
        println!(
            "  {:>8} {:>7} {:>6} {:>8} {:>7} {:>12} {:>10.0} {:>9.1} | {:>10} {:>9.0} {:>5.2}x",
            r.sessions,
            r.leaves,
            r.tree_depth,
            r.commit.gas,
            r.claims.count,
            r.claims.gas,
            r.gas_per_session_hour,
            r.settle_s,
            r.reports.txs.count,
            r.reports.gas_per_session_hour,
            r.ratio_reports_to_batched
        );
        report.sizes.push(r);
        // Written after every size, so a long run leaves what it has measured.
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    for r in &report.sizes {
        println!(
            "  {} sessions: commit alone {:.1} gas/session-hour; {} of {} claim txs at the calldata floor; proofs built in {:.0} ms",
            r.sessions,
            r.commit_gas_per_session_hour,
            r.claims.at_calldata_floor,
            r.claims.count,
            r.proofs_ms
        );
    }

    println!("netted pool (GridplayPool): one commit and one host claim per epoch:");
    println!(
        "  {:>8} {:>7} {:>6} {:>9} {:>8} {:>8} {:>10} {:>12} {:>13}",
        "sessions", "leaves", "depth", "build ms", "commit", "claim", "gas/s-h", "vs per-block", "vs 5-report"
    );
    let funds = args.pool_sizes.iter().sum::<usize>() as u128 * PRICE * u128::from(BLOCKS_PER_SESSION_HOUR);
    let mut pool = crate::chain_pool::PoolBench::deploy(&chain.url, pool_keys.0, pool_keys.1, pool_keys.2, funds).await?;
    for (round, &n) in args.pool_sizes.iter().enumerate() {
        let r = pool.measure(round, n).await?;
        let same = report.sizes.iter().find(|s| s.sessions == n);
        let ratio = |other: Option<f64>| other.map_or("-".to_string(), |o| format!("{:.0}x", o / r.gas_per_session_hour));
        println!(
            "  {:>8} {:>7} {:>6} {:>9.1} {:>8} {:>8} {:>10.1} {:>12} {:>13}",
            r.sessions,
            r.leaves,
            r.tree_depth,
            r.build_ms,
            r.commit.gas,
            r.claim.gas,
            r.gas_per_session_hour,
            ratio(same.map(|s| s.gas_per_session_hour)),
            ratio(same.map(|s| s.reports.gas_per_session_hour)),
        );
        if r.sessions == GOAL_SESSIONS {
            report.goal.measured = Some(r.gas_per_session_hour);
            report.goal.met = Some(r.gas_per_session_hour <= GOAL_GAS_PER_SESSION_HOUR);
        }
        report.pool.push(r);
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    if let Some(r) = report.pool.last() {
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
    Ok(())
}

/// One session of the epoch: its session key and its blocks' summaries.
struct Session {
    session_key: PrivateKeySigner,
    summaries: Vec<ProbeSummary>,
}

async fn measure(
    chain: &Chain,
    args: &ChainArgs,
    round: usize,
    n: usize,
) -> anyhow::Result<SizeReport> {
    let contract = chain.settlement.address();
    let players: Vec<PrivateKeySigner> = (0..n).map(|_| PrivateKeySigner::random()).collect();
    let started = Instant::now();
    fund_players(chain, &players).await?;
    eprintln!("  ({n} players funded in {:.1} s)", started.elapsed().as_secs_f64());

    // Vouchers (signed off-chain), blocks and the epoch.
    let mut blocks = Vec::with_capacity(n * BLOCKS_PER_SESSION_HOUR as usize);
    let mut sessions = Vec::with_capacity(n);
    for (i, player) in players.iter().enumerate() {
        let session_key = PrivateKeySigner::random();
        let voucher = Voucher {
            host: chain.host,
            sessionKey: session_key.address(),
            pricePerBlock: U256::from(PRICE),
            maxBlocks: BLOCKS_PER_SESSION_HOUR,
            expiry: u64::MAX / 2,
            nonce: B256::from(keccak256(format!("bench {round} {i}").as_bytes())),
        };
        let signature = sign_voucher(player, &voucher, chain.chain_id, contract)?;
        let session_id = voucher_session_id(&voucher, chain.chain_id, contract);
        let mut summaries = Vec::new();
        for block_index in 0..BLOCKS_PER_SESSION_HOUR {
            let summary = ProbeSummary {
                session_id: session_id.0,
                block_index,
                seconds_covered: 900,
                seconds_met: 897,
                amount: PRICE,
            };
            let leaf = Leaf {
                session_id: session_id.0,
                block_index,
                player: player.address().0.0,
                host: chain.host.0.0,
                amount: PRICE,
                probe_summary_hash: summary.struct_hash(),
            };
            blocks.push(BilledBlock {
                voucher: voucher.clone(),
                voucher_signature: signature.clone(),
                leaf,
            });
            summaries.push(summary);
        }
        sessions.push(Session { session_key, summaries });
    }
    let started = Instant::now();
    let epoch = Epoch::new(blocks)?;
    let claims = epoch.claims_for(chain.host)?;
    let proofs_ms = started.elapsed().as_secs_f64() * 1e3;
    let tree_depth = epoch.proof(0)?.len();

    // One root, then the host's claims after the challenge window.
    let started = Instant::now();
    let (epoch_id, commit_tx) =
        chain.settlement.commit_epoch(epoch.root(), epoch.leaf_count(), epoch.total()).await?;
    let commit_input =
        GridplaySettlement::commitEpochCall::new((epoch.root(), epoch.leaf_count(), epoch.total()))
            .abi_encode();
    let mut commit = Txs::default();
    add_tx(chain, &mut commit, commit_tx, &commit_input).await?;
    let provider = chain.settlement.contract().provider();
    let _: serde_json::Value =
        provider.raw_request("evm_increaseTime".into(), (CHALLENGE_WINDOW + 1,)).await?;
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await?;
    let batches = claim_batches(epoch_id, chain.host, claims, args.max_claim_bytes)?;
    let sessions_per_claim_tx = batches.first().map_or(0, Vec::len);
    let mut claimed = Txs::default();
    for batch in batches {
        let input =
            GridplaySettlement::claimCall::new((U256::from(epoch_id), chain.host, batch.clone()))
                .abi_encode();
        let tx = chain.settlement.claim(epoch_id, chain.host, batch).await?;
        add_tx(chain, &mut claimed, tx, &input).await?;
    }
    let settle_s = started.elapsed().as_secs_f64();
    let gas_per_session_hour = (commit.gas + claimed.gas) as f64 / n as f64;

    // The comparison: every block's signed summary on-chain, a few per transaction.
    let measured = &sessions[..n.min(args.report_sessions)];
    let reports = send_reports(chain, args.reports_per_tx, measured).await?;
    let report_gas = reports.gas as f64 / measured.len() as f64;

    Ok(SizeReport {
        sessions: n,
        leaves: epoch.leaf_count() as usize,
        tree_depth,
        proofs_ms,
        commit,
        claims: claimed,
        sessions_per_claim_tx,
        gas_per_session_hour,
        commit_gas_per_session_hour: commit.gas as f64 / n as f64,
        settle_s,
        reports: ReportFigures {
            sessions_measured: measured.len(),
            reports_per_tx: args.reports_per_tx,
            txs: reports,
            gas_per_session_hour: report_gas,
        },
        ratio_reports_to_batched: report_gas / gas_per_session_hour,
    })
}

/// Gives each player ether and escrow for one session-hour (set-up, not measured).
async fn fund_players(chain: &Chain, players: &[PrivateKeySigner]) -> anyhow::Result<()> {
    let mut wallet = EthereumWallet::default();
    for p in players {
        wallet.register_signer(p.clone());
    }
    let provider = ProviderBuilder::new()
        .with_simple_nonce_management()
        .wallet(wallet)
        .connect_http(chain.url.parse()?)
        .erased();
    let escrow = U256::from(PRICE * u128::from(BLOCKS_PER_SESSION_HOUR));
    for group in players.chunks(SETUP_CONCURRENCY) {
        let mut tasks = tokio::task::JoinSet::new();
        for player in group {
            let provider = provider.clone();
            let (address, settlement) = (player.address(), chain.settlement.address());
            tasks.spawn(async move {
                let _: serde_json::Value = provider
                    .raw_request("anvil_setBalance".into(), (address, U256::from(10u128.pow(18))))
                    .await?;
                let contract = GridplaySettlement::new(settlement, &provider);
                let receipt = contract
                    .deposit()
                    .from(address)
                    .value(escrow)
                    .send()
                    .await?
                    .get_receipt()
                    .await?;
                anyhow::ensure!(receipt.status(), "deposit reverted");
                anyhow::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
    }
    Ok(())
}

/// Splits a host's claims into transactions of at most `max_bytes` of calldata.
fn claim_batches(
    epoch_id: u64,
    host: Address,
    claims: Vec<SessionClaim>,
    max_bytes: usize,
) -> anyhow::Result<Vec<Vec<SessionClaim>>> {
    let size = |sessions: Vec<SessionClaim>| {
        4 + GridplaySettlement::claimCall::new((U256::from(epoch_id), host, sessions))
            .abi_encoded_size()
    };
    let empty = size(Vec::new());
    let mut batches: Vec<Vec<SessionClaim>> = Vec::new();
    let mut bytes = empty;
    for claim in claims {
        // Each session adds its encoding and one offset word to the array.
        let extra = size(vec![claim.clone()]) - empty;
        if empty + extra > max_bytes {
            bail!("one session's claim ({extra} bytes) exceeds --max-claim-bytes {max_bytes}");
        }
        match batches.last_mut() {
            Some(batch) if bytes + extra <= max_bytes => {
                batch.push(claim);
                bytes += extra;
            }
            _ => {
                batches.push(vec![claim]);
                bytes = empty + extra;
            }
        }
    }
    Ok(batches)
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
        let call = ReportBatch::submitReportsCall::new((chain.host, summaries, signatures));
        let input = call.abi_encode();
        let receipt = chain
            .reports
            .submitReports(call.host, call.reports, call.signatures)
            .send()
            .await?
            .get_receipt()
            .await?;
        anyhow::ensure!(receipt.status(), "submitReports reverted");
        add_gas(&mut txs, receipt.gas_used, &input);
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

/// Adds a mined transaction's receipt gas to `txs`.
async fn add_tx(chain: &Chain, txs: &mut Txs, hash: B256, input: &[u8]) -> anyhow::Result<()> {
    let receipt = chain
        .settlement
        .contract()
        .provider()
        .get_transaction_receipt(hash)
        .await?
        .with_context(|| format!("no receipt for {hash}"))?;
    add_gas(txs, receipt.gas_used, input);
    Ok(())
}

pub(crate) fn add_gas(txs: &mut Txs, gas: u64, input: &[u8]) {
    let zeros = input.iter().filter(|&&b| b == 0).count() as u64;
    let tokens = zeros + 4 * (input.len() as u64 - zeros);
    txs.count += 1;
    txs.gas += gas;
    txs.calldata_bytes += input.len();
    if gas == 21_000 + 10 * tokens {
        txs.at_calldata_floor += 1;
    }
}
