//! Shaping the broker benchmark's measurements into figures: per-step
//! percentiles and verdicts, the highest sustained rate, targets, and the
//! parsing of `redis-benchmark` and `/proc` text. Pure functions only.

use hdrhistogram::Histogram;
use serde::Serialize;

/// A step is sustained when its p99 is at most this, in ms.
pub const SUSTAINED_P99_MS: f64 = 10.0;
/// ... and at most this fraction of its requests failed or were never sent.
pub const SUSTAINED_MAX_FAILURES: f64 = 0.001;
/// ... and it completed at least this fraction of the offered rate.
pub const SUSTAINED_MIN_ACHIEVED: f64 = 0.95;

/// Target: allocations per second through Redis (with p99 ≤ 10 ms).
pub const TARGET_REDIS_ALLOCATIONS_PER_S: f64 = 10_000.0;
/// Target: allocations per second as a fraction of the raw EVALSHA rate.
pub const TARGET_CEILING_FRACTION: f64 = 0.5;
/// Target: broker resident memory for 10k hosts and 100k sessions, MB.
pub const TARGET_RSS_MB: f64 = 300.0;

/// Linux's `USER_HZ`: the unit of CPU times in `/proc/PID/stat`.
pub const CLOCK_TICKS_PER_S: f64 = 100.0;

/// How a step's requests ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    /// 201: a session was allocated.
    pub created: u64,
    /// 503: no capacity near the client.
    pub no_capacity: u64,
    /// Any other status, a transport error or a timeout.
    pub errors: u64,
    /// Due in the step but never sent before its deadline (generator or
    /// connections saturated); their latency is recorded as a lower bound.
    pub missed: u64,
}

impl Outcomes {
    /// Adds another worker's counts.
    pub fn add(&mut self, other: &Outcomes) {
        self.created += other.created;
        self.no_capacity += other.no_capacity;
        self.errors += other.errors;
        self.missed += other.missed;
    }

    /// Every request the step scheduled.
    pub fn total(&self) -> u64 {
        self.created + self.no_capacity + self.errors + self.missed
    }
}

/// CPU used during a step, in cores (1.0 = one core busy all the time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuCores {
    /// All broker processes together.
    pub brokers: f64,
    /// The redis-server process (0 on the memory store).
    pub redis: f64,
    /// This load generator (allocations and heartbeats).
    pub generator: f64,
    /// Everything else on the machine (other processes, interrupts): what
    /// the run did not get.
    pub others: f64,
}

/// CPU clock ticks consumed during a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticks {
    /// All broker processes.
    pub brokers: u64,
    /// redis-server.
    pub redis: u64,
    /// This process.
    pub generator: u64,
    /// The whole machine, busy (not idle) time over all cores.
    pub machine: u64,
}

impl Ticks {
    /// Ticks spent between `self` (earlier) and `later`.
    pub fn until(&self, later: &Ticks) -> Ticks {
        Ticks {
            brokers: later.brokers.saturating_sub(self.brokers),
            redis: later.redis.saturating_sub(self.redis),
            generator: later.generator.saturating_sub(self.generator),
            machine: later.machine.saturating_sub(self.machine),
        }
    }
}

impl CpuCores {
    /// Cores used from CPU clock ticks consumed over `seconds` of wall time.
    pub fn from_ticks(ticks: Ticks, seconds: f64) -> Self {
        let cores = |ticks: u64| {
            if seconds > 0.0 { ticks as f64 / CLOCK_TICKS_PER_S / seconds } else { 0.0 }
        };
        let ours = ticks.brokers + ticks.redis + ticks.generator;
        Self {
            brokers: cores(ticks.brokers),
            redis: cores(ticks.redis),
            generator: cores(ticks.generator),
            others: cores(ticks.machine.saturating_sub(ours)),
        }
    }
}

/// One step of the rate sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// Allocations per second offered (the fixed arrival rate).
    pub offered_per_s: u32,
    /// Successful allocations per second over the step (until the last answer).
    pub achieved_per_s: f64,
    /// How the requests ended.
    pub outcomes: Outcomes,
    /// Latency percentiles from the scheduled send time, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Largest latency, ms.
    pub max_ms: f64,
    /// CPU used by each party during the step.
    pub cpu_cores: CpuCores,
    /// Whether the step met the sustained criteria.
    pub sustained: bool,
    /// 1, or 2 when the step was repeated because other processes took CPU.
    pub attempt: u32,
}

