//! `report`: reads what the other runs wrote under `bench/results/` and writes
//! `REPORT.md` there: every figure that has a goal, against it, and plots (SVG)
//! of the sessions-per-host curve, the broker's allocation rate against the
//! rate offered, click-to-photon percentiles per transport and network, and
//! settlement gas against sessions per epoch. A run not made yet is named as
//! missing, not guessed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::prelude::*;
use serde_json::Value;

/// 1280x720@30 sessions one 2-core host should hold: twice the 4 it held when the goal was set.
const GOAL_SESSIONS_720P30: f64 = 8.0;
/// Play to first frame in Chromium on loopback, with settlement, ms.
const GOAL_PLAY_TO_FIRST_FRAME_MS: f64 = 250.0;
/// A/V offset at p95, and its drift over a run, ms.
const GOAL_AV_OFFSET_MS: f64 = 20.0;
const GOAL_AV_DRIFT_MS: f64 = 5.0;

/// `report` flags.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// Directory holding the runs' JSON, where the report and its plots are written.
    #[arg(long, default_value = "bench/results")]
    results: PathBuf,
}

/// One figure against its goal.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    figure: String,
    value: f64,
    goal: f64,
    higher_is_better: bool,
    /// Which results file it comes from.
    source: &'static str,
}

impl Row {
    fn met(&self) -> bool {
        match self.higher_is_better {
            true => self.value >= self.goal,
            false => self.value <= self.goal,
        }
    }
}

/// The results of every run that has been made, by file stem.
struct Results {
    dir: PathBuf,
    missing: Vec<&'static str>,
}

