//! A settling broker killed (SIGKILL) at seeded random points, again and again, on a real
//! anvil: each time it starts again from its state directory, the receipts it serves account
//! for exactly what the chain committed — no block lost, none billed twice — and in the end
//! every session is billed exactly once and its receipt verifies against the chain alone.

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address as ChainAddress, B256, U256};
use alloy::providers::Provider;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer, SigningKey};
use gridplay_chain::keccak256;
use gridplay_chain::settlement::{
    BUNDLED_ANVIL, DeployParams, LocalChain, Receipt, Voucher, sign_voucher, verify_receipt,
};
use gridplay_protocol::host_auth::{HOST_AUTH_HEADER, sign_request};
use gridplay_protocol::probe::{
    Address, BlockSummary, HostFigures, PROBES_SIGNATURE_HEADER, ProbeReport, RejectedReports,
    SecondRecord, SessionProbes,
};
use gridplay_protocol::settlement::{SessionReceipt, VoucherSubmission, VoucherTerms};
use gridplay_protocol::token::encode_public_key;
use gridplay_protocol::{AllocateResponse, GeoPoint, HostRegistration, Profile, SlotOffer};
use tokio::net::TcpListener;

const ETHER: u128 = 1_000_000_000_000_000_000;
/// Wei per 15-minute block.
const PRICE: u64 = 900_000_000_000;
/// Sessions settled; one more of them ends before each kill.
const SESSIONS: usize = 50;
/// Times the settler is killed.
const KILLS: usize = 50;
/// Seconds each session lasts: one short block.
const SECONDS: u32 = 2;
/// Longest a kill waits after the broker has answered.
const MAX_KILL_DELAY_MS: u64 = 1_200;
/// Seeds the kill points: the same run every time.
const SEED: u64 = 0x5e77_1e5c_7a11_0b0e;
/// Seconds between settling rounds.
const EPOCH: &str = "0.2";
const WAIT: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A seeded xorshift64* generator, enough to pick kill points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// A record as the host serves it: (its place in allocation order, the body, the signature).
type Served = (usize, Vec<u8>, String);

/// The host's side: every session's signed record, served once the session has ended (the
/// first `ended` sessions, in allocation order).
#[derive(Default)]
struct Records {
    by_session: std::sync::Mutex<HashMap<String, Served>>,
    ended: AtomicUsize,
}

