//! Receiver feedback the sender acts on: transport-wide congestion feedback
//! drives the [`RateController`]; so do RTCP receiver reports (their loss and
//! round trip), which every peer sends, for peers that give no per-packet
//! feedback; keyframe requests (PLI/FIR) are let through the interceptor
//! chain to the application.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::interceptor::{
    Attribute, BandwidthEstimator, Packet, PacketReport, StreamInfo, TaggedPacket,
};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::shared::time::SystemInstant;

use super::chain::{Hooked, LocalStreams, PacketHook};
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

    /// What the pacer should release packets at now.
    pub fn pacing_bps(&self) -> f64 {
        self.target_bps() as f64 * PACING_FACTOR
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
        self.pacing_bps()
    }
}

/// Feeds the loss and round trip of RTCP receiver reports about the video to the rate
/// controller, and tells the pacer (wire-ward of the pacer: place it below
/// `Slot::Pacer`) when that moved the target. The controller uses a report's loss only
/// while no per-packet feedback arrives, so for a peer that sends transport-wide
/// feedback too this changes nothing.
pub(crate) struct ReceiverReports {
    rate: SharedRate,
    video: LocalStreams,
    /// Wall-clock time against the monotonic clock, for the round trip (RFC 3550 §6.4.1).
    clock: Option<SystemInstant>,
    /// The pacing rate last announced.
    announced: f64,
}

impl ReceiverReports {
    /// The interceptor whose reports feed `rate`.
    pub(crate) fn new(rate: SharedRate) -> Hooked<Self> {
        let announced = rate.pacing_bps();
        Hooked::new(Self { rate, video: LocalStreams::of("video"), clock: None, announced })
    }

    /// The round trip a report block states, from when it arrived (`now_ntp`, the middle 32
    /// bits of an NTP timestamp) less the receiver's hold time and our sender report's time.
    fn round_trip(now_ntp: u32, last_sender_report: u32, delay: u32) -> Option<Duration> {
        if last_sender_report == 0 {
            return None;
        }
        let units = now_ntp.wrapping_sub(delay).wrapping_sub(last_sender_report);
        // A clock step or a forged block gives a "negative" round trip: none.
        (units < 0x8000_0000)
            .then(|| Duration::from_nanos((u64::from(units) * 1_000_000_000) >> 16))
    }
}

impl PacketHook for ReceiverReports {
    fn read(&mut self, msg: &mut TaggedPacket) {
        let Packet::Rtcp(packets) = &msg.message.packet else { return };
        let now = msg.now;
        let clock = *self.clock.get_or_insert_with(|| SystemInstant::now(now));
        let now_ntp = (clock.ntp(now) >> 16) as u32;
        let blocks = packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<ReceiverReport>())
            .flat_map(|rr| rr.reports.iter())
            .filter(|block| self.video.contains(block.ssrc));
        for block in blocks {
            let rtt = Self::round_trip(now_ntp, block.last_sender_report, block.delay);
            let lost = f64::from(block.fraction_lost) / 256.0;
            self.rate.lock().on_receiver_report(now, lost, rtt);
        }
        let pacing = self.rate.pacing_bps();
        if pacing != self.announced {
            self.announced = pacing;
            msg.message.add(Attribute::TargetBitrateChanged { bits_per_second: pacing });
        }
    }

    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.video.bind(info);
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.video.unbind(info);
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
pub(crate) struct KeyframeRequests;

impl KeyframeRequests {
    /// The interceptor.
    pub(crate) fn interceptor() -> Hooked<Self> {
        Hooked::new(Self)
    }
}

impl PacketHook for KeyframeRequests {
    fn read(&mut self, msg: &mut TaggedPacket) {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && asks_for_keyframe(packets)
        {
            msg.message.attributes.push(Attribute::DeliverToApplication);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::{RateConfig, RateController};
    use rtc::interceptor::AttributedPacket;
    use rtc::interceptor::Interceptor;
    use rtc::rtcp::reception_report::ReceptionReport;
    use rtc::sansio::Protocol;

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

    fn report(now: Instant, ssrc: u32, fraction_lost: u8) -> TaggedPacket {
        let block = ReceptionReport { ssrc, fraction_lost, ..Default::default() };
        let rr = ReceiverReport { reports: vec![block], ..Default::default() };
        TaggedPacket {
            now,
            transport: Default::default(),
            message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(rr)])),
        }
    }

    fn announced(msg: &TaggedPacket) -> Option<f64> {
        msg.message.attributes.iter().find_map(|a| match a {
            Attribute::TargetBitrateChanged { bits_per_second } => Some(*bits_per_second),
            _ => None,
        })
    }

    #[test]
    fn receiver_reports_of_video_loss_lower_the_rate_and_tell_the_pacer() {
        let config = RateConfig { min_bps: 300_000, max_bps: 6_000_000, start_bps: 4_000_000 };
        let rate = SharedRate::new(RateController::new(config));
        let mut reports = ReceiverReports::new(rate.clone());
        let video = StreamInfo { ssrc: 7, mime_type: "video/H264".into(), ..Default::default() };
        reports.bind_local_stream(&video);
        let t0 = Instant::now();
        // Loss of another stream (the sound) is not the video's.
        reports.handle_read(report(t0, 9, 128)).unwrap();
        assert_eq!(announced(&reports.poll_read().unwrap()), None);
        assert_eq!(rate.target_bps(), 4_000_000);
        // A third of the video lost, report after report: the rate falls, and each report
        // that moved it carries the new pacing rate past the pacer.
        let mut last = None;
        for i in 1..=6 {
            reports.handle_read(report(t0 + Duration::from_millis(500 * i), 7, 85)).unwrap();
            last = announced(&reports.poll_read().unwrap()).or(last);
        }
        assert!(rate.target_bps() < 3_000_000, "{}", rate.target_bps());
        assert_eq!(last, Some(rate.pacing_bps()));
    }

    #[test]
    fn a_report_block_gives_its_round_trip() {
        // Our report left at 0x1000_0000 (NTP middle bits), held 0.25 s by the receiver,
        // back at +0.30 s: a 50 ms round trip.
        let sent = 0x1000_0000u32;
        let rtt = ReceiverReports::round_trip(sent + 0x4CCC, 0x4000, sent).unwrap();
        assert_eq!(rtt.as_millis(), 49);
        assert_eq!(ReceiverReports::round_trip(sent, 0, 0), None, "no sender report yet");
        assert_eq!(ReceiverReports::round_trip(sent, 0x4000, sent), None, "negative");
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
