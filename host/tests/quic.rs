//! The native transport end to end on loopback: a QUIC player starts its
//! session with the broker's token, decodes what arrives on frame streams
//! or datagrams, steers the game and gets acks naming the frames that show
//! its input; bad joins are refused with a close code; a QUIC watcher of a
//! browser's (WebRTC) session gets the very same encoded frames.

use std::collections::HashSet;
use std::net::SocketAddr;

use ed25519_dalek::SigningKey;
use gridplay_host::DEFAULT_MAX_WATCHERS;
use gridplay_host::workloads::orbit::sound::ENGINE_REST_HZ;
use gridplay_protocol::input::{InputEvent, InputKind};
use gridplay_protocol::quic::{CloseCode, JoinRole, VideoCarriage};
use gridplay_protocol::{AllocateResponse, SessionClaims, SessionState};
use gridplay_streaming::StreamingError;
use gridplay_streaming::audio::{AudioFrame, SAMPLE_RATE, dominant_frequency, tone_power};
use gridplay_streaming::quic::{JoinOptions, QuicViewer};
use gridplay_streaming::webrtc::{ViewerEvent, ViewerOptions, WhepSession};

mod common;
use common::*;

fn quic_addr(session: &AllocateResponse) -> (SocketAddr, String) {
    let endpoint = session.quic.as_ref().expect("the host registered a QUIC endpoint");
    (endpoint.addr.parse().unwrap(), endpoint.cert_sha256.clone())
}

async fn join(
    session: &AllocateResponse,
    token: &str,
    role: JoinRole,
    video: VideoCarriage,
) -> Result<(QuicViewer, Watch), StreamingError> {
    let (addr, cert) = quic_addr(session);
    let options = JoinOptions { token: token.to_owned(), role, video, sound: true };
    let (viewer, welcome, events) = QuicViewer::connect(addr, &cert, &options).await?;
    assert_eq!(welcome.session_id, session.session_id);
    assert_eq!((welcome.width, welcome.height, welcome.fps), (640, 360, 30));
    Ok((viewer, Watch::new(events)))
}

fn refusal(result: Result<(QuicViewer, Watch), StreamingError>) -> Option<CloseCode> {
    match result {
        Err(StreamingError::Refused { code, .. }) => code,
        Err(other) => panic!("expected a refusal with a close code, got {other}"),
        Ok(_) => panic!("expected a refusal, got a welcome"),
    }
}

