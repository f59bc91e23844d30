//! Building peer connections: codecs, interceptors, sockets and the event
//! handler shared by both sides.

use std::net::SocketAddr;
use std::sync::Arc;

use gridplay_protocol::IceServer;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Registry;
use rtc::interceptor::{JitterBufferBuilder, NackGeneratorBuilder, PacerBuilder, Slot};
use rtc::peer_connection::configuration::interceptor_registry::{
    CongestionFeedback, configure_congestion_control, configure_nack, configure_rtcp_reports,
    register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_H264, MIME_TYPE_OPUS, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::{
    RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy,
};
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use tokio::sync::{mpsc, oneshot};
use webrtc::data_channel::DataChannel;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState,
};
use webrtc::runtime::default_runtime;

use super::capture_clock::{CaptureClock, CaptureTimeReports};
use super::feedback::{KeyframeRequests, ReceiverReports, SharedRate};
use super::pacing::SoundFirst;
use crate::StreamingError;

/// The H.264 codec both sides offer.
pub(crate) fn h264_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
            .to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The Opus codec both sides offer: 48 kHz stereo with in-band FEC.
pub(crate) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: crate::audio::SAMPLE_RATE,
        channels: crate::audio::CHANNELS as u16,
        sdp_fmtp_line: "minptime=5;useinbandfec=1;stereo=1;sprop-stereo=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The RTP header extension that asks the receiver for a playout delay.
pub(crate) const PLAYOUT_DELAY_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// Where [`ReceiverReports`] reads feedback: wire-ward of the pacer (which learns the
/// rate from what passes it), application-ward of the congestion controller.
const RECEIVER_REPORTS_SLOT: Slot = Slot::Custom(1_500);

/// Where [`CaptureTimeReports`] rewrites sender reports: just wire-ward of
/// `Slot::SenderReport`, which makes them.
const CAPTURE_TIME_SLOT: Slot = Slot::Custom(10_500);

/// Most bits the pacer releases back to back: about four full packets.
const PACER_BURST_BITS: f64 = 4.0 * 1200.0 * 8.0;

/// How often a buffering receiver asks for lost packets.
const NACK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// Which side a peer is on.
pub(crate) enum PeerRole {
    /// Sends video; receiver feedback drives this rate controller, and sender
    /// reports tell the capture instants of this clock.
    Sender(SharedRate, CaptureClock),
    /// Receives video; a jitter buffer of this depth (if any) reorders
    /// packets and waits for retransmissions before they reach the application.
    Receiver {
        /// Playout depth.
        jitter_buffer: Option<std::time::Duration>,
    },
}

/// What the handler reports to the peer's owner.
pub(crate) enum RawEvent {
    State(RTCPeerConnectionState),
    DataChannel(Arc<dyn DataChannel>),
    Track(Arc<dyn TrackRemote>),
}

struct Handler {
    events: mpsc::UnboundedSender<RawEvent>,
    gathered: std::sync::Mutex<Option<oneshot::Sender<()>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete
            && let Some(tx) = self.gathered.lock().expect("gather lock").take()
        {
            let _ = tx.send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.events.send(RawEvent::State(state));
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.events.send(RawEvent::DataChannel(channel));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.events.send(RawEvent::Track(track));
    }
}

/// How a peer gathers its ICE candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceSettings {
    /// STUN servers (server-reflexive candidates, through NATs) and TURN servers (relay
    /// candidates), as the broker hands them out.
    pub servers: Vec<IceServer>,
    /// Offer only TURN relay candidates (as a browser's `iceTransportPolicy: "relay"`).
    pub relay_only: bool,
}

impl IceSettings {
    /// The configuration these settings give a peer.
    fn configuration(&self) -> rtc::peer_connection::configuration::RTCConfiguration {
        let servers = self
            .servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect();
        let policy =
            if self.relay_only { RTCIceTransportPolicy::Relay } else { RTCIceTransportPolicy::All };
        RTCConfigurationBuilder::new()
            .with_ice_servers(servers)
            .with_ice_transport_policy(policy)
            .build()
    }
}

/// A freshly built peer, its raw events and a signal for ICE gathering complete.
pub(crate) struct BuiltPeer {
    pub pc: Arc<dyn PeerConnection>,
    pub events: mpsc::UnboundedReceiver<RawEvent>,
    pub gathered: oneshot::Receiver<()>,
}

