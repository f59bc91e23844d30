//! The receiving side: offers to receive one H.264 track, reassembles access
//! units and speaks on the input and probes channels. Used by checkers, the
//! headless player and tests.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rtc::data_channel::RTCDataChannelInit;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};

use super::peer::{IceSettings, PeerRole, RawEvent, build_peer};
use super::{INPUT_CHANNEL, PROBES_CHANNEL};
use crate::StreamingError;

/// What a viewer observes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerEvent {
    /// ICE and DTLS are up.
    Connected,
    /// The input channel is open: input can be sent.
    InputOpen,
    /// One access unit (Annex-B) and its RTP timestamp.
    AccessUnit {
        /// Annex-B bytes.
        data: Bytes,
        /// RTP timestamp (90 kHz).
        rtp_timestamp: u32,
        /// False when packets of it were lost: a concealing decoder can still
        /// use it, and a keyframe should be asked for
        /// ([`Viewer::request_keyframe`]).
        complete: bool,
    },
    /// A message from the host on the input channel.
    InputMessage(Bytes),
    /// The probes channel is open: probe messages can be sent.
    ProbesOpen,
    /// A message (JSON text) from the host on the probes channel.
    ProbeMessage(Bytes),
    /// One Opus packet of the sound track and its RTP timestamp (48 kHz).
    Sound {
        /// The Opus packet.
        data: Bytes,
        /// RTP timestamp (48 kHz).
        rtp_timestamp: u32,
    },
    /// The connection ended.
    Closed,
}

/// How a viewer connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerOptions {
    /// Local address for media.
    pub bind_ip: IpAddr,
    /// Reach the host's media through a UDP relay at this address (see [`crate::relay`]).
    pub via: Option<IpAddr>,
    /// Hold packets this long to reorder them and wait for retransmissions
    /// (worth it on lossy paths; adds that much latency).
    pub jitter_buffer: Option<Duration>,
    /// Ask for the session's sound too.
    pub sound: bool,
    /// STUN and TURN servers, and whether to go through TURN alone.
    pub ice: IceSettings,
}

impl ViewerOptions {
    /// Direct media from `bind_ip`, no jitter buffer, no sound.
    pub fn direct(bind_ip: IpAddr) -> Self {
        Self { bind_ip, via: None, jitter_buffer: None, sound: false, ice: IceSettings::default() }
    }
}

/// A receive-only WebRTC peer.
pub struct Viewer {
    pc: Arc<dyn PeerConnection>,
    input: Arc<dyn DataChannel>,
    probes: Arc<dyn DataChannel>,
    track: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
}

impl Viewer {
    /// Creates the peer and its SDP offer (all candidates gathered).
    pub async fn offer(
        options: &ViewerOptions,
    ) -> Result<(Self, String, mpsc::UnboundedReceiver<ViewerEvent>), StreamingError> {
        let ice = &options.ice;
        if ice.relay_only
            && !ice.servers.iter().any(|s| s.urls.iter().any(|u| u.starts_with("turn")))
        {
            return Err(StreamingError::Ice(
                "relay only, but no TURN server was given (the broker hands out none)".into(),
            ));
        }
        let role = PeerRole::Receiver { jitter_buffer: options.jitter_buffer };
        let built = build_peer(SocketAddr::new(options.bind_ip, 0), role, ice).await?;
        let pc = built.pc;
        let kinds: &[RtpCodecKind] = if options.sound {
            &[RtpCodecKind::Video, RtpCodecKind::Audio]
        } else {
            &[RtpCodecKind::Video]
        };
        for &kind in kinds {
            let receive_only = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            };
            pc.add_transceiver_from_kind(kind, Some(receive_only)).await?;
        }
        let input = pc
            .create_data_channel(
                INPUT_CHANNEL,
                Some(RTCDataChannelInit { ordered: false, ..Default::default() }),
            )
            .await?;
        let probes = pc.create_data_channel(PROBES_CHANNEL, None).await?;
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        let _ = built.gathered.await;
        let offer_sdp = pc.local_description().await.ok_or(StreamingError::Closed)?.sdp;
        if ice.relay_only && !offer_sdp.contains(" typ relay") {
            let _ = pc.close().await;
            return Err(StreamingError::Ice(
                "relay only, but the TURN server gave no relay address (credentials refused or \
                 expired, or the server unreachable)"
                    .into(),
            ));
        }
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        tokio::spawn(pump_channel(Arc::clone(&input), events_tx.clone(), Channel::Input));
        tokio::spawn(pump_channel(Arc::clone(&probes), events_tx.clone(), Channel::Probes));
        let track = Arc::new(Mutex::new(None));
        tokio::spawn(pump_events(built.events, events_tx, Arc::clone(&track)));
        Ok((Self { pc, input, probes, track }, offer_sdp, events_rx))
    }

    /// Applies the host's SDP answer.
    pub async fn accept_answer(&self, answer_sdp: &str) -> Result<(), StreamingError> {
        let answer = RTCSessionDescription::answer(answer_sdp.to_owned())
            .map_err(|e| StreamingError::BadSdp(e.to_string()))?;
        self.pc.set_remote_description(answer).await?;
        Ok(())
    }

    /// Sends one message on the input channel.
    pub async fn send_input(&self, message: &[u8]) -> Result<(), StreamingError> {
        self.input.send(BytesMut::from(message)).await?;
        Ok(())
    }

    /// Sends one text message on the probes channel (a report, a ping).
    pub async fn send_probe(&self, message: &str) -> Result<(), StreamingError> {
        self.probes.send_text(message).await?;
        Ok(())
    }

    /// Asks the sender for a keyframe (PLI), e.g. after a lost frame.
    pub async fn request_keyframe(&self) -> Result<(), StreamingError> {
        let track = self.track.lock().expect("track lock").clone();
        let Some(track) = track else { return Ok(()) };
        let Some(&media_ssrc) = track.ssrcs().await.first() else { return Ok(()) };
        let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc };
        track.write_rtcp(vec![Box::new(pli)]).await?;
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// Which of the viewer's data channels.
#[derive(Clone, Copy)]
enum Channel {
    Input,
    Probes,
}