/// The column heads matching [`StepReport::row`].
pub fn table_header() -> String {
    format!(
        "{:>9} {:>10} {:>7} {:>7} {:>8} {:>8} {:>5} {:>6} {:>6}  cores: {:>7} {:>5} {:>5} {:>6}",
        "offered/s",
        "achieved/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "503",
        "errors",
        "unsent",
        "brokers",
        "redis",
        "gen",
        "others"
    )
}

impl StepReport {
    /// One table line under [`table_header`].
    pub fn row(&self) -> String {
        let (o, cpu) = (&self.outcomes, &self.cpu_cores);
        format!(
            "{:>9} {:>10.0} {:>7.2} {:>7.2} {:>8.2} {:>8.1} {:>5} {:>6} {:>6}         {:>7.2} {:>5.2} {:>5.2} {:>6.2}  {}",
            self.offered_per_s,
            self.achieved_per_s,
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            o.no_capacity,
            o.errors,
            o.missed,
            cpu.brokers,
            cpu.redis,
            cpu.generator,
            cpu.others,
            match (self.sustained, self.attempt) {
                (true, 1) => "sustained",
                (true, _) => "sustained (repeated)",
                (false, 1) => "NOT sustained",
                (false, _) => "NOT sustained (repeated)",
            }
        )
    }
}

/// Builds a step's report from its latency histogram (microseconds) and counts;
/// `seconds` is the time from the step's start to its last answer.
pub fn step_report(
    offered_per_s: u32,
    seconds: f64,
    outcomes: Outcomes,
    latency_us: &Histogram<u64>,
    cpu_cores: CpuCores,
) -> StepReport {
    let ms = |q: f64| {
        if latency_us.is_empty() { 0.0 } else { latency_us.value_at_quantile(q) as f64 / 1e3 }
    };
    let achieved_per_s = if seconds > 0.0 { outcomes.created as f64 / seconds } else { 0.0 };
    let mut report = StepReport {
        offered_per_s,
        achieved_per_s,
        outcomes,
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: if latency_us.is_empty() { 0.0 } else { latency_us.max() as f64 / 1e3 },
        cpu_cores,
        sustained: false,
        attempt: 1,
    };
    report.sustained = is_sustained(&report);
    report
}

/// A step is sustained when p99 ≤ [`SUSTAINED_P99_MS`], at most
/// [`SUSTAINED_MAX_FAILURES`] of its requests failed (503s included) or went
/// unsent, and it completed ≥ [`SUSTAINED_MIN_ACHIEVED`] of the offered rate.
pub fn is_sustained(step: &StepReport) -> bool {
    let o = &step.outcomes;
    let total = o.total().max(1) as f64;
    let failed = (o.no_capacity + o.errors + o.missed) as f64;
    step.p99_ms <= SUSTAINED_P99_MS
        && failed / total <= SUSTAINED_MAX_FAILURES
        && step.achieved_per_s >= SUSTAINED_MIN_ACHIEVED * f64::from(step.offered_per_s)
}

/// CPU time each successful allocation added during a step, in µs, by
/// party: the step's CPU minus the `baseline` of heartbeats alone, over the
/// achieved rate.
pub fn marginal_cpu_us(step: &StepReport, baseline: &CpuCores) -> CpuCores {
    let per = |cores: f64, base: f64| {
        if step.achieved_per_s > 0.0 {
            (cores - base).max(0.0) * 1e6 / step.achieved_per_s
        } else {
            0.0
        }
    };
    let cpu = &step.cpu_cores;
    CpuCores {
        brokers: per(cpu.brokers, baseline.brokers),
        redis: per(cpu.redis, baseline.redis),
        generator: per(cpu.generator, baseline.generator),
        others: per(cpu.others, baseline.others),
    }
}

/// A step that failed while other processes took more than this many cores
/// is measured once more: the machine is shared.
pub const RETRY_OTHERS_CORES: f64 = 0.25;

/// Whether to repeat a step that was attempt number `attempt` (from 1).
pub fn should_retry(step: &StepReport, attempt: u32) -> bool {
    !step.sustained && step.cpu_cores.others > RETRY_OTHERS_CORES && attempt < 2
}

