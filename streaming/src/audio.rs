//! Sound: Opus at 48 kHz stereo in frames of 5, 10 (the default) or 20 ms, with
//! in-band forward error correction, and the decoder players and tests use.
//!
//! PCM is interleaved stereo `i16` (left, right, left, ...).

use std::time::Duration;

use bytes::Bytes;
use opus::{Application, Bitrate, Channels};

use crate::StreamingError;

/// Samples per second, per channel.
pub const SAMPLE_RATE: u32 = 48_000;
/// Channels: stereo.
pub const CHANNELS: usize = 2;
/// The bitrate sound starts at: music-grade stereo.
pub const DEFAULT_AUDIO_BPS: u32 = 96_000;
/// Largest Opus packet one frame is given room for.
const MAX_PACKET: usize = 1500;

/// How long one audio frame lasts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AudioFrame {
    /// 5 ms: the least delay, no FEC (Opus codes it as CELT only).
    Ms5,
    /// 10 ms.
    #[default]
    Ms10,
    /// 20 ms: the most resilient.
    Ms20,
}

impl AudioFrame {
    /// The frame for a length in milliseconds (5, 10 or 20).
    pub fn from_ms(ms: u32) -> Option<Self> {
        match ms {
            5 => Some(Self::Ms5),
            10 => Some(Self::Ms10),
            20 => Some(Self::Ms20),
            _ => None,
        }
    }

    /// How long the frame lasts.
    pub fn duration(self) -> Duration {
        Duration::from_millis(match self {
            Self::Ms5 => 5,
            Self::Ms10 => 10,
            Self::Ms20 => 20,
        })
    }

    /// Samples per channel in one frame.
    pub fn samples(self) -> usize {
        SAMPLE_RATE as usize * self.duration().as_millis() as usize / 1000
    }
}

fn opus_error(e: opus::Error) -> StreamingError {
    StreamingError::Audio(e.to_string())
}

/// An Opus encoder for one session's sound.
pub struct AudioEncoder {
    encoder: opus::Encoder,
    frame: AudioFrame,
    packet: Vec<u8>,
}

impl AudioEncoder {
    /// An encoder of `frame`-long frames at `bitrate_bps`, with in-band FEC ready for
    /// the loss the receiver reports ([`expect_loss`](Self::expect_loss)).
    pub fn new(frame: AudioFrame, bitrate_bps: u32) -> Result<Self, StreamingError> {
        let mut encoder = opus::Encoder::new(SAMPLE_RATE, Channels::Stereo, Application::Audio)
            .map_err(opus_error)?;
        encoder.set_inband_fec(true).map_err(opus_error)?;
        let mut this = Self { encoder, frame, packet: vec![0; MAX_PACKET] };
        this.set_bitrate(bitrate_bps)?;
        Ok(this)
    }

    /// The frame length this encoder takes.
    pub fn frame(&self) -> AudioFrame {
        self.frame
    }

    /// Aims for `bps` from the next frame.
    pub fn set_bitrate(&mut self, bps: u32) -> Result<(), StreamingError> {
        let bps = i32::try_from(bps.clamp(6_000, 510_000)).unwrap_or(510_000);
        self.encoder.set_bitrate(Bitrate::Bits(bps)).map_err(opus_error)
    }

    /// Tells the encoder how much loss to protect against, in percent: FEC is sent only
    /// when some is expected.
    pub fn expect_loss(&mut self, percent: u8) -> Result<(), StreamingError> {
        self.encoder.set_packet_loss_perc(i32::from(percent.min(100))).map_err(opus_error)
    }

    /// Encodes one frame of interleaved stereo PCM (exactly [`AudioFrame::samples`]
    /// per channel) into one Opus packet.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Bytes, StreamingError> {
        let expected = self.frame.samples() * CHANNELS;
        if pcm.len() != expected {
            return Err(StreamingError::Audio(format!(
                "a frame is {expected} samples, got {}",
                pcm.len()
            )));
        }
        let n = self.encoder.encode(pcm, &mut self.packet).map_err(opus_error)?;
        Ok(Bytes::copy_from_slice(&self.packet[..n]))
    }
}

/// An Opus decoder: packets in, interleaved stereo PCM out.
pub struct AudioDecoder {
    decoder: opus::Decoder,
    pcm: Vec<i16>,
}

