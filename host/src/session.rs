//! One streaming session: glues a [`StreamPeer`] to the frame loop thread,
//! keeps its probe log and reports its life to the broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gridplay_protocol::input::{InputApplied, InputEvent};
use gridplay_protocol::probe::{ClientProbeMessage, HostProbeMessage, SignedProbeReport};
use gridplay_protocol::{SessionState, StreamStats};
use gridplay_streaming::StreamingError;
use gridplay_streaming::audio::AudioFrame;
use gridplay_streaming::quic::QuicPeer;
use gridplay_streaming::webrtc::{PeerEvent, StreamPeer};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::HostError;
use crate::broker_link::BrokerLink;
use crate::pipeline::{
    EncodedOutput, Media, PipelineControl, SOUND_QUEUE, SoundPacket, StreamSpec, run_pipeline,
};
use crate::probes::{FrameFigures, Rejection, SessionLog};
use crate::worker::{WorkerCommand, run_in_worker};
use crate::workloads::{AppExit, Launch};

/// Most acks held back for a frame that goes out on RTP; beyond this they are
/// sent without an RTP timestamp (their own frame ids, `0x80`).
const MAX_HELD_ACKS: usize = 256;

/// Wall-clock time, Unix milliseconds: what probe seconds and blocks are counted in.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The player's WHEP DELETE (or the host shutting down).
    Deleted,
    /// ICE/DTLS failed or timed out (e.g. the tab was closed).
    ConnectionLost,
    /// The frame loop failed.
    PipelineFailed,
    /// The session's app ended on its own.
    AppExited(AppExit),
    /// The session's worker process died (e.g. its encoder or driver crashed).
    WorkerDied(String),
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Deleted => f.write_str("session ended"),
            Self::ConnectionLost => f.write_str("connection lost"),
            Self::PipelineFailed => f.write_str("the stream failed on the host"),
            Self::AppExited(exit) => write!(f, "app {exit}"),
            Self::WorkerDied(how) => write!(f, "the session's worker {how}"),
        }
    }
}

/// What one session sent, for its stats resource.
#[derive(Debug, Default)]
pub struct SessionCounters {
    frames: AtomicU64,
    bytes: AtomicU64,
    keyframes: AtomicU64,
}

impl SessionCounters {
    fn sent(&self, bytes: usize, keyframe: bool) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.keyframes.fetch_add(u64::from(keyframe), Ordering::Relaxed);
    }

    /// The counters now, with the rate controller's target.
    pub fn snapshot(&self, target_bps: u64) -> StreamStats {
        StreamStats {
            frames_sent: self.frames.load(Ordering::Relaxed),
            bytes_sent: self.bytes.load(Ordering::Relaxed),
            keyframes_sent: self.keyframes.load(Ordering::Relaxed),
            target_bps,
        }
    }
}

/// Inputs remembered for recognising repeats (a client on an unreliable
/// path resends an input until it is acknowledged).
const REMEMBERED_INPUTS: usize = 1024;

/// The inputs seen recently and, once applied, their acknowledgements: a
/// repeat is not applied again, and gets the acknowledgement again.
#[derive(Debug, Default)]
struct RecentInputs {
    acks: std::collections::HashMap<u32, Option<InputApplied>>,
    order: std::collections::VecDeque<u32>,
}

/// What to do with an input that arrived.
#[derive(Debug, PartialEq, Eq)]
enum Arrival {
    /// First time: apply it.
    New,
    /// Seen and acknowledged: acknowledge again.
    Repeat(InputApplied),
    /// Seen, not applied yet: nothing to do.
    Pending,
}

impl RecentInputs {
    fn arrived(&mut self, seq: u32) -> Arrival {
        match self.acks.get(&seq) {
            Some(Some(ack)) => return Arrival::Repeat(*ack),
            Some(None) => return Arrival::Pending,
            None => {}
        }
        self.acks.insert(seq, None);
        self.order.push_back(seq);
        if self.order.len() > REMEMBERED_INPUTS
            && let Some(old) = self.order.pop_front()
        {
            self.acks.remove(&old);
        }
        Arrival::New
    }

