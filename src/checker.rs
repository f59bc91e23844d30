//! `gridplay checker`: a synthetic client that checks the service a host
//! delivers. It gets a session from the broker like any player, plays it
//! over QUIC (decoding every frame, clicking every 200 ms), reads the
//! host's own signed record of the session (read by the settler's own rule,
//! `gridplay_chain::evidence`), and signs a report of what it
//! saw with its secp256k1 key (EIP-191), so that anyone can tell which
//! checker vouches for it. The report goes to the broker, which weighs it
//! into the host's reputation if it trusts the checker (`gridplay broker
//! --checker 0x…`).
//!
//! Where the broker settles on chain, the checker pays for its session like
//! a player (its key signs the voucher; its account must hold a deposit),
//! sends a signed probe report every second, and signs its own summary of
//! each block (EIP-712, the contract's `ProbeSummary`, billed by the
//! broker's published service level, seconds it did not see counted as
//! met). A checker the contract has registered can refund, with such a
//! summary, a block the host billed higher (`gridplay dispute`).

use std::path::{Path, PathBuf};

use alloy::primitives::{Address as ChainAddress, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use clap::Args;
use gridplay_chain::evidence::{Expected, verify_record};
use gridplay_chain::settlement::{Voucher, sign_probe_summary, sign_voucher, voucher_session_id};
use gridplay_chain::{BLOCK_SECONDS, ProbeRecord, ProbeSummary, Sla, bill_block, keccak256};
use gridplay_protocol::AllocateResponse;
use gridplay_protocol::check::{
    CheckAccepted, CheckReport, HostRecord, SignedBlockSummary, SignedCheck,
};
use gridplay_protocol::probe::{
    Address, BlockSummary, ClientKey, PROBES_SIGNATURE_HEADER, ProbeReport, from_hex, to_hex,
};
use gridplay_protocol::settlement::{SettlementInfo, VoucherSubmission, VoucherTerms};
use gridplay_session_broker::unix_ms;
use k256::ecdsa::SigningKey;

use crate::play::{PlayArgs, allocate, play_allocated};

/// `gridplay checker` flags.
#[derive(Args)]
pub struct CheckerArgs {
    /// The broker's base URL.
    #[arg(long, env = "GRIDPLAY_BROKER_URL", default_value = "http://127.0.0.1:8080")]
    broker: String,
    /// File holding the checker's secp256k1 private key (hex); created if missing.
    #[arg(long, env = "GRIDPLAY_CHECKER_KEY_FILE", default_value = "gridplay-checker.key")]
    key_file: PathBuf,
    /// Seconds to play.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Frame size and rate, e.g. 1280x720@60.
    #[arg(long, default_value = "1280x720@60", value_parser = crate::play::parse_stream)]
    stream: (u32, u32, u32),
    /// Lowest frame rate, as a share of the stream's, for the service to count as delivered.
    #[arg(long, default_value_t = 0.9)]
    min_fps_share: f64,
    /// Highest click-to-photon p99 (ms) for the service to count as delivered.
    #[arg(long, default_value_t = 150.0)]
    max_click_to_photon_ms: f64,
    /// Also write the signed report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the report without submitting it to the broker (`POST /v1/checks`).
    #[arg(long)]
    no_submit: bool,
    /// Play unpaid even where the broker settles on chain (no voucher, no block summaries).
    #[arg(long)]
    no_pay: bool,
    /// Check the capacity of the hosts the broker has on probation, as they come due,
    /// instead of one host's service (each trial plays --seconds).
    #[arg(long)]
    capacity: bool,
    /// With --capacity: stop when no check is due.
    #[arg(long, requires = "capacity")]
    once: bool,
}

/// How many times (100 ms apart) the host's record is read while waiting for it to end.
const RECORD_TRIES: u32 = 100;

/// A paid session: where it settles, its on-chain id and price.
struct Paid {
    info: SettlementInfo,
    chain_id: u64,
    contract: ChainAddress,
    session_id: B256,
    price_per_block: u128,
}

/// The broker's settlement, if it settles on chain.
async fn settlement_info(broker: &str) -> anyhow::Result<Option<SettlementInfo>> {
    let url = format!("{}/v1/settlement", broker.trim_end_matches('/'));
    let response = reqwest::get(url).await.context("reaching the broker")?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    Ok(Some(response.error_for_status()?.json().await?))
}

/// Signs and submits the session's voucher with the checker's key as the player.
async fn pay(
    broker: &str,
    info: SettlementInfo,
    session: &AllocateResponse,
    player: &PrivateKeySigner,
    session_key: &SigningKey,
    seconds: u64,
) -> anyhow::Result<Paid> {
    let host = session.payout_address.as_deref().context("the host is not paid on chain")?;
    let price_per_block: u128 = session.price_per_block.parse().context("the host's price")?;
    let chain_id: u64 = info.chain_id.parse().context("the broker's chain id")?;
    let contract: ChainAddress = info.contract.parse().context("the broker's contract")?;
    let session_key_address = Address::of(session_key.verifying_key()).to_string();
    let nonce = B256::from(keccak256(session.session_id.as_bytes()));
    let terms = VoucherTerms {
        host: host.to_owned(),
        session_key: session_key_address.clone(),
        price_per_block: price_per_block.to_string(),
        max_blocks: (seconds / u64::from(BLOCK_SECONDS)) as u32 + 1,
        expiry: unix_ms() / 1000 + seconds + 86_400,
        nonce: format!("{nonce:#x}"),
    };
    let voucher = Voucher {
        host: host.parse()?,
        sessionKey: session_key_address.parse()?,
        pricePerBlock: U256::from(price_per_block),
        maxBlocks: terms.max_blocks,
        expiry: terms.expiry,
        nonce,
    };
    let signature = sign_voucher(player, &voucher, chain_id, contract)?;
    let url =
        format!("{}/v1/sessions/{}/voucher", broker.trim_end_matches('/'), session.session_id);
    let submission = VoucherSubmission { voucher: terms, signature: format!("{signature}") };
    let response = reqwest::Client::new().post(url).json(&submission).send().await?;
    let status = response.status();
    anyhow::ensure!(
        status.is_success(),
        "the broker refused the voucher: {status} {}",
        response.text().await.unwrap_or_default()
    );
    let session_id = voucher_session_id(&voucher, chain_id, contract);
    Ok(Paid { info, chain_id, contract, session_id, price_per_block })
}

/// The checker's summary of each block the host recorded, signed for disputes. Each block is
/// billed on the checker's own reports by the broker's service level; seconds of the block
/// the checker has no report for count as met, so that the summary never bills lower than
/// what the checker saw.
fn block_summaries(
    paid: &Paid,
    blocks: &[BlockSummary],
    reports: &[ProbeReport],
    fps: u32,
    checker: &PrivateKeySigner,
) -> anyhow::Result<Vec<SignedBlockSummary>> {
    let sla = Sla::for_level(&paid.info.service_level, fps, paid.price_per_block);
    let unseen =
        ProbeRecord { fps: fps as f32, rtt_ms: 0.0, loss: 0.0, click_to_photon_p95_ms: None };
    let mut signed = Vec::new();
    for block in blocks {
        let covered = block.seconds_covered.min(BLOCK_SECONDS);
        let first = block.block.saturating_mul(BLOCK_SECONDS) as usize;
        let mut records: Vec<ProbeRecord> =
            reports.iter().skip(first).take(covered as usize).map(ProbeRecord::from).collect();
        records.resize(covered as usize, unseen);
        let bill = bill_block(&records, covered, &sla)?;
        let summary = ProbeSummary::from_bill(paid.session_id.0, block.block, &bill);
        let signature = sign_probe_summary(checker, &summary, paid.chain_id, paid.contract)?;
        signed.push(SignedBlockSummary {
            session_id: format!("{:#x}", paid.session_id),
            block_index: summary.block_index,
            seconds_covered: summary.seconds_covered,
            seconds_met: summary.seconds_met,
            amount: summary.amount.to_string(),
            signature: format!("{signature}"),
        });
    }
    Ok(signed)
}

/// A fresh secp256k1 key from the OS's randomness.
pub(crate) fn random_key() -> anyhow::Result<SigningKey> {
    let mut seed = [0u8; 32];
    loop {
        getrandom::getrandom(&mut seed).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
        if let Ok(key) = SigningKey::from_slice(&seed) {
            return Ok(key);
        }
    }
}

/// Reads the checker's key (hex, `0x` optional), creating one (mode 0600)
/// if the file is missing.
fn load_or_create_key(path: &Path) -> anyhow::Result<SigningKey> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = text.trim();
            from_hex(text.strip_prefix("0x").unwrap_or(text))
                .and_then(|bytes| SigningKey::from_slice(&bytes).ok())
                .with_context(|| {
                    format!("{} must hold a hex secp256k1 private key", path.display())
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_key()?;
            let mut file =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
            writeln!(file, "0x{}", to_hex(&key.to_bytes()))?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Fetches the host's signed record of the session and reads it as the settler does
/// ([`verify_record`]), with the checker's session key as the client's: what it shows and,
/// once the record has ended (its blocks' coverage final), its blocks. A record not signed
/// by the host, or not of this session, shows nothing.
async fn host_record(
    session: &AllocateResponse,
    client_key: Option<&ClientKey>,
    allocated_ms: u64,
) -> anyhow::Result<(HostRecord, Option<Vec<BlockSummary>>)> {
    let url = format!("{}/sessions/{}/probes", session.whep_url, session.session_id);
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(&session.token)
        .send()
        .await?
        .error_for_status()?;
    let signature = response
        .headers()
        .get(PROBES_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await?;
    let expected = Expected {
        session_id: &session.session_id,
        host_id: &session.host_id,
        client_key,
        allocated_ms,
        now_ms: unix_ms(),
    };
    match verify_record(&body, signature.as_deref(), &expected) {
        Ok(evidence) => {
            let probes = &evidence.probes;
            let record = HostRecord {
                signature_verified: true,
                seconds: probes.records.len() as u32,
                frames_sent: probes.records.iter().map(|r| u64::from(r.host.frames_sent)).sum(),
                reports_valid: evidence.seconds_counted() as u32,
            };
            Ok((record, probes.ended.then(|| probes.blocks.clone())))
        }
        Err(e) => {
            eprintln!("{e}");
            let record = HostRecord {
                signature_verified: false,
                seconds: 0,
                frames_sent: 0,
                reports_valid: 0,
            };
            Ok((record, None))
        }
    }
}

/// Checks one host and prints the signed report (or, with `--capacity`, checks the
/// capacity of hosts on probation).
pub async fn run(args: CheckerArgs) -> anyhow::Result<()> {
    let key = load_or_create_key(&args.key_file)?;
    if args.capacity {
        let level = crate::capacity::ServiceLevel {
            seconds: args.seconds,
            min_fps_share: args.min_fps_share,
            max_click_to_photon_ms: args.max_click_to_photon_ms,
        };
        return crate::capacity::serve(&args.broker, &key, level, args.once).await;
    }
    let (width, height, fps) = args.stream;
    let play = PlayArgs::checker(&args.broker, "orbit", args.stream, args.seconds);
    let settlement = if args.no_pay { None } else { settlement_info(&args.broker).await? };
    let session_key = settlement.as_ref().map(|_| random_key()).transpose()?;
    let allocated_ms = unix_ms();
    let session = allocate(&play, session_key.as_ref()).await?;
    let player = PrivateKeySigner::from_slice(&key.to_bytes())?;
    let paid = match (settlement, &session_key) {
        (Some(info), Some(session_key)) => {
            Some(pay(&args.broker, info, &session, &player, session_key, args.seconds).await?)
        }
        _ => None,
    };
    let played = play_allocated(&play, session, session_key.as_ref()).await?;
    let client_key = session_key.as_ref().map(|k| ClientKey::PublicKey(*k.verifying_key()));
    // The record's coverage is final once it has ended: a summary over fewer seconds than the
    // host bills would read as under-delivery.
    let mut tries = 0;
    let (host, blocks) = loop {
        let (host, blocks) = host_record(&played.session, client_key.as_ref(), allocated_ms)
            .await
            .context("reading the host's signed record")?;
        tries += 1;
        if blocks.is_some() || !host.signature_verified || tries >= RECORD_TRIES {
            break (host, blocks);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let block_summaries = match (&paid, blocks) {
        (Some(paid), Some(blocks)) => {
            block_summaries(paid, &blocks, &played.reports, fps, &player)?
        }
        (Some(_), None) => {
            eprintln!("the host's record did not end: no block summaries");
            Vec::new()
        }
        (None, _) => Vec::new(),
    };
    let summary = &played.summary;
    let delivered = host.signature_verified
        && summary.mean_fps >= f64::from(fps) * args.min_fps_share
        && summary.click_to_photon_samples > 0
        && summary.click_to_photon_ms_p99 <= args.max_click_to_photon_ms;
    let report = CheckReport {
        host_id: played.session.host_id.clone(),
        session_id: played.session.session_id.clone(),
        checker: Address::of(key.verifying_key()).to_string(),
        checked_at_ms: unix_ms(),
        stream: format!("{width}x{height}@{fps}"),
        mean_fps: summary.mean_fps,
        longest_freeze_ms: summary.longest_freeze_ms,
        click_to_photon_ms_p50: summary.click_to_photon_ms_p50,
        click_to_photon_ms_p99: summary.click_to_photon_ms_p99,
        click_to_photon_samples: summary.click_to_photon_samples as u32,
        rtt_ms: played.rtt_ms,
        host,
        delivered,
        block_summaries,
    };
    let signed = SignedCheck::sign(&report, &key);
    let text = serde_json::to_string(&signed)?;
    if let Some(path) = &args.out {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{text}");
    if !args.no_submit {
        let url = format!("{}/v1/checks", args.broker.trim_end_matches('/'));
        let response = reqwest::Client::new().post(url).json(&signed).send().await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "the broker refused the report: {status} {body}");
        let accepted: CheckAccepted = serde_json::from_str(&body)?;
        eprintln!(
            "submitted: host {} now has reputation {:.3}",
            accepted.host_id, accepted.reputation
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("gridplay-checker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("checker.key");
        let made = load_or_create_key(&path).unwrap();
        assert_eq!(load_or_create_key(&path).unwrap(), made);
        std::fs::write(&path, "not a key").unwrap();
        assert!(load_or_create_key(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
