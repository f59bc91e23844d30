//! Building peer connections: codecs, interceptors, sockets and the event
//! handler shared by both sides.

use std::net::IpAddr;
use std::sync::Arc;

use rtc::interceptor::Registry;
use rtc::interceptor::Slot;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    CongestionFeedback, configure_congestion_control, configure_nack, configure_rtcp_reports,
    register_default_interceptors,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MediaEngine};
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

use super::feedback::{KeyframeRequests, SharedRate};
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

/// The RTP header extension that asks the receiver for a playout delay.
pub(crate) const PLAYOUT_DELAY_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

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

/// A freshly built peer, its raw events and a signal for ICE gathering complete.
pub(crate) struct BuiltPeer {
    pub pc: Arc<dyn PeerConnection>,
    pub events: mpsc::UnboundedReceiver<RawEvent>,
    pub gathered: oneshot::Receiver<()>,
}

/// Builds a peer bound to `bind_ip` (use 127.0.0.1 on loopback: a wildcard
/// bind offers only interface addresses). A sender passes its rate
/// controller: it gets NACK retransmission, transport-wide congestion
/// feedback feeding the controller, a pacer, and keyframe requests delivered
/// to the application. A receiver gets the default chain, which reports
/// what it receives (TWCC, receiver reports, NACK).
pub(crate) async fn build_peer(
    bind_ip: IpAddr,
    rate: Option<SharedRate>,
) -> Result<BuiltPeer, StreamingError> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(
        RTCRtpCodecParameters { rtp_codec: h264_codec(), payload_type: 102 },
        RtpCodecKind::Video,
    )?;
    // Playout delay 0/0 puts Chromium's receiver on its low-latency path.
    media_engine.register_header_extension(
        RTCRtpHeaderExtensionCapability { uri: PLAYOUT_DELAY_URI.to_owned() },
        RtpCodecKind::Video,
        None,
    )?;
    let registry = match rate {
        Some(rate) => {
            let registry =
                configure_rtcp_reports(configure_nack(Registry::new(), &mut media_engine));
            configure_congestion_control(
                registry,
                rate,
                CongestionFeedback::Twcc,
                &mut media_engine,
            )?
            .with(Slot::IntervalPli, KeyframeRequests::default())
        }
        None => register_default_interceptors(Registry::new(), &mut media_engine)?,
    };
    let (events_tx, events) = mpsc::unbounded_channel();
    let (gathered_tx, gathered) = oneshot::channel();
    let handler =
        Arc::new(Handler { events: events_tx, gathered: std::sync::Mutex::new(Some(gathered_tx)) });
    let runtime = default_runtime().ok_or(StreamingError::Closed)?;
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_handler(handler)
        .with_runtime(runtime)
        .with_udp_addrs(vec![format!("{bind_ip}:0")])
        .build()
        .await?;
    Ok(BuiltPeer { pc: Arc::new(pc), events, gathered })
}
