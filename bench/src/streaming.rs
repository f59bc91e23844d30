//! Streaming benchmark: click-to-photon at 1280x720@60 for the native
//! player over QUIC (frame streams and datagrams) and WebRTC, and for
//! headless Chromium (from the browser run), on loopback and through the
//! constrained network (tc tbf 5 Mbit/s, relay 50 ms RTT ±5 ms, 1% loss);
//! and how many 1280x720@30 sessions one host sustains.
//!
//! Everything runs the real `gridplay` binary: `gridplay up` (broker and
//! host in one process) and `gridplay play --headless`, whose JSON summary
//! carries the figures. Click-to-photon for the native player runs from the
//! input event to the decoded picture that first shows it; in Chromium, to
//! the presentation of that frame (`requestVideoFrameCallback`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Goals for the browser on loopback.
const GOAL_BROWSER_P50_MS: f64 = 20.0;
const GOAL_BROWSER_P99_MS: f64 = 35.0;

/// A session sustains its rate when it receives at least this share of it.
const SUSTAINED_SHARE: f64 = 0.95;

/// Where a whole-system benchmark finds Gridplay and puts its results.
#[derive(clap::Args)]
pub(crate) struct System {
    /// Directory the JSON results go to.
    #[arg(long, default_value = "bench/results")]
    pub(crate) out: PathBuf,
    /// The `gridplay` binary (a release build).
    #[arg(long, default_value = "target/release/gridplay")]
    pub(crate) gridplay: PathBuf,
    /// The built web client `gridplay up` serves.
    #[arg(long, default_value = "client-web/dist")]
    pub(crate) web_dir: PathBuf,
}

/// `gridplay-bench streaming` flags.
#[derive(clap::Args)]
pub struct StreamingArgs {
    #[command(flatten)]
    system: System,
    /// Seconds each click-to-photon run plays.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds each step of the sessions-per-host sweep plays.
    #[arg(long, default_value_t = 10)]
    capacity_seconds: u64,
    /// Most concurrent 720p30 sessions tried.
    #[arg(long, default_value_t = 16)]
    max_sessions: u32,
    /// JSON line of the browser run (`npm run bench` in client-web), for Chromium's figures.
    #[arg(long)]
    browser: Option<PathBuf>,
    /// Skip the constrained-network runs (they need root for network namespaces).
    #[arg(long)]
    no_netns: bool,
}

/// `gridplay up` on free loopback ports, stopped when dropped.
pub(crate) struct Network {
    pub(crate) child: Child,
    pub(crate) broker: String,
}

impl Network {
    fn start(args: &StreamingArgs, slots: u32) -> anyhow::Result<Self> {
        Self::start_with(&args.system.gridplay, &args.system.web_dir, slots, &[])
    }