async fn serve_record(
    State(records): State<Arc<Records>>,
    UrlPath(session): UrlPath<String>,
) -> impl IntoResponse {
    let found = records.by_session.lock().unwrap().get(&session).cloned();
    match found {
        Some((i, body, signature)) if i < records.ended.load(Ordering::SeqCst) => {
            ([(PROBES_SIGNATURE_HEADER, signature)], body).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The host's signed record of `session`, started at `started_ms` and ended after
/// [`SECONDS`] good seconds, each with the client's signed report.
fn record(
    host: &SigningKey,
    client: &k256::ecdsa::SigningKey,
    session: &str,
    started_ms: u64,
) -> (Vec<u8>, String) {
    let records = (0..SECONDS)
        .map(|second| SecondRecord {
            second,
            start_ms: started_ms + u64::from(second) * 1000,
            host: HostFigures::default(),
            client: Some(
                ProbeReport {
                    session_id: session.into(),
                    seq: second + 1,
                    interval_ms: 1000,
                    frames_presented: 60,
                    frames_decoded: 60,
                    fps_centi: 6000,
                    decode_us: Some(2000),
                    jitter_us: Some(500),
                    loss_ppm: Some(0),
                    rtt_us: Some(10_000),
                    click_to_photon_p50_us: None,
                    click_to_photon_p95_us: None,
                    click_to_photon_samples: 0,
                    audio_packets_lost: None,
                    audio_concealed_samples: None,
                }
                .sign(client),
            ),
        })
        .collect();
    let probes = SessionProbes {
        session_id: session.into(),
        host_id: encode_public_key(&host.verifying_key()),
        client_key: None,
        started_at_ms: started_ms,
        now_ms: started_ms + u64::from(SECONDS) * 1000,
        ended: true,
        reports_valid: SECONDS,
        reports_rejected: RejectedReports::default(),
        records,
        blocks: vec![BlockSummary {
            block: 0,
            start_ms: started_ms,
            complete: true,
            seconds_covered: SECONDS,
            seconds_with_client_report: SECONDS,
            ..BlockSummary::default()
        }],
    };
    let body = serde_json::to_vec(&probes).unwrap();
    let signature = B64.encode(host.sign(&body).to_bytes());
    (body, signature)
}

/// How to start the settling broker, again and again.
struct Launch {
    listen: String,
    args: Vec<String>,
    log: PathBuf,
}

impl Launch {
    fn spawn(&self) -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        Command::new(env!("CARGO_BIN_EXE_gridplay"))
            .arg("broker")
            .args(["--listen", &self.listen])
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }

    /// Waits until the broker answers (it listens once its settler has started).
    async fn ready(&self, http: &reqwest::Client, child: &mut Child) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(response) = http.get(self.url("/v1/settlement")).send().await
                && response.status().is_success()
            {
                return;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("the broker exited ({status}):\n{log}");
            }
            assert!(Instant::now() < deadline, "the broker did not answer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One session as the player sees it.
struct Session {
    id: String,
    /// The session key's address, `0x`.
    key: String,
}

/// What the chain committed and the receipts served agree on: (blocks, wei).
async fn agreed(
    http: &reqwest::Client,
    launch: &Launch,
    chain: &LocalChain,
    sessions: &[Session],
) -> (u64, u128) {
    let client = &chain.operator;
    let count = client.epoch_count().await.unwrap();
    let (mut chain_blocks, mut chain_total) = (0u64, 0u128);
    for id in 0..count {
        let epoch = client.contract().epochs(U256::from(id)).call().await.unwrap();
        assert_ne!(epoch.state, 2, "epoch {id} is void");
        chain_blocks += u64::from(epoch.blocks);
        chain_total += epoch.total;
    }
    let (mut lines, mut total) = (0u64, 0u128);
    for session in sessions {
        let url = launch.url(&format!("/v1/sessions/{}/receipt", session.id));
        let receipt: SessionReceipt =
            http.get(url).send().await.unwrap().error_for_status().unwrap().json().await.unwrap();
        assert!(receipt.lines.len() <= 1, "one block at most: {:?}", receipt.lines);
        for line in receipt.lines.iter().filter(|l| l.epoch_id.is_some()) {
            let epoch: u64 = line.epoch_id.as_deref().unwrap().parse().unwrap();
            assert!(epoch < count, "{line:?} names an epoch not on chain");
            lines += 1;
            total += line.amount.parse::<u128>().unwrap();
        }
    }
    assert_eq!((lines, total), (chain_blocks, chain_total), "receipts against the chain");
    (lines, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settler_killed_anywhere_loses_no_block_and_bills_none_twice() {
    let chain =
        LocalChain::start(Path::new(BUNDLED_ANVIL), DeployParams::local(), ETHER, 10 * ETHER)
            .await
            .unwrap();
    let dir =
        std::env::temp_dir().join(format!("gridplay-settlement-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let operator_key = dir.join("operator.key");
    std::fs::write(
        &operator_key,
        format!("0x{}", alloy::hex::encode(chain.operator_key.to_bytes())),
    )
    .unwrap();

    // The host: its records, on loopback.
    let records = Arc::new(Records::default());
    let app = Router::new()
        .route("/whep/sessions/{id}/probes", get(serve_record))
        .with_state(Arc::clone(&records));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let whep_url = format!("http://{}/whep", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let launch = Launch {
        listen: format!("127.0.0.1:{port}"),
        args: [
            "--key-file",
            dir.join("broker.key").to_str().unwrap(),
            "--rpc-url",
            &chain.rpc_url(),
            "--contract",
            &format!("{:#x}", chain.operator.address()),
            "--operator-key-file",
            operator_key.to_str().unwrap(),
            "--epoch-seconds",
            EPOCH,
            "--settlement-state",
            dir.join("state").to_str().unwrap(),
            "--allow-private-hosts",
            "--allocations-per-ip",
            "0",
        ]
        .map(String::from)
        .to_vec(),
        log: dir.join("broker.log"),
    };
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let mut broker = launch.spawn();
    launch.ready(&http, &mut broker).await;

    // The host registers; players allocate sessions on it and sign a voucher each.
    let host = SigningKey::from_bytes(&[9; 32]);
    let payout = chain.host.address();
    let registration = HostRegistration {
        host_id: encode_public_key(&host.verifying_key()),
        whep_url,
        ping_url: "http://127.0.0.1:9/ping".into(),
        gpu: "llvmpipe".into(),
        region: "local".into(),
        location: GeoPoint { lat: 48.0, lon: 2.0 },
        offers: vec![SlotOffer {
            profile: Profile::Game,
            slots: SESSIONS as u32,
            max_width: 1920,
            max_height: 1080,
            max_fps: 60,
        }],
        price_per_block: PRICE,
        quic: None,
        payout_address: Some(format!("{payout:#x}")),
        apps: Vec::new(),
        payout_proof: None,
        probation: false,
    };
    let body = serde_json::to_vec(&registration).unwrap();
    let auth = sign_request(&host, "POST", "/v1/hosts", now_ms(), &body);
    let registered = http
        .post(launch.url("/v1/hosts"))
        .header(HOST_AUTH_HEADER, auth)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "{}", registered.text().await.unwrap());
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        let client = k256::ecdsa::SigningKey::from_slice(&keccak256(&i.to_be_bytes())).unwrap();
        let key = Address::of(client.verifying_key()).to_string();
        let request = serde_json::json!({
            "app": "orbit", "profile": "game", "width": 1280, "height": 720, "fps": 60,
            "client_key": key,
        });
        let allocated: AllocateResponse = http
            .post(launch.url("/v1/sessions"))
            .json(&request)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let (body, signature) = record(&host, &client, &allocated.session_id, now_ms());
        records
            .by_session
            .lock()
            .unwrap()
            .insert(allocated.session_id.clone(), (i, body, signature));
        sessions.push(Session { id: allocated.session_id, key });
    }
    let (chain_id, contract) = (chain.operator.chain_id(), chain.operator.address());
    for session in &sessions {
        let nonce = B256::from(keccak256(session.id.as_bytes()));
        let expiry = now_ms() / 1000 + 3600;
        let voucher = Voucher {
            host: payout,
            sessionKey: session.key.parse::<ChainAddress>().unwrap(),
            pricePerBlock: U256::from(PRICE),
            maxBlocks: 1,
            expiry,
            nonce,
        };
        let signature = sign_voucher(&chain.player, &voucher, chain_id, contract).unwrap();
        let submission = VoucherSubmission {
            voucher: VoucherTerms {
                host: format!("{payout:#x}"),
                session_key: session.key.clone(),
                price_per_block: PRICE.to_string(),
                max_blocks: 1,
                expiry,
                nonce: format!("{nonce:#x}"),
            },
            signature: format!("{signature}"),
        };
        let url = launch.url(&format!("/v1/sessions/{}/voucher", session.id));
        let accepted = http.post(url).json(&submission).send().await.unwrap();
        assert_eq!(accepted.status(), StatusCode::NO_CONTENT, "{}", accepted.text().await.unwrap());
    }

    // From now on the chain mines a block a second, as a real one does at its own pace: a
    // commit waits for its block, and a kill often lands between sending it and its mining.
    let provider = chain.operator.contract().provider();
    let _: serde_json::Value =
        provider.raw_request("evm_setIntervalMining".into(), (1,)).await.unwrap();

    // One more session ends before each kill; each start must account for every epoch on
    // chain, whatever the last one was doing when it died.
    let mut rng = Rng(SEED);
    for kill in 0..KILLS {
        records.ended.store((kill + 1).min(SESSIONS), Ordering::SeqCst);
        if kill > 0 {
            broker = launch.spawn();
            launch.ready(&http, &mut broker).await;
        }
        agreed(&http, &launch, &chain, &sessions).await;
        tokio::time::sleep(Duration::from_millis(rng.below(MAX_KILL_DELAY_MS))).await;
        broker.kill().unwrap();
        broker.wait().unwrap();
    }

    // Started once more, it bills every session exactly once, then shuts down cleanly.
    records.ended.store(SESSIONS, Ordering::SeqCst);
    let mut broker = launch.spawn();
    launch.ready(&http, &mut broker).await;
    let deadline = Instant::now() + WAIT;
    let total = loop {
        let (blocks, total) = agreed(&http, &launch, &chain, &sessions).await;
        if blocks == SESSIONS as u64 {
            break total;
        }
        assert!(Instant::now() < deadline, "{blocks} of {SESSIONS} blocks committed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let per_session = u128::from(PRICE) * u128::from(SECONDS) / 900;
    assert_eq!(total, per_session * SESSIONS as u128);
    for session in &sessions {
        let url = launch.url(&format!("/v1/sessions/{}/receipt", session.id));
        let shown: SessionReceipt = http.get(url).send().await.unwrap().json().await.unwrap();
        let receipt: Receipt = serde_json::from_value(shown.receipt.expect("committed")).unwrap();
        let check = verify_receipt(&receipt, &chain.rpc_url()).await.unwrap();
        assert!(check.ok(), "{check:#?}");
    }
    let term = Command::new("kill").args(["-TERM", &broker.id().to_string()]).status().unwrap();
    assert!(term.success());
    assert!(broker.wait().unwrap().success(), "a clean shutdown");

    let log = std::fs::read_to_string(&launch.log).unwrap();
    let concluded = log.matches("concluding the epoch left under way").count();
    eprintln!(
        "{KILLS} kills (seed {SEED:#x}); {concluded} starts concluded an epoch left under way"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
