//! `gridplay checker`: a synthetic client that checks the service a host
//! delivers. It gets a session from the broker like any player, plays it
//! over QUIC (decoding every frame, clicking every 200 ms), reads the
//! host's own signed record of the session, and signs a report of what it
//! saw with its secp256k1 key (EIP-191), so that anyone can tell which
//! checker vouches for it and a dispute can rest on it. The report goes to
//! the broker, which weighs it into the host's reputation if it trusts the
//! checker (`gridplay broker --checker 0x…`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use clap::Args;
use ed25519_dalek::{Signature, Verifier};
use gridplay_protocol::AllocateResponse;
use gridplay_protocol::check::{CheckAccepted, CheckReport, HostRecord, SignedCheck};
use gridplay_protocol::probe::{Address, PROBES_SIGNATURE_HEADER, SessionProbes, from_hex, to_hex};
use gridplay_protocol::token::decode_public_key;
use k256::ecdsa::SigningKey;

use crate::play::{PlayArgs, Transport, Video, play_session};

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
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
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
            let mut seed = [0u8; 32];
            let key = loop {
                getrandom::getrandom(&mut seed)
                    .map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
                if let Ok(key) = SigningKey::from_slice(&seed) {
                    break key;
                }
            };
            let mut file =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
            writeln!(file, "0x{}", to_hex(&key.to_bytes()))?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Fetches the host's signed probe record of the session and checks its
/// signature against the host id.
async fn host_record(session: &AllocateResponse) -> anyhow::Result<HostRecord> {
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
        .and_then(|v| B64.decode(v).ok())
        .and_then(|b| Signature::from_slice(&b).ok());
    let body = response.bytes().await?;
    let host_key = decode_public_key(&session.host_id)?;
    let signature_verified = signature.is_some_and(|s| host_key.verify(&body, &s).is_ok());
    let probes: SessionProbes = serde_json::from_slice(&body)?;
    Ok(HostRecord {
        signature_verified,
        seconds: probes.records.len() as u32,
        frames_sent: probes.records.iter().map(|r| u64::from(r.host.frames_sent)).sum(),
        reports_valid: probes.reports_valid,
    })
}

/// Checks one host and prints the signed report.
pub async fn run(args: CheckerArgs) -> anyhow::Result<()> {
    let key = load_or_create_key(&args.key_file)?;
    let (width, height, fps) = args.stream;
    let play = PlayArgs {
        headless: true,
        broker: args.broker.clone(),
        app: "orbit".into(),
        stream: args.stream,
        seconds: args.seconds,
        bind: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        via: None,
        jitter_buffer_ms: 0,
        transport: Transport::Quic,
        video: Video::Streams,
        input_every_ms: 200,
        no_decode: false,
    };
    let played = play_session(&play).await?;
    let host = host_record(&played.session).await.context("reading the host's signed record")?;
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
