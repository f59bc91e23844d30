//! The host side: a QUIC endpoint that takes players and watchers, and one
//! [`QuicPeer`] per connection that sends the session's frames.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gridplay_protocol::quic::{
    CloseCode, ControlMessage, DATAGRAM_FEEDBACK, DATAGRAM_INPUT, Fragment, FrameFeedback,
    FrameHeader, JoinRole, SoundDatagram, VideoCarriage, input_datagram,
};
use tokio::sync::mpsc;

use super::control::{read_message, write_message};
use super::tls::HostCertificate;
use crate::StreamingError;
use crate::rate::PacketFeedback;
use crate::webrtc::{PeerEvent, SharedRate};

/// How long a client has to finish the handshake and say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Frame streams not yet acknowledged beyond which a frame is dropped (and a
/// keyframe follows) rather than queued: about a quarter second at 60 fps.
const MAX_UNACKED_FRAMES: usize = 16;

/// Sent frames remembered for matching feedback.
const SENT_KEPT: usize = 256;

/// A host's QUIC endpoint.
pub struct QuicListener {
    endpoint: quinn::Endpoint,
}

impl QuicListener {
    /// Binds a UDP socket at `addr` serving `cert`.
    pub fn bind(addr: SocketAddr, cert: &HostCertificate) -> Result<Self, StreamingError> {
        let endpoint = quinn::Endpoint::server(cert.server_config()?, addr)
            .map_err(|e| StreamingError::Quic(format!("binding {addr}: {e}")))?;
        Ok(Self { endpoint })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, StreamingError> {
        self.endpoint.local_addr().map_err(|e| StreamingError::Quic(e.to_string()))
    }

    /// The next connection attempt; `None` once the endpoint is closed.
    pub async fn accept(&self) -> Option<QuicIncoming> {
        self.endpoint.accept().await.map(QuicIncoming)
    }

    /// Closes every connection and stops accepting.
    pub fn close(&self) {
        self.endpoint.close(quinn::VarInt::from_u32(CloseCode::Done as u32), b"host shutting down");
    }
}

/// A connection attempt, before its handshake.
pub struct QuicIncoming(quinn::Incoming);

impl QuicIncoming {
    /// Completes the handshake and reads the client's hello, within
    /// [`HELLO_TIMEOUT`]. A client that breaks the contract is closed with
    /// [`CloseCode::ProtocolViolation`].
    pub async fn hello(self) -> Result<QuicJoin, StreamingError> {
        let handshake = async {
            let connection =
                self.0.await.map_err(|e| StreamingError::Quic(format!("handshake: {e}")))?;
            let (send, mut recv) = connection
                .accept_bi()
                .await
                .map_err(|e| StreamingError::Quic(format!("control stream: {e}")))?;
            match read_message(&mut recv).await {
                Ok(Some(ControlMessage::Hello { token, role, video, sound })) => {
                    Ok(QuicJoin { connection, send, recv, token, role, video, sound })
                }
                Ok(other) => {
                    close(&connection, CloseCode::ProtocolViolation, "expected hello");
                    Err(StreamingError::Quic(format!("expected hello, got {other:?}")))
                }
                Err(e) => {
                    close(&connection, CloseCode::ProtocolViolation, &e.to_string());
                    Err(e)
                }
            }
        };
        tokio::time::timeout(HELLO_TIMEOUT, handshake)
            .await
            .map_err(|_| StreamingError::Quic("no hello in time".into()))?
    }
}

/// A client that said hello and awaits the host's decision.
pub struct QuicJoin {
    connection: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    /// The broker's session token it presented.
    pub token: String,
    /// Player or watcher.
    pub role: JoinRole,
    /// How it wants video.
    pub video: VideoCarriage,
    /// Whether it wants the session's sound.
    pub sound: bool,
}

fn close(connection: &quinn::Connection, code: CloseCode, reason: &str) {
    connection.close(quinn::VarInt::from_u32(code as u32), reason.as_bytes());
}

impl QuicJoin {
    /// Where the client is.
    pub fn remote_address(&self) -> SocketAddr {
        self.connection.remote_address()
    }

    /// Turns the client away.
    pub fn refuse(self, code: CloseCode, reason: &str) {
        close(&self.connection, code, reason);
    }

