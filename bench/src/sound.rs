//! A session's sound: what Orbit's synthesiser and the Opus encoder cost per frame, at
//! each frame length, against the frame's own duration (the real-time budget a sound
//! thread has), and the encoded bitrate; with the browser run's figures (`npm run
//! bench:audio`), how long after capture the sound plays in Chromium and how far it is
//! from the picture, against their goals, over the run (`audio.json`).

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
    /// The browser run's JSON line (`npm run bench:audio`).
    #[arg(long)]
    browser: Option<PathBuf>,
}

/// Most |A/V offset| at p95 the sound may play from the picture (ms).
const AV_OFFSET_GOAL_MS: f64 = 20.0;
/// Most the offset may move from the run's first minute to its last (ms).
const DRIFT_GOAL_MS: f64 = 5.0;

/// What the browser run measured (see `client-web/e2e/audio-bench.ts`).
#[derive(Debug, serde::Deserialize, Serialize)]
struct BrowserSound {
    duration_s: u64,
    av_offset_ms: Offsets,
    sound_capture_to_playout_ms: serde_json::Value,
}

/// The A/V offsets sampled once a second.
#[derive(Debug, serde::Deserialize, Serialize)]
struct Offsets {
    p50: f64,
    p95: f64,
    abs_p95: f64,
    first_minute_median: f64,
    last_minute_median: f64,
    samples: usize,
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
    // A session's sound thread at the default 10 ms frames, in cores.
    let cores = costs.iter().find(|c| c.frame_ms == 10).map(|c| c.share_of_real_time);
    let browser = match &args.browser {
        Some(path) => Some(browser_figures(path)?),
        None => None,
    };
    std::fs::create_dir_all(&args.out)?;
    let json = serde_json::json!({
        "frames": costs,
        "cpu_cores_per_session": cores,
        "av_offset_drift_ms": browser
            .as_ref()
            .map(|b| b.av_offset_ms.last_minute_median - b.av_offset_ms.first_minute_median),
        "browser": browser,
        "goals": {
            "frame_work": "each frame's work well under its duration",
            "av_offset_abs_p95_ms": AV_OFFSET_GOAL_MS,
            "drift_ms": DRIFT_GOAL_MS,
        },
    });
    std::fs::write(args.out.join("audio.json"), serde_json::to_string_pretty(&json)? + "\n")?;
    Ok(())
}

/// Reads and prints the browser run's figures against their goals.
fn browser_figures(path: &std::path::Path) -> anyhow::Result<BrowserSound> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let figures: BrowserSound = serde_json::from_str(text.trim())
        .map_err(|e| anyhow::anyhow!("{}: not the browser run's JSON: {e}", path.display()))?;
    let offsets = &figures.av_offset_ms;
    let drift = offsets.last_minute_median - offsets.first_minute_median;
    println!(
        "A/V offset in Chromium over {} s: p50 {:.0} ms, |offset| p95 {:.0} ms (goal {AV_OFFSET_GOAL_MS:.0}: {:.1}x it); drift {drift:+.0} ms from the first minute to the last (goal within {DRIFT_GOAL_MS:.0})",
        figures.duration_s,
        offsets.p50,
        offsets.abs_p95,
        offsets.abs_p95 / AV_OFFSET_GOAL_MS,
    );
    println!("sound capture to playout: {}", figures.sound_capture_to_playout_ms);
    Ok(figures)
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
