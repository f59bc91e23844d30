//! End to end on loopback: a broker, a host, and a webrtc-rs viewer that does
//! WHEP with the broker's token, decodes the H.264 it receives (openh264),
//! steers the game over the input channel, checks that each input's ack names
//! the RTP timestamp of the frame that first shows it, and sends signed probe
//! reports that the host verifies and serves, signed, from its probes endpoint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, SigningKey, Verifier};
use gridplay_host::catalogue::Catalogue;
use gridplay_host::probes::Clock;
use gridplay_host::workloads::orbit::sound::ENGINE_REST_HZ;
use gridplay_host::{BrokerKey, HostConfig, HostError, run_host};
use gridplay_protocol::input::{InputEvent, InputKind};
use gridplay_protocol::probe::{
    Address, ClientProbeMessage, HostProbeMessage, PROBES_SIGNATURE_HEADER, ProbeReport,
    SessionProbes,
};
use gridplay_protocol::{Profile, SessionClaims, SessionState};
use gridplay_streaming::audio::{SAMPLE_RATE, dominant_frequency, tone_power};
use gridplay_streaming::webrtc::{Viewer, ViewerOptions};
use reqwest::StatusCode;

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_streams_decodes_steers_and_ends_the_session() {
    let net = Network::start().await;
    let session = net.allocate().await;
    let (whep, mut watch) = watch_over_whep(&session).await;
    assert!(whep.resource().path().ends_with(&session.session_id));
    let viewer = whep.viewer();
    net.wait_for_state(&session.session_id, SessionState::Running).await;

    let mut pictures = Vec::new();
    for _ in 0..30 {
        pictures.push(watch.picture().await);
    }
    assert!(pictures.iter().all(|p| (p.width, p.height) == (640, 360)));
    assert_ne!(pictures[0].rgba, pictures[29].rgba, "the game is animated");
    let (x0, y0) = player_centroid(&pictures[29]);
    assert!((x0 - 0.5).abs() < 0.03 && (y0 - 0.5).abs() < 0.03, "player starts centred: {x0},{y0}");

    // Hold ArrowRight: the ack names the frame that first reflects it.
    watch.until("the input channel", |w, _| w.input_open).await;
    let down = InputEvent { seq: 1, kind: InputKind::KeyDown { code: "ArrowRight".into() } };
    viewer.send_input(&down.encode().unwrap()).await.unwrap();
    watch.until("the input ack", |w, _| !w.acks.is_empty()).await;
    assert_eq!(watch.acks[0].seq, 1);
    assert!(watch.acks[0].frame_id > 30);
    for _ in 0..20 {
        watch.picture().await;
    }
    let up = InputEvent { seq: 2, kind: InputKind::KeyUp { code: "ArrowRight".into() } };
    viewer.send_input(&up.encode().unwrap()).await.unwrap();
    let (x1, y1) = player_centroid(&watch.picture().await);
    assert!(x1 > x0 + 0.1, "player moved right: {x0} -> {x1}");
    assert!((y1 - y0).abs() < 0.02);

    // DELETE on the WHEP resource ends the session and frees the slot.
    whep.end().await.unwrap();
    net.wait_for_state(&session.session_id, SessionState::Ended).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_reads_nothing_but_still_ends_its_own_session() {
    let net = Network::start().await;
    let session = net.allocate().await;
    let (whep, mut watch) = watch_over_whep(&session).await;
    watch.picture().await;
    let broker = SigningKey::from_bytes(&BROKER_SEED);
    let claims = SessionClaims::verify(&session.token, &broker.verifying_key(), unix_ms()).unwrap();
    let expired = SessionClaims { expires_at_ms: unix_ms() - 1, ..claims }.sign(&broker);
    let resource = format!("{}/sessions/{}", session.whep_url, session.session_id);
    for url in [resource.clone(), format!("{resource}/probes")] {
        let live = net.http.get(&url).bearer_auth(&session.token).send().await.unwrap();
        assert_eq!(live.status(), StatusCode::OK, "{url} with a live token");
        let response = net.http.get(&url).bearer_auth(&expired).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{url} with an expired token");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["message"], "token expired");
    }
    // Ending one's own session needs only the token's signature: it outlives the token.
    let ended = net.http.delete(&resource).bearer_auth(&expired).send().await.unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    net.wait_for_state(&session.session_id, SessionState::Ended).await;
    drop(whep);
}

/// Runs a host of `broker` trusting `broker_key` until it is ready (`Ok`, then stopped) or
/// its registration fails (`Err`).
async fn try_host(broker: &str, broker_key: BrokerKey) -> Result<(), HostError> {
    let mut config = HostConfig::local(broker, LOOPBACK, 0, 1, SigningKey::from_bytes(&HOST_SEED));
    config.broker_key = broker_key;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let stop = async move {
        let _ = ready_rx.await;
    };
    tokio::time::timeout(WAIT, run_host(config, move |_| ready_tx.send(()).unwrap(), stop))
        .await
        .expect("the host stops")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_trusts_only_its_configured_or_pinned_broker_key() {
    let (seed_a, seed_b) = ([11; 32], [12; 32]);
    let key = |seed| SigningKey::from_bytes(&seed).verifying_key();
    let (broker_a, broker_b) = (start_broker(seed_a).await, start_broker(seed_b).await);
    // Configured with A's key: A is taken, B refused.
    try_host(&broker_a, BrokerKey::Configured(key(seed_a))).await.unwrap();
    let refused = try_host(&broker_b, BrokerKey::Configured(key(seed_a))).await.unwrap_err();
    assert!(matches!(refused, HostError::UntrustedBroker { .. }), "{refused}");
    assert!(refused.to_string().contains("--broker-key"), "{refused}");
    // Pinned on first use: A's key is pinned in the file, then a broker with B's is refused.
    let pin = std::env::temp_dir().join(format!("gridplay-broker-pin-{}", std::process::id()));
    let _ = std::fs::remove_file(&pin);
    try_host(&broker_a, BrokerKey::PinnedOnFirstUse(Some(pin.clone()))).await.unwrap();
    let pinned = std::fs::read_to_string(&pin).unwrap();
    assert_eq!(pinned.trim(), gridplay_protocol::token::encode_public_key(&key(seed_a)));
    let refused =
        try_host(&broker_b, BrokerKey::PinnedOnFirstUse(Some(pin.clone()))).await.unwrap_err();
    assert!(matches!(refused, HostError::UntrustedBroker { .. }), "{refused}");
    try_host(&broker_a, BrokerKey::PinnedOnFirstUse(Some(pin.clone()))).await.unwrap();
    std::fs::remove_file(&pin).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_bad_sdp_are_refused_and_start_nothing() {
    let net = Network::start().await;
    let session = net.allocate().await;
    let (viewer, offer, events) = Viewer::offer(&ViewerOptions::direct(LOOPBACK)).await.unwrap();
    let mut watch = Watch::new(events);
    let claims = SessionClaims::verify(
        &session.token,
        &SigningKey::from_bytes(&BROKER_SEED).verifying_key(),
        unix_ms(),
    )
    .unwrap();
    let forged = claims.sign(&SigningKey::from_bytes(&[7; 32]));
    let expired = SessionClaims { expires_at_ms: unix_ms() - 1, ..claims.clone() }
        .sign(&SigningKey::from_bytes(&BROKER_SEED));
    assert_eq!(claims.profile, Profile::Game);
    for token in [None, Some("garbage"), Some(forged.as_str()), Some(expired.as_str())] {
        let response = net.whep(&session.whep_url, token, offer.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "token {token:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }
    let oversized = format!("{offer}{}", "a=x\r\n".repeat(10_000));
    for sdp in ["hello".to_owned(), "v=0\r\nm=audio 9 UDP 0\r\n".to_owned(), oversized] {
        let response = net.whep(&session.whep_url, Some(&session.token), sdp).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    // Nothing was started: the real offer still connects and streams.
    let response = net.whep(&session.whep_url, Some(&session.token), offer.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    viewer.accept_answer(&response.text().await.unwrap()).await.unwrap();
    watch.picture().await;
    // A second offer for the same session is a conflict.
    let again = net.whep(&session.whep_url, Some(&session.token), offer).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // A viewer that goes away without DELETE frees its slot too.
    viewer.close().await;
    net.wait_for_state(&session.session_id, SessionState::Ended).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orbit_is_heard_its_hum_at_rest_and_a_chirp_when_the_player_jumps() {
    // In a worker process, as real hosts run sessions.
    let net = Network::start_with_workers(Catalogue::default()).await;
    let session = net.allocate().await;
    let options = ViewerOptions { sound: true, ..ViewerOptions::direct(LOOPBACK) };
    let (whep, mut watch) = watch_over_whep_with(&session, options).await;
    // A second of sound (48 kHz stereo); the jump then, and half a second after it.
    let (second, span) = (2 * SAMPLE_RATE as usize, SAMPLE_RATE as usize);
    watch.until("a second of sound", |w, _| w.input_open && w.heard.len() >= second).await;
    let before = watch.heard.len();
    let jump = InputEvent { seq: 1, kind: InputKind::KeyDown { code: "Space".into() } };
    whep.viewer().send_input(&jump.encode().unwrap()).await.unwrap();
    watch.until("the jump's sound", |w, _| w.heard.len() >= before + span).await;
    // Past the codec's start, at rest: the hum's fundamental.
    assert_eq!(
        dominant_frequency(&watch.heard[before - span..before], 80, 400),
        ENGINE_REST_HZ as u32
    );
    // The chirp's band, against the same span of hum just before the jump.
    let band =
        |pcm: &[i16]| (600..=1200).step_by(50).map(|f| tone_power(pcm, f64::from(f))).sum::<f64>();
    let quiet = band(&watch.heard[before - span..before]);
    let jumped = band(&watch.heard[before..before + span]);
    assert!(jumped > 50.0 * quiet, "the jump is heard at once: {jumped:e} against {quiet:e}");
    whep.end().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ack_names_the_rtp_timestamp_of_the_first_frame_that_shows_the_input() {
    let net = Network::start().await;
    let session = net.allocate().await;
    let (whep, mut watch) = watch_over_whep(&session).await;
    for _ in 0..10 {
        watch.picture().await;
    }
    watch.until("the input channel", |w, _| w.input_open).await;
    // Clicks put the player where they land, in the very frame they are applied to.
    let spots = [(0.2, 0.25), (0.8, 0.7), (0.3, 0.8)];
    for (i, &(x, y)) in spots.iter().enumerate() {
        let seq = 2 * i as u32 + 1;
        let (px, py) = ((x * 65535.0) as u16, (y * 65535.0) as u16);
        let down = InputEvent { seq, kind: InputKind::PointerDown { x: px, y: py, button: 0 } };
        let up =
            InputEvent { seq: seq + 1, kind: InputKind::PointerUp { x: px, y: py, button: 0 } };
        whep.viewer().send_input(&down.encode().unwrap()).await.unwrap();
        whep.viewer().send_input(&up.encode().unwrap()).await.unwrap();
        watch.until("the click's ack", |w, _| w.acks.iter().any(|a| a.seq == seq)).await;
        let ack = *watch.acks.iter().find(|a| a.seq == seq).unwrap();
        let stamp = ack.rtp_timestamp.expect("the ack carries the frame's RTP timestamp");
        // Wait until the picture after the acked one is decoded too.
        watch
            .until("the acked frame", |w, _| {
                w.shown.iter().any(|&(ts, _)| ts.wrapping_sub(stamp) as i32 > 0)
            })
            .await;
        let at = watch.shown.iter().position(|&(ts, _)| ts == stamp).unwrap_or_else(|| {
            panic!("no decoded frame has RTP timestamp {stamp}: {:?}", watch.shown)
        });
        let (shown_x, shown_y) = watch.shown[at].1;
        assert!(
            (shown_x - x).abs() < 0.03 && (shown_y - y).abs() < 0.03,
            "the acked frame shows the player at {shown_x},{shown_y}, not at the click {x},{y}"
        );
        let (before_x, before_y) = watch.shown[at - 1].1;
        assert!(
            (before_x - x).abs() > 0.1 || (before_y - y).abs() > 0.1,
            "the frame before the acked one already shows the click ({before_x},{before_y})"
        );
    }
    whep.end().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_probe_reports_are_verified_kept_and_served_signed() {
    // The host's probe logs keep time on a clock this test moves: a second passes at once.
    let clock = Clock::manual(1_800_000_000_000);
    let net = Network::start_on(clock.clone()).await;
    let client = k256::ecdsa::SigningKey::from_slice(&[0x5e; 32]).unwrap();
    let address = Address::of(client.verifying_key()).to_string();
    let session = net.allocate_with(serde_json::json!({ "client_key": address })).await;
    let (whep, mut watch) = watch_over_whep(&session).await;
    watch.picture().await;
    watch.until("the probes channel", |w, _| w.probes_open).await;

    let report = |seq: u32| ProbeReport {
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
    let viewer = whep.viewer();
    let send = |message: ClientProbeMessage| {
        let text = serde_json::to_string(&message).unwrap();
        async move { viewer.send_probe(&text).await.unwrap() }
    };
    send(ClientProbeMessage::Ping { id: 9 }).await;
    send(report(1).sign(&client).into()).await;
    let forger = k256::ecdsa::SigningKey::from_slice(&[0x5f; 32]).unwrap();
    send(report(2).sign(&forger).into()).await;
    send(report(1).sign(&client).into()).await; // a replay
    watch.until("the pong and two refusals", |w, _| w.probe_messages.len() >= 3).await;
    assert!(watch.probe_messages.contains(&HostProbeMessage::Pong { id: 9 }));
    let refused: Vec<u32> = watch
        .probe_messages
        .iter()
        .filter_map(|m| match m {
            HostProbeMessage::Rejected { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(refused, vec![2, 1]);
    clock.advance(1000);
    send(report(2).sign(&client).into()).await;
    // The report is filed once the host answers the next ping on the same channel.
    send(ClientProbeMessage::Ping { id: 10 }).await;
    watch
        .until("the second pong", |w, _| {
            w.probe_messages.contains(&HostProbeMessage::Pong { id: 10 })
        })
        .await;
    clock.advance(1000);

    let url = format!("{}/probes", whep.resource());
    let probes = fetch_probes(&net.http, &url, &session.token).await;
    assert_eq!(probes.session_id, session.session_id);
    assert_eq!(probes.client_key.as_deref(), Some(address.as_str()));
    assert_eq!(probes.reports_valid, 2);
    assert_eq!((probes.reports_rejected.bad_signature, probes.reports_rejected.replayed), (1, 1));
    let reported: Vec<u32> =
        probes.records.iter().filter_map(|r| r.client.as_ref().map(|c| c.report.seq)).collect();
    assert_eq!(reported, vec![1, 2]);
    for record in probes.records.iter().filter_map(|r| r.client.as_ref()) {
        assert_eq!(record.signer().unwrap().to_string(), address, "anyone can re-verify");
    }
    let first = probes.records.first().expect("records");
    assert!(first.host.frames_sent > 0 && first.host.bitrate_bps > 0, "{first:?}");
    assert_eq!(probes.blocks.len(), 1);
    assert_eq!(probes.blocks[0].seconds_with_client_report, 2);
    assert!(!probes.blocks[0].complete && !probes.ended);

    // Another session's token is refused; the log outlives the session.
    let other = net.allocate().await;
    let response = net.http.get(&url).bearer_auth(&other.token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    whep.end().await.unwrap();
    net.wait_for_state(&session.session_id, SessionState::Ended).await;
    let ended = fetch_probes(&net.http, &url, &session.token).await;
    assert!(ended.ended && ended.blocks.iter().all(|b| b.complete));
    assert_eq!(ended.reports_valid, 2);
}

/// `GET` a session's probe log; checks the host's signature over the body.
async fn fetch_probes(http: &reqwest::Client, url: &str, token: &str) -> SessionProbes {
    let response = http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let signature = response.headers()[PROBES_SIGNATURE_HEADER].to_str().unwrap().to_owned();
    let body = response.bytes().await.unwrap();
    let signature: [u8; 64] = B64.decode(signature).unwrap().try_into().unwrap();
    let host = SigningKey::from_bytes(&HOST_SEED).verifying_key();
    host.verify(&body, &Signature::from_bytes(&signature)).expect("signed by the host");
    serde_json::from_slice(&body).unwrap()
}
