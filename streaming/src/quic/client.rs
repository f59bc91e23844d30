//! The native client side: joins a host's session over QUIC, puts frames
//! back in order and reports on them, sends input and probes.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use gridplay_protocol::input::{InputApplied, InputEvent};
use gridplay_protocol::quic::{
    ControlMessage, DATAGRAM_INPUT, DATAGRAM_SOUND, DATAGRAM_VIDEO, FRAME_HEADER_LEN, Fragment,
    FrameFeedback, FrameHeader, JoinRole, SOUND_HEADER_LEN, SoundDatagram, VideoCarriage,
    input_datagram,
};
use tokio::sync::mpsc;

use super::assembler::{Assembled, FrameAssembler};
use super::control::{closed_error, read_message, write_message};
use super::resend::InputResender;
use super::tls::client_config;
use crate::StreamingError;
use crate::webrtc::ViewerEvent;

/// Completed frames held behind a missing one on frame streams.
const STREAM_REORDER_WINDOW: usize = 4;

/// What the host said when it let the client in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The session joined.
    pub session_id: String,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frame rate.
    pub fps: u32,
}

/// How to join.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// The broker's session token.
    pub token: String,
    /// Player or watcher.
    pub role: JoinRole,
    /// Frame streams or datagrams.
    pub video: VideoCarriage,
    /// Ask for the session's sound too.
    pub sound: bool,
}

/// A frame arriving, before ordering.
enum Arrival {
    Frame(FrameHeader, Bytes),
    Fragment(Bytes),
}

/// A client's QUIC connection to a host.
pub struct QuicViewer {
    connection: quinn::Connection,
    control: tokio::sync::Mutex<quinn::SendStream>,
    inputs: Arc<Mutex<InputResender>>,
    _endpoint: quinn::Endpoint,
}

/// How often unacknowledged inputs are looked at for resending.
const RESEND_TICK: std::time::Duration = std::time::Duration::from_millis(5);