/// Most samples per channel one packet may hold (120 ms).
const MAX_FRAME_SAMPLES: usize = SAMPLE_RATE as usize * 120 / 1000;

impl AudioDecoder {
    /// A decoder of 48 kHz stereo.
    pub fn new() -> Result<Self, StreamingError> {
        let decoder = opus::Decoder::new(SAMPLE_RATE, Channels::Stereo).map_err(opus_error)?;
        Ok(Self { decoder, pcm: vec![0; MAX_FRAME_SAMPLES * CHANNELS] })
    }

    /// Decodes one packet; a packet that is not Opus is an error and changes nothing.
    pub fn decode(&mut self, packet: &[u8]) -> Result<&[i16], StreamingError> {
        if packet.is_empty() {
            return Err(StreamingError::Audio("an empty packet".into()));
        }
        let n = self.decoder.decode(packet, &mut self.pcm, false).map_err(opus_error)?;
        Ok(&self.pcm[..n * CHANNELS])
    }

    /// Stands in for `samples` lost samples per channel (at most 120 ms) just before
    /// `next`: rebuilt from the copy of them `next` carries (in-band FEC) where it has
    /// one, concealed otherwise.
    pub fn recover(&mut self, next: &[u8], samples: usize) -> Result<&[i16], StreamingError> {
        let out = &mut self.pcm[..samples.min(MAX_FRAME_SAMPLES) * CHANNELS];
        let n = self.decoder.decode(next, out, true).map_err(opus_error)?;
        Ok(&self.pcm[..n * CHANNELS])
    }
}

/// Furthest a sound packet's timestamp may lie ahead of the one before it: 10 s.
pub const MAX_SOUND_JUMP: u32 = 10 * SAMPLE_RATE;

/// What a player hears: sound packets decoded in the order of their timestamps
/// (48 kHz). A packet whose timestamp is not after the last one heard, or more than
/// [`MAX_SOUND_JUMP`] ahead of it, or that is not Opus, is dropped and counted. Sound
/// missing before a packet (lost on the way) is stood in for, up to 120 ms: from the
/// packet's in-band FEC, or concealed.
pub struct Listener {
    decoder: AudioDecoder,
    /// The last packet heard: its timestamp and samples per channel.
    last: Option<(u32, u32)>,
    /// What the latest packet gave: stand-in samples, then its own.
    heard: Vec<i16>,
    /// Packets heard.
    pub packets: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// Samples heard, per channel, stand-ins included.
    pub samples: u64,
    /// Samples per channel stood in for lost ones.
    pub stood_in: u64,
    /// Packets missing before the ones heard (each gap in packets of the length of the
    /// packet after it).
    pub lost: u64,
    sum_squares: f64,
}

impl Listener {
    /// A listener that has heard nothing yet.
    pub fn new() -> Result<Self, StreamingError> {
        Ok(Self {
            decoder: AudioDecoder::new()?,
            last: None,
            heard: Vec::new(),
            packets: 0,
            dropped: 0,
            samples: 0,
            stood_in: 0,
            lost: 0,
            sum_squares: 0.0,
        })
    }

    /// Hears one packet stamped `timestamp`; returns what it gave (interleaved stereo:
    /// any stand-in for sound lost just before it, then its own), or `None` if it was
    /// dropped.
    pub fn hear(&mut self, packet: &[u8], timestamp: u32) -> Option<&[i16]> {
        let in_order = self.last.is_none_or(|(last, _)| {
            let ahead = timestamp.wrapping_sub(last);
            ahead > 0 && ahead <= MAX_SOUND_JUMP
        });
        let samples = opus::packet::get_nb_samples(packet, SAMPLE_RATE).ok().filter(|_| in_order);
        let Some(samples) = samples.filter(|&n| n > 0) else {
            self.dropped += 1;
            return None;
        };
        // Sound missing since the end of the last packet; a tick or two of difference is
        // the sender's rounding, a frame or more is loss.
        let missing = self.last.map_or(0, |(last, length)| {
            timestamp.wrapping_sub(last.wrapping_add(length)).min(MAX_SOUND_JUMP) as usize
        });
        self.heard.clear();
        if missing > samples / 2 {
            self.lost += ((missing + samples / 2) / samples) as u64;
        }
        if missing > samples / 2
            && missing <= MAX_FRAME_SAMPLES
            && let Ok(stand_in) = self.decoder.recover(packet, missing)
        {
            self.stood_in += (stand_in.len() / CHANNELS) as u64;
            self.heard.extend_from_slice(stand_in);
        }
        match self.decoder.decode(packet) {
            Ok(pcm) => self.heard.extend_from_slice(pcm),
            Err(_) => {
                self.dropped += 1;
                return None;
            }
        }
        self.last = Some((timestamp, samples as u32));
        self.packets += 1;
        self.samples += (self.heard.len() / CHANNELS) as u64;
        self.sum_squares += self.heard.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
        Some(&self.heard)
    }

