//! One session settled end to end on a real anvil: the player signs a
//! voucher (no transaction), plays over WebRTC sending signed probe reports,
//! ends; the broker's settler reads the host's signed record, bills the
//! block, commits the epoch, and the receipt it serves verifies against the
//! chain alone. Bad vouchers are refused and leave nothing behind.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use ed25519_dalek::SigningKey;
use gridplay_chain::settlement::{
    BUNDLED_ANVIL, BilledBlock, DeployParams, Epoch, EpochState, LocalChain, Receipt, Sections,
    Voucher, sign_voucher, verify_receipt,
};
use gridplay_chain::{Leaf, ProbeSummary, keccak256};
use gridplay_host::probes::Clock;
use gridplay_host::{HostConfig, run_host};
use gridplay_protocol::AllocateResponse;
use gridplay_protocol::check::{CheckReport, SignedCheck};
use gridplay_protocol::network::NetworkView;
use gridplay_protocol::probe::{
    Address, ClientProbeMessage, HostProbeMessage, ProbeReport, SessionProbes,
};
use gridplay_protocol::settlement::{
    ServiceLevel, SessionReceipt, VoucherSubmission, VoucherTerms,
};
use gridplay_session_broker::{BrokerConfig, BrokerState, serve};
use gridplay_settler::{SettlementConfig, Settler};
use gridplay_streaming::webrtc::{ViewerEvent, ViewerOptions, WhepSession};
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tokio::time::timeout;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const ETHER: u128 = 1_000_000_000_000_000_000;
const PRICE: u64 = 10_000_000_000_000_000;
const WAIT: Duration = Duration::from_secs(30);

/// The broker's token-signing key, with which the settler also signs its own reads.
fn token_key() -> SigningKey {
    SigningKey::from_bytes(&[4; 32])
}

fn now_s() -> u64 {
    now_ms() / 1000
}

/// Now, to the millisecond: a settling round at a truncated second would
/// find the record's last second not begun yet and hold its block back.
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn voucher_for(
    session: &AllocateResponse,
    session_key: &str,
    price: u64,
) -> (VoucherTerms, Voucher) {
    let nonce = B256::from(keccak256(session.session_id.as_bytes()));
    let terms = VoucherTerms {
        host: session.payout_address.clone().expect("the host has a payout address"),
        session_key: session_key.to_owned(),
        price_per_block: price.to_string(),
        max_blocks: 8,
        expiry: now_s() + 3600,
        nonce: format!("{nonce:#x}"),
    };
    let voucher = Voucher {
        host: terms.host.parse().unwrap(),
        sessionKey: session_key.parse().unwrap(),
        pricePerBlock: U256::from(price),
        maxBlocks: 8,
        expiry: terms.expiry,
        nonce,
    };
    (terms, voucher)
}

/// A settling broker (its own epoch timer far off: tests settle by hand) and a host paid at
/// `chain`'s host address, its probe log on `clock`, on loopback.
struct Network {
    broker: String,
    settler: Arc<Settler>,
    state_dir: std::path::PathBuf,
}

/// A settler on `chain` keeping its state in `state_dir` (carrying on from what is there).
async fn settler_at(chain: &LocalChain, state_dir: &Path) -> Settler {
    let config = SettlementConfig {
        client: chain.operator.clone(),
        epoch: Duration::from_secs(3600),
        rpc_url: Some(chain.rpc_url()),
        demo_player_key: None,
        service_level: ServiceLevel::standard(5_000),
        state_dir: state_dir.to_owned(),
        allow_private_hosts: true,
    };
    Settler::start(config, now_ms()).await.unwrap()
}