/// Clicks at (x, y) and checks that the ack's timestamp is that of the
/// first decoded frame showing the player there.
async fn click_and_check(viewer: &QuicViewer, watch: &mut Watch, seq: u32, (x, y): (f64, f64)) {
    let (px, py) = ((x * 65535.0) as u16, (y * 65535.0) as u16);
    let down = InputEvent { seq, kind: InputKind::PointerDown { x: px, y: py, button: 0 } };
    viewer.send_input(&down.encode().unwrap()).unwrap();
    watch.until("the click's ack", |w, _| w.acks.iter().any(|a| a.seq == seq)).await;
    let ack = *watch.acks.iter().find(|a| a.seq == seq).unwrap();
    let stamp = ack.rtp_timestamp.expect("the ack carries the frame's timestamp");
    watch
        .until("the acked frame", |w, _| {
            w.shown.iter().any(|&(ts, _)| ts.wrapping_sub(stamp) as i32 > 0)
        })
        .await;
    let at = watch.shown.iter().position(|&(ts, _)| ts == stamp).expect("acked frame decoded");
    let (sx, sy) = watch.shown[at].1;
    assert!((sx - x).abs() < 0.03 && (sy - y).abs() < 0.03, "acked frame shows {sx},{sy}");
    let (bx, by) = watch.shown[at - 1].1;
    assert!((bx - x).abs() > 0.1 || (by - y).abs() > 0.1, "the frame before already shows it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_player_on_frame_streams_decodes_steers_and_ends_the_session() {
    let net = Network::start().await;
    let session = net.allocate().await;
    let (viewer, mut watch) =
        join(&session, &session.token, JoinRole::Player, VideoCarriage::Streams).await.unwrap();
    net.wait_for_state(&session.session_id, SessionState::Running).await;
    for _ in 0..20 {
        let picture = watch.picture().await;
        assert_eq!((picture.width, picture.height), (640, 360));
    }
    click_and_check(&viewer, &mut watch, 1, (0.25, 0.3)).await;
    click_and_check(&viewer, &mut watch, 2, (0.7, 0.75)).await;
    // A second player for the same session is turned away; the first goes on.
    let again = join(&session, &session.token, JoinRole::Player, VideoCarriage::Streams).await;
    assert_eq!(refusal(again), Some(CloseCode::Conflict));
    watch.picture().await;
    // Leaving ends the session at the broker.
    viewer.close().await;
    net.wait_for_state(&session.session_id, SessionState::Ended).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_player_on_datagrams_decodes_and_steers() {
    let net = Network::start().await;
    let session = net.allocate().await;
    let (viewer, mut watch) =
        join(&session, &session.token, JoinRole::Player, VideoCarriage::Datagrams).await.unwrap();
    for _ in 0..20 {
        watch.picture().await;
    }
    click_and_check(&viewer, &mut watch, 1, (0.2, 0.8)).await;
    viewer.close().await;
    net.wait_for_state(&session.session_id, SessionState::Ended).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_joins_are_refused_with_a_close_code_and_start_nothing() {
    let net = Network::start().await;
    let session = net.allocate().await;
    let broker_key = SigningKey::from_bytes(&[42; 32]).verifying_key();
    let claims = SessionClaims::verify(&session.token, &broker_key, unix_ms()).unwrap();
    let forged = claims.sign(&SigningKey::from_bytes(&[7; 32]));
    let expired = SessionClaims { expires_at_ms: unix_ms() - 1, ..claims.clone() }
        .sign(&SigningKey::from_bytes(&[42; 32]));
    for token in ["garbage", forged.as_str(), expired.as_str()] {
        let result = join(&session, token, JoinRole::Player, VideoCarriage::Streams).await;
        assert_eq!(refusal(result), Some(CloseCode::Unauthorized), "token {token}");
    }
    // Watching a session nobody plays yet is a conflict.
    let watch = join(&session, &session.token, JoinRole::Watcher, VideoCarriage::Streams).await;
    assert_eq!(refusal(watch), Some(CloseCode::Conflict));
    // A host whose certificate is not the published one is not trusted.
    let (addr, _) = quic_addr(&session);
    let options = JoinOptions {
        token: session.token.clone(),
        role: JoinRole::Player,
        video: VideoCarriage::Streams,
        sound: false,
    };
    let wrong = QuicViewer::connect(addr, &"00".repeat(32), &options).await;
    assert!(matches!(wrong, Err(StreamingError::Quic(_))), "pinned hash must match");
    // Nothing was started: the real join still streams.
    let (viewer, mut watch) =
        join(&session, &session.token, JoinRole::Player, VideoCarriage::Streams).await.unwrap();
    watch.picture().await;
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_need_an_unexpired_token_and_a_session_takes_only_so_many() {
    let net = Network::start().await;
    let session = net.allocate().await;
    let (player, _playing) =
        join(&session, &session.token, JoinRole::Player, VideoCarriage::Streams).await.unwrap();
    let broker = SigningKey::from_bytes(&BROKER_SEED);
    let claims = SessionClaims::verify(&session.token, &broker.verifying_key(), unix_ms()).unwrap();
    let expired = SessionClaims { expires_at_ms: unix_ms() - 1, ..claims }.sign(&broker);
    let refused = join(&session, &expired, JoinRole::Watcher, VideoCarriage::Streams).await;
    assert_eq!(refusal(refused), Some(CloseCode::Unauthorized), "an expired token watches nothing");
    let mut watchers = Vec::new();
    for _ in 0..DEFAULT_MAX_WATCHERS {
        let watcher = join(&session, &session.token, JoinRole::Watcher, VideoCarriage::Datagrams);
        watchers.push(watcher.await.unwrap());
    }
    match join(&session, &session.token, JoinRole::Watcher, VideoCarriage::Datagrams).await {
        Err(StreamingError::Refused { code, reason }) => {
            assert_eq!(code, Some(CloseCode::NoCapacity));
            assert!(reason.contains(&format!("{DEFAULT_MAX_WATCHERS} watchers")), "{reason}");
        }
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("watcher {} was let in", DEFAULT_MAX_WATCHERS + 1),
    }
    for (watcher, _) in watchers {
        watcher.close().await;
    }
    player.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quic_watcher_gets_the_browser_players_encoded_frames() {
    let net = Network::start().await;
    let session = net.allocate().await;
    let (whep, mut player_events) =
        WhepSession::connect(&session.whep_url, &session.token, &ViewerOptions::direct(LOOPBACK))
            .await
            .unwrap();
    net.wait_for_state(&session.session_id, SessionState::Running).await;
    let (watcher, mut watch) =
        join(&session, &session.token, JoinRole::Watcher, VideoCarriage::Streams).await.unwrap();
    // The watcher starts at a keyframe and decodes.
    for _ in 0..10 {
        watch.picture().await;
    }
    let watched: Vec<bytes::Bytes> = {
        let mut units = Vec::new();
        while units.len() < 10 {
            if let Some(ViewerEvent::AccessUnit { data, complete: true, .. }) =
                watch.events.recv().await
            {
                units.push(data);
            }
        }
        units
    };
    // The player got byte-identical access units: one encode served both.
    let mut played = HashSet::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = player_events.recv().await {
            if let ViewerEvent::AccessUnit { data, complete: true, .. } = event {
                played.insert(data);
                if watched.iter().filter(|u| played.contains(*u)).count() >= 5 {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the watcher's frames are the player's frames");
    // Input from a watcher steers nothing and is not acknowledged.
    let down = InputEvent { seq: 1, kind: InputKind::KeyDown { code: "ArrowLeft".into() } };
    watcher.send_input(&down.encode().unwrap()).unwrap();
    for _ in 0..10 {
        watch.picture().await;
    }
    assert!(watch.acks.is_empty());
    watcher.close().await;
    whep.end().await.unwrap();
    net.wait_for_state(&session.session_id, SessionState::Ended).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_players_and_watchers_that_ask_for_sound_hear_the_one_encode() {
    let net = Network::start().await;
    let session = net.allocate().await;
    let token = &session.token;
    let (viewer, mut watch) =
        join(&session, token, JoinRole::Player, VideoCarriage::Datagrams).await.unwrap();
    let second = 2 * SAMPLE_RATE as usize;
    watch.until("a second of sound", |w, _| w.heard.len() >= second).await;
    // Past the codec's start: Orbit's hum at rest, every packet in order.
    assert_eq!(dominant_frequency(&watch.heard[second / 2..], 80, 400), ENGINE_REST_HZ as u32);
    assert_eq!(watch.listener.dropped, 0);
    // A watcher hears the very packets the player does (each stamped on its own
    // connection's clock).
    let (watcher, mut watcher_watch) =
        join(&session, token, JoinRole::Watcher, VideoCarriage::Datagrams).await.unwrap();
    let mut watched = Vec::new();
    while watched.len() < 10 {
        if let Some(ViewerEvent::Sound { data, .. }) = watcher_watch.events.recv().await {
            watched.push(data);
        }
    }
    let mut heard = HashSet::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = watch.events.recv().await {
            if let ViewerEvent::Sound { data, .. } = event {
                heard.insert(data);
                if watched.iter().all(|p| heard.contains(p)) {
                    return;
                }
            }
        }
    })
    .await;
    assert!(found.is_ok(), "the watcher's sound is the player's");
    watcher.close().await;
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hops_chirp_is_stamped_with_its_first_picture() {
    let net = Network::start().await;
    let session = net.allocate().await;
    let (viewer, mut watch) =
        join(&session, &session.token, JoinRole::Player, VideoCarriage::Streams).await.unwrap();
    watch
        .until("sound and pictures", |w, _| w.heard.len() >= 2 * 4800 && w.shown.len() >= 10)
        .await;
    let (_, (_, rest_y)) = *watch.shown.last().unwrap();
    let (pictures, packets) = (watch.shown.len(), watch.sound_stamps.len());
    let jump = InputEvent { seq: 1, kind: InputKind::KeyDown { code: "Space".into() } };
    viewer.send_input(&jump.encode().unwrap()).unwrap();
    // The first picture off the ground, and the first packet with the chirp in it.
    let chirp = |w: &Watch, at: usize| {
        let samples = &w.heard[at..(at + 960).min(w.heard.len())];
        let band: f64 = (600..=1200).step_by(100).map(|f| tone_power(samples, f64::from(f))).sum();
        band > 1e4
    };
    watch
        .until("the hop, seen and heard", |w, _| {
            w.shown[pictures..].iter().any(|(_, (_, y))| *y < rest_y - 0.01)
                && w.sound_stamps[packets..].iter().any(|&(_, at)| chirp(w, at))
        })
        .await;
    let (seen, _) = *watch.shown[pictures..].iter().find(|(_, (_, y))| *y < rest_y - 0.01).unwrap();
    let (heard, _) =
        *watch.sound_stamps[packets..].iter().find(|&&(_, at)| chirp(&watch, at)).unwrap();
    // Both clocks count from the connection's start: 90 kHz and 48 kHz.
    let offset_ms = f64::from(heard) / 48.0 - f64::from(seen) / 90.0;
    assert!(offset_ms.abs() <= 20.0, "the chirp is stamped {offset_ms:.1} ms from its picture");
    viewer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_sends_sound_in_the_frames_it_is_configured_for() {
    let net = Network::start_configured(|config| config.sound_frame = AudioFrame::Ms20).await;
    let session = net.allocate().await;
    let (viewer, mut watch) =
        join(&session, &session.token, JoinRole::Player, VideoCarriage::Streams).await.unwrap();
    watch.until("ten packets of sound", |w, _| w.sound_stamps.len() >= 10).await;
    // Each packet holds 20 ms (960 samples a channel).
    let starts: Vec<usize> = watch.sound_stamps.iter().map(|&(_, at)| at).collect();
    assert!(starts.windows(2).all(|w| w[1] - w[0] == 2 * 960), "{starts:?}");
    viewer.close().await;
}