    /// Seconds of sound heard.
    pub fn seconds(&self) -> f64 {
        self.samples as f64 / f64::from(SAMPLE_RATE)
    }

    /// The loudness of everything heard, dB below full scale (RMS); `None` before any.
    pub fn level_dbfs(&self) -> Option<f64> {
        let n = self.samples * CHANNELS as u64;
        (n > 0).then(|| {
            let rms = (self.sum_squares / n as f64).sqrt() / f64::from(i16::MAX);
            20.0 * rms.max(1e-9).log10()
        })
    }
}

/// The power of `frequency` Hz in interleaved stereo `pcm` (both channels mixed),
/// by the Goertzel filter: for tests and players that check what they hear.
pub fn tone_power(pcm: &[i16], frequency: f64) -> f64 {
    let omega = 2.0 * std::f64::consts::PI * frequency / f64::from(SAMPLE_RATE);
    let coefficient = 2.0 * omega.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let frames = pcm.chunks_exact(CHANNELS);
    let n = frames.len().max(1) as f64;
    for frame in frames {
        let x = frame.iter().map(|&s| f64::from(s)).sum::<f64>() / CHANNELS as f64;
        let s0 = x + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coefficient * s1 * s2) / (n * n)
}

/// The frequency between `low` and `high` Hz (in 1 Hz steps) with the most power in `pcm`.
pub fn dominant_frequency(pcm: &[i16], low: u32, high: u32) -> u32 {
    (low..=high)
        .max_by(|a, b| tone_power(pcm, f64::from(*a)).total_cmp(&tone_power(pcm, f64::from(*b))))
        .unwrap_or(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frequency: f64, samples: usize) -> Vec<i16> {
        (0..samples)
            .flat_map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                let v = (8000.0 * (2.0 * std::f64::consts::PI * frequency * t).sin()) as i16;
                [v, v]
            })
            .collect()
    }

    #[test]
    fn a_tone_survives_encoding_at_every_frame_length() {
        for frame in [AudioFrame::Ms5, AudioFrame::Ms10, AudioFrame::Ms20] {
            let mut encoder = AudioEncoder::new(frame, DEFAULT_AUDIO_BPS).unwrap();
            let mut decoder = AudioDecoder::new().unwrap();
            let pcm = tone(440.0, frame.samples() * 40);
            let mut heard = Vec::new();
            for chunk in pcm.chunks(frame.samples() * CHANNELS) {
                let packet = encoder.encode(chunk).unwrap();
                assert!(packet.len() < 400, "{frame:?}: {} bytes", packet.len());
                heard.extend_from_slice(decoder.decode(&packet).unwrap());
            }
            assert_eq!(heard.len(), pcm.len());
            // Past the codec's start-up, the tone is what is heard.
            let settled = &heard[heard.len() / 2..];
            assert_eq!(dominant_frequency(settled, 300, 600), 440, "{frame:?}");
        }
    }

    #[test]
    fn expected_loss_turns_on_forward_error_correction() {
        // FEC rides in SILK layers: a clean link gets CELT-only packets (TOC configs 16
        // and up), a lossy one hybrid packets that carry the previous frame again.
        let configs = |loss: u8| {
            let mut encoder = AudioEncoder::new(AudioFrame::Ms10, DEFAULT_AUDIO_BPS).unwrap();
            encoder.expect_loss(loss).unwrap();
            let pcm = tone(440.0, 480 * 50);
            let packets: Vec<Bytes> =
                pcm.chunks(480 * CHANNELS).map(|c| encoder.encode(c).unwrap()).collect();
            packets[10..].iter().map(|p| p[0] >> 3).collect::<Vec<u8>>()
        };
        assert!(configs(0).iter().all(|&c| c >= 16), "{:?}", configs(0));
        assert!(configs(20).iter().all(|&c| c < 16), "{:?}", configs(20));
    }

    #[test]
    fn a_listener_drops_packets_out_of_order_far_ahead_or_not_opus() {
        let mut encoder = AudioEncoder::new(AudioFrame::Ms10, DEFAULT_AUDIO_BPS).unwrap();
        let pcm = tone(1000.0, 480);
        let packet = encoder.encode(&pcm).unwrap();
        let mut listener = Listener::new().unwrap();
        assert_eq!(listener.level_dbfs(), None);
        assert!(listener.hear(&packet, u32::MAX - 100).is_some());
        assert!(listener.hear(&packet, 379).is_some(), "480 ticks on, past the wrap");
        assert!(listener.hear(&packet, 379).is_none(), "a repeat");
        assert!(listener.hear(&packet, 0).is_none(), "from before");
        assert!(listener.hear(&packet, 379 + MAX_SOUND_JUMP + 1).is_none(), "too far ahead");
        assert!(listener.hear(&[], 859).is_none(), "no packet");
        assert!(listener.hear(&packet, 859).is_some());
        assert_eq!((listener.packets, listener.dropped, listener.samples), (3, 4, 1440));
        assert!((listener.seconds() - 0.03).abs() < 1e-9);
        assert!(listener.level_dbfs().is_some_and(|db| db < 0.0));
    }

    #[test]
    fn a_lost_packet_is_stood_in_for_from_the_next_ones_fec() {
        let mut encoder = AudioEncoder::new(AudioFrame::Ms10, DEFAULT_AUDIO_BPS).unwrap();
        encoder.expect_loss(20).unwrap();
        let pcm = tone(440.0, 480 * 60);
        let packets: Vec<Bytes> =
            pcm.chunks(480 * CHANNELS).map(|c| encoder.encode(c).unwrap()).collect();
        let mut listener = Listener::new().unwrap();
        let mut heard = Vec::new();
        for (i, packet) in packets.iter().enumerate().filter(|&(i, _)| i != 40) {
            heard.extend_from_slice(listener.hear(packet, 1000 + 480 * i as u32).unwrap());
        }
        // Nothing missing in the timeline: the lost 10 ms were stood in for, as the tone.
        assert_eq!((listener.stood_in, heard.len()), (480, pcm.len()));
        assert_eq!(listener.lost, 1);
        let frame = |i: usize| &heard[480 * i * CHANNELS..480 * (i + 1) * CHANNELS];
        let (lost, before) = (tone_power(frame(40), 440.0), tone_power(frame(39), 440.0));
        assert!(lost > before / 20.0, "the stand-in holds the tone: {lost:e} against {before:e}");
        let around = &heard[480 * 38 * CHANNELS..480 * 43 * CHANNELS];
        assert!((435..=445).contains(&dominant_frequency(around, 300, 600)));
        // A tick of rounding in a sender's stamps is no loss.
        let mut listener = Listener::new().unwrap();
        listener.hear(&packets[0], 0).unwrap();
        assert_eq!(listener.hear(&packets[1], 481).map(<[i16]>::len), Some(480 * CHANNELS));
        assert_eq!((listener.stood_in, listener.lost), (0, 0));
    }

    #[test]
    fn bad_sizes_and_bad_packets_are_errors() {
        let mut encoder = AudioEncoder::new(AudioFrame::Ms10, DEFAULT_AUDIO_BPS).unwrap();
        assert!(matches!(encoder.encode(&[0; 100]), Err(StreamingError::Audio(_))));
        let mut decoder = AudioDecoder::new().unwrap();
        assert!(decoder.decode(&[]).is_err());
        // A TOC byte announcing a frame count with nothing after it.
        assert!(decoder.decode(&[0x03]).is_err());
        assert_eq!(AudioFrame::from_ms(7), None);
        assert_eq!(AudioFrame::from_ms(20).map(AudioFrame::samples), Some(960));
    }
}
