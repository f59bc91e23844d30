//! `gridplay play --headless`: a native player without a screen. It
//! allocates a session, streams it over WebRTC, decodes every frame with
//! openh264, sends scripted input, and prints what it measured.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use gridplay_protocol::input::{InputApplied, InputEvent, InputKind};
use gridplay_protocol::{AllocateRequest, AllocateResponse, Profile};
use gridplay_streaming::H264Decoder;
use gridplay_streaming::webrtc::{ViewerEvent, ViewerOptions, WhepSession};
use serde::Serialize;

/// `gridplay play` flags.
#[derive(Args)]
pub struct PlayArgs {
    /// Run without a window (the only mode so far).
    #[arg(long, required = true)]
    headless: bool,
    /// The broker's base URL.
    #[arg(long, env = "GRIDPLAY_BROKER_URL", default_value = "http://127.0.0.1:8080")]
    broker: String,
    /// App to play.
    #[arg(long, default_value = "orbit")]
    app: String,
    /// Frame size and rate, e.g. 1280x720@60.
    #[arg(long, default_value = "1280x720@60", value_parser = parse_stream)]
    stream: (u32, u32, u32),
    /// Seconds to play.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Local address for media.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Reach the host's media through a UDP relay at this address (`gridplay relay`).
    #[arg(long)]
    via: Option<IpAddr>,
    /// Milliseconds of jitter buffer (reordering, waiting for retransmissions); 0 for none.
    #[arg(long, default_value_t = 0)]
    jitter_buffer_ms: u64,
}

fn parse_stream(text: &str) -> Result<(u32, u32, u32), String> {
    let bad = || format!("expected WIDTHxHEIGHT@FPS, got `{text}`");
    let (size, fps) = text.split_once('@').ok_or_else(bad)?;
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    Ok((
        w.parse().map_err(|_| bad())?,
        h.parse().map_err(|_| bad())?,
        fps.parse().map_err(|_| bad())?,
    ))
}

/// One second of the session, as the player saw it.
#[derive(Debug, Default, Clone, Serialize)]
struct Second {
    decoded_frames: u32,
    /// Frames that arrived incomplete or failed to decode.
    broken_frames: u32,
    /// Decoded frames with concealed parts (after a loss, until a keyframe).
    concealed_frames: u32,
    /// Keyframes the host sent in this second.
    keyframes: u64,
    received_kbit: u64,
    /// What the host sent in this second (from its session resource).
    sent_kbit: u64,
    /// The host's congestion-control target at the end of the second.
    target_kbit: u64,
}

/// What `gridplay play` prints.
#[derive(Debug, Serialize)]
struct Summary {
    session_id: String,
    seconds: Vec<Second>,
    decoded_frames: u64,
    mean_fps: f64,
    /// Longest gap between two decoded frames, ms.
    longest_freeze_ms: f64,
    /// Inputs sent and acknowledged, and the median time to the acknowledging frame, ms.
    inputs_sent: u32,
    inputs_acked: u32,
    input_to_frame_ms_median: f64,
}