impl Results {
    fn read(&mut self, stem: &'static str) -> anyhow::Result<Option<Value>> {
        let path = self.dir.join(format!("{stem}.json"));
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.missing.push(stem);
                Ok(None)
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// A number at `pointer` in `value`.
fn at(value: &Value, pointer: &str) -> Option<f64> {
    value.pointer(pointer).and_then(Value::as_f64)
}

/// The figures of every run that has goals.
fn rows(
    streaming: Option<&Value>,
    browser: Option<&Value>,
    broker: Option<&Value>,
    chain: Option<&Value>,
    audio: Option<&Value>,
    apps: Option<&Value>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut push = |figure: &str, value: Option<f64>, goal: f64, higher: bool, source| {
        if let Some(value) = value {
            rows.push(Row { figure: figure.into(), value, goal, higher_is_better: higher, source });
        }
    };
    if let Some(s) = streaming {
        let goal = |name| at(s, &format!("/goals/{name}"));
        if let Some(g) = goal("browser_loopback_p50_ms") {
            push(
                "click-to-photon p50, Chromium, loopback, ms",
                at(s, "/loopback_720p60/chromium/p50"),
                g,
                false,
                "streaming",
            );
        }
        if let Some(g) = goal("browser_loopback_p99_ms") {
            push(
                "click-to-photon p99, Chromium, loopback, ms",
                at(s, "/loopback_720p60/chromium/p99"),
                g,
                false,
                "streaming",
            );
        }
        let threshold = at(s, "/sessions_720p30/threshold_fps").unwrap_or(29.0);
        push(
            &format!("1280x720@30 sessions per host at ≥ {threshold} fps each"),
            at(s, "/sessions_720p30/sustained"),
            GOAL_SESSIONS_720P30,
            true,
            "streaming",
        );
    }
    if let Some(b) = browser {
        push(
            "Play to first frame, Chromium, loopback, median ms",
            at(b, "/click_to_first_frame_ms/median"),
            GOAL_PLAY_TO_FIRST_FRAME_MS,
            false,
            "browser",
        );
        push(
            "host memory with one session, MB",
            at(b, "/host_rss_mb_one_session"),
            250.0,
            false,
            "browser",
        );
    }
    for verdict in broker.and_then(|b| b["verdicts"].as_array()).into_iter().flatten() {
        push(
            verdict["figure"].as_str().unwrap_or("broker figure"),
            verdict["value"].as_f64(),
            verdict["target"].as_f64().unwrap_or(f64::NAN),
            verdict["higher_is_better"].as_bool().unwrap_or(true),
            "broker",
        );
    }
    if let Some(c) = chain {
        let sessions = at(c, "/goal/sessions_per_epoch").unwrap_or(f64::NAN);
        push(
            &format!("settlement gas per session-hour at {sessions} sessions per epoch"),
            at(c, "/goal/measured"),
            at(c, "/goal/gas_per_session_hour").unwrap_or(f64::NAN),
            false,
            "chain",
        );
    }
    if let Some(a) = audio {
        push(
            "A/V offset p95 (either way), Chromium, ms",
            at(a, "/browser/av_offset_ms/abs_p95"),
            GOAL_AV_OFFSET_MS,
            false,
            "audio",
        );
        push(
            "A/V offset drift over the run, ms",
            at(a, "/av_offset_drift_ms").map(f64::abs),
            GOAL_AV_DRIFT_MS,
            false,
            "audio",
        );
    }
    if let Some(a) = apps {
        let goal = at(a, "/goals/play_to_first_frame_ms").unwrap_or(1000.0);
        for (app, figures) in a["play_to_first_frame_ms"].as_object().into_iter().flatten() {
            push(
                &format!("Play to first frame, {app}, median ms"),
                at(figures, "/median"),
                goal,
                false,
                "apps",
            );
        }
    }
    rows
}

/// The goals table, in Markdown.
fn table(rows: &[Row]) -> String {
    let mut text = String::from("| figure | measured | goal | |\n| --- | ---: | ---: | --- |\n");
    for row in rows {
        let sign = if row.higher_is_better { "≥" } else { "≤" };
        let verdict = if row.met() { "met" } else { "**missed**" };
        let _ = writeln!(
            text,
            "| {} ({}.json) | {} | {sign} {} | {verdict} |",
            row.figure,
            row.source,
            number(row.value),
            number(row.goal)
        );
    }
    text
}

/// A figure with as many decimals as it deserves.
fn number(value: f64) -> String {
    match value.abs() {
        v if v >= 100.0 => format!("{value:.0}"),
        v if v >= 10.0 => format!("{value:.1}"),
        _ => format!("{value:.2}"),
    }
}

/// A named series of points.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

/// How a line chart is drawn.
struct Chart<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    /// Log-scaled x (for values spanning decades).
    log_x: bool,
    /// A horizontal line marking a goal, with its name.
    goal: Option<(f64, &'a str)>,
}

const PALETTE: [RGBColor; 6] = [BLUE, RED, GREEN, MAGENTA, CYAN, RGBColor(230, 120, 0)];

/// Draws `series` as lines in an SVG at `path`.
fn line_chart(path: &Path, chart: &Chart, series: &[Series]) -> anyhow::Result<()> {
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0_f64);
    for &(x, y) in points {
        (x0, x1, y1) = (x0.min(x), x1.max(x), y1.max(y));
    }
    if let Some((goal, _)) = chart.goal {
        y1 = y1.max(goal);
    }
    anyhow::ensure!(x0.is_finite() && x1 >= x0, "{}: nothing to plot", chart.title);
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let root = SVGBackend::new(path, (720, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = (chart.title, ("sans-serif", 18));
    let mut builder = ChartBuilder::on(&root);
    builder.caption(caption.0, caption.1).margin(12).x_label_area_size(40).y_label_area_size(60);
    macro_rules! draw {
        ($ctx:expr) => {{
            let mut ctx = $ctx;
            ctx.configure_mesh().x_desc(chart.x_label).y_desc(chart.y_label).draw()?;
            for (i, s) in series.iter().enumerate() {
                let colour = PALETTE[i % PALETTE.len()];
                ctx.draw_series(LineSeries::new(s.points.iter().copied(), colour.stroke_width(2)))?
                    .label(s.name.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
            }
            if let Some((goal, name)) = chart.goal {
                ctx.draw_series(LineSeries::new([(x0, goal), (x1, goal)], BLACK.stroke_width(1)))?
                    .label(name)
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK));
            }
            ctx.configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }};
    }
    let y_range = 0.0..y1 * 1.1;
    if chart.log_x {
        draw!(builder.build_cartesian_2d((x0..x1).log_scale(), y_range)?);
    } else {
        draw!(builder.build_cartesian_2d(x0..x1, y_range)?);
    }
    root.present()?;
    Ok(())
}

/// The 720p30 sessions-per-host curve: the slowest and mean session's fps at each count.
fn sessions_curve(streaming: &Value) -> Vec<Series> {
    let steps = streaming.pointer("/sessions_720p30/steps").and_then(Value::as_array);
    let series = |name: &str, key: &str| Series {
        name: name.into(),
        points: steps
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s["sessions"].as_f64()?, s[key].as_f64()?)))
            .collect(),
    };
    vec![series("slowest session", "min_fps"), series("mean", "mean_fps")]
}

