//! What the host's end-to-end tests share: a broker and a host on loopback,
//! and a viewer's event stream with a decoder behind it.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use gridplay_host::catalogue::Catalogue;
use gridplay_host::probes::Clock;
use gridplay_host::worker::WorkerCommand;
use gridplay_host::{HostConfig, run_host};
use gridplay_protocol::input::InputApplied;
use gridplay_protocol::probe::HostProbeMessage;
use gridplay_protocol::{AllocateResponse, SessionRecord, SessionState};
use gridplay_session_broker::{BrokerConfig, BrokerState, serve};
use gridplay_streaming::audio::Listener;
use gridplay_streaming::webrtc::{ViewerEvent, ViewerOptions, WhepSession};
use gridplay_streaming::{DecodedFrame, H264Decoder};
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const WAIT: Duration = Duration::from_secs(30);
pub const BROKER_SEED: [u8; 32] = [42; 32];
pub const HOST_SEED: [u8; 32] = [8; 32];

pub struct Network {
    pub broker: String,
    pub http: reqwest::Client,
}

impl Network {
    pub async fn start() -> Self {
        Self::start_with(Catalogue::default(), None).await
    }

    /// A broker and a host whose probe logs keep time on `clock`.
    #[allow(dead_code)]
    pub async fn start_on(clock: Clock) -> Self {
        Self::start_configured(|config| config.clock = clock).await
    }

    /// A broker and a host offering `catalogue` besides Orbit, each session
    /// in a worker process of its own (`gridplay-worker`) as real hosts run them.
    pub async fn start_with_workers(catalogue: Catalogue) -> Self {
        let worker = WorkerCommand {
            program: env!("CARGO_BIN_EXE_gridplay-worker").into(),
            args: Vec::new(),
        };
        Self::start_with(catalogue, Some(worker)).await
    }

    /// A broker and a host offering `catalogue` besides Orbit.
    pub async fn start_with(catalogue: Catalogue, worker: Option<WorkerCommand>) -> Self {
        Self::start_configured(|config| {
            config.catalogue = catalogue;
            config.worker = worker;
        })
        .await
    }

    /// A broker and a host configured by `configure`.
    pub async fn start_configured(configure: impl FnOnce(&mut HostConfig)) -> Self {
        Self::on(start_broker(BROKER_SEED).await, configure).await
    }

    /// A host configured by `configure` on the broker at `broker` (whose key has [`BROKER_SEED`]).
    pub async fn on(broker: String, configure: impl FnOnce(&mut HostConfig)) -> Self {
        let mut config =
            HostConfig::local(&broker, LOOPBACK, 0, 3, SigningKey::from_bytes(&HOST_SEED));
        configure(&mut config);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(run_host(
            config,
            move |addr| ready_tx.send(addr).unwrap(),
            std::future::pending(),
        ));
        timeout(WAIT, ready_rx).await.unwrap().unwrap();
        Self { broker, http: reqwest::Client::new() }
    }

    pub async fn allocate(&self) -> AllocateResponse {
        self.allocate_with(serde_json::json!({})).await
    }

