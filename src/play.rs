//! `gridplay play --headless`: a native player without a screen. It
//! allocates a session, streams it over QUIC (or WebRTC), decodes every
//! frame with openh264 and the sound with Opus, sends scripted input, and
//! prints what it measured and heard.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use gridplay_protocol::input::{InputApplied, InputEvent, InputKind};
use gridplay_protocol::probe::{Address, ClientProbeMessage, ProbeReport};
use gridplay_protocol::quic::{JoinRole, VideoCarriage};
use gridplay_protocol::{AllocateRequest, AllocateResponse, SessionToken, StreamStats};
use gridplay_session_broker::unix_ms;
use gridplay_streaming::H264Decoder;
use gridplay_streaming::audio::{Listener, SAMPLE_RATE};
use gridplay_streaming::quic::{JoinOptions, QuicViewer};
use gridplay_streaming::webrtc::{IceSettings, ViewerEvent, ViewerOptions, WhepSession};
use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;

/// How the player reaches the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// QUIC, the native transport.
    Quic,
    /// WebRTC through WHEP, as a browser does.
    Webrtc,
}

/// How QUIC carries video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Video {
    /// One stream per frame.
    Streams,
    /// Datagrams.
    Datagrams,
}

/// `gridplay play` flags.
#[derive(Args)]
pub struct PlayArgs {
    /// Run without a window (the only mode so far).
    #[arg(long, required = true)]
    pub(crate) headless: bool,
    /// The broker's base URL (`https://` verified against the system's roots or --ca-file).
    #[arg(long, env = "GRIDPLAY_BROKER_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) broker: String,
    /// CA certificates (PEM) an `https://` broker's certificate must chain to, instead of the
    /// system's roots.
    #[arg(long, env = "GRIDPLAY_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// App to play.
    #[arg(long, default_value = "orbit")]
    pub(crate) app: String,
    /// Frame size and rate, e.g. 1280x720@60.
    #[arg(long, default_value = "1280x720@60", value_parser = parse_stream)]
    pub(crate) stream: (u32, u32, u32),
    /// Seconds to play.
    #[arg(long, default_value_t = 10)]
    pub(crate) seconds: u64,
    /// Local address for media.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) bind: IpAddr,
    /// Reach the host's media through a UDP relay at this address (`gridplay relay`).
    #[arg(long)]
    pub(crate) via: Option<IpAddr>,
    /// Reach the host's media through the broker's TURN servers alone (WebRTC).
    #[arg(long)]
    pub(crate) turn_only: bool,
    /// Milliseconds of jitter buffer (reordering, waiting for retransmissions); 0 for none (WebRTC).
    #[arg(long, default_value_t = 0)]
    pub(crate) jitter_buffer_ms: u64,
    /// Transport to the host.
    #[arg(long, value_enum, default_value_t = Transport::Quic)]
    pub(crate) transport: Transport,
    /// How QUIC carries video.
    #[arg(long, value_enum, default_value_t = Video::Streams)]
    pub(crate) video: Video,
    /// Milliseconds between scripted inputs.
    #[arg(long, default_value_t = 500)]
    pub(crate) input_every_ms: u64,
    /// Count whole frames without decoding them (load tests, where a decoder
    /// on the same machine would compete with the host).
    #[arg(long)]
    pub(crate) no_decode: bool,
}

/// The connection to the host, whichever transport.
enum Link {
    WebRtc(WhepSession),
    Quic(QuicViewer),
}

/// The transport `args` ask for, unless that is QUIC and the host declares no QUIC endpoint
/// players can reach (a host behind a NAT, which only WebRTC's ICE gets through): then
/// WebRTC, and a line saying so.
impl PlayArgs {
    /// How a checker plays `app`: headless, over QUIC (WebRTC where the host is behind a
    /// NAT), decoding every frame and clicking every 200 ms.
    pub(crate) fn checker(broker: &str, app: &str, stream: (u32, u32, u32), seconds: u64) -> Self {
        Self {
            headless: true,
            broker: broker.to_owned(),
            ca_file: None,
            app: app.to_owned(),
            stream,
            seconds,
            bind: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            via: None,
            turn_only: false,
            jitter_buffer_ms: 0,
            transport: Transport::Quic,
            video: Video::Streams,
            input_every_ms: 200,
            no_decode: false,
        }
    }
}