/// The broker's achieved allocation rate against the rate offered, one series per run.
fn broker_rates(broker: &Value) -> Vec<Series> {
    let runs = broker["runs"].as_array().into_iter().flatten();
    runs.map(|run| Series {
        name: format!(
            "{}, {} broker(s), {} hosts",
            run["store"].as_str().unwrap_or("?"),
            run["brokers"],
            run["hosts"]
        ),
        points: run["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["sustained"].as_bool().unwrap_or(false))
            .filter_map(|s| Some((s["offered_per_s"].as_f64()?, s["p99_ms"].as_f64()?)))
            .collect(),
    })
    .filter(|s| !s.points.is_empty())
    .collect()
}

/// Settlement gas per session-hour against sessions per epoch.
fn gas_curve(chain: &Value) -> Vec<Series> {
    let sizes = chain["sizes"].as_array().into_iter().flatten();
    let points = sizes
        .filter_map(|s| Some((s["sessions"].as_f64()?, s["gas_per_session_hour"].as_f64()?)))
        .collect();
    vec![Series { name: "Merkle root per epoch, one claim per host".into(), points }]
}

/// Click-to-photon p50 and p99 per transport, on loopback and through the constrained network.
fn latency_table(streaming: &Value) -> String {
    let mut text = String::from(
        "| network | transport | p50 ms | p99 ms | mean fps | longest freeze ms |\n| --- | --- | ---: | ---: | ---: | ---: |\n",
    );
    let mut row = |network: &str, transport: &str, v: &Value| {
        let cell =
            |keys: &[&str]| keys.iter().find_map(|k| v[*k].as_f64()).map_or("—".into(), number);
        let _ = writeln!(
            text,
            "| {network} | {transport} | {} | {} | {} | {} |",
            cell(&["p50_ms", "p50"]),
            cell(&["p99_ms", "p99"]),
            cell(&["mean_fps"]),
            cell(&["longest_freeze_ms"])
        );
    };
    if let Some(chromium) = streaming.pointer("/loopback_720p60/chromium") {
        row("loopback", "Chromium (WebRTC)", chromium);
    }
    for (name, v) in streaming
        .pointer("/loopback_720p60/native")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        row("loopback", name, v);
    }
    for (name, v) in streaming["constrained_720p60"].as_object().into_iter().flatten() {
        row("5 Mbit/s, 1% loss", name, v);
    }
    text
}

