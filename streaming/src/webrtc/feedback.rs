//! Receiver feedback the sender acts on: transport-wide congestion feedback
//! drives the [`RateController`], and keyframe requests (PLI/FIR) are let
//! through the interceptor chain to the application.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::interceptor::{
    Attribute, BandwidthEstimator, Interceptor, Packet, PacketReport, StreamInfo, TaggedPacket,
};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use crate::rate::{PacketFeedback, QualityChange, RateController};

/// Pacing rate over the controller's target (as libwebrtc's pacer does).
pub const PACING_FACTOR: f64 = 1.5;

/// A [`RateController`] shared between the interceptor chain (which feeds it)
/// and the frame loop (which reads its target).
#[derive(Clone)]
pub struct SharedRate {
    controller: Arc<Mutex<RateController>>,
    sent: Arc<Mutex<RecentPackets>>,
}

/// The (SSRC, RTP sequence number) pairs reported recently, to tell a NACK
/// retransmission from a first transmission.
#[derive(Default)]
struct RecentPackets {
    order: VecDeque<(u32, u16)>,
    seen: HashSet<(u32, u16)>,
}

/// How many reported packets are remembered (several seconds of video).
const RECENT_PACKETS: usize = 8192;

impl RecentPackets {
    /// Records a packet; true if the same RTP packet was reported before.
    fn repeat(&mut self, key: (u32, u16)) -> bool {
        if !self.seen.insert(key) {
            return true;
        }
        self.order.push_back(key);
        if self.order.len() > RECENT_PACKETS
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        false
    }
}

impl SharedRate {
    /// Shares `controller`.
    pub fn new(controller: RateController) -> Self {
        Self { controller: Arc::new(Mutex::new(controller)), sent: Arc::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RateController> {
        self.controller.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The controller's current target, bits per second.
    pub fn target_bps(&self) -> u64 {
        self.lock().target_bps()
    }

    /// The share of packets the receiver lost in the controller's last loss window, in
    /// percent (0 before any window completed).
    pub fn loss_percent(&self) -> u8 {
        let loss = self.lock().stats().loss_fraction.unwrap_or(0.0);
        (loss * 100.0).round().clamp(0.0, 100.0) as u8
    }

    /// The change of resolution or frame rate the controller's quality
    /// ladder suggests, once (see [`RateController::poll_quality_change`]).
    pub fn poll_quality_change(&self) -> Option<QualityChange> {
        self.lock().poll_quality_change()
    }

    /// Feeds per-packet (or per-frame) feedback that arrived at `now` from
    /// a transport other than RTP.
    pub fn on_feedback(&self, now: Instant, feedback: &[PacketFeedback]) {
        if !feedback.is_empty() {
            self.lock().on_packet_feedback(now, feedback);
        }
    }
}

impl BandwidthEstimator for SharedRate {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        let mut sent = self.sent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let feedback: Vec<PacketFeedback> = reports
            .iter()
            // Arrived but with no arrival time: nothing to learn about delay or loss.
            .filter(|r| !(r.arrived && r.arrival.is_none()))
            // A retransmission of a packet the receiver already had is dropped by
            // its SRTP replay check and reads as lost; retransmissions say nothing
            // about the path that the original did not.
            .filter(|r| !sent.repeat((r.ssrc, r.rtp_sequence_number)))
            .map(|r| PacketFeedback {
                sequence: r.id,
                departure: r.departure,
                arrival: if r.arrived { r.arrival } else { None },
                size: r.size,
            })
            .collect();
        if !feedback.is_empty() {
            self.lock().on_packet_feedback(now, &feedback);
        }
    }

    /// What the pacer releases packets at: faster than the encoder's target
    /// ([`PACING_FACTOR`]), so retransmissions, packet overhead and a
    /// keyframe's burst drain at once instead of queueing behind the frames
    /// that follow.
    fn target_bitrate(&self) -> f64 {
        self.target_bps() as f64 * PACING_FACTOR
    }
}

/// Whether an RTCP compound packet asks for a keyframe.
pub(crate) fn asks_for_keyframe(packets: &[Box<dyn rtc::rtcp::Packet>]) -> bool {
    packets
        .iter()
        .any(|p| p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>())
}

/// Marks inbound PLI/FIR for delivery to the application; everything else
/// passes untouched.
#[derive(Default)]
pub(crate) struct KeyframeRequests {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequests {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && asks_for_keyframe(packets)
        {
            msg.message.attributes.push(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequests {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::receiver_report::ReceiverReport;

    #[test]
    fn a_retransmitted_packet_is_a_repeat() {
        let mut recent = RecentPackets::default();
        assert!(!recent.repeat((1, 10)));
        assert!(!recent.repeat((2, 10)), "another stream");
        assert!(recent.repeat((1, 10)));
        for seq in 0..RECENT_PACKETS as u16 {
            recent.repeat((3, seq));
        }
        assert!(!recent.repeat((1, 10)), "forgotten after RECENT_PACKETS others");
    }

    #[test]
    fn recognises_pli_and_fir_only() {
        let pli: Vec<Box<dyn rtc::rtcp::Packet>> =
            vec![Box::new(PictureLossIndication { sender_ssrc: 1, media_ssrc: 2 })];
        let fir: Vec<Box<dyn rtc::rtcp::Packet>> = vec![Box::new(FullIntraRequest::default())];
        let rr: Vec<Box<dyn rtc::rtcp::Packet>> = vec![Box::new(ReceiverReport::default())];
        assert!(asks_for_keyframe(&pli));
        assert!(asks_for_keyframe(&fir));
        assert!(!asks_for_keyframe(&rr));
    }
}