    /// `gridplay up` with `slots` game slots and `extra` flags.
    pub(crate) fn start_with(
        gridplay: &Path,
        web_dir: &Path,
        slots: u32,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let (port, host_port) = (free_port()?, free_port()?);
        let child = Command::new(gridplay)
            .args(["up", "--port", &port.to_string(), "--host-port", &host_port.to_string()])
            .args(["--slots", &slots.to_string(), "--web-dir"])
            .arg(web_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", gridplay.display()))?;
        let network = Self { child, broker: format!("http://127.0.0.1:{port}") };
        network.wait_for_host()?;
        Ok(network)
    }

    /// Waits until the host has registered (the broker lists it).
    fn wait_for_host(&self) -> anyhow::Result<()> {
        let url = format!("{}/v1/candidates?lat=0&lon=0&profile=game", self.broker);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let listed = runtime.block_on(async {
                let body = reqwest::get(&url).await.ok()?.text().await.ok()?;
                Some(body.contains("ping_url"))
            });
            if listed == Some(true) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the host never registered with {}", self.broker)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `gridplay play --headless` against `broker` with `extra` flags.
pub(crate) fn spawn_player(gridplay: &Path, broker: &str, extra: &[&str]) -> anyhow::Result<Child> {
    Ok(Command::new(gridplay)
        .args(["play", "--headless", "--broker", broker])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

/// Waits for a player and parses the summary it printed.
pub(crate) fn summary(child: Child) -> anyhow::Result<Value> {
    let output = child.wait_with_output()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!("gridplay play failed ({}): {}", output.status, stderr.lines().last().unwrap_or(""));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let last = text.lines().last().context("gridplay play printed nothing")?;
    Ok(serde_json::from_str(last)?)
}

/// The figures of one click-to-photon run.
fn c2p(summary: &Value) -> Value {
    json!({
        "p50_ms": summary["click_to_photon_ms_p50"],
        "p99_ms": summary["click_to_photon_ms_p99"],
        "samples": summary["click_to_photon_samples"],
        "mean_fps": summary["mean_fps"],
        "longest_freeze_ms": summary["longest_freeze_ms"],
    })
}

fn print_c2p(label: &str, figures: &Value) {
    let f = |key: &str| figures[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "  {label:<22} click-to-photon p50 {:6.1} ms  p99 {:6.1} ms  ({} samples, {:.1} fps, longest freeze {:.0} ms)",
        f("p50_ms"),
        f("p99_ms"),
        figures["samples"],
        f("mean_fps"),
        f("longest_freeze_ms")
    );
}

const TRANSPORTS: [(&str, &[&str]); 3] = [
    ("quic_streams", &["--transport", "quic", "--video", "streams"]),
    ("quic_datagrams", &["--transport", "quic", "--video", "datagrams"]),
    ("webrtc_native", &["--transport", "webrtc"]),
];

/// Click-to-photon on loopback for each native transport, one session at a time.
fn loopback(args: &StreamingArgs) -> anyhow::Result<Value> {
    // A slot to spare: the last session's slot frees as its host reports the end.
    let network = Network::start(args, 2)?;
    let seconds = args.seconds.to_string();
    let mut out = serde_json::Map::new();
    for (name, flags) in TRANSPORTS {
        let mut extra = vec!["--stream", "1280x720@60", "--seconds", &seconds];
        extra.extend_from_slice(&["--input-every-ms", "100"]);
        extra.extend_from_slice(flags);
        let figures = c2p(&summary(spawn_player(&args.system.gridplay, &network.broker, &extra)?)?);
        print_c2p(name, &figures);
        out.insert(name.into(), figures);
    }
    Ok(Value::Object(out))
}

/// The same through the constrained network (needs root).
fn impaired(args: &StreamingArgs) -> anyhow::Result<Value> {
    let script = Path::new("tests/netns/constrained_network.sh");
    let mut out = serde_json::Map::new();
    let mut players = vec![("quic_streams", "quic"), ("quic_datagrams", "quic-datagrams")];
    players.push(("webrtc_native", "webrtc"));
    if Path::new("client-web/build/e2e/netplay.js").exists() {
        players.push(("chromium", "chromium"));
    }
    for (name, player) in players {
        let summary_path = std::env::temp_dir().join(format!("gridplay-netns-{name}.json"));
        let status = Command::new(script)
            .arg(&args.system.gridplay)
            .arg(args.seconds.to_string())
            .arg(player)
            .env("SUMMARY_OUT", &summary_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            println!("  {name:<22} FAILED ({status}); see `{} ... {player}`", script.display());
            out.insert(name.into(), Value::Null);
            continue;
        }
        let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary_path)?)?;
        let figures = c2p(&summary);
        print_c2p(name, &figures);
        out.insert(name.into(), figures);
    }
    Ok(Value::Object(out))
}

/// How many concurrent 1280x720@30 QUIC sessions one host keeps at rate.
fn sessions_per_host(args: &StreamingArgs) -> anyhow::Result<Value> {
    let network = Network::start(args, args.max_sessions)?;
    sustained_sessions(
        &args.system.gridplay,
        &network,
        "orbit",
        args.max_sessions,
        args.capacity_seconds,
    )
}

/// How many concurrent 1280x720@30 QUIC sessions of `app` the host of
/// `network` keeps at rate, trying up to `max` for `seconds` each.
pub(crate) fn sustained_sessions(
    gridplay: &Path,
    network: &Network,
    app: &str,
    max: u32,
    seconds: u64,
) -> anyhow::Result<Value> {
    let seconds = seconds.to_string();
    let flags = ["--stream", "1280x720@30", "--seconds", &seconds, "--no-decode", "--app", app];
    let mut steps = Vec::new();
    let mut sustained = 0;
    for n in 1..=max {
        let players: Vec<Child> = (0..n)
            .map(|_| spawn_player(gridplay, &network.broker, &flags))
            .collect::<anyhow::Result<_>>()?;
        let fps: Vec<f64> = players
            .into_iter()
            .map(|p| summary(p).map(|s| s["mean_fps"].as_f64().unwrap_or(0.0)))
            .collect::<anyhow::Result<_>>()?;
        let min = fps.iter().copied().fold(f64::INFINITY, f64::min);
        let mean = fps.iter().sum::<f64>() / fps.len() as f64;
        println!("  {n:>2} sessions: slowest {min:5.1} fps, mean {mean:5.1} fps");
        steps.push(json!({ "sessions": n, "min_fps": min, "mean_fps": mean }));
        if min < 30.0 * SUSTAINED_SHARE {
            break;
        }
        sustained = n;
    }
    println!(
        "  sustained: {sustained} sessions of 1280x720@30 (each ≥ {:.1} fps)",
        30.0 * SUSTAINED_SHARE
    );
    Ok(json!({ "sustained": sustained, "threshold_fps": 30.0 * SUSTAINED_SHARE, "steps": steps }))
}

/// Runs the benchmark and writes `streaming.json`.
pub fn run(args: StreamingArgs) -> anyhow::Result<()> {
    println!("click-to-photon, 1280x720@60 on loopback (native player: input to decoded picture):");
    let loopback = loopback(&args)?;
    let browser: Value = match &args.browser {
        Some(path) => serde_json::from_str(std::fs::read_to_string(path)?.trim())?,
        None => Value::Null,
    };
    let chromium = &browser["click_to_photon_ms"];
    if let (Some(p50), Some(p99)) = (chromium["p50"].as_f64(), chromium["p99"].as_f64()) {
        let verdict = if p50 <= GOAL_BROWSER_P50_MS && p99 <= GOAL_BROWSER_P99_MS {
            "meets goal"
        } else {
            "MISSES goal"
        };
        println!(
            "  {:<22} click-to-photon p50 {p50:6.1} ms  p99 {p99:6.1} ms  vs goal p50 ≤ {GOAL_BROWSER_P50_MS}, p99 ≤ {GOAL_BROWSER_P99_MS}: {verdict}",
            "chromium"
        );
    }
    let ratio = |a: &str, b: &str| {
        let p50 = |name: &str| loopback[name]["p50_ms"].as_f64().unwrap_or(f64::NAN);
        p50(a) / p50(b)
    };
    println!(
        "  QUIC frame streams vs native WebRTC, p50: {:.2}x",
        ratio("quic_streams", "webrtc_native")
    );
    let impaired = if args.no_netns {
        Value::Null
    } else {
        println!(
            "click-to-photon through tbf 5 Mbit/s + relay (50 ms RTT ±5 ms, 1% loss), 1280x720@60:"
        );
        impaired(&args)?
    };
    println!("sessions per host, 1280x720@30 over QUIC (players count frames, no decoding):");
    let capacity = sessions_per_host(&args)?;
    let report = json!({
        "loopback_720p60": { "chromium": chromium, "native": loopback },
        "constrained_720p60": impaired,
        "sessions_720p30": capacity,
        "goals": { "browser_loopback_p50_ms": GOAL_BROWSER_P50_MS, "browser_loopback_p99_ms": GOAL_BROWSER_P99_MS },
        "machine": "2 cores shared by host, players and browser; lavapipe renders on the CPU",
    });
    std::fs::create_dir_all(&args.system.out)?;
    let path = args.system.out.join("streaming.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("wrote {}", path.display());
    Ok(())
}