/// Writes `REPORT.md` and its plots from the results in `args.results`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let mut results = Results { dir: args.results.clone(), missing: Vec::new() };
    let streaming = results.read("streaming")?;
    let browser = results.read("browser")?;
    let broker = results.read("broker")?;
    let chain = results.read("chain")?;
    let audio = results.read("audio")?;
    let apps = results.read("apps")?;
    let rows = rows(
        streaming.as_ref(),
        browser.as_ref(),
        broker.as_ref(),
        chain.as_ref(),
        audio.as_ref(),
        apps.as_ref(),
    );
    let mut report = String::from("# Gridplay benchmarks\n\n");
    let _ = writeln!(
        report,
        "Written by `make bench` (`gridplay-bench report`) from the JSON beside this file; each \
         run says what machine it ran on. {} of {} figures meet their goals.\n",
        rows.iter().filter(|r| r.met()).count(),
        rows.len()
    );
    if !results.missing.is_empty() {
        let _ = writeln!(report, "Not measured yet: {}.\n", results.missing.join(", "));
    }
    report.push_str("## Figures against their goals\n\n");
    report.push_str(&table(&rows));
    let dir = &args.results;
    let mut plot =
        |file: &str, heading: &str, chart: Chart, series: Vec<Series>| -> anyhow::Result<()> {
            line_chart(&dir.join(file), &chart, &series)?;
            let _ = writeln!(report, "\n## {heading}\n\n![{}]({file})", chart.title);
            Ok(())
        };
    if let Some(s) = &streaming {
        let threshold = at(s, "/sessions_720p30/threshold_fps").unwrap_or(29.0);
        let chart = Chart {
            title: "1280x720@30 sessions on one host",
            x_label: "sessions at once",
            y_label: "frames per second",
            log_x: false,
            goal: Some((threshold, "the bar each session must hold")),
        };
        plot("report-sessions-per-host.svg", "Sessions per host", chart, sessions_curve(s))?;
    }
    if let Some(b) = &broker {
        let chart = Chart {
            title: "Allocation p99 at each sustained rate",
            x_label: "allocations per second offered",
            y_label: "p99 ms",
            log_x: true,
            goal: Some((10.0, "10 ms")),
        };
        plot("report-broker.svg", "Broker allocations", chart, broker_rates(b))?;
    }
    if let Some(c) = &chain {
        let chart = Chart {
            title: "Settlement gas per session-hour",
            x_label: "sessions per epoch",
            y_label: "gas",
            log_x: true,
            goal: at(c, "/goal/gas_per_session_hour").map(|g| (g, "goal at 1,000 sessions")),
        };
        plot("report-gas.svg", "Settlement cost", chart, gas_curve(c))?;
    }
    if let Some(s) = &streaming {
        report.push_str("\n## Click-to-photon by transport\n\n");
        report.push_str(&latency_table(s));
    }
    let path = dir.join("REPORT.md");
    std::fs::write(&path, report).with_context(|| format!("writing {}", path.display()))?;
    println!("report: {} ({} figures against goals)", path.display(), rows.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn figures_are_judged_in_the_direction_of_their_goal() {
        let streaming = json!({
            "goals": {"browser_loopback_p50_ms": 20.0, "browser_loopback_p99_ms": 35.0},
            "loopback_720p60": {"chromium": {"p50": 19.5, "p99": 40.0}},
            "sessions_720p30": {"sustained": 4, "threshold_fps": 28.5, "steps": []}
        });
        let audio =
            json!({"browser": {"av_offset_ms": {"abs_p95": 46.0}}, "av_offset_drift_ms": -3.0});
        let rows = rows(Some(&streaming), None, None, None, Some(&audio), None);
        let verdicts: Vec<(bool, f64)> = rows.iter().map(|r| (r.met(), r.value)).collect();
        assert_eq!(
            verdicts,
            [(true, 19.5), (false, 40.0), (false, 4.0), (false, 46.0), (true, 3.0)],
            "{rows:#?}"
        );
        let text = table(&rows);
        assert!(text.contains("| 19.5 | ≤ 20.0 | met |"), "{text}");
        assert!(text.contains("| 4.00 | ≥ 8.00 | **missed** |"), "{text}");
    }

    #[test]
    fn a_report_is_written_from_what_was_measured_and_names_what_was_not() {
        let dir = std::env::temp_dir().join(format!("gridplay-report-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let streaming = json!({
            "goals": {"browser_loopback_p50_ms": 20.0},
            "loopback_720p60": {"chromium": {"p50": 19.5, "p99": 25.8}},
            "sessions_720p30": {"sustained": 2, "threshold_fps": 28.5, "steps": [
                {"sessions": 1, "min_fps": 30.0, "mean_fps": 30.0},
                {"sessions": 2, "min_fps": 29.9, "mean_fps": 30.0},
                {"sessions": 3, "min_fps": 21.0, "mean_fps": 24.0}
            ]}
        });
        std::fs::write(dir.join("streaming.json"), streaming.to_string()).unwrap();
        run(ReportArgs { results: dir.clone() }).unwrap();
        let report = std::fs::read_to_string(dir.join("REPORT.md")).unwrap();
        assert!(
            report.contains("Not measured yet: browser, broker, chain, audio, apps."),
            "{report}"
        );
        assert!(
            report.contains("![1280x720@30 sessions on one host](report-sessions-per-host.svg)")
        );
        let svg = std::fs::read_to_string(dir.join("report-sessions-per-host.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("slowest session"), "{svg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
