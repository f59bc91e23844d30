//! App sessions benchmark: what capturing an app's display costs per frame
//! at 1280x720 and 1920x1080 (MIT-SHM plus the cursor when it changed, a
//! DAMAGE check when it did not; against the frame budget at 60 fps), the
//! host CPU one session takes for an idle terminal
//! and for vkcube, Play to first frame per app in Chromium (from the browser
//! run, against Orbit in the same run), and how many vkcube 1280x720@30
//! sessions one host sustains.
//!
//! It runs the real parts: Xvfb, bubblewrap and the example catalogue's apps
//! from Debian, `gridplay up --apps` and `gridplay play --headless`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use gridplay_host::catalogue::{Catalogue, SANDBOX_PATH, find_program};
use gridplay_host::workloads::app::cgroup::Limits;
use gridplay_host::workloads::app::session_name;
use gridplay_host::workloads::{Launch, Picture};
use gridplay_protocol::input::{InputEvent, InputKind};
use serde_json::{Value, json};

use crate::stats::Summary;
use crate::streaming::{Network, System, spawn_player, summary, sustained_sessions};

/// `gridplay-bench apps` flags.
#[derive(clap::Args)]
pub struct AppsArgs {
    #[command(flatten)]
    system: System,
    /// The catalogue the host offers.
    #[arg(long, default_value = "apps/catalogue.toml")]
    catalogue: PathBuf,
    /// Frames captured per resolution.
    #[arg(long, default_value_t = 300)]
    frames: usize,
    /// Seconds each CPU measurement and each step of the sessions sweep plays.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Most concurrent vkcube sessions tried.
    #[arg(long, default_value_t = 8)]
    max_sessions: u32,
    /// JSON line of the browser run (`npm run bench:apps` in client-web): Play to first frame per app.
    #[arg(long)]
    browser: Option<PathBuf>,
}

/// The app whose capture is measured: a terminal, which stays as it is unless moved.
const TERMINAL: &str = r#"
[[app]]
id = "terminal"
name = "Terminal"
command = ["xterm"]
profile = "game"
"#;

/// Capture cost per frame at one size, from `frames` frames of a still terminal on its
/// own display: with the pointer moved before each frame (`moving`) every frame is
/// captured (MIT-SHM, the cursor drawn in); without, DAMAGE says nothing changed and
/// nothing is captured.
fn capture_cost(moving: bool, size: (u32, u32), frames: usize) -> anyhow::Result<Summary> {
    let which = |name: &str| find_program(name, SANDBOX_PATH);
    let catalogue = Catalogue::parse(Path::new("bench"), TERMINAL, &which)?;
    let entry = catalogue.get("terminal").context("the terminal entry")?;
    let launch = Launch::App { entry, limits: Limits::default(), name: session_name() };
    let mut workload = launch.start(size.0, size.1)?;
    // Let the terminal start and draw its window first.
    std::thread::sleep(Duration::from_millis(500));
    let mut samples = Vec::with_capacity(frames);
    for seq in 0..frames as u32 {
        if moving {
            let x = (seq * 7_919 % 65_536) as u16;
            let kind = InputKind::PointerMove { x, y: x / 2, dx: 0, dy: 0 };
            workload.apply(&InputEvent { seq, kind })?;
        }
        let started = Instant::now();
        let captured = !matches!(workload.frame(Duration::ZERO)?, Picture::Unchanged);
        let elapsed = started.elapsed();
        // Xterm redraws now and then even when still (its first frames, a focus change).
        if captured == moving {
            samples.push(elapsed);
        }
    }
    anyhow::ensure!(
        samples.len() * 2 > frames,
        "only {} of {frames} frames as expected",
        samples.len()
    );
    Ok(Summary::of(&samples))
}

/// Waits (up to half a minute) until no session of the host under `root` is left: no
/// `gridplay worker` runs in its tree.
fn wait_for_no_sessions(root: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let worker = |pid: &u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|&b| b == 0).nth(1) == Some(b"worker"))
    };
    while tree_cpu(root).keys().any(worker) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU time (seconds) so far of process `root` and each of its descendants, by pid.
fn tree_cpu(root: u32) -> HashMap<u32, f64> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return HashMap::new() };
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut cpu: HashMap<u32, f64> = HashMap::new();
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        // After the name: state, ppid, … utime is the 12th, stime the 13th (0-based 11, 12).
        parent.insert(pid, field(1) as u32);
        cpu.insert(pid, (field(11) + field(12)) / 100.0);
    }
    let in_tree = |mut pid: u32| {
        while pid > 1 {
            if pid == root {
                return true;
            }
            pid = parent.get(&pid).copied().unwrap_or(0);
        }
        false
    };
    cpu.iter().filter(|(pid, _)| in_tree(**pid)).map(|(pid, s)| (*pid, *s)).collect()
}

