//! RTP packetization of H.264 access units with timestamps the sender knows,
//! and of Opus packets.
//!
//! webrtc-rs's sample track stamps frames from a private, randomly seeded
//! counter, so the application cannot tell which RTP timestamp a frame went
//! out with. This framer stamps them itself — from each frame's capture
//! instant on the 90 kHz clock — and hands the timestamp back, so that input
//! acknowledgements can name the RTP timestamp the receiver will see on the
//! frame (`requestVideoFrameCallback`'s `rtpTimestamp` in a browser). Sans-I/O:
//! the caller passes the capture instant and writes the packets.

use std::time::Instant;

use bytes::Bytes;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::packetizer::Payloader;
use rtc::rtp::{Header, Packet};

use crate::StreamingError;

/// The H.264 RTP clock rate.
pub(crate) const CLOCK_RATE: u64 = 90_000;

/// Largest RTP packet, header included (what webrtc-rs's sample track uses).
const RTP_MTU: usize = 1200;
/// The fixed RTP header (no CSRCs); extensions added later are allowed for by the MTU's slack.
const RTP_HEADER_LEN: usize = 12;

/// Turns access units into RTP packets of one stream.
pub(crate) struct RtpFramer {
    payloader: H264Payloader,
    ssrc: u32,
    payload_type: u8,
    next_sequence: u16,
    /// RTP timestamp of the first frame.
    base_timestamp: u32,
    /// Capture instant of the first frame, and ticks of the latest one since it.
    origin: Option<(Instant, u64)>,
}

impl RtpFramer {
    /// A framer whose first packet has sequence number `first_sequence` and
    /// whose first frame has RTP timestamp `base_timestamp` (both random in
    /// practice, as RFC 3550 asks).
    pub(crate) fn new(
        ssrc: u32,
        payload_type: u8,
        first_sequence: u16,
        base_timestamp: u32,
    ) -> Self {
        Self {
            payloader: H264Payloader::default(),
            ssrc,
            payload_type,
            next_sequence: first_sequence,
            base_timestamp,
            origin: None,
        }
    }

    /// The RTP timestamp of a frame captured at `captured`: the base plus the
    /// 90 kHz ticks since the first frame's capture, rounded to the nearest
    /// tick, one tick later than the previous frame if it would not be later.
    fn timestamp(&mut self, captured: Instant) -> u32 {
        let ticks = match self.origin {
            None => {
                self.origin = Some((captured, 0));
                0
            }
            Some((origin, last)) => {
                let nanos = captured.saturating_duration_since(origin).as_nanos();
                let ticks = ((nanos * u128::from(CLOCK_RATE) + 500_000_000) / 1_000_000_000) as u64;
                let ticks = ticks.max(last + 1);
                self.origin = Some((origin, ticks));
                ticks
            }
        };
        self.base_timestamp.wrapping_add(ticks as u32)
    }

    /// Packetizes one Annex-B access unit captured at `captured`; returns its
    /// RTP timestamp and its packets (the marker bit on the last).
    pub(crate) fn packetize(
        &mut self,
        access_unit: &Bytes,
        captured: Instant,
    ) -> Result<(u32, Vec<Packet>), StreamingError> {
        let timestamp = self.timestamp(captured);
        let payloads = self
            .payloader
            .payload(RTP_MTU - RTP_HEADER_LEN, access_unit)
            .map_err(|e| StreamingError::Rtp(e.to_string()))?;
        let count = payloads.len();
        let packets = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let sequence_number = self.next_sequence;
                self.next_sequence = self.next_sequence.wrapping_add(1);
                Packet {
                    header: Header {
                        version: 2,
                        marker: i + 1 == count,
                        payload_type: self.payload_type,
                        sequence_number,
                        timestamp,
                        ssrc: self.ssrc,
                        ..Default::default()
                    },
                    payload,
                }
            })
            .collect();
        Ok((timestamp, packets))
    }
}

/// Turns Opus packets into RTP packets of one stream: one packet each, stamped with
/// the samples sent before it on the 48 kHz clock (the sound's own clock: a frame is
/// due every frame length, so the count of samples is the time).
pub(crate) struct SoundFramer {
    ssrc: u32,
    payload_type: u8,
    next_sequence: u16,
    next_timestamp: u32,
}