fn transport_for(args: &PlayArgs, session: &AllocateResponse) -> Transport {
    match (args.transport, &session.quic) {
        (Transport::Quic, None) => {
            eprintln!(
                "the host declares no reachable QUIC endpoint (it is behind a NAT): playing over WebRTC"
            );
            Transport::Webrtc
        }
        (transport, _) => transport,
    }
}

impl Link {
    /// Connects over `transport` as `args` say; returns the link and its events.
    async fn connect(
        args: &PlayArgs,
        transport: Transport,
        session: &AllocateResponse,
    ) -> anyhow::Result<(Self, UnboundedReceiver<ViewerEvent>)> {
        match transport {
            Transport::Webrtc => {
                let options = ViewerOptions {
                    bind_ip: args.bind,
                    via: args.via,
                    jitter_buffer: (args.jitter_buffer_ms > 0)
                        .then(|| Duration::from_millis(args.jitter_buffer_ms)),
                    sound: true,
                    ice: IceSettings {
                        servers: session.ice_servers.clone(),
                        relay_only: args.turn_only,
                    },
                };
                let (whep, events) =
                    WhepSession::connect(&session.whep_url, &session.token, &options).await?;
                Ok((Self::WebRtc(whep), events))
            }
            Transport::Quic => {
                let endpoint = session.quic.as_ref().context("the host offers no QUIC endpoint")?;
                let mut addr: SocketAddr =
                    endpoint.addr.parse().context("the host's QUIC address")?;
                if let Some(via) = args.via {
                    addr.set_ip(via);
                }
                let options = JoinOptions {
                    token: session.token.clone(),
                    role: JoinRole::Player,
                    video: match args.video {
                        Video::Streams => VideoCarriage::Streams,
                        Video::Datagrams => VideoCarriage::Datagrams,
                    },
                    sound: true,
                };
                let (viewer, _, events) =
                    QuicViewer::connect(addr, &endpoint.cert_sha256, &options).await?;
                Ok((Self::Quic(viewer), events))
            }
        }
    }

    async fn request_keyframe(&self) -> anyhow::Result<()> {
        match self {
            Self::WebRtc(whep) => whep.viewer().request_keyframe().await?,
            Self::Quic(quic) => quic.request_keyframe().await?,
        }
        Ok(())
    }

    async fn send_probe(&self, text: &str) -> anyhow::Result<()> {
        match self {
            Self::WebRtc(whep) => whep.viewer().send_probe(text).await?,
            Self::Quic(quic) => quic.send_probe(text).await?,
        }
        Ok(())
    }

    async fn send_input(&self, message: &[u8]) -> anyhow::Result<()> {
        match self {
            Self::WebRtc(whep) => whep.viewer().send_input(message).await?,
            Self::Quic(quic) => quic.send_input(message)?,
        }
        Ok(())
    }

    /// The transport's round-trip estimate, where it keeps one.
    fn rtt(&self) -> Option<Duration> {
        match self {
            Self::WebRtc(_) => None,
            Self::Quic(quic) => Some(quic.rtt()),
        }
    }

    async fn end(self) -> anyhow::Result<()> {
        match self {
            Self::WebRtc(whep) => whep.end().await?,
            Self::Quic(quic) => quic.close().await,
        }
        Ok(())
    }
}

/// What the host says it sent (`GET` on the session's WHEP resource).
async fn host_stats(
    http: &reqwest::Client,
    session: &AllocateResponse,
) -> anyhow::Result<StreamStats> {
    let url = format!("{}/sessions/{}", session.whep_url, session.session_id);
    let response = http.get(url).bearer_auth(&session.token).send().await?;
    Ok(response.error_for_status()?.json().await?)
}