/// The highest offered rate among sustained steps.
pub fn max_sustained(steps: &[StepReport]) -> Option<u32> {
    steps.iter().filter(|s| s.sustained).map(|s| s.offered_per_s).max()
}

/// A figure next to its target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// What was measured.
    pub figure: String,
    /// The measured value.
    pub value: f64,
    /// The target.
    pub target: f64,
    /// Whether higher values are better (else lower are).
    pub higher_is_better: bool,
    /// Whether the value meets the target.
    pub met: bool,
}

impl Verdict {
    /// A figure that must reach at least `target`.
    pub fn at_least(figure: impl Into<String>, value: f64, target: f64) -> Self {
        Self { figure: figure.into(), value, target, higher_is_better: true, met: value >= target }
    }

    /// A figure that must stay at or below `target`.
    pub fn at_most(figure: impl Into<String>, value: f64, target: f64) -> Self {
        Self { figure: figure.into(), value, target, higher_is_better: false, met: value <= target }
    }

    /// One line: figure, value, target, and whether it is met.
    pub fn line(&self) -> String {
        let op = if self.higher_is_better { "≥" } else { "≤" };
        let word = if self.met { "meets target" } else { "MISSES target" };
        format!("{}: {} vs target {op} {}: {word}", self.figure, num(self.value), num(self.target))
    }
}

/// A number with as few decimals as it needs for a report line.
fn num(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

/// The figures of one `redis-benchmark --csv` line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RedisBenchmark {
    /// Requests per second.
    pub requests_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// Resident memory in MB (10^6 bytes) after `more` further items of
/// `bytes_each` on top of `measured` bytes.
pub fn extrapolate_mb(measured: u64, bytes_each: f64, more: u64) -> f64 {
    (measured as f64 + bytes_each * more as f64) / 1e6
}

/// Parses `redis-benchmark --csv` output (Redis 7: `"test","rps",
/// "avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
/// "p99_latency_ms","max_latency_ms"` and one row per test): the first row.
/// The test name is the command line, unescaped, so a row's numbers are
/// read from its end.
pub fn parse_redis_benchmark_csv(text: &str) -> Option<RedisBenchmark> {
    let mut lines = text.lines().map(str::trim).filter(|l| l.starts_with('"'));
    let header: Vec<&str> = lines.next()?.split(',').map(|f| f.trim_matches('"')).collect();
    let row = lines.next()?;
    let numbers: Vec<&str> =
        row.rsplit(',').take(header.len().checked_sub(1)?).map(|f| f.trim_matches('"')).collect();
    let field = |name: &str| -> Option<f64> {
        let at = header.iter().position(|h| *h == name)?;
        numbers.get(header.len() - 1 - at)?.parse().ok()
    };
    Some(RedisBenchmark {
        requests_per_s: field("rps")?,
        p50_ms: field("p50_latency_ms").unwrap_or(0.0),
        p99_ms: field("p99_latency_ms").unwrap_or(0.0),
    })
}

/// A `kB` field (e.g. `VmRSS`, `VmHWM`) of `/proc/PID/status`, in bytes.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// Busy CPU time of the whole machine (all but idle and iowait), in clock
/// ticks, from the `cpu` line of `/proc/stat`.
pub fn parse_machine_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> =
        line.split_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]: guest
    // time is already counted in user.
    let busy = [0, 1, 2, 5, 6, 7].iter().map(|&i| fields.get(i).copied().unwrap_or(0)).sum();
    Some(busy)
}

