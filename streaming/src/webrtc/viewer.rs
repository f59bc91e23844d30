//! The receiving side: offers to receive one H.264 track, reassembles access
//! units and speaks on the input channel. Used by checkers, the headless
//! player and tests.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rtc::data_channel::RTCDataChannelInit;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};

use super::INPUT_CHANNEL;
use super::peer::{RawEvent, build_peer};
use crate::StreamingError;

/// What a viewer observes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerEvent {
    /// ICE and DTLS are up.
    Connected,
    /// The input channel is open: input can be sent.
    InputOpen,
    /// One complete access unit (Annex-B) and its RTP timestamp.
    AccessUnit {
        /// Annex-B bytes.
        data: Bytes,
        /// RTP timestamp (90 kHz).
        rtp_timestamp: u32,
    },
    /// A message from the host on the input channel.
    InputMessage(Bytes),
    /// The connection ended.
    Closed,
}

/// A receive-only WebRTC peer.
pub struct Viewer {
    pc: Arc<dyn PeerConnection>,
    input: Arc<dyn DataChannel>,
}

impl Viewer {
    /// Creates the peer and its SDP offer (all candidates gathered).
    pub async fn offer(
        bind_ip: IpAddr,
    ) -> Result<(Self, String, mpsc::UnboundedReceiver<ViewerEvent>), StreamingError> {
        let built = build_peer(bind_ip, None).await?;
        let pc = built.pc;
        pc.add_transceiver_from_kind(
            RtpCodecKind::Video,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await?;
        let input = pc
            .create_data_channel(
                INPUT_CHANNEL,
                Some(RTCDataChannelInit { ordered: false, ..Default::default() }),
            )
            .await?;
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        let _ = built.gathered.await;
        let offer_sdp = pc.local_description().await.ok_or(StreamingError::Closed)?.sdp;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        tokio::spawn(pump_input(Arc::clone(&input), events_tx.clone()));
        tokio::spawn(pump_events(built.events, events_tx));
        Ok((Self { pc, input }, offer_sdp, events_rx))
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

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

async fn pump_input(channel: Arc<dyn DataChannel>, events: mpsc::UnboundedSender<ViewerEvent>) {
    while let Some(event) = channel.poll().await {
        let out = match event {
            DataChannelEvent::OnOpen => ViewerEvent::InputOpen,
            DataChannelEvent::OnMessage(msg) => ViewerEvent::InputMessage(msg.data.freeze()),
            DataChannelEvent::OnClose => break,
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
                tokio::spawn(reassemble(track, events.clone()));
            }
            RawEvent::State(_) | RawEvent::DataChannel(_) => {}
        }
    }
}

/// Depacketizes RTP into access units: one per marker bit.
async fn reassemble(track: Arc<dyn TrackRemote>, events: mpsc::UnboundedSender<ViewerEvent>) {
    let mut depacketizer = H264Packet::default();
    let mut unit = BytesMut::new();
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        match depacketizer.depacketize(&packet.payload) {
            Ok(bytes) => unit.extend_from_slice(&bytes),
            Err(_) => {
                unit.clear();
                continue;
            }
        }
        if packet.header.marker && !unit.is_empty() {
            let data = unit.split().freeze();
            let au = ViewerEvent::AccessUnit { data, rtp_timestamp: packet.header.timestamp };
            if events.send(au).is_err() {
                return;
            }
        }
    }
}
