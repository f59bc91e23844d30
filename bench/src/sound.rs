//! The cost of a session's sound: Orbit's synthesiser and the Opus encoder per frame, at
//! each frame length, against the frame's own duration (the real-time budget a sound
//! thread has), and the encoded bitrate.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gridplay_host::workloads::orbit::sound::{SoundCue, Synth};
use gridplay_streaming::audio::{AudioEncoder, AudioFrame, CHANNELS, DEFAULT_AUDIO_BPS};
use serde::Serialize;

use crate::stats::Summary;

/// Arguments of `gridplay-bench sound`.
#[derive(clap::Args)]
pub struct SoundArgs {
    /// Directory the JSON results go to.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Seconds of sound measured per frame length.
    #[arg(long, default_value_t = 20)]
    seconds: u32,
}

/// The cost at one frame length.
#[derive(Debug, Serialize)]
struct FrameCost {
    frame_ms: u128,
    frames: usize,
    synth: Summary,
    encode: Summary,
    /// Median synthesis and encode as a share of the frame's duration (the budget).
    share_of_real_time: f64,
    /// Encoded bits per second.
    kbit_per_s: f64,
}

/// Runs the benchmark: a hum that speeds up and slows down, a hop every half second.
pub fn run(args: SoundArgs) -> anyhow::Result<()> {
    println!(
        "sound per frame (synthesis + Opus at {} kbit/s), median / p99 ms:",
        DEFAULT_AUDIO_BPS / 1000
    );
    let mut costs = Vec::new();
    for frame in [AudioFrame::Ms5, AudioFrame::Ms10, AudioFrame::Ms20] {
        let cost = measure(frame, args.seconds)?;
        println!(
            "  {:>2} ms frames: synth {:.3} / {:.3}, encode {:.3} / {:.3}; {:.1}% of real time (budget 100%), {:.0} kbit/s",
            cost.frame_ms,
            cost.synth.median_ms,
            cost.synth.p99_ms,
            cost.encode.median_ms,
            cost.encode.p99_ms,
            cost.share_of_real_time * 100.0,
            cost.kbit_per_s
        );
        costs.push(cost);
    }
    std::fs::create_dir_all(&args.out)?;
    let json =
        serde_json::json!({ "frames": costs, "goal": "each frame's work well under its duration" });
    std::fs::write(args.out.join("sound.json"), serde_json::to_string_pretty(&json)? + "\n")?;
    Ok(())
}

fn measure(frame: AudioFrame, seconds: u32) -> anyhow::Result<FrameCost> {
    let mut synth = Synth::default();
    let mut encoder = AudioEncoder::new(frame, DEFAULT_AUDIO_BPS)?;
    let mut pcm = vec![0i16; frame.samples() * CHANNELS];
    let frames = (Duration::from_secs(u64::from(seconds)).as_micros()
        / frame.duration().as_micros()) as usize;
    let (mut synth_times, mut encode_times) =
        (Vec::with_capacity(frames), Vec::with_capacity(frames));
    let mut bytes = 0usize;
    for i in 0..frames {
        let t = i as f64 * frame.duration().as_secs_f64();
        let cue = SoundCue { speed: (t * 0.5).sin().abs(), pan: 0.5, jumps: (t * 2.0) as u64 };
        let start = Instant::now();
        synth.render(&cue, &mut pcm);
        let encoding = Instant::now();
        bytes += encoder.encode(&pcm)?.len();
        synth_times.push(encoding - start);
        encode_times.push(encoding.elapsed());
    }
    let (synth, encode) = (Summary::of(&synth_times), Summary::of(&encode_times));
    let frame_ms = frame.duration().as_secs_f64() * 1e3;
    Ok(FrameCost {
        frame_ms: frame.duration().as_millis(),
        frames,
        synth,
        encode,
        share_of_real_time: (synth.median_ms + encode.median_ms) / frame_ms,
        kbit_per_s: bytes as f64 * 8.0 / f64::from(seconds) / 1000.0,
    })
}
