//! `gridplay-bench`: whole-system benchmarks, each printing its figures
//! next to their goals and writing JSON under `bench/results/`:
//! - `pipeline`: the streaming pipeline by stage and one live session
//!   (`pipeline.json`);
//! - `broker`: the session broker's allocation rate and latency on the memory
//!   store and on Redis, the Redis EVALSHA ceiling, and its memory (`broker.json`);
//! - `streaming`: click-to-photon per transport on loopback and through a
//!   constrained network, and 720p30 sessions per host (`streaming.json`);
//! - `chain`: settlement gas per session-hour on anvil at 1 to 10,000 sessions
//!   per epoch, against one transaction per five signed reports (`chain.json`);
//! - `apps`: capture cost, host CPU per app session, Play to first frame per
//!   app, vkcube sessions per host (`apps.json`);
//! - `sound`: synthesis and Opus encode per frame at each frame length, against
//!   the frame's duration, and the browser run's sound latency, A/V offset and
//!   drift against their goals (`audio.json`);
//! - `report`: every figure above against its goal, with plots (`REPORT.md`).

mod apps;
mod broker;
mod chain;
mod pipeline;
mod report;
mod session;
mod sound;
mod stats;
mod streaming;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

/// Goals the figures are compared with.
const GOAL_PIPELINE_720P_MS: f64 = 8.0;
const GOAL_CLICK_TO_FIRST_FRAME_MS: f64 = 500.0;
const GOAL_HOST_RSS_MB: f64 = 250.0;

#[derive(Parser)]
#[command(about = "Gridplay whole-system benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Streaming pipeline by stage, one live session, browser figures.
    Pipeline(PipelineArgs),
    /// Session broker allocations on the memory store and Redis, EVALSHA ceiling, memory.
    Broker(broker::BrokerArgs),
    /// Settlement gas per session-hour on anvil, against per-report transactions.
    Chain(chain::ChainArgs),
    /// Click-to-photon per transport (loopback and constrained), sessions per host.
    Streaming(streaming::StreamingArgs),
    /// App sessions: capture cost, CPU per session, Play to first frame, vkcube sessions per host.
    Apps(apps::AppsArgs),
    /// Sound: synthesis and Opus encode per frame, against the frame's duration; with
    /// the browser run, its latency, A/V offset and drift against their goals.
    Sound(sound::SoundArgs),
    /// REPORT.md from the results: every figure against its goal, with plots.
    Report(report::ReportArgs),
}

#[derive(clap::Args)]
struct PipelineArgs {
    /// Directory the JSON results go to.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Frames measured per resolution.
    #[arg(long, default_value_t = 300)]
    frames: usize,
    /// Seconds the live session is measured.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// JSON line written by the browser benchmark (`npm run bench` in client-web).
    #[arg(long)]
    browser: Option<PathBuf>,
}

fn verdict(value: f64, goal: f64) -> &'static str {
    if value <= goal { "meets goal" } else { "MISSES goal" }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Pipeline(args) => pipeline_bench(args),
        Command::Broker(args) => broker::run(args),
        Command::Streaming(args) => streaming::run(args),
        Command::Chain(args) => chain::run(args),
        Command::Apps(args) => apps::run(args),
        Command::Sound(args) => sound::run(args),
        Command::Report(args) => report::run(args),
    }
}

fn pipeline_bench(args: PipelineArgs) -> anyhow::Result<()> {
    let threads = std::env::var("LP_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!("pipeline stages (lavapipe threads: {threads}), median / p99 ms:");
    let mut stages = Vec::new();
    for (w, h) in [(1280, 720), (1920, 1080)] {
        let r = pipeline::measure(w, h, args.frames)?;
        println!(
            "  {:>9}  render {:5.2}/{:5.2}  readback {:5.2}/{:5.2}  convert {:5.2}/{:5.2}  encode {:5.2}/{:5.2}  total {:5.2}/{:5.2}",
            r.resolution,
            r.render.median_ms,
            r.render.p99_ms,
            r.readback.median_ms,
            r.readback.p99_ms,
            r.convert.median_ms,
            r.convert.p99_ms,
            r.encode.median_ms,
            r.encode.p99_ms,
            r.total.median_ms,
            r.total.p99_ms
        );
        stages.push(r);
    }
    let total_720 = stages[0].total.median_ms;
    println!(
        "  720p whole pipeline median {total_720:.2} ms vs goal {GOAL_PIPELINE_720P_MS} ms: {}",
        verdict(total_720, GOAL_PIPELINE_720P_MS)
    );

    let runtime = tokio::runtime::Runtime::new()?;
    let live = runtime.block_on(session::measure(args.seconds))?;
    println!(
        "one session {}: {:.1} fps received, {:.1} fps decoded, {:.2} Mbit/s, longest gap {:.1} ms",
        live.stream, live.received_fps, live.decoded_fps, live.mbit_per_s, live.max_gap_ms
    );

    let browser: Value = match &args.browser {
        Some(path) => serde_json::from_str(std::fs::read_to_string(path)?.trim())?,
        None => Value::Null,
    };
    if let Some(ms) = browser["click_to_first_frame_ms"]["median"].as_f64() {
        let p99 = browser["click_to_first_frame_ms"]["p99"].as_f64().unwrap_or(ms);
        println!(
            "click-to-first-frame (Chromium) median {ms:.0} ms, p99 {p99:.0} ms vs goal {GOAL_CLICK_TO_FIRST_FRAME_MS} ms: {}",
            verdict(ms, GOAL_CLICK_TO_FIRST_FRAME_MS)
        );
    }
    if let Some(mb) = browser["host_rss_mb_one_session"].as_f64() {
        println!(
            "host resident memory, one session: {mb:.0} MB vs goal {GOAL_HOST_RSS_MB} MB: {}",
            verdict(mb, GOAL_HOST_RSS_MB)
        );
    }

    let report = json!({
        "lavapipe_threads": threads,
        "stages": stages,
        "session": live,
        "browser": browser,
        "goals": {
            "pipeline_720p_ms": GOAL_PIPELINE_720P_MS,
            "click_to_first_frame_ms": GOAL_CLICK_TO_FIRST_FRAME_MS,
            "host_rss_mb": GOAL_HOST_RSS_MB,
        },
    });
    std::fs::create_dir_all(&args.out)?;
    let path = args.out.join("pipeline.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("wrote {}", path.display());
    Ok(())
}