impl QuicViewer {
    /// Connects to the host at `addr` whose certificate hashes to
    /// `cert_sha256`, says hello and waits for the welcome. Events follow
    /// as for a WebRTC viewer: frames as [`ViewerEvent::AccessUnit`] in
    /// order (a lost frame as an empty, incomplete one), acknowledgements
    /// as [`ViewerEvent::InputMessage`], probe answers as
    /// [`ViewerEvent::ProbeMessage`].
    pub async fn connect(
        addr: SocketAddr,
        cert_sha256: &str,
        options: &JoinOptions,
    ) -> Result<(Self, Welcome, mpsc::UnboundedReceiver<ViewerEvent>), StreamingError> {
        let (config, server_name) = client_config(cert_sha256)?;
        let bind: SocketAddr = match addr.ip() {
            IpAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let mut endpoint = quinn::Endpoint::client(bind)
            .map_err(|e| StreamingError::Quic(format!("client socket: {e}")))?;
        endpoint.set_default_client_config(config);
        let connection = endpoint
            .connect(addr, server_name)
            .map_err(|e| StreamingError::Quic(format!("connect: {e}")))?
            .await
            .map_err(|e| closed_error(&e))?;
        let (mut send, mut recv) =
            connection.open_bi().await.map_err(|e| StreamingError::Quic(e.to_string()))?;
        let hello = ControlMessage::Hello {
            token: options.token.clone(),
            role: options.role,
            video: options.video,
            sound: options.sound,
        };
        write_message(&mut send, &hello).await?;
        let welcome = match read_message(&mut recv).await {
            Ok(Some(ControlMessage::Welcome { session_id, width, height, fps })) => {
                Welcome { session_id, width, height, fps }
            }
            Ok(other) => {
                return Err(connection.close_reason().map(|e| closed_error(&e)).unwrap_or_else(
                    || StreamingError::Quic(format!("expected welcome, got {other:?}")),
                ));
            }
            Err(e) => {
                // A refusal closes the connection; its reason says more than the stream error.
                let closed =
                    tokio::time::timeout(std::time::Duration::from_secs(1), connection.closed())
                        .await;
                return Err(closed.map(|e| closed_error(&e)).unwrap_or(e));
            }
        };
        let (events, rx) = mpsc::unbounded_channel();
        for event in [ViewerEvent::Connected, ViewerEvent::InputOpen, ViewerEvent::ProbesOpen] {
            let _ = events.send(event);
        }
        let (arrivals, arrivals_rx) = mpsc::unbounded_channel();
        let epoch = Instant::now();
        let window = match options.video {
            VideoCarriage::Streams => STREAM_REORDER_WINDOW,
            VideoCarriage::Datagrams => 0,
        };
        tokio::spawn(assemble(
            FrameAssembler::new(window),
            arrivals_rx,
            connection.clone(),
            events.clone(),
            epoch,
        ));
        tokio::spawn(accept_frame_streams(connection.clone(), arrivals.clone(), epoch));
        let inputs = Arc::new(Mutex::new(InputResender::default()));
        tokio::spawn(read_datagrams(
            connection.clone(),
            arrivals,
            events.clone(),
            Arc::clone(&inputs),
        ));
        tokio::spawn(resend_inputs(connection.clone(), Arc::clone(&inputs)));
        tokio::spawn(read_control(recv, events));
        let viewer = Self {
            connection,
            control: tokio::sync::Mutex::new(send),
            inputs,
            _endpoint: endpoint,
        };
        Ok((viewer, welcome, rx))
    }

    /// Sends one input-codec message; an input event is resent until the
    /// host acknowledges it (or [`GIVE_UP_AFTER`](super::GIVE_UP_AFTER) passes).
    pub fn send_input(&self, message: &[u8]) -> Result<(), StreamingError> {
        let datagram = Bytes::from(input_datagram(message));
        self.connection
            .send_datagram(datagram.clone())
            .map_err(|e| StreamingError::Quic(format!("datagram: {e}")))?;
        if let Ok(event) = InputEvent::decode(message) {
            self.inputs.lock().expect("inputs lock").sent(event.seq, datagram, Instant::now());
        }
        Ok(())
    }

    /// Asks the host for a keyframe.
    pub async fn request_keyframe(&self) -> Result<(), StreamingError> {
        write_message(&mut *self.control.lock().await, &ControlMessage::KeyframeRequest).await
    }

    /// Sends a probe message (JSON text).
    pub async fn send_probe(&self, text: &str) -> Result<(), StreamingError> {
        let message = ControlMessage::Probe { text: text.to_owned() };
        write_message(&mut *self.control.lock().await, &message).await
    }

    /// The connection's round-trip time estimate.
    pub fn rtt(&self) -> std::time::Duration {
        self.connection.rtt()
    }

    /// Leaves the session.
    pub async fn close(&self) {
        if let Ok(mut control) = self.control.try_lock() {
            let _ = control.finish();
        }
        self.connection.close(quinn::VarInt::from_u32(0), b"bye");
    }
}

/// Microseconds since `epoch`: the client clock feedback is stated in.
fn micros_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

/// Reads each frame stream whole; reports its arrival at once.
async fn accept_frame_streams(
    connection: quinn::Connection,
    arrivals: mpsc::UnboundedSender<Arrival>,
    epoch: Instant,
) {
    while let Ok(mut stream) = connection.accept_uni().await {
        let (arrivals, connection) = (arrivals.clone(), connection.clone());
        tokio::spawn(async move {
            let mut head = [0u8; FRAME_HEADER_LEN];
            if stream.read_exact(&mut head).await.is_err() {
                return;
            }
            let Ok((header, len)) = FrameHeader::decode(&head) else {
                let _ = stream.stop(quinn::VarInt::from_u32(2));
                return;
            };
            let mut data = vec![0u8; len];
            if stream.read_exact(&mut data).await.is_err() {
                return;
            }
            let feedback =
                FrameFeedback { frame_id: header.frame_id, arrival_us: Some(micros_since(epoch)) };
            let _ = connection.send_datagram(Bytes::from(FrameFeedback::encode(&[feedback])));
            let _ = arrivals.send(Arrival::Frame(header, Bytes::from(data)));
        });
    }
}

/// Datagrams: video fragments go to the assembler, input messages and sound up
/// (a sound datagram that breaks the contract is dropped).
async fn read_datagrams(
    connection: quinn::Connection,
    arrivals: mpsc::UnboundedSender<Arrival>,
    events: mpsc::UnboundedSender<ViewerEvent>,
    inputs: Arc<Mutex<InputResender>>,
) {
    while let Ok(datagram) = connection.read_datagram().await {
        match datagram.first() {
            Some(&DATAGRAM_VIDEO) => {
                let _ = arrivals.send(Arrival::Fragment(datagram));
            }
            Some(&DATAGRAM_INPUT) => {
                let message = datagram.slice(1..);
                if let Ok(ack) = InputApplied::decode(&message) {
                    inputs.lock().expect("inputs lock").acked(ack.seq);
                }
                let _ = events.send(ViewerEvent::InputMessage(message));
            }
            Some(&DATAGRAM_SOUND) => match SoundDatagram::decode(&datagram) {
                Ok(sound) => {
                    let start = SOUND_HEADER_LEN;
                    let data = datagram.slice(start..start + sound.packet.len());
                    let _ =
                        events.send(ViewerEvent::Sound { data, rtp_timestamp: sound.timestamp });
                }
                Err(e) => tracing::debug!("dropped a sound datagram: {e}"),
            },
            other => tracing::debug!("ignored datagram of type {other:?}"),
        }
    }
}

/// Resends inputs the host has not acknowledged, until the connection ends.
async fn resend_inputs(connection: quinn::Connection, inputs: Arc<Mutex<InputResender>>) {
    let mut tick = tokio::time::interval(RESEND_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while connection.close_reason().is_none() {
        tick.tick().await;
        let due = inputs.lock().expect("inputs lock").due(Instant::now(), connection.rtt());
        for datagram in due {
            let _ = connection.send_datagram(datagram);
        }
    }
}

/// Orders frames; reports datagram frames (and all losses) to the host.
async fn assemble(
    mut assembler: FrameAssembler,
    mut arrivals: mpsc::UnboundedReceiver<Arrival>,
    connection: quinn::Connection,
    events: mpsc::UnboundedSender<ViewerEvent>,
    epoch: Instant,
) {
    while let Some(arrival) = arrivals.recv().await {
        let (out, from_datagrams) = match arrival {
            Arrival::Frame(header, data) => (assembler.on_frame(header, data), false),
            Arrival::Fragment(datagram) => match Fragment::decode(&datagram) {
                Ok(fragment) => (assembler.on_fragment(&fragment), true),
                Err(e) => {
                    tracing::debug!("bad video datagram: {e}");
                    continue;
                }
            },
        };
        let mut feedback = Vec::new();
        for assembled in out {
            let event = match assembled {
                Assembled::Frame { header, data } => {
                    if from_datagrams {
                        let arrival_us = Some(micros_since(epoch));
                        feedback.push(FrameFeedback { frame_id: header.frame_id, arrival_us });
                    }
                    ViewerEvent::AccessUnit {
                        data,
                        rtp_timestamp: header.timestamp,
                        complete: true,
                    }
                }
                Assembled::Lost { frame_id } => {
                    feedback.push(FrameFeedback { frame_id, arrival_us: None });
                    ViewerEvent::AccessUnit {
                        data: Bytes::new(),
                        rtp_timestamp: 0,
                        complete: false,
                    }
                }
            };
            if events.send(event).is_err() {
                return;
            }
        }
        for chunk in feedback.chunks(gridplay_protocol::quic::MAX_FEEDBACK_ENTRIES) {
            let _ = connection.send_datagram(Bytes::from(FrameFeedback::encode(chunk)));
        }
    }
}

/// Probe messages from the host; the stream's end is the session's end.
async fn read_control(mut recv: quinn::RecvStream, events: mpsc::UnboundedSender<ViewerEvent>) {
    loop {
        match read_message(&mut recv).await {
            Ok(Some(ControlMessage::Probe { text })) => {
                let _ = events.send(ViewerEvent::ProbeMessage(Bytes::from(text)));
            }
            Ok(Some(other)) => tracing::debug!("unexpected control message {other:?}"),
            Ok(None) | Err(_) => break,
        }
    }
    let _ = events.send(ViewerEvent::Closed);
}