    /// Welcomes the client into a `width`×`height`@`fps` session. Frame
    /// feedback from it feeds `rate` when given (the player; a watcher's
    /// path does not steer the encoder). Returns the peer and its events,
    /// starting with [`PeerEvent::Connected`].
    pub async fn accept(
        mut self,
        session_id: &str,
        (width, height, fps): (u32, u32, u32),
        rate: Option<SharedRate>,
    ) -> Result<(QuicPeer, mpsc::UnboundedReceiver<PeerEvent>), StreamingError> {
        let welcome =
            ControlMessage::Welcome { session_id: session_id.to_owned(), width, height, fps };
        write_message(&mut self.send, &welcome).await?;
        let (events, rx) = mpsc::unbounded_channel();
        let _ = events.send(PeerEvent::Connected);
        let sent = Arc::new(Mutex::new(SentFrames::default()));
        tokio::spawn(read_control(self.recv, self.connection.clone(), events.clone()));
        tokio::spawn(read_datagrams(
            self.connection.clone(),
            events.clone(),
            Arc::clone(&sent),
            rate,
        ));
        let peer = QuicPeer {
            connection: self.connection,
            control: tokio::sync::Mutex::new(self.send),
            video: self.video,
            sound: self.sound,
            epoch: Instant::now(),
            sent,
            unacked: Arc::new(AtomicUsize::new(0)),
            events,
        };
        Ok((peer, rx))
    }
}

/// Frames sent recently: when, and how big, for pairing with feedback.
#[derive(Default)]
struct SentFrames {
    frames: VecDeque<(u32, Instant, usize)>,
}

impl SentFrames {
    fn record(&mut self, frame_id: u32, at: Instant, bytes: usize) {
        self.frames.push_back((frame_id, at, bytes));
        while self.frames.len() > SENT_KEPT {
            self.frames.pop_front();
        }
    }

    /// The feedback the controller wants for these entries, in frame order.
    fn joined(&self, entries: &[FrameFeedback]) -> Vec<PacketFeedback> {
        let mut out: Vec<PacketFeedback> = entries
            .iter()
            .filter_map(|entry| {
                let (_, departure, size) =
                    self.frames.iter().find(|(id, _, _)| *id == entry.frame_id)?;
                Some(PacketFeedback {
                    sequence: u64::from(entry.frame_id),
                    departure: *departure,
                    arrival: entry.arrival_us.map(Duration::from_micros),
                    size: *size,
                })
            })
            .collect();
        out.sort_by_key(|f| f.sequence);
        out
    }
}

/// Control messages from the client become events; the stream's end (or a
/// broken message) ends the session.
async fn read_control(
    mut recv: quinn::RecvStream,
    connection: quinn::Connection,
    events: mpsc::UnboundedSender<PeerEvent>,
) {
    loop {
        let event = match read_message(&mut recv).await {
            Ok(Some(ControlMessage::KeyframeRequest)) => PeerEvent::KeyframeRequest,
            Ok(Some(ControlMessage::Probe { text })) => PeerEvent::Probe(Bytes::from(text)),
            Ok(Some(other)) => {
                tracing::debug!("unexpected control message {other:?}");
                close(&connection, CloseCode::ProtocolViolation, "unexpected control message");
                break;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("control stream ended: {e}");
                if matches!(e, StreamingError::Protocol(_)) {
                    close(&connection, CloseCode::ProtocolViolation, &e.to_string());
                }
                break;
            }
        };
        if events.send(event).is_err() {
            return;
        }
    }
    let _ = events.send(PeerEvent::Closed);
}

/// Input datagrams become events; feedback datagrams feed the controller.
async fn read_datagrams(
    connection: quinn::Connection,
    events: mpsc::UnboundedSender<PeerEvent>,
    sent: Arc<Mutex<SentFrames>>,
    rate: Option<SharedRate>,
) {
    while let Ok(datagram) = connection.read_datagram().await {
        match datagram.first() {
            Some(&DATAGRAM_INPUT) => {
                if events.send(PeerEvent::Input(datagram.slice(1..))).is_err() {
                    return;
                }
            }
            Some(&DATAGRAM_FEEDBACK) => match FrameFeedback::decode(&datagram) {
                Ok(entries) => {
                    if let Some(rate) = &rate {
                        let feedback = sent.lock().expect("sent lock").joined(&entries);
                        rate.on_feedback(Instant::now(), &feedback);
                    }
                }
                Err(e) => tracing::debug!("bad feedback datagram: {e}"),
            },
            other => tracing::debug!("ignored datagram of type {other:?}"),
        }
    }
    let _ = events.send(PeerEvent::Closed);
}

/// The host's side of one QUIC connection.
pub struct QuicPeer {
    connection: quinn::Connection,
    control: tokio::sync::Mutex<quinn::SendStream>,
    video: VideoCarriage,
    sound: bool,
    epoch: Instant,
    sent: Arc<Mutex<SentFrames>>,
    unacked: Arc<AtomicUsize>,
    events: mpsc::UnboundedSender<PeerEvent>,
}

impl QuicPeer {
    /// The 90 kHz media timestamp of a frame captured at `captured`.
    fn timestamp(&self, captured: Instant) -> u32 {
        (captured.saturating_duration_since(self.epoch).as_micros() * 9 / 100) as u32
    }

