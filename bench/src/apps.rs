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

/// The apps whose capture is measured: a terminal that scrolls without end (its
/// screen changes) and an idle one (its screen stays as it is).
const TERMINALS: &str = r#"
[[app]]
id = "scrolling"
name = "Scrolling terminal"
command = ["xterm", "-e", "yes"]
profile = "game"

[[app]]
id = "idle"
name = "Idle terminal"
command = ["xterm"]
profile = "game"
"#;

/// Capture cost per frame at one size, of the frames `app` changed (`changed` true) or
/// left as they were, from `frames` frames of it on its own display.
fn capture_cost(
    app: &str,
    changed: bool,
    size: (u32, u32),
    frames: usize,
) -> anyhow::Result<Summary> {
    let which = |name: &str| find_program(name, SANDBOX_PATH);
    let catalogue = Catalogue::parse(Path::new("bench"), TERMINALS, &which)?;
    let entry = catalogue.get(app).context("the terminal entry")?;
    let launch = Launch::App { entry, limits: Limits::default(), name: session_name() };
    let mut workload = launch.start(size.0, size.1)?;
    let mut samples = Vec::with_capacity(frames);
    // Let the terminal start and draw its window first.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..frames {
        let started = Instant::now();
        let picture = workload.frame(Duration::ZERO)?;
        if matches!(picture, Picture::Unchanged) != changed {
            samples.push(started.elapsed());
        }
    }
    anyhow::ensure!(
        !samples.is_empty(),
        "no {} frame of {app} in {frames}",
        if changed { "changed" } else { "unchanged" }
    );
    Ok(Summary::of(&samples))
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

/// Cores the host (broker, host, worker, display and app) uses over `seconds` of `app` at 1280x720@30, beyond idle.
fn cpu_per_session(args: &AppsArgs, network: &Network, app: &str) -> anyhow::Result<f64> {
    let root = network.child.id();
    let (at, since) = (Instant::now(), tree_cpu(root));
    std::thread::sleep(Duration::from_secs(2));
    let idle = cores_since(root, &since, at);
    let seconds = (args.seconds + 4).to_string();
    let flags = ["--stream", "1280x720@30", "--seconds", &seconds, "--no-decode", "--app", app];
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
    println!(
        "capture cost per frame, median / p99 ms: changed (a scrolling terminal: MIT-SHM + cursor),"
    );
    println!("unchanged (an idle terminal: DAMAGE says so, nothing captured):");
    let mut capture = serde_json::Map::new();
    for (width, height) in [(1280, 720), (1920, 1080)] {
        let changed = capture_cost("scrolling", true, (width, height), args.frames)?;
        let unchanged = capture_cost("idle", false, (width, height), args.frames)?;
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
