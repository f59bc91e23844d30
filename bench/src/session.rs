//! Sustained frame rate of one real session: broker and host in this
//! process, a WHEP viewer on loopback decoding every frame.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use gridplay_host::{HostConfig, run_host};
use gridplay_protocol::{AllocateRequest, AllocateResponse};
use gridplay_session_broker::{BrokerConfig, BrokerState, serve};
use gridplay_streaming::H264Decoder;
use gridplay_streaming::webrtc::{ViewerEvent, ViewerOptions, WhepSession};
use serde::Serialize;
use tokio::net::TcpListener;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// What one session sustained.
#[derive(Debug, Serialize)]
pub struct SessionReport {
    /// "WIDTHxHEIGHT@FPS" asked for.
    pub stream: String,
    /// Seconds measured (after the first frame).
    pub seconds: f64,
    /// Access units received per second.
    pub received_fps: f64,
    /// Pictures decoded per second.
    pub decoded_fps: f64,
    /// Received video bitrate, Mbit/s.
    pub mbit_per_s: f64,
    /// Longest gap between two received frames, ms.
    pub max_gap_ms: f64,
}

/// Streams one 1280x720@60 session for `seconds` and counts frames.
pub async fn measure(seconds: u64) -> anyhow::Result<SessionReport> {
    let listener = TcpListener::bind((LOOPBACK, 0)).await?;
    let broker = format!("http://{}", listener.local_addr()?);
    let state =
        Arc::new(BrokerState::in_memory(SigningKey::from_bytes(&[9; 32]), BrokerConfig::default()));
    tokio::spawn(serve(listener, state, std::future::pending()));
    let config = HostConfig::local(&broker, LOOPBACK, 0, 1, SigningKey::from_bytes(&[8; 32]));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(run_host(
        config,
        move |a| {
            let _ = ready_tx.send(a);
        },
        std::future::pending(),
    ));
    ready_rx.await?;

    let (width, height, fps) = (1280, 720, 60);
    let request = AllocateRequest::for_stream("orbit", width, height, fps);
    let session: AllocateResponse = reqwest::Client::new()
        .post(format!("{broker}/v1/sessions"))
        .json(&request)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let (whep, mut events) =
        WhepSession::connect(&session.whep_url, &session.token, &ViewerOptions::direct(LOOPBACK))
            .await?;
    let mut decoder = H264Decoder::new()?;
    let (mut received, mut decoded, mut bytes) = (0u64, 0u64, 0usize);
    let mut max_gap = Duration::ZERO;
    let mut start: Option<Instant> = None;
    let mut last = Instant::now();
    let deadline = Duration::from_secs(seconds);
    while start.is_none_or(|s| s.elapsed() < deadline) {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await?;
        let Some(ViewerEvent::AccessUnit { data, .. }) = event else {
            anyhow::ensure!(event.is_some(), "session ended early");
            continue;
        };
        let now = Instant::now();
        if start.is_none() {
            start = Some(now);
        } else {
            max_gap = max_gap.max(now - last);
            received += 1;
            bytes += data.len();
        }
        last = now;
        decoded += u64::from(decoder.decode(&data)?.is_some());
    }
    let elapsed = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    whep.end().await?;
    Ok(SessionReport {
        stream: format!("{width}x{height}@{fps}"),
        seconds: elapsed,
        received_fps: received as f64 / elapsed,
        decoded_fps: decoded.saturating_sub(1) as f64 / elapsed,
        mbit_per_s: bytes as f64 * 8.0 / elapsed / 1e6,
        max_gap_ms: max_gap.as_secs_f64() * 1e3,
    })
}