    /// Allocates a 640x360@30 "orbit" session with `extra` fields in the request.
    pub async fn allocate_with(&self, extra: serde_json::Value) -> AllocateResponse {
        let mut body = serde_json::json!({"app": "orbit", "profile": "game", "width": 640, "height": 360, "fps": 30});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let response = self
            .http
            .post(format!("{}/v1/sessions", self.broker))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn whep(&self, url: &str, token: Option<&str>, sdp: String) -> reqwest::Response {
        let mut request = self.http.post(url).header("content-type", "application/sdp").body(sdp);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Polls the broker until the session reaches `state`.
    pub async fn wait_for_state(&self, session_id: &str, state: SessionState) {
        let url = format!("{}/v1/sessions/{session_id}", self.broker);
        timeout(WAIT, async {
            loop {
                let record: SessionRecord =
                    self.http.get(&url).send().await.unwrap().json().await.unwrap();
                if record.state == state {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("session never reached {state:?}"));
    }
}

/// A broker on loopback whose token key has `seed`, relaying for hosts without an inbound
/// port; its base URL.
pub async fn start_broker(seed: [u8; 32]) -> String {
    start_broker_with(seed, BrokerConfig::default()).await
}

/// [`start_broker`] with `config` (its public URL set to where the broker listens).
pub async fn start_broker_with(seed: [u8; 32], config: BrokerConfig) -> String {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let broker = format!("http://{}", listener.local_addr().unwrap());
    let config = BrokerConfig { public_url: Some(broker.clone()), ..config };
    let state = Arc::new(BrokerState::in_memory(SigningKey::from_bytes(&seed), config));
    tokio::spawn(serve(listener, state, std::future::pending()));
    broker
}

/// Plays `session` as a browser would: a WHEP viewer over loopback, and its event stream.
pub async fn watch_over_whep(session: &AllocateResponse) -> (WhepSession, Watch) {
    watch_over_whep_with(session, ViewerOptions::direct(LOOPBACK)).await
}

/// [`watch_over_whep`] with `options`.
pub async fn watch_over_whep_with(
    session: &AllocateResponse,
    options: ViewerOptions,
) -> (WhepSession, Watch) {
    let (whep, events) =
        WhepSession::connect(&session.whep_url, &session.token, &options).await.unwrap();
    (whep, Watch::new(events))
}

/// The viewer's event stream, remembering what arrives while waiting for something else.
pub struct Watch {
    pub events: UnboundedReceiver<ViewerEvent>,
    pub decoder: H264Decoder,
    pub input_open: bool,
    pub probes_open: bool,
    pub acks: Vec<InputApplied>,
    pub probe_messages: Vec<HostProbeMessage>,
    /// RTP timestamp and player position of every picture decoded, in order.
    pub shown: Vec<(u32, (f64, f64))>,
    /// Whether pictures show Orbit's player (whose position `shown` tracks).
    pub orbit: bool,
    pub listener: Listener,
    /// Every sample of sound heard, interleaved stereo.
    pub heard: Vec<i16>,
    /// Each sound packet heard: its timestamp (48 kHz) and where its samples start in `heard`.
    pub sound_stamps: Vec<(u32, usize)>,
    /// Each frame received, in order.
    pub frames: Vec<Received>,
}

/// One frame as the player received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Its size in bytes.
    pub size: usize,
    /// Whether it is a keyframe (it opens with the stream's SPS).
    pub keyframe: bool,
    /// Whether it decoded to a picture.
    pub decoded: bool,
}

impl Watch {
    pub fn new(events: UnboundedReceiver<ViewerEvent>) -> Self {
        Self {
            events,
            decoder: H264Decoder::new().unwrap(),
            input_open: false,
            probes_open: false,
            acks: Vec::new(),
            probe_messages: Vec::new(),
            shown: Vec::new(),
            orbit: true,
            listener: Listener::new().unwrap(),
            heard: Vec::new(),
            sound_stamps: Vec::new(),
            frames: Vec::new(),
        }
    }

    /// Handles events until `done` holds; returns the last decoded picture, if any.
    pub async fn until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&Self, Option<&DecodedFrame>) -> bool,
    ) -> Option<DecodedFrame> {
        timeout(WAIT, async {
            loop {
                let Some(event) = self.events.recv().await else {
                    panic!("viewer events ended; the host said {:?}", self.probe_messages)
                };
                let picture = match event {
                    // A unit damaged by loss on a loaded machine is skipped; the
                    // stream recovers at the next keyframe.
                    ViewerEvent::AccessUnit { data, rtp_timestamp, .. } => {
                        let picture = self.decoder.decode(&data).ok().flatten();
                        self.frames.push(Received {
                            size: data.len(),
                            keyframe: data.starts_with(&[0, 0, 0, 1, 0x67]),
                            decoded: picture.is_some(),
                        });
                        if let Some(p) = picture.as_ref().filter(|_| self.orbit) {
                            self.shown.push((rtp_timestamp, player_centroid(p)));
                        }
                        picture
                    }
                    ViewerEvent::InputOpen => {
                        self.input_open = true;
                        None
                    }
                    ViewerEvent::InputMessage(bytes) => {
                        self.acks.push(InputApplied::decode(&bytes).expect("an input ack"));
                        None
                    }
                    ViewerEvent::ProbesOpen => {
                        self.probes_open = true;
                        None
                    }
                    ViewerEvent::ProbeMessage(bytes) => {
                        let message = serde_json::from_slice(&bytes).expect("a host probe message");
                        self.probe_messages.push(message);
                        None
                    }
                    ViewerEvent::Sound { data, rtp_timestamp } => {
                        if let Some(pcm) = self.listener.hear(&data, rtp_timestamp) {
                            self.sound_stamps.push((rtp_timestamp, self.heard.len()));
                            self.heard.extend_from_slice(pcm);
                        }
                        None
                    }
                    ViewerEvent::Connected | ViewerEvent::Closed => None,
                };
                if done(self, picture.as_ref()) {
                    return picture;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    pub async fn picture(&mut self) -> DecodedFrame {
        self.until("a picture", |_, p| p.is_some()).await.expect("a picture")
    }
}

/// Normalised centroid of the game's yellow player square.
pub fn player_centroid(frame: &DecodedFrame) -> (f64, f64) {
    let (mut sx, mut sy, mut n) = (0f64, 0f64, 0f64);
    for (i, px) in frame.rgba.chunks_exact(4).enumerate() {
        if px[0] > 180 && px[1] > 140 && px[2] < 90 {
            sx += (i as u32 % frame.width) as f64;
            sy += (i as u32 / frame.width) as f64;
            n += 1.0;
        }
    }
    assert!(n > 50.0, "player not visible");
    (sx / n / frame.width as f64, sy / n / frame.height as f64)
}

pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}
