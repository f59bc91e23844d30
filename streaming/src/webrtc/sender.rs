//! The host's side: answers a WHEP offer and sends H.264 access units (and, when
//! the offer asks for audio, Opus packets on a track of the same stream, so that
//! the receiver keeps them in sync); input arrives on the "input" data channel,
//! probe reports and pings on "probes".

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use gridplay_protocol::IceServer;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp::extension::HeaderExtension;
use rtc::rtp::extension::playout_delay_extension::PlayoutDelayExtension;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};

use super::capture_clock::CaptureClock;
use super::feedback::{SharedRate, asks_for_keyframe};
use super::framer::{CLOCK_RATE, RtpFramer, SoundFramer};
use super::peer::IceSettings;
use super::peer::{PeerRole, RawEvent, build_peer, h264_codec, opus_codec};
use super::sdp::route_candidates_via;
use super::{INPUT_CHANNEL, PROBES_CHANNEL};
use crate::StreamingError;

/// What happens on a host's peer connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// ICE and DTLS are up: media flows.
    Connected,
    /// A binary message arrived on the input channel.
    Input(Bytes),
    /// A message (JSON text) arrived on the probes channel.
    Probe(Bytes),
    /// The receiver asked for a keyframe (PLI or FIR).
    KeyframeRequest,
    /// The connection failed, timed out or was closed.
    Closed,
}

/// The data channels the client opened, once they arrive.
#[derive(Default)]
struct Channels {
    input: Mutex<Option<Arc<dyn DataChannel>>>,
    probes: Mutex<Option<Arc<dyn DataChannel>>>,
}

/// The stream id both tracks carry: one stream, played in sync.
const STREAM_ID: &str = "gridplay";

/// The sound track, when the receiver asked for one.
struct SoundTrack {
    track: Arc<TrackLocalStaticRTP>,
    framer: Mutex<SoundFramer>,
}

/// A host's WebRTC peer for one session.
pub struct StreamPeer {
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    framer: Mutex<RtpFramer>,
    sound: Option<SoundTrack>,
    channels: Arc<Channels>,
    /// Each track's capture instants, for its sender reports.
    clock: CaptureClock,
}

/// A local track of one stream with one encoding of `codec` on `ssrc`.
fn local_track(
    id: &str,
    kind: RtpCodecKind,
    codec: rtc::rtp_transceiver::rtp_sender::RTCRtpCodec,
    ssrc: u32,
) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        STREAM_ID.to_owned(),
        id.to_owned(),
        format!("{STREAM_ID}-{id}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )))
}