/// A fresh token for the session from the broker at `broker`, asked for with the current one
/// (`POST /v1/sessions/{id}/token`): tokens are short-lived, sessions need not be.
async fn renew_token(
    http: &reqwest::Client,
    broker: &str,
    session: &AllocateResponse,
) -> anyhow::Result<SessionToken> {
    let url = format!("{}/v1/sessions/{}/token", broker.trim_end_matches('/'), session.session_id);
    let response = http.post(url).bearer_auth(&session.token).send().await?;
    Ok(response.error_for_status()?.json().await?)
}

/// When to renew a token that expires at `expires_at_ms`, at `now_ms`: half its life left.
fn renew_at(expires_at_ms: u64, now_ms: u64) -> u64 {
    now_ms + expires_at_ms.saturating_sub(now_ms) / 2
}

/// Matches inputs with the decoded frames that first show them.
#[derive(Default)]
struct ClickToPhoton {
    /// Inputs sent, by sequence number.
    sent: HashMap<u32, Instant>,
    /// Acknowledged inputs waiting for their frame, by media timestamp.
    waiting: HashMap<u32, Vec<Instant>>,
    /// Recently decoded frames: media timestamp and when.
    decoded: VecDeque<(u32, Instant)>,
    /// Input to acknowledgement, ms.
    to_ack_ms: Vec<f64>,
    /// Input to the decoded picture that first shows it, ms.
    samples_ms: Vec<f64>,
}

impl ClickToPhoton {
    fn sent(&mut self, seq: u32, at: Instant) {
        self.sent.insert(seq, at);
    }

    fn acked(&mut self, ack: &InputApplied, now: Instant) {
        let Some(sent) = self.sent.remove(&ack.seq) else { return };
        self.to_ack_ms.push(ms(now - sent));
        let Some(timestamp) = ack.rtp_timestamp else { return };
        match self.decoded.iter().find(|(ts, _)| *ts == timestamp) {
            Some((_, shown)) => self.samples_ms.push(ms(shown.saturating_duration_since(sent))),
            None => self.waiting.entry(timestamp).or_default().push(sent),
        }
    }

