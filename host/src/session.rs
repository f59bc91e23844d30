//! One streaming session: glues a [`StreamPeer`] to the frame loop thread and
//! reports its life to the broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gridplay_protocol::input::InputEvent;
use gridplay_protocol::{SessionState, StreamStats};
use gridplay_streaming::webrtc::{PeerEvent, StreamPeer};
use tokio::sync::{mpsc, oneshot};

use crate::broker_link::BrokerLink;
use crate::pipeline::{EncodedOutput, PipelineControl, StreamSpec, run_pipeline};

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The player's WHEP DELETE (or the host shutting down).
    Deleted,
    /// ICE/DTLS failed or timed out (e.g. the tab was closed).
    ConnectionLost,
    /// The frame loop failed.
    PipelineFailed,
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

/// Everything a session runs with besides its peer.
pub struct SessionParts {
    /// Size and rate of the stream.
    pub spec: StreamSpec,
    /// Shared with the frame loop: rate, keyframe requests, stop.
    pub control: Arc<PipelineControl>,
    /// What was sent.
    pub counters: Arc<SessionCounters>,
    /// Where to report the session's life, if anywhere.
    pub broker: Option<Arc<BrokerLink>>,
}

/// Drives one session until it ends; returns why.
pub async fn run_session(
    session_id: String,
    parts: SessionParts,
    peer: StreamPeer,
    mut events: mpsc::UnboundedReceiver<PeerEvent>,
    mut cancel: oneshot::Receiver<()>,
) -> EndReason {
    let SessionParts { spec, control, counters, broker } = parts;
    let (input_tx, input_rx) = std::sync::mpsc::channel::<InputEvent>();
    let (frames_tx, mut frames) = mpsc::channel::<EncodedOutput>(2);
    let mut pipeline_rx = Some((input_rx, frames_tx));
    let mut pipeline: Option<tokio::task::JoinHandle<_>> = None;
    let duration = spec.frame_duration();
    let reason = loop {
        tokio::select! {
            _ = &mut cancel => break EndReason::Deleted,
            event = events.recv() => match event {
                Some(PeerEvent::Connected) => {
                    if let Some((input_rx, frames_tx)) = pipeline_rx.take() {
                        tracing::info!(session = %session_id, "connected; streaming");
                        let control = Arc::clone(&control);
                        pipeline = Some(tokio::task::spawn_blocking(move || {
                            run_pipeline(spec, input_rx, frames_tx, control)
                        }));
                        if let Some(broker) = &broker {
                            broker.report(&session_id, SessionState::Running).await;
                        }
                    }
                }
                Some(PeerEvent::Input(bytes)) => match InputEvent::decode(&bytes) {
                    Ok(event) => {
                        let _ = input_tx.send(event);
                    }
                    Err(e) => tracing::debug!(session = %session_id, "dropped bad input: {e}"),
                },
                Some(PeerEvent::KeyframeRequest) => control.keyframe.store(true, Ordering::Relaxed),
                Some(PeerEvent::Closed) | None => break EndReason::ConnectionLost,
            },
            frame = frames.recv(), if pipeline.is_some() => match frame {
                Some(frame) => {
                    counters.sent(frame.data.len(), frame.keyframe);
                    if !frame.data.is_empty()
                        && let Err(e) = peer.send_frame(frame.data, duration).await
                    {
                        tracing::debug!(session = %session_id, "send failed: {e}");
                    }
                    for ack in frame.acks {
                        let _ = peer.send_input_message(&ack.encode()).await;
                    }
                }
                None => break EndReason::PipelineFailed,
            },
        }
    };
    control.stop.store(true, Ordering::Relaxed);
    drop(frames);
    if let Some(handle) = pipeline
        && let Ok(Err(e)) = handle.await
    {
        tracing::warn!(session = %session_id, "frame loop failed: {e}");
    }
    peer.close().await;
    if let Some(broker) = &broker {
        broker.report(&session_id, SessionState::Ended).await;
    }
    tracing::info!(session = %session_id, ?reason, "session ended");
    reason
}