    fn acked(&mut self, ack: InputApplied) {
        if let Some(slot) = self.acks.get_mut(&ack.seq) {
            *slot = Some(ack);
        }
    }
}

/// Encoded frames and sound a session's watchers can subscribe to, about a second's worth.
pub const WATCHED: usize = 192;

/// What watchers get: the player's encodes, shared.
#[derive(Debug, Clone)]
pub enum Watched {
    /// An encoded frame.
    Frame(WatchedFrame),
    /// A frame of sound.
    Sound(SoundPacket),
}

/// One encoded frame as watchers get it: the player's encode, shared.
#[derive(Debug, Clone)]
pub struct WatchedFrame {
    /// Frame id in the session.
    pub frame_id: u32,
    /// When the frame started.
    pub captured_at: Instant,
    /// Whether it is a keyframe.
    pub keyframe: bool,
    /// Annex-B access unit.
    pub data: Bytes,
}

/// The player's connection: WebRTC from a browser, QUIC from a native client.
pub enum PlayerPeer {
    /// A WHEP session.
    WebRtc(StreamPeer),
    /// A QUIC connection.
    Quic(QuicPeer),
}

impl PlayerPeer {
    /// Sends a frame; returns the media timestamp input acks carry.
    async fn send_frame(
        &self,
        data: Bytes,
        captured_at: Instant,
        frame_id: u32,
        keyframe: bool,
    ) -> Result<u32, StreamingError> {
        match self {
            Self::WebRtc(peer) => peer.send_frame(data, captured_at).await,
            Self::Quic(peer) => peer.send_frame(data, captured_at, frame_id, keyframe),
        }
    }

    /// Sends a frame of sound, if the player asked for sound.
    async fn send_sound(&self, packet: SoundPacket) -> Result<(), StreamingError> {
        match self {
            Self::WebRtc(peer) => {
                peer.send_sound(packet.data, packet.samples, packet.captured_at).await
            }
            Self::Quic(peer) => peer.send_sound(&packet.data, packet.samples, packet.captured_at),
        }
    }

    async fn send_input_message(&self, message: &[u8]) -> Result<(), StreamingError> {
        match self {
            Self::WebRtc(peer) => peer.send_input_message(message).await,
            Self::Quic(peer) => peer.send_input_message(message),
        }
    }

    async fn send_probe_message(&self, text: &str) -> Result<(), StreamingError> {
        match self {
            Self::WebRtc(peer) => peer.send_probe_message(text).await,
            Self::Quic(peer) => peer.send_probe_message(text).await,
        }
    }

    async fn close(&self) {
        match self {
            Self::WebRtc(peer) => peer.close().await,
            Self::Quic(peer) => peer.close().await,
        }
    }
}

/// Everything a session runs with besides its peer.
pub struct SessionParts {
    /// Size and rate of the stream.
    pub spec: StreamSpec,
    /// Shared with the frame loop: rate, keyframe requests, stop.
    pub control: Arc<PipelineControl>,
    /// What was sent.
    pub counters: Arc<SessionCounters>,
    /// The session's probe records, shared with the probes endpoint.
    pub probes: Arc<SessionLog>,
    /// Where to report the session's life, if anywhere.
    pub broker: Option<Arc<BrokerLink>>,
    /// Every encoded frame and frame of sound also goes here, for watchers.
    pub watchers: broadcast::Sender<Watched>,
    /// What the session shows.
    pub launch: Launch,
    /// Runs the frame loop in a process of its own; in this one when `None`.
    pub worker: Option<WorkerCommand>,
    /// How long each frame of its sound lasts.
    pub sound_frame: AudioFrame,
}

