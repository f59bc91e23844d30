//! What each local stream's RTP timestamps mean in time. The sender stamps
//! every frame and sound packet with the instant it was captured
//! ([`CaptureClock::stamp`]); [`CaptureTimeReports`] then makes each RTCP
//! sender report map NTP time to the RTP timestamp of that instant's capture,
//! not of its departure. A receiver lines its tracks up by these reports, so
//! the sound of an instant plays with the picture of the same instant (and its
//! measured A/V offset is the true one), however long each took to encode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::interceptor::{Packet, TaggedPacket};
use rtc::rtcp::sender_report::SenderReport;

use super::chain::{Hooked, PacketHook};

/// The newest (RTP timestamp, capture instant, clock rate) of each local stream, by SSRC.
#[derive(Clone, Default)]
pub(crate) struct CaptureClock(Arc<Mutex<HashMap<u32, Stamp>>>);

#[derive(Clone, Copy)]
struct Stamp {
    timestamp: u32,
    captured: Instant,
    rate: u32,
}

impl CaptureClock {
    /// Stream `ssrc` (on a `rate` Hz clock) sent `timestamp` for what was captured at `captured`.
    pub(crate) fn stamp(&self, ssrc: u32, timestamp: u32, captured: Instant, rate: u32) {
        let stamp = Stamp { timestamp, captured, rate };
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(ssrc, stamp);
    }

    /// The RTP timestamp stream `ssrc` gives what is captured at `now`; none before it sent anything.
    fn timestamp_at(&self, ssrc: u32, now: Instant) -> Option<u32> {
        let stamp = *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&ssrc)?;
        let ticks = |from: Instant, to: Instant| {
            (to.saturating_duration_since(from).as_secs_f64() * f64::from(stamp.rate)).round()
                as u32
        };
        Some(if now >= stamp.captured {
            stamp.timestamp.wrapping_add(ticks(stamp.captured, now))
        } else {
            stamp.timestamp.wrapping_sub(ticks(now, stamp.captured))
        })
    }
}

/// Rewrites the RTP time of each sender report on its way out to the capture
/// clock's, at the report's own instant. Place it wire-ward of `Slot::SenderReport`.
pub(crate) struct CaptureTimeReports {
    clock: CaptureClock,
}

impl CaptureTimeReports {
    /// Reports by `clock`.
    pub(crate) fn new(clock: CaptureClock) -> Hooked<Self> {
        Hooked::new(Self { clock })
    }
}

impl PacketHook for CaptureTimeReports {
    fn write(&mut self, msg: &mut TaggedPacket) {
        let now = msg.now;
        let Packet::Rtcp(packets) = &mut msg.message.packet else { return };
        for packet in packets.iter_mut() {
            let Some(report) = packet.as_any().downcast_ref::<SenderReport>() else { continue };
            if let Some(rtp_time) = self.clock.timestamp_at(report.ssrc, now) {
                *packet = Box::new(SenderReport { rtp_time, ..report.clone() });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rtc::interceptor::AttributedPacket;
    use rtc::shared::TransportContext;

    use super::*;

    fn report(ssrc: u32, now: Instant) -> TaggedPacket {
        let report = SenderReport { ssrc, ntp_time: 7, rtp_time: 1, ..Default::default() };
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(report)])),
        }
    }

    fn rtp_time(msg: &TaggedPacket) -> (u32, u64) {
        let Packet::Rtcp(packets) = &msg.message.packet else { panic!("not RTCP") };
        let report = packets[0].as_any().downcast_ref::<SenderReport>().unwrap();
        (report.rtp_time, report.ntp_time)
    }

    #[test]
    fn sender_reports_map_ntp_time_to_the_capture_clock() {
        let clock = CaptureClock::default();
        let mut hook = CaptureTimeReports { clock: clock.clone() };
        let t0 = Instant::now() + Duration::from_secs(1);
        // Video captured at t0 went out late; the report 100 ms after the capture
        // says 9,000 ticks past its timestamp whenever the frame left.
        clock.stamp(1, u32::MAX - 99, t0, 90_000);
        let mut later = report(1, t0 + Duration::from_millis(100));
        hook.write(&mut later);
        assert_eq!(rtp_time(&later), (8_900, 7), "wrapped, NTP time untouched");
        // A report made before the newest capture counts back from it.
        let mut earlier = report(1, t0 - Duration::from_millis(10));
        hook.write(&mut earlier);
        assert_eq!(rtp_time(&earlier).0, u32::MAX - 99 - 900);
        // A stream that sent nothing yet keeps what the report said.
        let mut unknown = report(2, t0);
        hook.write(&mut unknown);
        assert_eq!(rtp_time(&unknown).0, 1);
    }
}