    fn decoded(&mut self, timestamp: u32, at: Instant) {
        for sent in self.waiting.remove(&timestamp).unwrap_or_default() {
            self.samples_ms.push(ms(at - sent));
        }
        self.decoded.push_back((timestamp, at));
        if self.decoded.len() > 256 {
            self.decoded.pop_front();
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `q` quantile of sorted samples (0 when there are none).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub(crate) fn parse_stream(text: &str) -> Result<(u32, u32, u32), String> {
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
    /// Frames decoded (received whole, with --no-decode).
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
pub(crate) struct Summary {
    pub(crate) session_id: String,
    seconds: Vec<Second>,
    pub(crate) decoded_frames: u64,
    /// Decoded frames per second from the first one on (whole frames
    /// received, with --no-decode).
    pub(crate) mean_fps: f64,
    /// Whole frames received.
    pub(crate) received_frames: u64,
    /// Longest gap between two decoded frames, ms.
    pub(crate) longest_freeze_ms: f64,
    /// Inputs sent and acknowledged, and the median time to the acknowledgement, ms.
    pub(crate) inputs_sent: u32,
    pub(crate) inputs_acked: u32,
    pub(crate) input_to_ack_ms_median: f64,
    /// Input to the decoded picture that first shows it, ms: samples, p50, p99.
    pub(crate) click_to_photon_samples: usize,
    pub(crate) click_to_photon_ms_p50: f64,
    pub(crate) click_to_photon_ms_p99: f64,
    /// Transport used (`quic-streams`, `quic-datagrams`, `webrtc`).
    pub(crate) transport: String,
    /// Sound packets heard, and dropped (out of order, far ahead, or not Opus).
    pub(crate) sound_packets: u64,
    pub(crate) sound_dropped: u64,
    /// Seconds of sound heard (stand-ins for lost sound included), and how much of it
    /// stood in for lost sound (from in-band FEC, or concealed), ms.
    pub(crate) sound_seconds: f64,
    pub(crate) sound_stood_in_ms: f64,
    /// Its loudness (RMS, dB below full scale).
    pub(crate) sound_level_dbfs: Option<f64>,
}

/// Plays one session and prints a JSON summary.
pub async fn run(args: PlayArgs) -> anyhow::Result<()> {
    let played = play_session(&args).await?;
    println!("{}", serde_json::to_string(&played.summary)?);
    Ok(())
}

/// A session played to its end.
pub(crate) struct Played {
    /// What the player measured.
    pub summary: Summary,
    /// The broker's allocation (host, token, endpoints).
    pub session: AllocateResponse,
    /// The transport's last round-trip estimate, ms (QUIC).
    pub rtt_ms: Option<f64>,
    /// The probe reports sent, one a second, when the session had a session key.
    pub reports: Vec<ProbeReport>,
}

/// Allocates a session, plays it as `args` say and ends it.
pub(crate) async fn play_session(args: &PlayArgs) -> anyhow::Result<Played> {
    let session = allocate(args, None).await?;
    play_allocated(args, session, None).await
}

/// Asks the broker for a session as `args` say; `session_key` is the key that will sign the
/// session's probe reports, if any.
pub(crate) async fn allocate(
    args: &PlayArgs,
    session_key: Option<&k256::ecdsa::SigningKey>,
) -> anyhow::Result<AllocateResponse> {
    let (width, height, fps) = args.stream;
    let mut request = AllocateRequest::for_stream(&args.app, width, height, fps);
    request.client_key = session_key.map(|k| Address::of(k.verifying_key()).to_string());
    let http = broker_client(args)?;
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
    Ok(response.json().await?)
}

/// The HTTP client for the broker, trusting what `--ca-file` says.
fn broker_client(args: &PlayArgs) -> anyhow::Result<reqwest::Client> {
    Ok(gridplay_host::https_trusting(args.ca_file.as_deref())?.build()?)
}

/// Plays an allocated session as `args` say and ends it; with `session_key`, sends a signed
/// probe report every second, as the browser does. The session's token is renewed while it
/// plays, so the one it ends with (in [`Played::session`]) still reads the host's records.
pub(crate) async fn play_allocated(
    args: &PlayArgs,
    mut session: AllocateResponse,
    session_key: Option<&k256::ecdsa::SigningKey>,
) -> anyhow::Result<Played> {
    let http = broker_client(args)?;
    let transport = transport_for(args, &session);
    let (link, mut events) = Link::connect(args, transport, &session).await?;
    let mut reports = Vec::new();
    let mut samples_before = 0;
    let mut last_keyframe_request: Option<Instant> = None;
    let mut needs_keyframe = false;
    let mut decoder = H264Decoder::new()?;
    let mut listener = Listener::new()?;
    let mut heard = Heard::default();
    let mut seconds: Vec<Second> = Vec::new();
    let mut current = Second::default();
    let (mut decoded, mut longest_freeze) = (0u64, Duration::ZERO);
    let mut last_frame: Option<Instant> = None;
    let mut received = 0u64;
    let mut first_frame: Option<Instant> = None;
    let (mut seq, mut input_open) = (0u32, false);
    let mut probe = ClickToPhoton::default();
    let (mut last_sent_bytes, mut last_keyframes) = (0u64, 0u64);
    let mut renew_token_at = renew_at(session.expires_at_ms, unix_ms());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut input_tick = tokio::time::interval(Duration::from_millis(args.input_every_ms.max(1)));
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        // After a lost or undecodable frame, ask for a keyframe, at most every 300 ms.
        if needs_keyframe
            && last_keyframe_request.is_none_or(|t| t.elapsed() > Duration::from_millis(300))
        {
            link.request_keyframe().await?;
            last_keyframe_request = Some(Instant::now());
            needs_keyframe = false;
        }
        tokio::select! {
            event = events.recv() => match event.context("connection closed")? {
                ViewerEvent::AccessUnit { data, complete, rtp_timestamp } => {
                    current.received_kbit += data.len() as u64 * 8 / 1000;
                    if !complete {
                        current.broken_frames += 1;
                        needs_keyframe = true;
                    }
                    if data.is_empty() {
                        continue;
                    }
                    received += 1;
                    if args.no_decode {
                        first_frame.get_or_insert_with(Instant::now);
                        current.decoded_frames += 1;
                        continue;
                    }
                    match decoder.decode(&data) {
                        Ok(Some(picture)) => {
                            current.concealed_frames += u32::from(picture.concealed);
                            let now = Instant::now();
                            probe.decoded(rtp_timestamp, now);
                            if let Some(last) = last_frame {
                                longest_freeze = longest_freeze.max(now - last);
                            }
                            last_frame = Some(now);
                            first_frame.get_or_insert(now);
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
                    if let Ok(ack) = InputApplied::decode(&bytes) {
                        probe.acked(&ack, Instant::now());
                    }
                }
                ViewerEvent::Closed => anyhow::bail!("the host closed the session"),
                ViewerEvent::Sound { data, rtp_timestamp } => {
                    listener.hear(&data, rtp_timestamp);
                }
                ViewerEvent::Connected | ViewerEvent::ProbesOpen | ViewerEvent::ProbeMessage(_) => {}
            },
            _ = input_tick.tick(), if input_open => {
                // Alternate right and left so the ship stays on screen.
                seq += 1;
                let code = if (seq / 2) % 2 == 0 { "ArrowRight" } else { "ArrowLeft" };
                let kind = if seq % 2 == 1 { InputKind::KeyDown { code: code.into() } } else { InputKind::KeyUp { code: code.into() } };
                probe.sent(seq, Instant::now());
                link.send_input(&InputEvent { seq, kind }.encode()?).await?;
            },
            _ = tick.tick() => {
                if let Some(key) = session_key {
                    let sound = heard.second(&listener);
                    let report = probe_report(&session.session_id, reports.len() as u32 + 1, &current, sound, &probe.samples_ms[samples_before..], link.rtt());
                    samples_before = probe.samples_ms.len();
                    let message = ClientProbeMessage::from(report.clone().sign(key));
                    link.send_probe(&serde_json::to_string(&message)?).await?;
                    reports.push(report);
                }
                if unix_ms() >= renew_token_at {
                    match renew_token(&http, &args.broker, &session).await {
                        Ok(fresh) => {
                            renew_token_at = renew_at(fresh.expires_at_ms, unix_ms());
                            (session.token, session.expires_at_ms) = (fresh.token, fresh.expires_at_ms);
                        }
                        Err(e) => {
                            eprintln!("renewing the session token failed ({e}): the host's figures stop when it expires");
                            renew_token_at = u64::MAX;
                        }
                    }
                }
                if let Ok(stats) = host_stats(&http, &session).await {
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
    // Frame rate from the first frame on: connecting is not streaming.
    let streaming = first_frame.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let counted = if args.no_decode { received } else { decoded };
    probe.to_ack_ms.sort_by(f64::total_cmp);
    probe.samples_ms.sort_by(f64::total_cmp);
    let transport = match (transport, args.video) {
        (Transport::Webrtc, _) => "webrtc",
        (Transport::Quic, Video::Streams) => "quic-streams",
        (Transport::Quic, Video::Datagrams) => "quic-datagrams",
    };
    let summary = Summary {
        session_id: session.session_id.clone(),
        decoded_frames: decoded,
        mean_fps: if streaming > 0.0 { counted.saturating_sub(1) as f64 / streaming } else { 0.0 },
        received_frames: received,
        longest_freeze_ms: longest_freeze.as_secs_f64() * 1e3,
        inputs_sent: seq,
        inputs_acked: probe.to_ack_ms.len() as u32,
        input_to_ack_ms_median: quantile(&probe.to_ack_ms, 0.5),
        click_to_photon_samples: probe.samples_ms.len(),
        click_to_photon_ms_p50: quantile(&probe.samples_ms, 0.5),
        click_to_photon_ms_p99: quantile(&probe.samples_ms, 0.99),
        transport: transport.into(),
        sound_packets: listener.packets,
        sound_dropped: listener.dropped,
        sound_seconds: listener.seconds(),
        sound_stood_in_ms: listener.stood_in as f64 * 1000.0 / f64::from(SAMPLE_RATE),
        sound_level_dbfs: listener.level_dbfs(),
        seconds,
    };
    let rtt_ms = link.rtt().map(ms);
    link.end().await?;
    Ok(Played { summary, session, rtt_ms, reports })
}

/// The sound's figures of one second: packets lost and samples stood in for them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SoundSecond {
    lost: u32,
    stood_in: u32,
}

/// The listener's counts at the last report, to take each second's from.
#[derive(Debug, Default)]
struct Heard {
    lost: u64,
    stood_in: u64,
}

impl Heard {
    /// The second since the last call; `None` while no sound has been heard.
    fn second(&mut self, listener: &Listener) -> Option<SoundSecond> {
        let since = |now: u64, before: &mut u64| {
            let delta = now.saturating_sub(*before);
            *before = now;
            delta.min(u64::from(u32::MAX - 1)) as u32
        };
        let second = SoundSecond {
            lost: since(listener.lost, &mut self.lost),
            stood_in: since(listener.stood_in, &mut self.stood_in),
        };
        (listener.packets > 0).then_some(second)
    }
}

/// The probe report of one second of play: frames decoded, the sound's losses, the
/// transport's RTT, and the click-to-photon samples that completed in it. No video packet
/// loss figure: a frame either arrives whole or is counted broken.
fn probe_report(
    session_id: &str,
    seq: u32,
    second: &Second,
    sound: Option<SoundSecond>,
    samples_ms: &[f64],
    rtt: Option<Duration>,
) -> ProbeReport {
    let mut samples = samples_ms.to_vec();
    samples.sort_by(f64::total_cmp);
    let us = |ms: f64| (ms * 1e3) as u32;
    let nearest_rank = |q: f64| {
        samples.get(((q * samples.len() as f64).ceil() as usize).saturating_sub(1)).copied()
    };
    ProbeReport {
        session_id: session_id.to_owned(),
        seq,
        interval_ms: 1000,
        frames_presented: second.decoded_frames,
        frames_decoded: second.decoded_frames,
        fps_centi: second.decoded_frames * 100,
        decode_us: None,
        jitter_us: None,
        loss_ppm: None,
        rtt_us: rtt.map(|d| d.as_micros().min(u128::from(u32::MAX)) as u32),
        click_to_photon_p50_us: nearest_rank(0.5).map(us),
        click_to_photon_p95_us: nearest_rank(0.95).map(us),
        click_to_photon_samples: samples.len() as u32,
        audio_packets_lost: sound.map(|s| s.lost),
        audio_concealed_samples: sound.map(|s| s.stood_in),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn click_to_photon_pairs_inputs_with_frames_whichever_comes_first() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut probe = ClickToPhoton::default();
        // Frame before its ack.
        probe.sent(1, at(0));
        probe.decoded(900, at(12));
        probe.acked(&InputApplied { seq: 1, frame_id: 5, rtp_timestamp: Some(900) }, at(15));
        // Ack before its frame.
        probe.sent(2, at(100));
        probe.acked(&InputApplied { seq: 2, frame_id: 9, rtp_timestamp: Some(2400) }, at(104));
        probe.decoded(2400, at(118));
        // An ack without a timestamp, and one for an input never sent.
        probe.sent(3, at(200));
        probe.acked(&InputApplied { seq: 3, frame_id: 12, rtp_timestamp: None }, at(210));
        probe.acked(&InputApplied { seq: 77, frame_id: 12, rtp_timestamp: Some(1) }, at(210));
        assert_eq!(probe.samples_ms, vec![12.0, 18.0]);
        assert_eq!(probe.to_ack_ms, vec![15.0, 4.0, 10.0]);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert_eq!(quantile(&[], 0.99), 0.0);
    }

    #[test]
    fn parses_stream_specs() {
        assert_eq!(parse_stream("1280x720@60"), Ok((1280, 720, 60)));
        assert!(parse_stream("1280x720").is_err());
        assert!(parse_stream("axb@c").is_err());
    }
}