/// User plus system CPU time, in clock ticks, from `/proc/PID/stat`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is parenthesised and may hold spaces; the
    // fields after it start with the state (field 3); utime and stime are 14 and 15.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values_us: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in values_us {
            h.record(v).unwrap();
        }
        h
    }

    fn created(n: u64) -> Outcomes {
        Outcomes { created: n, ..Outcomes::default() }
    }

    #[test]
    fn step_percentiles_come_from_the_histogram_in_ms() {
        // 1..=1000 ms in 1 ms steps.
        let h = histogram((1..=1000).map(|ms| ms * 1000));
        let step = step_report(500, 2.0, created(1000), &h, CpuCores::default());
        assert!((step.p50_ms - 500.0).abs() < 1.0, "{}", step.p50_ms);
        assert!((step.p99_ms - 990.0).abs() < 1.0, "{}", step.p99_ms);
        assert!((step.p999_ms - 999.0).abs() < 1.0, "{}", step.p999_ms);
        assert!((step.max_ms - 1000.0).abs() < 1.0);
        assert_eq!(step.achieved_per_s, 500.0);
        assert!(!step.sustained, "p99 of a second is not sustained");
        let empty = step_report(500, 0.0, Outcomes::default(), &histogram([]), CpuCores::default());
        assert_eq!((empty.p99_ms, empty.achieved_per_s, empty.sustained), (0.0, 0.0, false));
    }

    #[test]
    fn sustained_needs_low_p99_few_failures_and_the_offered_rate() {
        let fast = histogram((0..10_000).map(|i| 500 + i % 2000));
        let ok = step_report(5_000, 2.0, created(10_000), &fast, CpuCores::default());
        assert!(ok.sustained, "{ok:?}");

        let refused = Outcomes { created: 9_900, no_capacity: 100, ..Outcomes::default() };
        assert!(!step_report(5_000, 2.0, refused, &fast, CpuCores::default()).sustained);
        let one_error = Outcomes { created: 9_999, errors: 1, ..Outcomes::default() };
        assert!(step_report(5_000, 2.0, one_error, &fast, CpuCores::default()).sustained);

        // All answered fast, but the answers trickled in over twice the time.
        assert!(!step_report(5_000, 4.0, created(10_000), &fast, CpuCores::default()).sustained);

        let slow = histogram((0..10_000).map(|i| if i % 50 == 0 { 20_000 } else { 800 }));
        assert!(!step_report(5_000, 2.0, created(10_000), &slow, CpuCores::default()).sustained);
    }

    #[test]
    fn rows_line_up_under_the_header() {
        let h = histogram((0..2_000).map(|i| 400 + i % 1000));
        let cpu = CpuCores { brokers: 1.2, redis: 0.45, generator: 0.3, others: 0.05 };
        let step = step_report(1_000, 2.0, created(2_000), &h, cpu);
        let (header, row) = (table_header(), step.row());
        assert!(row.ends_with("sustained") && !row.contains("NOT"), "{row}");
        // Each figure ends where its column head ends.
        for (head, value) in [("offered/s", "1000"), ("brokers", "1.20"), ("others", "0.05")] {
            let end = |text: &str, word: &str| text.find(word).map(|at| at + word.len());
            assert_eq!(end(&header, head), end(&row, value), "{head}\n{header}\n{row}");
        }
    }

    #[test]
    fn marginal_cpu_subtracts_the_heartbeat_baseline() {
        let cpu = CpuCores { brokers: 0.7, redis: 0.4, generator: 0.1, others: 0.0 };
        let step = step_report(1_000, 2.0, created(2_000), &histogram([500]), cpu);
        let baseline = CpuCores { brokers: 0.2, redis: 0.1, generator: 0.2, others: 0.0 };
        let per = marginal_cpu_us(&step, &baseline);
        assert!((per.brokers - 500.0).abs() < 1e-9, "{per:?}");
        assert!((per.redis - 300.0).abs() < 1e-9, "{per:?}");
        assert_eq!(per.generator, 0.0, "never negative");
        let idle = step_report(1_000, 2.0, Outcomes::default(), &histogram([]), cpu);
        assert_eq!(marginal_cpu_us(&idle, &baseline), CpuCores::default());
    }

    #[test]
    fn failed_steps_on_a_busy_machine_are_repeated_once() {
        let slow = histogram((0..1_000).map(|_| 50_000));
        let busy = CpuCores { others: 0.8, ..CpuCores::default() };
        let failed = step_report(1_000, 1.0, created(1_000), &slow, busy);
        assert!(should_retry(&failed, 1));
        assert!(!should_retry(&failed, 2), "only once");
        let quiet = step_report(1_000, 1.0, created(1_000), &slow, CpuCores::default());
        assert!(!should_retry(&quiet, 1), "a quiet machine's verdict stands");
        let fast = histogram((0..1_000).map(|_| 500));
        assert!(!should_retry(&step_report(1_000, 1.0, created(1_000), &fast, busy), 1));
    }

    #[test]
    fn the_highest_sustained_step_wins_even_after_a_failed_one() {
        let step = |rate, sustained| StepReport {
            offered_per_s: rate,
            achieved_per_s: f64::from(rate),
            outcomes: Outcomes::default(),
            p50_ms: 1.0,
            p99_ms: 1.0,
            p999_ms: 1.0,
            max_ms: 1.0,
            cpu_cores: CpuCores::default(),
            sustained,
            attempt: 1,
        };
        assert_eq!(max_sustained(&[]), None);
        assert_eq!(max_sustained(&[step(1000, false)]), None);
        let steps = [step(1000, true), step(2000, false), step(5000, true), step(10_000, false)];
        assert_eq!(max_sustained(&steps), Some(5000));
    }

    #[test]
    fn verdicts_compare_in_the_right_direction() {
        let rate = Verdict::at_least("allocations/s through Redis", 12_000.0, 10_000.0);
        assert!(rate.met);
        assert_eq!(
            rate.line(),
            "allocations/s through Redis: 12000 vs target ≥ 10000: meets target"
        );
        let rss = Verdict::at_most("broker RSS, MB", 412.4, 300.0);
        assert!(!rss.met);
        assert_eq!(rss.line(), "broker RSS, MB: 412 vs target ≤ 300: MISSES target");
        assert_eq!(
            Verdict::at_least("fraction", 0.25, 0.5).line(),
            "fraction: 0.25 vs target ≥ 0.50: MISSES target"
        );
    }

    #[test]
    fn outcomes_add_up() {
        let mut a = Outcomes { created: 1, no_capacity: 2, errors: 3, missed: 4 };
        a.add(&Outcomes { created: 10, no_capacity: 20, errors: 30, missed: 40 });
        assert_eq!(a, Outcomes { created: 11, no_capacity: 22, errors: 33, missed: 44 });
        assert_eq!(a.total(), 110);
    }

    #[test]
    fn cpu_ticks_become_cores() {
        let before = Ticks { brokers: 1000, redis: 10, generator: 5, machine: 5000 };
        let after = Ticks { brokers: 1150, redis: 60, generator: 105, machine: 5400 };
        let cpu = CpuCores::from_ticks(before.until(&after), 2.0);
        assert_eq!(cpu, CpuCores { brokers: 0.75, redis: 0.25, generator: 0.5, others: 0.5 });
        let ticks = Ticks { brokers: 1, redis: 1, generator: 1, machine: 1 };
        assert_eq!(CpuCores::from_ticks(ticks, 0.0), CpuCores::default());
        // A process gone between samples never makes time negative.
        assert_eq!(after.until(&before), Ticks::default());
    }

    #[test]
    fn parses_machine_busy_time() {
        let stat = "cpu  100 5 50 9000 20 3 2 1 40 0\ncpu0 50 2 25 4500 10 1 1 0 20 0\nintr 1\n";
        assert_eq!(parse_machine_busy_ticks(stat), Some(161));
        assert_eq!(parse_machine_busy_ticks("intr 1"), None);
    }

    #[test]
    fn parses_redis_benchmark_csv() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                    \"evalsha 1a2b 3 {\"a\":1,\"b\":\"c\"}\",\"81234.57\",\"0.550\",\"0.100\",\"0.527\",\"0.775\",\"1.023\",\"3.215\"\n";
        let parsed = parse_redis_benchmark_csv(text).unwrap();
        assert_eq!(
            parsed,
            RedisBenchmark { requests_per_s: 81234.57, p50_ms: 0.527, p99_ms: 1.023 }
        );
        assert_eq!(parse_redis_benchmark_csv("ERROR: connection refused"), None);
    }

    #[test]
    fn memory_extrapolates_per_item() {
        assert_eq!(extrapolate_mb(50_000_000, 500.0, 40_000), 70.0);
        assert_eq!(extrapolate_mb(50_000_000, 500.0, 0), 50.0);
    }

    #[test]
    fn parses_proc_status_and_stat() {
        let status = "Name:\tgridplay\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(100 * 1024 * 1024));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(200 * 1024 * 1024));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
        let stat = "1234 (tokio runtime) S 1 1234 1234 0 -1 4194560 2000 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }
}