/// Cores the tree of `root` used from `since` (a [`tree_cpu`] reading taken
/// at `at`) to now: what each process running now used since then (all of
/// it for the ones started meanwhile); processes that ended meanwhile are
/// not counted, so that a session winding down never makes the figure negative.
fn cores_since(root: u32, since: &HashMap<u32, f64>, at: Instant) -> f64 {
    let now = tree_cpu(root);
    let used: f64 = now.iter().map(|(pid, s)| s - since.get(pid).copied().unwrap_or(0.0)).sum();
    used / at.elapsed().as_secs_f64()
}

/// Cores the host (broker, host, worker, display and app) uses over `seconds` of `app` at
/// 1280x720@30, beyond idle, for a player who watches (no scripted input).
fn cpu_per_session(args: &AppsArgs, network: &Network, app: &str) -> anyhow::Result<f64> {
    let root = network.child.id();
    // The idle host: the last session's worker gone.
    wait_for_no_sessions(root);
    let (at, since) = (Instant::now(), tree_cpu(root));
    std::thread::sleep(Duration::from_secs(2));
    let idle = cores_since(root, &since, at);
    let seconds = (args.seconds + 4).to_string();
    let watching = (1000 * (args.seconds + 5)).to_string();
    let flags = [
        ["--stream", "1280x720@30"],
        ["--seconds", &seconds],
        ["--input-every-ms", &watching],
        ["--app", app],
    ];
    let flags: Vec<&str> = flags.iter().flatten().copied().chain(["--no-decode"]).collect();
    let player = spawn_player(&args.system.gridplay, &network.broker, &flags)?;
    // Measure the middle of the session: past its start, before its end.
    std::thread::sleep(Duration::from_secs(2));
    let (at, since) = (Instant::now(), tree_cpu(root));
    std::thread::sleep(Duration::from_secs(args.seconds));
    let busy = cores_since(root, &since, at);
    summary(player)?;
    Ok((busy - idle).max(0.0))
}

/// Runs the benchmark and writes `apps.json`.
pub fn run(args: AppsArgs) -> anyhow::Result<()> {
    println!("capture cost per frame of a terminal, median / p99 ms: changed (the pointer moved:");
    println!("MIT-SHM + cursor), unchanged (DAMAGE says so, nothing captured):");
    let mut capture = serde_json::Map::new();
    for (width, height) in [(1280, 720), (1920, 1080)] {
        let changed = capture_cost(true, (width, height), args.frames)?;
        let unchanged = capture_cost(false, (width, height), args.frames)?;
        let budget = 1000.0 / 60.0;
        for (what, cost) in [("changed", &changed), ("unchanged", &unchanged)] {
            println!(
                "  {width}x{height} {what:<9}: {:6.2} / {:6.2}  ({:.1}% of a 60 fps frame)",
                cost.median_ms,
                cost.p99_ms,
                100.0 * cost.median_ms / budget
            );
        }
        capture.insert(
            format!("{width}x{height}"),
            json!({ "changed": changed, "unchanged": unchanged }),
        );
    }
    let catalogue = args.catalogue.to_string_lossy().into_owned();
    // Room for the sessions of one step while the last step's still wind down.
    let slots = 2 * args.max_sessions;
    let network = Network::start_with(
        &args.system.gridplay,
        &args.system.web_dir,
        slots,
        &["--apps", &catalogue],
    )?;
    println!("host CPU per session at 1280x720@30 (cores, beyond an idle host):");
    let mut cpu = serde_json::Map::new();
    for app in ["terminal", "vkcube", "orbit"] {
        let cores = cpu_per_session(&args, &network, app)?;
        println!("  {app:<10} {cores:5.2}");
        cpu.insert(app.into(), json!(cores));
    }
    let ratio = |a: &str, b: &str| cpu[a].as_f64().unwrap_or(0.0) / cpu[b].as_f64().unwrap_or(1.0);
    println!("  an idle terminal costs {:.2}x what vkcube does", ratio("terminal", "vkcube"));
    let browser: Value = match &args.browser {
        Some(path) => serde_json::from_str(std::fs::read_to_string(path)?.trim())?,
        None => Value::Null,
    };
    if let Some(apps) = browser["play_to_first_frame_ms"].as_object() {
        println!("Play to first frame in Chromium, median ms (goal for apps ≤ 1000):");
        for (app, figures) in apps {
            println!("  {app:<10} {:7.1}", figures["median"].as_f64().unwrap_or(f64::NAN));
        }
    }
    println!(
        "vkcube sessions per host, 1280x720@30 over QUIC (players count frames, no decoding):"
    );
    let vkcube = sustained_sessions(
        &args.system.gridplay,
        &network,
        "vkcube",
        args.max_sessions,
        args.seconds,
    )?;
    let report = json!({
        "capture_ms": capture,
        "cpu_cores_per_session_720p30": cpu,
        "play_to_first_frame_ms": browser["play_to_first_frame_ms"],
        "vkcube_sessions_720p30": vkcube,
        "goals": { "play_to_first_frame_ms": 1000.0 },
        "machine": "2 cores shared by host, players and browser; lavapipe and llvmpipe render on the CPU",
    });
    std::fs::create_dir_all(&args.system.out)?;
    let path = args.system.out.join("apps.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("wrote {}", path.display());
    Ok(())
}