    /// Sends one access unit; returns its media timestamp (what input
    /// acknowledgements carry). When the path is backed up the frame is
    /// dropped instead, counted lost for the controller, and a keyframe
    /// requested so the picture recovers as soon as frames flow again.
    pub fn send_frame(
        &self,
        data: Bytes,
        captured: Instant,
        frame_id: u32,
        keyframe: bool,
    ) -> Result<u32, StreamingError> {
        let header = FrameHeader { frame_id, timestamp: self.timestamp(captured), keyframe };
        self.sent.lock().expect("sent lock").record(frame_id, Instant::now(), data.len());
        match self.video {
            VideoCarriage::Streams => self.send_on_stream(header, data)?,
            VideoCarriage::Datagrams => self.send_as_datagrams(header, &data)?,
        }
        Ok(header.timestamp)
    }

    fn send_on_stream(&self, header: FrameHeader, data: Bytes) -> Result<(), StreamingError> {
        if let Some(reason) = self.connection.close_reason() {
            return Err(StreamingError::Quic(reason.to_string()));
        }
        if self.unacked.load(Ordering::Relaxed) >= MAX_UNACKED_FRAMES {
            let _ = self.events.send(PeerEvent::KeyframeRequest);
            return Err(StreamingError::Quic("path backed up; frame dropped".into()));
        }
        self.unacked.fetch_add(1, Ordering::Relaxed);
        let (connection, unacked) = (self.connection.clone(), Arc::clone(&self.unacked));
        tokio::spawn(async move {
            if let Err(e) = write_frame_stream(&connection, header, &data).await {
                tracing::debug!(frame = header.frame_id, "frame stream failed: {e}");
            }
            unacked.fetch_sub(1, Ordering::Relaxed);
        });
        Ok(())
    }

    fn send_as_datagrams(&self, header: FrameHeader, data: &[u8]) -> Result<(), StreamingError> {
        let max = self
            .connection
            .max_datagram_size()
            .ok_or_else(|| StreamingError::Quic("the client takes no datagrams".into()))?;
        let fragments = Fragment::split(header, data, max)
            .ok_or_else(|| StreamingError::Quic("frame too large for datagrams".into()))?;
        for fragment in fragments {
            self.connection
                .send_datagram(Bytes::from(fragment.encode()))
                .map_err(|e| StreamingError::Quic(format!("datagram: {e}")))?;
        }
        Ok(())
    }

    /// Sends one Opus packet of `samples` samples per channel, captured at `captured`,
    /// as a datagram, if the client asked for sound; a packet the path cannot take
    /// now is dropped (sound is never late).
    pub fn send_sound(
        &self,
        packet: &[u8],
        samples: u32,
        captured: Instant,
    ) -> Result<(), StreamingError> {
        if !self.sound {
            return Ok(());
        }
        let micros = captured.saturating_duration_since(self.epoch).as_micros();
        let sound = SoundDatagram {
            timestamp: (micros * 48 / 1000) as u32,
            samples: u16::try_from(samples)
                .map_err(|_| StreamingError::Quic(format!("{samples} samples in one packet")))?,
            packet,
        };
        self.connection
            .send_datagram(Bytes::from(sound.encode()))
            .map_err(|e| StreamingError::Quic(format!("sound datagram: {e}")))
    }

    /// Sends an input acknowledgement (or any input-codec message).
    pub fn send_input_message(&self, message: &[u8]) -> Result<(), StreamingError> {
        self.connection
            .send_datagram(Bytes::from(input_datagram(message)))
            .map_err(|e| StreamingError::Quic(format!("datagram: {e}")))
    }

    /// Sends a probe message (JSON text) on the control stream.
    pub async fn send_probe_message(&self, text: &str) -> Result<(), StreamingError> {
        let message = ControlMessage::Probe { text: text.to_owned() };
        write_message(&mut *self.control.lock().await, &message).await
    }

    /// Ends the connection once the client has read the control stream to
    /// its end (so a last probe message arrives), or after [`CLOSE_LINGER`].
    pub async fn close(&self) {
        let mut control = self.control.lock().await;
        if control.finish().is_ok() {
            let _ = tokio::time::timeout(CLOSE_LINGER, control.stopped()).await;
        }
        close(&self.connection, CloseCode::Done, "session ended");
    }
}

/// Longest a closing host waits for the client to read its last control messages.
pub const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_millis(500);

/// One frame on its own unidirectional stream; older frames go first, and
/// the task lasts until the client has acknowledged every byte.
async fn write_frame_stream(
    connection: &quinn::Connection,
    header: FrameHeader,
    data: &[u8],
) -> Result<(), StreamingError> {
    let quic = |e: &dyn std::fmt::Display| StreamingError::Quic(e.to_string());
    let mut stream = connection.open_uni().await.map_err(|e| quic(&e))?;
    // Lower ids first: a frame never waits behind a newer one.
    let _ = stream.set_priority(-((header.frame_id & 0x3fff_ffff) as i32));
    stream.write_all(&header.encode(data.len())).await.map_err(|e| quic(&e))?;
    stream.write_all(data).await.map_err(|e| quic(&e))?;
    stream.finish().map_err(|e| quic(&e))?;
    stream.stopped().await.map_err(|e| quic(&e))?;
    Ok(())
}