async fn network(chain: &LocalChain, name: &str, clock: Clock) -> Network {
    let state_dir =
        std::env::temp_dir().join(format!("gridplay-settlement-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_dir);
    let settler = Arc::new(settler_at(chain, &state_dir).await);
    let state = Arc::new(
        BrokerState::in_memory(token_key(), BrokerConfig::default())
            .with_settlement(Arc::clone(&settler) as _),
    );
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let broker = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));
    let mut config = HostConfig::local(&broker, LOOPBACK, 0, 1, SigningKey::from_bytes(&[5; 32]));
    config.payout_address = Some(format!("{:#x}", chain.host.address()));
    config.price_per_block = PRICE;
    config.clock = clock;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(run_host(config, move |a| ready_tx.send(a).unwrap(), std::future::pending()));
    timeout(WAIT, ready_rx).await.unwrap().unwrap();
    Network { broker, settler, state_dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_played_session_is_billed_committed_and_its_receipt_verifies() {
    // The chain: contract deployed, host bonded, player funded.
    let params = DeployParams::local();
    let chain = LocalChain::start(Path::new(BUNDLED_ANVIL), params, ETHER, ETHER).await.unwrap();
    let (rpc, client) = (chain.rpc_url(), chain.operator.clone());
    let (host, player) = (chain.host.clone(), chain.player.clone());

    // The host's probe log runs on a clock a second ahead of the broker's, moved by the test.
    let clock = Clock::manual(now_ms() + 1000);
    let Network { broker, settler, state_dir } = network(&chain, "flow", clock.clone()).await;
    let http = reqwest::Client::new();

    // Allocate with a session key; the voucher names the host's payout address and price.
    let session_key = k256::ecdsa::SigningKey::from_slice(&[0x5e; 32]).unwrap();
    let key_address = Address::of(session_key.verifying_key()).to_string();
    let body = serde_json::json!({"app": "orbit", "profile": "game", "width": 640, "height": 360,
        "fps": 30, "client_key": key_address});
    let session: AllocateResponse = http
        .post(format!("{broker}/v1/sessions"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session.price_per_block, PRICE.to_string());
    let info: serde_json::Value =
        http.get(format!("{broker}/v1/settlement")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["chain_id"], client.chain_id().to_string());
    let voucher_url = format!("{broker}/v1/sessions/{}/voucher", session.session_id);
    let submit = |submission: VoucherSubmission| {
        let (http, url) = (http.clone(), voucher_url.clone());
        async move { http.post(url).json(&submission).send().await.unwrap().status() }
    };
    let signed = |terms: VoucherTerms, voucher: &Voucher, signer: &PrivateKeySigner| {
        let signature = sign_voucher(signer, voucher, client.chain_id(), client.address()).unwrap();
        VoucherSubmission { voucher: terms, signature: format!("{signature}") }
    };
    // Refused: another price, another session key, a malformed body, an unfunded player.
    // Nothing is kept.
    let (terms, voucher) = voucher_for(&session, &key_address, PRICE / 2);
    assert_eq!(submit(signed(terms, &voucher, &player)).await, StatusCode::BAD_REQUEST);
    let (terms, voucher) = voucher_for(&session, &format!("0x{}", "11".repeat(20)), PRICE);
    assert_eq!(submit(signed(terms, &voucher, &player)).await, StatusCode::BAD_REQUEST);
    let garbage = http.post(&voucher_url).body("{").header("content-type", "application/json");
    assert_eq!(garbage.send().await.unwrap().status(), StatusCode::BAD_REQUEST);
    let receipt_url = format!("{broker}/v1/sessions/{}/receipt", session.session_id);
    assert_eq!(http.get(&receipt_url).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let (terms, voucher) = voucher_for(&session, &key_address, PRICE);
    // A player with no deposit cannot authorise a session: it would be paid from others'.
    let unfunded = PrivateKeySigner::random();
    let refused = submit(signed(terms.clone(), &voucher, &unfunded)).await;
    assert_eq!(refused, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(submit(signed(terms.clone(), &voucher, &player)).await, StatusCode::NO_CONTENT);
    assert_eq!(submit(signed(terms, &voucher, &player)).await, StatusCode::BAD_REQUEST, "once");

    // Play a few seconds with a signed probe report each second, then end.
    let (whep, mut events) =
        WhepSession::connect(&session.whep_url, &session.token, &ViewerOptions::direct(LOOPBACK))
            .await
            .unwrap();
    timeout(WAIT, async { while !matches!(events.recv().await, Some(ViewerEvent::ProbesOpen)) {} })
        .await
        .unwrap();
    for seq in 1..=4 {
        let report = ProbeReport {
            session_id: session.session_id.clone(),
            seq,
            interval_ms: 1000,
            frames_presented: 30,
            frames_decoded: 30,
            fps_centi: 3000,
            decode_us: Some(1500),
            jitter_us: Some(400),
            loss_ppm: Some(0),
            rtt_us: Some(300),
            click_to_photon_p50_us: None,
            click_to_photon_p95_us: None,
            click_to_photon_samples: 0,
            audio_packets_lost: None,
            audio_concealed_samples: None,
        };
        // The host takes one report per second of its own clock: the report is filed once
        // the host answers a ping sent after it on the same channel, and then the second ends.
        for message in [report.sign(&session_key).into(), ClientProbeMessage::Ping { id: seq }] {
            whep.viewer().send_probe(&serde_json::to_string(&message).unwrap()).await.unwrap();
        }
        let pong =
            |m: &[u8]| serde_json::from_slice(m).ok() == Some(HostProbeMessage::Pong { id: seq });
        timeout(WAIT, async {
            while !matches!(events.recv().await, Some(ViewerEvent::ProbeMessage(m)) if pong(&m)) {}
        })
        .await
        .expect("the host answers the ping");
        clock.advance(1000);
    }
    whep.end().await.unwrap();
    let probes_url = format!("{}/sessions/{}/probes", session.whep_url, session.session_id);
    timeout(WAIT, async {
        loop {
            let response = http.get(&probes_url).bearer_auth(&session.token).send().await;
            let probes: SessionProbes = response.unwrap().json().await.unwrap();
            if probes.ended {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the host's record ends");

    // One settling round: the block is billed and committed.
    let settled_ms = clock.now_ms();
    let (epoch_id, tx) = settler
        .settle_once(&token_key(), settled_ms)
        .await
        .unwrap()
        .expect("an epoch was committed");
    assert_eq!(
        settler.settle_once(&token_key(), settled_ms).await.unwrap(),
        None,
        "nothing is billed twice"
    );
    // The journal holds what the session's token grants, never the token.
    let journal = std::fs::read_to_string(state_dir.join("sessions.jsonl")).unwrap();
    let (_, signature) = session.token.split_once('.').unwrap();
    assert!(journal.contains(&session.session_id), "{journal}");
    assert!(!journal.contains(signature), "the journal holds the token: {journal}");
    let shown: SessionReceipt = http.get(&receipt_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown.lines.len(), 1);
    let line = &shown.lines[0];
    assert!(line.seconds_met >= 3 && line.seconds_met <= line.seconds_covered, "{line:?}");
    let amount: u128 = line.amount.parse().unwrap();
    assert_eq!(amount, u128::from(PRICE) * u128::from(line.seconds_covered) / 900);
    assert_eq!(line.epoch_id.as_deref(), Some(epoch_id.to_string().as_str()));
    assert_eq!(line.commit_tx.as_deref(), Some(format!("{tx:#x}").as_str()));
    let receipt: Receipt =
        serde_json::from_value(shown.receipt.clone().expect("a chain receipt")).unwrap();
    let check = verify_receipt(&receipt, &rpc).await.unwrap();
    assert!(check.ok(), "{check:#?}");
    assert_eq!(check.player, Some(player.address()));
    // The network's figures count the committed block, delivered, and the finished session.
    let network: NetworkView =
        http.get(format!("{broker}/v1/network")).send().await.unwrap().json().await.unwrap();
    let total = network.delivered.expect("a settling broker's delivered figures").total;
    assert_eq!((total.blocks_billed, total.blocks_delivered, total.sessions), (1, 1, 1));
    assert_eq!(total.paid_wei, line.amount);
    assert_eq!(total.delivered_hours, f64::from(line.seconds_covered) / 3600.0);

    // A settler restarted from its state directory has lost nothing: the receipt is there, and
    // it answers for the epoch its predecessor committed.
    let restarted = settler_at(&chain, &state_dir).await;
    assert_eq!(restarted.session_receipt(&session.session_id).unwrap(), shown);
    drop(settler);

    // Anyone may challenge the block's voucher; the settler answers in its next round.
    let stranger = PrivateKeySigner::from(chain.anvil.keys()[3].clone());
    let challenger = client.with_signer(&rpc, stranger).await.unwrap();
    let bond = U256::from(DeployParams::local().challenge_bond);
    let challenge =
        challenger.contract().challengeVoucher(U256::from(epoch_id), receipt.blocks[0].block_at());
    assert!(challenge.value(bond).send().await.unwrap().get_receipt().await.unwrap().status());
    assert_eq!(client.open_challenges(0).await.unwrap().1.len(), 1);
    assert_eq!(restarted.settle_once(&token_key(), now_ms()).await.unwrap(), None);
    assert_eq!(client.open_challenges(0).await.unwrap(), (1, Vec::new()), "answered");

    // After the challenge window the host claims its total with what the broker lists for it,
    // and the player's spend is recorded against its deposit.
    let provider = client.contract().provider();
    let _: serde_json::Value =
        provider.raw_request("evm_increaseTime".into(), (61,)).await.unwrap();
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    let payout_key =
        std::env::temp_dir().join(format!("gridplay-payout-{}.key", std::process::id()));
    std::fs::write(&payout_key, format!("0x{}", alloy::hex::encode(host.to_bytes()))).unwrap();
    let mut claim = std::process::Command::new(env!("CARGO_BIN_EXE_gridplay"));
    claim
        .args(["claim", "--broker", &broker, "--rpc-url", &rpc])
        .arg("--payout-key-file")
        .arg(&payout_key);
    let claimed = run(claim).await;
    let said = String::from_utf8_lossy(&claimed.stdout);
    assert!(
        claimed.status.success() && said.contains("claimed the host's totals of epoch(s) 0"),
        "{said}"
    );
    let _ = std::fs::remove_file(&payout_key);
    assert!(client.is_paid(host.address(), epoch_id).await.unwrap());
    let paid = client.contract().epochs(U256::from(epoch_id)).call().await.unwrap().paid;
    assert_eq!(paid, amount);
    let available = client.available(player.address()).await.unwrap();
    let sections = Sections::build(
        &receipt.blocks.iter().map(|b| b.leaf).collect::<Vec<_>>(),
        &Default::default(),
    )
    .unwrap();
    let at = sections.player_lookup(player.address()).remove(0);
    client.record_spend(player.address(), epoch_id, at).await.unwrap();
    assert_eq!(client.available(player.address()).await.unwrap(), available - amount);
    let check = verify_receipt(&receipt, &rpc).await.unwrap();
    assert!(
        check.ok() && check.blocks.iter().all(|b| b.epoch_state == Some(EpochState::Final)),
        "{check:#?}"
    );
}

/// Runs a `gridplay` command off the runtime's threads (the broker and host it talks to run
/// on them) and returns its output.
async fn run(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_checkers_block_summary_refunds_a_block_billed_higher() {
    let chain = LocalChain::start(Path::new(BUNDLED_ANVIL), DeployParams::local(), ETHER, ETHER)
        .await
        .unwrap();
    let (rpc, client) = (chain.rpc_url(), chain.operator.clone());
    let Network { broker, settler, .. } = network(&chain, "checker", Clock::default()).await;
    // The checker pays for its sessions like a player, and the contract knows its key.
    let checker = PrivateKeySigner::from(chain.anvil.keys()[4].clone());
    client
        .with_signer(&rpc, checker.clone())
        .await
        .unwrap()
        .deposit(U256::from(ETHER))
        .await
        .unwrap();
    client.set_checker(checker.address(), true).await.unwrap();
    let dir = std::env::temp_dir().join(format!("gridplay-checker-dispute-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("checker.key");
    std::fs::write(&key_file, format!("0x{}", alloy::hex::encode(checker.to_bytes()))).unwrap();
    let report_file = dir.join("check.json");

    // The checker plays four seconds over QUIC, paid, and signs its summary of block 0.
    let gridplay = env!("CARGO_BIN_EXE_gridplay");
    let mut command = std::process::Command::new(gridplay);
    command.args(["checker", "--broker", &broker, "--seconds", "4", "--stream", "640x360@30"]);
    command.arg("--key-file").arg(&key_file).arg("--out").arg(&report_file).arg("--no-submit");
    let output = run(command).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let signed: SignedCheck =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
    let report: CheckReport = serde_json::from_str(&signed.report).unwrap();
    assert_eq!(report.block_summaries.len(), 1, "{report:?}");
    let summary = &report.block_summaries[0];
    assert!(summary.seconds_covered >= 3 && summary.seconds_covered < 900, "{summary:?}");

    // The settler bills the session once its host's record ends.
    let (epoch_id, _) = timeout(WAIT, async {
        loop {
            if let Some(done) = settler.settle_once(&token_key(), now_ms()).await.unwrap() {
                return done;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let receipt_url = format!("{broker}/v1/sessions/{}/receipt", report.session_id);
    let shown: SessionReceipt = http.get(&receipt_url).send().await.unwrap().json().await.unwrap();
    let receipt: Receipt = serde_json::from_value(shown.receipt.expect("a chain receipt")).unwrap();
    assert_eq!(receipt.blocks[0].epoch_id, epoch_id);
    let dispute = |receipt: &Receipt, name: &str| {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string(receipt).unwrap()).unwrap();
        let mut command = std::process::Command::new(gridplay);
        command.arg("dispute").arg(&path).arg("--check").arg(&report_file);
        command.args(["--rpc-url", &rpc]).arg("--key-file").arg(&key_file);
        run(command)
    };
    // Billed as the checker saw it: nothing to dispute.
    let agreed = dispute(&receipt, "receipt.json").await;
    let said = String::from_utf8_lossy(&agreed.stdout);
    assert!(agreed.status.success() && said.contains("0 block(s) disputed"), "{said}");

    // The same block billed again as a whole delivered block: the checker's summary refunds it.
    let whole = ProbeSummary {
        session_id: receipt.session_id.0,
        block_index: 0,
        seconds_covered: 900,
        seconds_met: 900,
        amount: u128::from(PRICE),
    };
    let leaf = Leaf {
        amount: whole.amount,
        probe_summary_hash: whole.struct_hash(),
        ..receipt.blocks[0].leaf
    };
    let billed = BilledBlock {
        voucher: receipt.voucher.clone(),
        voucher_signature: receipt.voucher_signature.clone(),
        leaf,
    };
    // The checker's session is the only one billed on this chain: its cumulative spend is
    // the receipt's total.
    let prior = BTreeMap::from([(checker.address(), receipt.total())]);
    let over = Epoch::new(vec![billed], &prior).unwrap();
    let (over_id, over_tx) = client.commit_epoch(over.sections()).await.unwrap();
    let (chain_id, contract) = (client.chain_id(), client.address());
    let overbilled = Receipt::for_session(
        &over,
        over_id,
        over_tx,
        receipt.session_id,
        &[whole],
        chain_id,
        contract,
    )
    .unwrap();
    let refunded = dispute(&overbilled, "overbilled.json").await;
    assert!(refunded.status.success(), "{}", String::from_utf8_lossy(&refunded.stderr));
    assert!(String::from_utf8_lossy(&refunded.stdout).contains("1 block(s) disputed"));
    let host = chain.host.address();
    assert_eq!(client.refunded_from_host(over_id, host).await.unwrap(), u128::from(PRICE));
    assert_eq!(client.host_bond(host).await.unwrap(), ETHER - DeployParams::local().slash_amount);
    let _ = std::fs::remove_dir_all(&dir);
}