/// Drives one session until it ends; returns why.
pub async fn run_session(
    session_id: String,
    parts: SessionParts,
    peer: PlayerPeer,
    mut events: mpsc::UnboundedReceiver<PeerEvent>,
    mut cancel: oneshot::Receiver<()>,
) -> EndReason {
    let SessionParts {
        spec,
        control,
        counters,
        probes,
        broker,
        watchers,
        launch,
        worker,
        sound_frame,
    } = parts;
    let (input_tx, input_rx) = std::sync::mpsc::channel::<InputEvent>();
    let (frames_tx, mut frames) = mpsc::channel::<EncodedOutput>(2);
    let (sound_tx, mut sound) = mpsc::channel::<SoundPacket>(SOUND_QUEUE);
    // The workload and encoder start now, while the connection is set up; frames flow once it is.
    let pipeline = {
        let control = Arc::clone(&control);
        let media = Media { spec, sound_frame };
        tokio::task::spawn_blocking(move || match &worker {
            Some(command) => {
                run_in_worker(command, media, launch, input_rx, frames_tx, sound_tx, control)
            }
            None => run_pipeline(media, &launch, input_rx, frames_tx, sound_tx, &*control),
        })
    };
    // Acks of frames that never went out wait for the next frame that does.
    let mut held_acks: Vec<InputApplied> = Vec::new();
    let mut recent = RecentInputs::default();
    let reason = loop {
        tokio::select! {
            _ = &mut cancel => break EndReason::Deleted,
            event = events.recv() => match event {
                Some(PeerEvent::Connected) => {
                    if !control.connected.swap(true, Ordering::Relaxed) {
                        tracing::info!(session = %session_id, "connected; streaming");
                        if let Some(broker) = &broker {
                            broker.report(&session_id, SessionState::Running).await;
                        }
                    }
                }
                Some(PeerEvent::Input(bytes)) => match InputEvent::decode(&bytes) {
                    Ok(event) => match recent.arrived(event.seq) {
                        Arrival::New => {
                            let _ = input_tx.send(event);
                        }
                        Arrival::Repeat(ack) => {
                            let _ = peer.send_input_message(&ack.encode()).await;
                        }
                        Arrival::Pending => {}
                    },
                    Err(e) => tracing::debug!(session = %session_id, "dropped bad input: {e}"),
                },
                Some(PeerEvent::Probe(bytes)) => {
                    on_probe_message(&session_id, &peer, &probes, &bytes).await;
                }
                Some(PeerEvent::KeyframeRequest) => control.keyframe.store(true, Ordering::Relaxed),
                Some(PeerEvent::Closed) | None => break EndReason::ConnectionLost,
            },
            Some(packet) = sound.recv() => {
                if watchers.receiver_count() > 0 {
                    let _ = watchers.send(Watched::Sound(packet.clone()));
                }
                if let Err(e) = peer.send_sound(packet).await {
                    tracing::debug!(session = %session_id, "sound send failed: {e}");
                }
            }
            frame = frames.recv() => match frame {
                Some(frame) => {
                    counters.sent(frame.data.len(), frame.keyframe);
                    let (bytes, encoded) = (frame.data.len(), !frame.data.is_empty());
                    let rtp_timestamp = if encoded {
                        if watchers.receiver_count() > 0 {
                            let _ = watchers.send(Watched::Frame(WatchedFrame {
                                frame_id: frame.frame_id,
                                captured_at: frame.captured_at,
                                keyframe: frame.keyframe,
                                data: frame.data.clone(),
                            }));
                        }
                        let sent = peer
                            .send_frame(frame.data, frame.captured_at, frame.frame_id, frame.keyframe)
                            .await;
                        match sent {
                            Ok(timestamp) => Some(timestamp),
                            Err(e) => {
                                tracing::debug!(session = %session_id, "send failed: {e}");
                                None
                            }
                        }
                    } else {
                        None
                    };
                    let figures = FrameFigures {
                        encoded,
                        sent: rtp_timestamp.is_some(),
                        bytes,
                        render_encode_us: frame.render_encode.as_micros().min(u32::MAX.into())
                            as u32,
                    };
                    probes.frame(figures);
                    if let Some(text) = frame.copied {
                        let copied = HostProbeMessage::Clipboard { text };
                        let text = serde_json::to_string(&copied).expect("probe messages serialise");
                        let _ = peer.send_probe_message(&text).await;
                    }
                    held_acks.extend(frame.acks);
                    if let Some(rtp_timestamp) = rtp_timestamp {
                        for ack in held_acks.drain(..) {
                            let ack = InputApplied {
                                frame_id: frame.frame_id,
                                rtp_timestamp: Some(rtp_timestamp),
                                ..ack
                            };
                            recent.acked(ack);
                            let _ = peer.send_input_message(&ack.encode()).await;
                        }
                    } else if held_acks.len() > MAX_HELD_ACKS {
                        // Frames keep failing to go out: ack without a timestamp rather than hoard.
                        for ack in held_acks.drain(..) {
                            recent.acked(ack);
                            let _ = peer.send_input_message(&ack.encode()).await;
                        }
                    }
                }
                None => break EndReason::PipelineFailed,
            },
        }
    };
    control.stop.store(true, Ordering::Relaxed);
    drop(frames);
    // An app that exited is the cause, whatever the loop's end looked like from here.
    let reason = match pipeline.await {
        Ok(Err(HostError::AppExited(exit))) => EndReason::AppExited(exit),
        Ok(Err(HostError::WorkerDied(how))) => EndReason::WorkerDied(how),
        Ok(Err(e)) => {
            tracing::warn!(session = %session_id, "frame loop failed: {e}");
            reason
        }
        _ => reason,
    };
    let ended = HostProbeMessage::Ended { reason: reason.to_string() };
    let text = serde_json::to_string(&ended).expect("probe messages serialise");
    let _ = peer.send_probe_message(&text).await;
    peer.close().await;
    probes.finish();
    if let Some(broker) = &broker {
        broker.report(&session_id, SessionState::Ended).await;
    }
    tracing::info!(session = %session_id, ?reason, "session ended");
    reason
}