/// Builds a peer whose media socket binds `bind` (use 127.0.0.1 on loopback: a
/// wildcard bind offers only interface addresses; port 0 picks a free one). A sender passes its rate
/// controller: it gets NACK retransmission, transport-wide congestion
/// feedback and receiver reports feeding the controller, a pacer for the video
/// (the sound goes at once), and keyframe requests delivered to the application. A receiver gets the default chain, which reports
/// what it receives (TWCC, receiver reports, NACK).
pub(crate) async fn build_peer(
    bind: SocketAddr,
    role: PeerRole,
    ice: &IceSettings,
) -> Result<BuiltPeer, StreamingError> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(
        RTCRtpCodecParameters { rtp_codec: h264_codec(), payload_type: 102 },
        RtpCodecKind::Video,
    )?;
    media_engine.register_codec(
        RTCRtpCodecParameters { rtp_codec: opus_codec(), payload_type: 111 },
        RtpCodecKind::Audio,
    )?;
    // Playout delay 0/0 puts Chromium's receiver on its low-latency path.
    media_engine.register_header_extension(
        RTCRtpHeaderExtensionCapability { uri: PLAYOUT_DELAY_URI.to_owned() },
        RtpCodecKind::Video,
        None,
    )?;
    let registry = match role {
        PeerRole::Sender(rate, clock) => {
            let registry =
                configure_rtcp_reports(configure_nack(Registry::new(), &mut media_engine))
                    .with(CAPTURE_TIME_SLOT, CaptureTimeReports::new(clock));
            // The pacer starts at the controller's rate: a peer that sends no
            // transport-wide feedback never moves it from there but by its reports.
            let pacer = PacerBuilder::new()
                .with_target_bitrate(rate.pacing_bps())
                // Small bursts: a bottleneck with a shallow buffer drops what a
                // 100 ms burst (the default) puts on the wire at once.
                .with_burst_bits(PACER_BURST_BITS)
                .build();
            let pacer = SoundFirst::new(pacer);
            let reports = ReceiverReports::new(rate.clone());
            configure_congestion_control(
                registry,
                rate,
                CongestionFeedback::Twcc,
                &mut media_engine,
            )?
            .with(Slot::Pacer, pacer)
            .with(RECEIVER_REPORTS_SLOT, reports)
            .with(Slot::IntervalPli, KeyframeRequests::interceptor())
        }
        PeerRole::Receiver { jitter_buffer: None } => {
            register_default_interceptors(Registry::new(), &mut media_engine)?
        }
        PeerRole::Receiver { jitter_buffer: Some(depth) } => {
            register_default_interceptors(Registry::new(), &mut media_engine)?
                .with(Slot::JitterBuffer, JitterBufferBuilder::new().with_depth(depth).build())
                // Ask for losses quickly, so retransmissions land inside the buffer.
                .with(
                    Slot::NackGenerator,
                    NackGeneratorBuilder::new().with_interval(NACK_INTERVAL).build(),
                )
        }
    };
    let (events_tx, events) = mpsc::unbounded_channel();
    let (gathered_tx, gathered) = oneshot::channel();
    let handler =
        Arc::new(Handler { events: events_tx, gathered: std::sync::Mutex::new(Some(gathered_tx)) });
    let runtime = default_runtime().ok_or(StreamingError::Closed)?;
    let pc = PeerConnectionBuilder::new()
        .with_configuration(ice.configuration())
        .with_media_engine(media_engine)
        // No mDNS: our own candidates are plain addresses, and a browser's
        // `.local` candidates are learnt as peer-reflexive from its checks.
        // (Multicast also fails outright in network namespaces without a route.)
        .with_setting_engine(
            SettingEngineBuilder::default()
                .with_multicast_dns_mode(MulticastDnsMode::Disabled)
                // Answering as the DTLS server lets the offerer start the handshake the moment its
                // ICE connects, rather than wait for this side to see ICE connected (~140 ms later
                // with Chromium).
                .with_answering_dtls_role(RTCDtlsRole::Server)
                .build(),
        )
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_runtime(runtime)
        .with_udp_addrs(vec![bind.to_string()])
        .build()
        .await?;
    Ok(BuiltPeer { pc: Arc::new(pc), events, gathered })
}
