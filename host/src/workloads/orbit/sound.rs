//! Orbit's sound, synthesised: an engine hum whose pitch follows the player's speed
//! ([`ENGINE_REST_HZ`] at rest to [`ENGINE_FULL_HZ`] at full speed), panned with the
//! player, and a chirp on every jump (from [`JUMP_FROM_HZ`] up to [`JUMP_TO_HZ`] over
//! [`JUMP_SOUND`]), so that an input is heard as well as seen.
//!
//! Sans-I/O: [`Synth::render`] turns the game's latest [`SoundCue`] into the next
//! samples; whoever calls it keeps the time.

use std::f64::consts::TAU;
use std::time::Duration;

use gridplay_streaming::audio::{CHANNELS, SAMPLE_RATE};

/// The hum's fundamental with the player at rest.
pub const ENGINE_REST_HZ: f64 = 110.0;
/// The hum's fundamental at full speed.
pub const ENGINE_FULL_HZ: f64 = 220.0;
/// Where a jump's chirp starts.
pub const JUMP_FROM_HZ: f64 = 600.0;
/// Where a jump's chirp ends.
pub const JUMP_TO_HZ: f64 = 1200.0;
/// How long a jump's chirp lasts.
pub const JUMP_SOUND: Duration = Duration::from_millis(150);

/// The hum's loudness at rest and at full speed, and the chirp's, as parts of full scale.
const ENGINE_REST_LEVEL: f64 = 0.06;
const ENGINE_FULL_LEVEL: f64 = 0.15;
const JUMP_LEVEL: f64 = 0.5;
/// How fast the hum's pitch and level follow the speed: per sample, toward the target.
const GLIDE: f64 = 1.0 / 2400.0;

/// What the game wants heard now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SoundCue {
    /// The player's speed, 0 (at rest) ..= 1 (full speed).
    pub speed: f64,
    /// The player's x, 0 (left) ..= 1 (right): where the hum sits between the speakers.
    pub pan: f64,
    /// Jumps since the game started.
    pub jumps: u64,
}

/// The synthesiser's state between calls.
#[derive(Debug, Clone, Default)]
pub struct Synth {
    engine_phase: f64,
    /// The hum's speed as heard, gliding toward the cue's.
    speed: f64,
    /// Jumps already sounded.
    jumps_heard: u64,
    /// Samples into the chirp now sounding, if one is.
    chirp_at: Option<usize>,
    chirp_phase: f64,
}

impl Synth {
    /// Renders the next `pcm.len() / 2` samples (interleaved stereo) of the sound
    /// `cue` asks for. A jump not heard yet starts its chirp now (several at once
    /// sound as one).
    pub fn render(&mut self, cue: &SoundCue, pcm: &mut [i16]) {
        if cue.jumps > self.jumps_heard {
            self.jumps_heard = cue.jumps;
            self.chirp_at = Some(0);
        }
        let target = cue.speed.clamp(0.0, 1.0);
        let pan = cue.pan.clamp(0.0, 1.0);
        let (left_gain, right_gain) = ((1.0 - pan).sqrt(), pan.sqrt());
        let chirp_len = (f64::from(SAMPLE_RATE) * JUMP_SOUND.as_secs_f64()) as usize;
        for frame in pcm.chunks_exact_mut(CHANNELS) {
            self.speed += (target - self.speed) * GLIDE;
            let frequency = ENGINE_REST_HZ + (ENGINE_FULL_HZ - ENGINE_REST_HZ) * self.speed;
            let level = ENGINE_REST_LEVEL + (ENGINE_FULL_LEVEL - ENGINE_REST_LEVEL) * self.speed;
            self.engine_phase = (self.engine_phase + frequency / f64::from(SAMPLE_RATE)) % 1.0;
            // A fundamental with a softer octave above: a hum, not a pure tone.
            let hum = level
                * ((TAU * self.engine_phase).sin() + 0.3 * (2.0 * TAU * self.engine_phase).sin());
            let chirp = match self.chirp_at {
                Some(at) if at < chirp_len => {
                    let progress = at as f64 / chirp_len as f64;
                    let frequency = JUMP_FROM_HZ + (JUMP_TO_HZ - JUMP_FROM_HZ) * progress;
                    self.chirp_phase =
                        (self.chirp_phase + frequency / f64::from(SAMPLE_RATE)) % 1.0;
                    self.chirp_at = Some(at + 1);
                    JUMP_LEVEL * (1.0 - progress) * (TAU * self.chirp_phase).sin()
                }
                _ => {
                    self.chirp_at = None;
                    0.0
                }
            };
            let sample = |gain: f64| {
                let v = (hum * gain + chirp) * f64::from(i16::MAX);
                v.clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
            };
            frame[0] = sample(left_gain);
            frame[1] = sample(right_gain);
        }
    }
}

#[cfg(test)]
mod tests {
    use gridplay_streaming::audio::{dominant_frequency, tone_power};

    use super::*;

    /// `ms` milliseconds of sound for `cue`, rendered 10 ms at a time.
    fn hear(synth: &mut Synth, cue: &SoundCue, ms: usize) -> Vec<i16> {
        let mut pcm = vec![0i16; 480 * CHANNELS * ms / 10];
        for chunk in pcm.chunks_mut(480 * CHANNELS) {
            synth.render(cue, chunk);
        }
        pcm
    }

    #[test]
    fn the_hum_rises_with_the_players_speed() {
        let mut synth = Synth::default();
        let rest = hear(&mut synth, &SoundCue { speed: 0.0, pan: 0.5, jumps: 0 }, 500);
        assert_eq!(dominant_frequency(&rest, 80, 400), ENGINE_REST_HZ as u32);
        let moving = SoundCue { speed: 1.0, pan: 0.5, jumps: 0 };
        hear(&mut synth, &moving, 300); // the glide
        let full = hear(&mut synth, &moving, 500);
        assert_eq!(dominant_frequency(&full, 80, 400), ENGINE_FULL_HZ as u32);
    }

    #[test]
    fn a_jump_chirps_once_and_loud() {
        let mut synth = Synth::default();
        let band = |pcm: &[i16]| {
            (600..=1200).step_by(50).map(|f| tone_power(pcm, f64::from(f))).sum::<f64>()
        };
        let quiet = hear(&mut synth, &SoundCue::default(), 150);
        let jumped = SoundCue { jumps: 1, ..SoundCue::default() };
        let chirp = hear(&mut synth, &jumped, 150);
        let after = hear(&mut synth, &jumped, 150);
        assert!(band(&chirp) > 100.0 * band(&quiet), "{} vs {}", band(&chirp), band(&quiet));
        assert!(band(&after) * 100.0 < band(&chirp), "the same jump sounds only once");
    }

    #[test]
    fn the_hum_follows_the_player_between_the_speakers() {
        let mut synth = Synth::default();
        let left = hear(&mut synth, &SoundCue { speed: 0.0, pan: 0.0, jumps: 0 }, 100);
        assert!(left.chunks_exact(2).all(|f| f[1] == 0) && left.iter().any(|&s| s != 0));
        let power = |pcm: &[i16], channel: usize| {
            pcm.chunks_exact(2).map(|f| f64::from(f[channel]).powi(2)).sum::<f64>()
        };
        let right = hear(&mut synth, &SoundCue { speed: 0.0, pan: 0.9, jumps: 0 }, 100);
        assert!(power(&right, 1) > 5.0 * power(&right, 0));
    }
}