/// Answers a ping, or files a report in the probe log (telling the client
/// when it is refused).
async fn on_probe_message(session_id: &str, peer: &PlayerPeer, probes: &SessionLog, bytes: &[u8]) {
    let answer = match ClientProbeMessage::parse(bytes) {
        Ok(ClientProbeMessage::Ping { id }) => Some(HostProbeMessage::Pong { id }),
        Ok(ClientProbeMessage::Report { report, signature }) => {
            let seq = report.seq;
            let signed = SignedProbeReport { report, signature };
            let filed = probes.client_report(signed);
            match filed {
                Ok(_) | Err(Rejection::Ended) => None,
                Err(rejection) => {
                    tracing::debug!(session = %session_id, seq, "refused probe report: {rejection}");
                    Some(HostProbeMessage::Rejected { seq, reason: rejection.to_string() })
                }
            }
        }
        Err(e) => {
            tracing::debug!(session = %session_id, "bad probe message: {e}");
            probes.malformed_message();
            None
        }
    };
    if let Some(answer) = answer {
        let text = serde_json::to_string(&answer).expect("probe messages serialise");
        let _ = peer.send_probe_message(&text).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_inputs_are_applied_once_and_acknowledged_again() {
        let mut recent = RecentInputs::default();
        assert_eq!(recent.arrived(1), Arrival::New);
        assert_eq!(recent.arrived(1), Arrival::Pending);
        let ack = InputApplied { seq: 1, frame_id: 4, rtp_timestamp: Some(6000) };
        recent.acked(ack);
        assert_eq!(recent.arrived(1), Arrival::Repeat(ack));
        // An ack for an input never seen (or long forgotten) changes nothing.
        recent.acked(InputApplied { seq: 9, frame_id: 4, rtp_timestamp: None });
        assert_eq!(recent.arrived(9), Arrival::New);
        // Memory is bounded: the oldest are forgotten.
        for seq in 100..100 + REMEMBERED_INPUTS as u32 {
            recent.arrived(seq);
        }
        assert_eq!(recent.acks.len(), REMEMBERED_INPUTS);
        assert_eq!(recent.arrived(1), Arrival::New);
    }
}
