//! Pacing for the video, with the sound let past: [`SoundFirst`] holds the video in the
//! pacer's queue at the congestion controller's rate and sends each packet of sound at
//! once. Queued behind a keyframe's burst, sound would arrive in clumps tens of
//! milliseconds apart, and the receiver's jitter buffer would grow to absorb them, playing
//! the sound that much later than the picture (libwebrtc does not pace audio either).
//! The sound's few dozen kbit/s are part of the budget the frame loop splits already.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, PacerInterceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use super::chain::LocalStreams;

/// A pacer for everything but the sound.
pub(crate) struct SoundFirst {
    pacer: PacerInterceptor,
    sound: LocalStreams,
    /// Sound waiting to go, ahead of anything the pacer releases.
    unpaced: VecDeque<TaggedPacket>,
}

impl SoundFirst {
    /// Paces with `pacer`, letting sound past it.
    pub(crate) fn new(pacer: PacerInterceptor) -> Self {
        Self { pacer, sound: LocalStreams::of("audio"), unpaced: VecDeque::new() }
    }

    fn is_sound(&self, msg: &TaggedPacket) -> bool {
        matches!(&msg.message.packet, Packet::Rtp(rtp) if self.sound.contains(rtp.header.ssrc))
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for SoundFirst {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.pacer.handle_read(msg)
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.pacer.poll_read()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if self.is_sound(&msg) {
            self.unpaced.push_back(msg);
            return Ok(());
        }
        self.pacer.handle_write(msg)
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.unpaced.pop_front().or_else(|| self.pacer.poll_write())
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        self.pacer.handle_timeout(now)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.pacer.poll_timeout()
    }
}

impl Interceptor for SoundFirst {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.sound.bind(info);
        self.pacer.bind_local_stream(info);
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.sound.unbind(info);
        self.pacer.unbind_local_stream(info);
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.pacer.bind_remote_stream(info);
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.pacer.unbind_remote_stream(info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, PacerBuilder};
    use rtc::rtp::header::Header;

    fn rtp(now: Instant, ssrc: u32, bytes: usize) -> TaggedPacket {
        let packet = rtc::rtp::packet::Packet {
            header: Header { ssrc, ..Default::default() },
            payload: vec![0u8; bytes].into(),
        };
        TaggedPacket {
            now,
            transport: Default::default(),
            message: AttributedPacket::new(Packet::Rtp(packet)),
        }
    }

    fn ssrc_of(msg: &TaggedPacket) -> u32 {
        match &msg.message.packet {
            Packet::Rtp(rtp) => rtp.header.ssrc,
            _ => 0,
        }
    }

    #[test]
    fn sound_goes_at_once_while_video_waits_for_the_budget() {
        // 1 Mbit/s with a burst of one packet: a 60 kB keyframe takes about half a second.
        let pacer = PacerBuilder::new().with_target_bitrate(1_000_000.0).with_burst_bits(9_600.0);
        let mut paced = SoundFirst::new(pacer.build());
        let stream =
            |ssrc, mime: &str| StreamInfo { ssrc, mime_type: mime.into(), ..Default::default() };
        paced.bind_local_stream(&stream(1, "video/H264"));
        paced.bind_local_stream(&stream(2, "audio/opus"));
        let t0 = Instant::now();
        for _ in 0..50 {
            paced.handle_write(rtp(t0, 1, 1_200)).unwrap();
        }
        paced.handle_write(rtp(t0, 2, 120)).unwrap();
        paced.handle_timeout(t0).unwrap();
        let mut sent = Vec::new();
        while let Some(msg) = paced.poll_write() {
            sent.push(ssrc_of(&msg));
        }
        assert_eq!(sent.first(), Some(&2), "the sound leaves first: {sent:?}");
        assert!(sent.iter().filter(|&&s| s == 1).count() < 5, "the video is paced: {sent:?}");
    }
}