async fn pump_channel(
    channel: Arc<dyn DataChannel>,
    events: mpsc::UnboundedSender<ViewerEvent>,
    which: Channel,
) {
    while let Some(event) = channel.poll().await {
        let out = match (event, which) {
            (DataChannelEvent::OnOpen, Channel::Input) => ViewerEvent::InputOpen,
            (DataChannelEvent::OnOpen, Channel::Probes) => ViewerEvent::ProbesOpen,
            (DataChannelEvent::OnMessage(msg), Channel::Input) => {
                ViewerEvent::InputMessage(msg.data.freeze())
            }
            (DataChannelEvent::OnMessage(msg), Channel::Probes) => {
                ViewerEvent::ProbeMessage(msg.data.freeze())
            }
            (DataChannelEvent::OnClose, _) => break,
            _ => continue,
        };
        if events.send(out).is_err() {
            break;
        }
    }
}

async fn pump_events(
    mut raw: mpsc::UnboundedReceiver<RawEvent>,
    events: mpsc::UnboundedSender<ViewerEvent>,
    video: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
) {
    while let Some(event) = raw.recv().await {
        match event {
            RawEvent::State(RTCPeerConnectionState::Connected) => {
                let _ = events.send(ViewerEvent::Connected);
            }
            RawEvent::State(RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed) => {
                let _ = events.send(ViewerEvent::Closed);
                return;
            }
            RawEvent::Track(track) => {
                if track.kind().await == RtpCodecKind::Audio {
                    tokio::spawn(pump_sound(track, events.clone()));
                    continue;
                }
                *video.lock().expect("track lock") = Some(Arc::clone(&track));
                tokio::spawn(reassemble(track, events.clone()));
            }
            RawEvent::State(_) | RawEvent::DataChannel(_) => {}
        }
    }
}

/// Passes on the sound track's Opus packets, one per RTP packet.
async fn pump_sound(track: Arc<dyn TrackRemote>, events: mpsc::UnboundedSender<ViewerEvent>) {
    while let Some(event) = track.poll().await {
        if let TrackRemoteEvent::OnRtpPacket(packet) = event {
            let sound =
                ViewerEvent::Sound { data: packet.payload, rtp_timestamp: packet.header.timestamp };
            if events.send(sound).is_err() {
                return;
            }
        }
    }
}

/// Depacketizes RTP into access units, one per marker bit; a unit with a
/// sequence gap is passed on marked incomplete.
async fn reassemble(track: Arc<dyn TrackRemote>, events: mpsc::UnboundedSender<ViewerEvent>) {
    let mut depacketizer = H264Packet::default();
    let mut unit = BytesMut::new();
    let mut expected: Option<u16> = None;
    let mut damaged = false;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        let seq = packet.header.sequence_number;
        // A packet from before the one expected (a late retransmission) can no
        // longer join its unit.
        if expected.is_some_and(|e| seq.wrapping_sub(e) > u16::MAX / 2) {
            continue;
        }
        if expected.is_some_and(|e| e != seq) {
            damaged = true;
        }
        expected = Some(seq.wrapping_add(1));
        match depacketizer.depacketize(&packet.payload) {
            Ok(bytes) => unit.extend_from_slice(&bytes),
            Err(_) => damaged = true,
        }
        if packet.header.marker {
            let data = unit.split().freeze();
            let complete = !damaged;
            damaged = false;
            if data.is_empty() {
                continue;
            }
            let event =
                ViewerEvent::AccessUnit { data, rtp_timestamp: packet.header.timestamp, complete };
            if events.send(event).is_err() {
                return;
            }
        }
    }
}