impl SoundFramer {
    /// A framer whose first packet has sequence number `first_sequence` and RTP
    /// timestamp `base_timestamp`.
    pub(crate) fn new(
        ssrc: u32,
        payload_type: u8,
        first_sequence: u16,
        base_timestamp: u32,
    ) -> Self {
        Self { ssrc, payload_type, next_sequence: first_sequence, next_timestamp: base_timestamp }
    }

    /// The RTP packet of one Opus packet of `samples` samples per channel.
    pub(crate) fn packetize(&mut self, opus: Bytes, samples: u32) -> Packet {
        let header = Header {
            version: 2,
            payload_type: self.payload_type,
            sequence_number: self.next_sequence,
            timestamp: self.next_timestamp,
            ssrc: self.ssrc,
            ..Default::default()
        };
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
        Packet { header, payload: opus }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An IDR-like unit big enough to need several packets, and a small one.
    fn units() -> (Bytes, Bytes) {
        let mut big = vec![0, 0, 0, 1, 0x65];
        big.extend(std::iter::repeat_n(0xab, 3000));
        (Bytes::from(big), Bytes::from_static(&[0, 0, 0, 1, 0x41, 1, 2, 3]))
    }

    #[test]
    fn timestamps_follow_capture_time_on_the_90_khz_clock() {
        let mut framer = RtpFramer::new(7, 102, 65_534, u32::MAX - 1000);
        let t0 = Instant::now();
        let (big, small) = units();
        let (ts0, packets) = framer.packetize(&big, t0).unwrap();
        assert_eq!(ts0, u32::MAX - 1000);
        assert!(packets.len() >= 3, "{} packets", packets.len());
        assert!(packets.iter().all(|p| p.header.timestamp == ts0 && p.header.ssrc == 7));
        assert!(packets.iter().all(|p| p.header.payload_type == 102));
        assert!(packets.iter().all(|p| p.payload.len() <= RTP_MTU - RTP_HEADER_LEN));
        let markers: Vec<bool> = packets.iter().map(|p| p.header.marker).collect();
        assert_eq!(markers.iter().filter(|m| **m).count(), 1);
        assert!(markers.last().copied().unwrap());
        let sequences: Vec<u16> = packets.iter().map(|p| p.header.sequence_number).collect();
        assert_eq!(&sequences[..3], &[65_534, 65_535, 0], "sequence numbers wrap");

        // 16.7 ms later: 1503 ticks (rounded), wrapping past 2^32.
        let (ts1, packets) = framer.packetize(&small, t0 + Duration::from_micros(16_700)).unwrap();
        assert_eq!(ts1, ts0.wrapping_add(1503));
        assert_eq!(packets.len(), 1);
        assert!(packets[0].header.marker);
        assert_eq!(packets[0].header.sequence_number, sequences.last().unwrap().wrapping_add(1));
        // A frame skipped by the pacer leaves a gap of its duration.
        let (ts2, _) = framer.packetize(&small, t0 + Duration::from_millis(50)).unwrap();
        assert_eq!(ts2, ts0.wrapping_add(4500));
    }

    #[test]
    fn sound_packets_are_stamped_by_the_samples_before_them() {
        let mut framer = SoundFramer::new(9, 111, u16::MAX, u32::MAX - 478);
        let opus = Bytes::from_static(&[0xfc, 1, 2]);
        let first = framer.packetize(opus.clone(), 480);
        let second = framer.packetize(opus.clone(), 480);
        assert_eq!((first.header.sequence_number, second.header.sequence_number), (u16::MAX, 0));
        assert_eq!((first.header.timestamp, second.header.timestamp), (u32::MAX - 478, 1));
        assert_eq!((second.header.ssrc, second.header.payload_type), (9, 111));
        assert_eq!(second.payload, opus);
    }

    #[test]
    fn frames_captured_at_the_same_instant_still_get_increasing_timestamps() {
        let mut framer = RtpFramer::new(1, 96, 0, 0);
        let t0 = Instant::now();
        let (_, small) = units();
        let stamps: Vec<u32> = (0..3).map(|_| framer.packetize(&small, t0).unwrap().0).collect();
        assert_eq!(stamps, vec![0, 1, 2]);
    }
}