impl StreamPeer {
    /// Answers an SDP offer; returns the peer, the SDP answer (with all its
    /// candidates, no trickle) and the peer's events. Receiver feedback feeds
    /// `rate`. The host candidates name `public_ip` instead of the bound address
    /// when given; `ice_servers` add server-reflexive and relay candidates.
    pub async fn answer(
        offer_sdp: &str,
        bind: SocketAddr,
        public_ip: Option<IpAddr>,
        ice_servers: &[IceServer],
        rate: SharedRate,
    ) -> Result<(Self, String, mpsc::UnboundedReceiver<PeerEvent>), StreamingError> {
        gridplay_protocol::sdp::check_offer(offer_sdp)
            .map_err(|e| StreamingError::BadSdp(e.to_string()))?;
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned())
            .map_err(|e| StreamingError::BadSdp(e.to_string()))?;
        let ice = IceSettings { servers: ice_servers.to_vec(), relay_only: false };
        let clock = CaptureClock::default();
        let built = build_peer(bind, PeerRole::Sender(rate, clock.clone()), &ice).await?;
        let pc = built.pc;
        if let Err(e) = pc.set_remote_description(offer).await {
            let _ = pc.close().await;
            return Err(StreamingError::BadSdp(e.to_string()));
        }
        let ssrc = random_u32();
        let track = local_track("video", RtpCodecKind::Video, h264_codec(), ssrc);
        let sender = pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>).await?;
        let sound = if gridplay_protocol::sdp::offers_audio(offer_sdp) {
            let ssrc = random_u32();
            let track = local_track("audio", RtpCodecKind::Audio, opus_codec(), ssrc);
            let sender = pc.add_track(Arc::clone(&track) as Arc<dyn TrackLocal>).await?;
            Some((track, sender, ssrc))
        } else {
            None
        };
        let answer = pc.create_answer(None).await?;
        pc.set_local_description(answer).await?;
        let _ = built.gathered.await;
        let answer_sdp = pc.local_description().await.ok_or(StreamingError::Closed)?.sdp;
        let answer_sdp = match public_ip {
            Some(ip) => route_candidates_via(&answer_sdp, ip),
            None => answer_sdp,
        };
        let payload_type = sender
            .get_parameters()
            .await?
            .rtp_parameters
            .codecs
            .first()
            .map(|c| c.payload_type)
            .ok_or_else(|| StreamingError::BadSdp("offer has no H.264 video".into()))?;
        let sound = match sound {
            Some((track, sender, ssrc)) => {
                let codecs = sender.get_parameters().await?.rtp_parameters.codecs;
                // An offer whose audio has no Opus gets no sound.
                codecs.first().map(|c| SoundTrack {
                    track,
                    framer: Mutex::new(SoundFramer::new(
                        ssrc,
                        c.payload_type,
                        random_u32() as u16,
                        random_u32(),
                    )),
                })
            }
            None => None,
        };

        let channels = Arc::new(Channels::default());
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        tokio::spawn(pump_events(built.events, events_tx.clone(), Arc::clone(&channels)));
        tokio::spawn(pump_keyframe_requests(Arc::clone(&track), events_tx));
        let first_sequence = random_u32() as u16;
        let framer = Mutex::new(RtpFramer::new(ssrc, payload_type, first_sequence, random_u32()));
        let peer = Self { pc, track, framer, sound, channels, clock };
        Ok((peer, answer_sdp, events_rx))
    }

    /// Sends one access unit captured at `captured` on the video track;
    /// returns the RTP timestamp it went out with (90 kHz, following the
    /// capture instants: see `framer.rs`), which the receiver sees again on
    /// the frame.
    pub async fn send_frame(&self, data: Bytes, captured: Instant) -> Result<u32, StreamingError> {
        let (timestamp, packets) =
            self.framer.lock().expect("framer lock").packetize(&data, captured)?;
        if let Some(first) = packets.first() {
            self.clock.stamp(first.header.ssrc, timestamp, captured, CLOCK_RATE as u32);
        }
        let no_playout_delay =
            [HeaderExtension::PlayoutDelay(PlayoutDelayExtension { min_delay: 0, max_delay: 0 })];
        for packet in packets {
            self.track.write_rtp_with_extensions(packet, &no_playout_delay).await?;
        }
        Ok(timestamp)
    }

    /// Sends one Opus packet of `samples` samples per channel, whose first
    /// sample was captured at `captured`, on the sound track; dropped quietly
    /// when the receiver asked for no sound.
    pub async fn send_sound(
        &self,
        opus: Bytes,
        samples: u32,
        captured: Instant,
    ) -> Result<(), StreamingError> {
        if let Some(sound) = &self.sound {
            let packet = sound.framer.lock().expect("framer lock").packetize(opus, samples);
            let (ssrc, timestamp) = (packet.header.ssrc, packet.header.timestamp);
            self.clock.stamp(ssrc, timestamp, captured, crate::audio::SAMPLE_RATE);
            sound.track.write_rtp(packet).await?;
        }
        Ok(())
    }

    /// Sends a message on the input channel (input acknowledgements); dropped
    /// quietly before the channel opens.
    pub async fn send_input_message(&self, message: &[u8]) -> Result<(), StreamingError> {
        let channel = self.channels.input.lock().expect("channels lock").clone();
        if let Some(channel) = channel {
            channel.send(BytesMut::from(message)).await?;
        }
        Ok(())
    }

    /// Sends a text message on the probes channel (pongs, refusals); dropped
    /// quietly when the client opened none.
    pub async fn send_probe_message(&self, message: &str) -> Result<(), StreamingError> {
        let channel = self.channels.probes.lock().expect("channels lock").clone();
        if let Some(channel) = channel {
            channel.send_text(message).await?;
        }
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    getrandom::getrandom(&mut bytes).expect("OS randomness");
    u32::from_le_bytes(bytes)
}

async fn pump_keyframe_requests(
    track: Arc<TrackLocalStaticRTP>,
    events: mpsc::UnboundedSender<PeerEvent>,
) {
    while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = track.poll().await {
        if asks_for_keyframe(&packets) && events.send(PeerEvent::KeyframeRequest).is_err() {
            return;
        }
    }
}

async fn pump_events(
    mut raw: mpsc::UnboundedReceiver<RawEvent>,
    events: mpsc::UnboundedSender<PeerEvent>,
    channels: Arc<Channels>,
) {
    while let Some(event) = raw.recv().await {
        match event {
            RawEvent::State(RTCPeerConnectionState::Connected) => {
                let _ = events.send(PeerEvent::Connected);
            }
            RawEvent::State(
                RTCPeerConnectionState::Failed
                | RTCPeerConnectionState::Disconnected
                | RTCPeerConnectionState::Closed,
            ) => {
                let _ = events.send(PeerEvent::Closed);
                return;
            }
            RawEvent::State(_) | RawEvent::Track(_) => {}
            RawEvent::DataChannel(channel) => {
                let label = channel.label().await.unwrap_or_default();
                // Input is binary; probe messages are JSON text (binary is let through
                // for the parser to judge).
                let (slot, wrap): (_, fn(Bytes, bool) -> Option<PeerEvent>) = match label.as_str() {
                    INPUT_CHANNEL => {
                        (&channels.input, |data, text| (!text).then_some(PeerEvent::Input(data)))
                    }
                    PROBES_CHANNEL => (&channels.probes, |data, _| Some(PeerEvent::Probe(data))),
                    _ => continue,
                };
                *slot.lock().expect("channels lock") = Some(Arc::clone(&channel));
                let events = events.clone();
                tokio::spawn(async move {
                    while let Some(event) = channel.poll().await {
                        match event {
                            DataChannelEvent::OnMessage(msg) => {
                                if let Some(event) = wrap(msg.data.freeze(), msg.is_string) {
                                    let _ = events.send(event);
                                }
                            }
                            DataChannelEvent::OnClose => break,
                            _ => {}
                        }
                    }
                });
            }
        }
    }
}