/// Plays one session and prints a JSON summary.
pub async fn run(args: PlayArgs) -> anyhow::Result<()> {
    let (width, height, fps) = args.stream;
    let request = AllocateRequest {
        app: args.app.clone(),
        profile: if height > width { Profile::Phone } else { Profile::Game },
        width,
        height,
        fps,
        location: None,
        rtt_samples: None,
        max_rtt_ms: None,
        client_key: None,
    };
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/v1/sessions", args.broker.trim_end_matches('/')))
        .json(&request)
        .send()
        .await
        .context("reaching the broker")?;
    if !response.status().is_success() {
        anyhow::bail!(
            "allocation refused: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    let session: AllocateResponse = response.json().await?;
    let options = ViewerOptions {
        bind_ip: args.bind,
        via: args.via,
        jitter_buffer: (args.jitter_buffer_ms > 0)
            .then(|| Duration::from_millis(args.jitter_buffer_ms)),
    };
    let (whep, mut events) =
        WhepSession::connect(&session.whep_url, &session.token, &options).await?;
    let mut last_keyframe_request: Option<Instant> = None;
    let mut needs_keyframe = false;
    let mut decoder = H264Decoder::new()?;
    let mut seconds: Vec<Second> = Vec::new();
    let mut current = Second::default();
    let (mut decoded, mut longest_freeze) = (0u64, Duration::ZERO);
    let mut last_frame: Option<Instant> = None;
    let (mut seq, mut input_open) = (0u32, false);
    let mut sent_at: std::collections::HashMap<u32, Instant> = Default::default();
    let mut input_delays: Vec<f64> = Vec::new();
    let (mut last_sent_bytes, mut last_keyframes) = (0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut input_tick = tokio::time::interval(Duration::from_millis(500));
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        // After a lost or undecodable frame, ask for a keyframe, at most every 300 ms.
        if needs_keyframe
            && last_keyframe_request.is_none_or(|t| t.elapsed() > Duration::from_millis(300))
        {
            whep.viewer().request_keyframe().await?;
            last_keyframe_request = Some(Instant::now());
            needs_keyframe = false;
        }
        tokio::select! {
            event = events.recv() => match event.context("connection closed")? {
                ViewerEvent::AccessUnit { data, complete, .. } => {
                    current.received_kbit += data.len() as u64 * 8 / 1000;
                    if !complete {
                        current.broken_frames += 1;
                        needs_keyframe = true;
                    }
                    match decoder.decode(&data) {
                        Ok(Some(picture)) => {
                            current.concealed_frames += u32::from(picture.concealed);
                            let now = Instant::now();
                            if let Some(last) = last_frame {
                                longest_freeze = longest_freeze.max(now - last);
                            }
                            last_frame = Some(now);
                            decoded += 1;
                            current.decoded_frames += 1;
                        }
                        Ok(None) => {}
                        Err(_) => {
                            current.broken_frames += 1;
                            needs_keyframe = true;
                        }
                    }
                }
                ViewerEvent::InputOpen => input_open = true,
                ViewerEvent::InputMessage(bytes) => {
                    if let Ok(ack) = InputApplied::decode(&bytes)
                        && let Some(at) = sent_at.remove(&ack.seq)
                    {
                        input_delays.push(at.elapsed().as_secs_f64() * 1e3);
                    }
                }
                ViewerEvent::Closed => anyhow::bail!("the host closed the session"),
                ViewerEvent::Connected | ViewerEvent::ProbesOpen | ViewerEvent::ProbeMessage(_) => {}
            },
            _ = input_tick.tick(), if input_open => {
                // Alternate right and left so the ship stays on screen.
                seq += 1;
                let code = if (seq / 2) % 2 == 0 { "ArrowRight" } else { "ArrowLeft" };
                let kind = if seq % 2 == 1 { InputKind::KeyDown { code: code.into() } } else { InputKind::KeyUp { code: code.into() } };
                whep.viewer().send_input(&InputEvent { seq, kind }.encode()?).await?;
                sent_at.insert(seq, Instant::now());
            },
            _ = tick.tick() => {
                if let Ok(stats) = whep.host_stats().await {
                    current.sent_kbit = stats.bytes_sent.saturating_sub(last_sent_bytes) * 8 / 1000;
                    current.target_kbit = stats.target_bps / 1000;
                    current.keyframes = stats.keyframes_sent.saturating_sub(last_keyframes);
                    last_sent_bytes = stats.bytes_sent;
                    last_keyframes = stats.keyframes_sent;
                }
                seconds.push(std::mem::take(&mut current));
            },
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    input_delays.sort_by(f64::total_cmp);
    let summary = Summary {
        session_id: session.session_id,
        decoded_frames: decoded,
        mean_fps: decoded as f64 / elapsed,
        longest_freeze_ms: longest_freeze.as_secs_f64() * 1e3,
        inputs_sent: seq,
        inputs_acked: input_delays.len() as u32,
        input_to_frame_ms_median: input_delays.get(input_delays.len() / 2).copied().unwrap_or(0.0),
        seconds,
    };
    whep.end().await?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stream_specs() {
        assert_eq!(parse_stream("1280x720@60"), Ok((1280, 720, 60)));
        assert!(parse_stream("1280x720").is_err());
        assert!(parse_stream("axb@c").is_err());
    }
}
