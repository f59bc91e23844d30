//! `gridplay-bench broker`: the session broker under an open-loop allocation
//! load, with simulated hosts registering and heartbeating, on the memory
//! store (one process) and on Redis (one and two processes); the raw Redis
//! EVALSHA rate as the ceiling; and the broker's memory holding many hosts and
//! sessions. Writes `broker.json` and prints each figure next to its target.
//!
//! The brokers, redis-server and this load generator all share the machine's
//! cores; each step reports how much CPU each of them used.

mod http;
mod load;
mod plan;
mod procs;
mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gridplay_session_broker::testing::{RedisCluster, RedisServer};
use serde::Serialize;

use self::http::{Conn, wait_listening};
use self::load::{FillStats, Fleet, HeartbeatStats, Heartbeats, allocation_bodies};
use self::plan::{Store, slots_per_host};
use self::procs::{BrokerProcess, Ceiling};
use self::report::{
    CpuCores, StepReport, TARGET_CEILING_FRACTION, TARGET_REDIS_ALLOCATIONS_PER_S, TARGET_RSS_MB,
    Ticks, Verdict,
};

/// Reservations live this long (ms) so none lapses during a run.
const TOKEN_TTL_MS: u64 = 3_600_000;
/// Connections registering hosts at once.
const REGISTER_CONCURRENCY: usize = 32;
/// Heartbeat connections per broker.
const HEARTBEAT_CONNS: usize = 8;
/// Time after a step's end within which its due requests must be sent.
const STEP_GRACE: Duration = Duration::from_secs(1);
/// Heartbeats alone, measured before a sweep.
const BASELINE: Duration = Duration::from_secs(1);
/// Unmeasured warm-up before a sweep.
const WARM_UP: Duration = Duration::from_millis(500);

/// Options of `gridplay-bench broker`.
#[derive(clap::Args, Debug)]
pub struct BrokerArgs {
    /// Directory the JSON results go to.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// The `gridplay` binary (default: next to this one).
    #[arg(long)]
    gridplay_bin: Option<PathBuf>,
    /// Simulated host counts to measure with.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000u32, 10_000])]
    hosts: Vec<u32>,
    /// Offered allocation rates per second, swept upward.
    #[arg(long, value_delimiter = ',', default_values_t = [100u32, 250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 20_000])]
    rates: Vec<u32>,
    /// Store and broker-process count of each sweep, e.g. `memory:1,redis:2`.
    #[arg(long, value_delimiter = ',', value_parser = plan::parse_run,
        default_value = "memory:1,redis:1,redis:2,cluster:1,cluster:2")]
    runs: Vec<(Store, usize)>,
    /// Skip the memory measurement.
    #[arg(long)]
    no_memory: bool,
    /// Skip the rate sweeps (ceiling and memory only).
    #[arg(long)]
    no_sweeps: bool,
    /// Length of each step, ms.
    #[arg(long, default_value_t = 2_000)]
    step_ms: u64,
    /// Keep sweeping after a step that is not sustained (default: stop there).
    #[arg(long)]
    keep_going: bool,
    /// Connections carrying the allocations (split over the brokers).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Fewest game slots per host (raised so the sweep never runs out).
    #[arg(long, default_value_t = 10)]
    min_slots: u32,
    /// How often each simulated host heartbeats, ms.
    #[arg(long, default_value_t = 2_000)]
    heartbeat_ms: u64,
    /// Hosts registered for the memory measurement.
    #[arg(long, default_value_t = 10_000)]
    memory_hosts: u32,
    /// Live sessions allocated for the memory measurement.
    #[arg(long, default_value_t = 100_000)]
    memory_sessions: u64,
    /// Game slots per host for the memory measurement.
    #[arg(long, default_value_t = 20)]
    memory_slots: u32,
    /// Longest the memory measurement may spend allocating, s.
    #[arg(long, default_value_t = 40)]
    fill_limit_s: u64,
    /// EVALSHA requests `redis-benchmark` sends for the ceiling.
    #[arg(long, default_value_t = 200_000)]
    ceiling_requests: u64,
    /// `redis-benchmark` clients for the ceiling.
    #[arg(long, default_value_t = 50)]
    ceiling_clients: u32,
}

/// One store × broker count × host count, swept over the rates.
#[derive(Debug, Serialize)]
struct RunReport {
    store: Store,
    brokers: usize,
    hosts: u32,
    slots_per_host: u32,
    register_s: f64,
    heartbeats: HeartbeatStats,
    /// CPU while only the heartbeats ran.
    heartbeat_cpu_cores: CpuCores,
    steps: Vec<StepReport>,
    max_sustained_per_s: Option<u32>,
}

/// The memory measurement.
#[derive(Debug, Serialize)]
struct MemoryReport {
    hosts: u32,
    slots_per_host: u32,
    sessions_wanted: u64,
    fill: FillStats,
    heartbeats: HeartbeatStats,
    rss_empty_mb: f64,
    rss_with_hosts_mb: f64,
    rss_with_sessions_mb: f64,
    peak_rss_mb: f64,
    bytes_per_host: f64,
    bytes_per_session: f64,
    /// RSS with `sessions_wanted` sessions: measured when the fill got there,
    /// else extrapolated at `bytes_per_session`.
    rss_at_sessions_wanted_mb: f64,
}

/// Everything `broker.json` holds.
#[derive(Debug, Serialize)]
struct BrokerReport {
    cores: usize,
    note: &'static str,
    load_average_at_start: f64,
    step_ms: u64,
    sustained_when: String,
    ceiling: Ceiling,
    runs: Vec<RunReport>,
    memory: Option<MemoryReport>,
    verdicts: Vec<Verdict>,
}

const SHARED_CORES_NOTE: &str = "the load generator (allocations, heartbeats, signing), the brokers \
and redis-server all run on the same cores; latency counts from each request's scheduled send time";

/// What every run shares.
struct Bench {
    args: BrokerArgs,
    bin: PathBuf,
    key_file: PathBuf,
    bodies: Arc<Vec<bytes::Bytes>>,
}

/// Runs the broker benchmark.
pub fn run(mut args: BrokerArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.rates.is_empty() && !args.runs.is_empty(), "no rates or runs to measure");
    args.rates.sort_unstable();
    let bin = match &args.gridplay_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("gridplay"),
    };
    anyhow::ensure!(bin.exists(), "{} missing: cargo build --release -p gridplay", bin.display());
    let dir = std::env::temp_dir().join(format!("gridplay-bench-broker-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key_file = dir.join("broker.key");
    std::fs::write(&key_file, [7u8; 32])?;
    let bench = Bench { args, bin, key_file, bodies: allocation_bodies() };
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(bench.run_all());
    let _ = std::fs::remove_dir_all(dir);
    result
}

impl Bench {
    async fn run_all(&self) -> anyhow::Result<()> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let args = &self.args;
        let load_average = procs::load_average();
        println!("broker benchmark on {cores} cores: {SHARED_CORES_NOTE}");
        println!(
            "load average before the run: {load_average:.2} (the \"others\" column is CPU this run did not use)"
        );
        println!(
            "a step is sustained when p99 ≤ {} ms, ≤ {}% of requests fail (503 included) or go unsent, \
             and ≥ {}% of the offered rate completes",
            report::SUSTAINED_P99_MS,
            report::SUSTAINED_MAX_FAILURES * 100.0,
            report::SUSTAINED_MIN_ACHIEVED * 100.0
        );

        let ceiling = {
            let redis =
                RedisServer::start().context("redis-server (apt-get install redis-server)")?;
            let port = procs::redis_port(&redis.url())?;
            let ceiling =
                procs::evalsha_ceiling(port, args.ceiling_requests, args.ceiling_clients)?;
            println!(
                "\nEVALSHA ceiling (the claim script alone, redis-benchmark -c {} -P 1): {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
                args.ceiling_clients,
                ceiling.result.requests_per_s,
                ceiling.result.p50_ms,
                ceiling.result.p99_ms
            );
            ceiling
        };

        let mut runs = Vec::new();
        let sweeps = if args.no_sweeps { &[][..] } else { &args.hosts[..] };
        for &hosts in sweeps {
            let warm_up = plan::requests_in_step(args.rates[0], WARM_UP) * 3;
            let slots = slots_per_host(&args.rates, self.step(), warm_up, hosts, args.min_slots);
            let fleet = Arc::new(Fleet::new(hosts, slots));
            for &(store, brokers) in &args.runs {
                runs.push(self.sweep(&fleet, store, brokers).await?);
            }
        }

        let memory = if args.no_memory { None } else { Some(self.memory().await?) };

        let mut verdicts = Vec::new();
        let best = |store: Store, hosts: Option<u32>| {
            runs.iter()
                .filter(|r| r.store == store && hosts.is_none_or(|h| r.hosts == h))
                .filter_map(|r| r.max_sustained_per_s)
                .max()
                .unwrap_or(0)
        };
        let best_redis = |hosts: Option<u32>| best(Store::Redis, hosts);
        if args.runs.iter().any(|&(store, _)| store == Store::Cluster) {
            let (cluster, single) = (best(Store::Cluster, None), best(Store::Redis, None));
            println!(
                "\nRedis Cluster (3 masters, 3 replicas, on these same cores): best {cluster} allocations/s, \
                 {:.2}× one redis-server's {single}/s in this run",
                f64::from(cluster) / f64::from(single.max(1))
            );
        }
        for &hosts in sweeps {
            verdicts.push(Verdict::at_least(
                format!("allocations/s through Redis with p99 ≤ 10 ms, {hosts} hosts"),
                f64::from(best_redis(Some(hosts))),
                TARGET_REDIS_ALLOCATIONS_PER_S,
            ));
        }
        verdicts.push(Verdict::at_least(
            "best Redis allocations/s as a fraction of the EVALSHA ceiling",
            f64::from(best_redis(None)) / ceiling.result.requests_per_s,
            TARGET_CEILING_FRACTION,
        ));
        if let Some(memory) = &memory {
            let reached = memory.fill.created >= memory.sessions_wanted;
            verdicts.push(Verdict::at_most(
                format!(
                    "broker RSS, MB, {} hosts + {} sessions (memory store{})",
                    memory.hosts,
                    memory.sessions_wanted,
                    if reached {
                        String::new()
                    } else {
                        format!(
                            "; extrapolated from {} sessions at {:.0} bytes each",
                            memory.fill.created, memory.bytes_per_session
                        )
                    }
                ),
                memory.rss_at_sessions_wanted_mb,
                TARGET_RSS_MB,
            ));
        }
        println!();
        for verdict in &verdicts {
            println!("{}", verdict.line());
        }

        let report = BrokerReport {
            cores,
            note: SHARED_CORES_NOTE,
            load_average_at_start: load_average,
            step_ms: args.step_ms,
            sustained_when: format!(
                "p99 <= {} ms, failed+unsent <= {}, achieved >= {} x offered",
                report::SUSTAINED_P99_MS,
                report::SUSTAINED_MAX_FAILURES,
                report::SUSTAINED_MIN_ACHIEVED
            ),
            ceiling,
            runs,
            memory,
            verdicts,
        };
        std::fs::create_dir_all(&args.out)?;
        let path = args.out.join("broker.json");
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
        println!("wrote {}", path.display());
        Ok(())
    }

    fn step(&self) -> Duration {
        Duration::from_millis(self.args.step_ms)
    }

    fn spawn_brokers(&self, redis: Option<&str>, n: usize) -> anyhow::Result<Vec<BrokerProcess>> {
        (0..n)
            .map(|_| BrokerProcess::spawn(&self.bin, redis, &self.key_file, TOKEN_TTL_MS))
            .collect()
    }

    /// One sweep: fresh brokers (and Redis), the fleet registered and
    /// heartbeating, then the offered rate stepped up.
    async fn sweep(&self, fleet: &Arc<Fleet>, store: Store, n: usize) -> anyhow::Result<RunReport> {
        let args = &self.args;
        // Held to the end of the sweep: dropping one stops its servers.
        let (server, cluster, redis_url, redis_ports) = match store {
            Store::Memory => (None, None, None, Vec::new()),
            Store::Redis => {
                let server = RedisServer::start().context("redis-server")?;
                let (url, port) = (server.url(), procs::redis_port(&server.url())?);
                (Some(server), None, Some(url), vec![port])
            }
            Store::Cluster => {
                let cluster = RedisCluster::start(3).context("redis-server and redis-cli")?;
                let (url, ports) = (cluster.url(), cluster.ports());
                (None, Some(cluster), Some(url), ports)
            }
        };
        let redis_pids = redis_ports
            .iter()
            .map(|&port| procs::redis_pid(port))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let brokers = self.spawn_brokers(redis_url.as_deref(), n)?;
        let targets: Vec<SocketAddr> = brokers.iter().map(|b| b.addr).collect();
        for addr in &targets {
            wait_listening(*addr, Duration::from_secs(20)).await?;
        }
        let registering = tokio::time::Instant::now();
        fleet.register_all(targets[0], REGISTER_CONCURRENCY).await?;
        let register_s = registering.elapsed().as_secs_f64();
        let beats = Heartbeats::start(
            fleet,
            &targets,
            HEARTBEAT_CONNS * n,
            Duration::from_millis(args.heartbeat_ms),
        );
        println!(
            "\n{store:?} store, {n} broker process{}, {} hosts × {} slots (registered in {register_s:.1} s), \
             heartbeats {:.0}/s:",
            if n == 1 { "" } else { "es" },
            fleet.len(),
            fleet.slots_per_host,
            fleet.len() as f64 * 1000.0 / args.heartbeat_ms as f64
        );
        println!("  {}", report::table_header());
        let mut conns: Vec<Conn> =
            (0..args.connections.max(n)).map(|i| Conn::new(targets[i % n])).collect();
        let _ = load::open_loop(&mut conns, &self.bodies, args.rates[0], WARM_UP, STEP_GRACE).await;

        let pids: Vec<u32> = brokers.iter().map(BrokerProcess::pid).collect();
        let ticks = || Ticks {
            brokers: pids.iter().map(|&p| procs::cpu_ticks(p)).sum(),
            redis: redis_pids.iter().map(|&p| procs::cpu_ticks(p)).sum(),
            generator: procs::own_cpu_ticks(),
            machine: procs::machine_busy_ticks(),
        };
        // Heartbeats alone, to tell their CPU from the allocations'.
        let (before, wall) = (ticks(), tokio::time::Instant::now());
        tokio::time::sleep(BASELINE).await;
        let baseline = CpuCores::from_ticks(before.until(&ticks()), wall.elapsed().as_secs_f64());
        println!(
            "  heartbeats alone: brokers {:.2}, redis {:.2}, generator {:.2}, others {:.2} cores",
            baseline.brokers, baseline.redis, baseline.generator, baseline.others
        );

        let mut steps: Vec<StepReport> = Vec::new();
        let mut rates = args.rates.iter().copied();
        let mut next = rates.next().map(|rate| (rate, 1));
        while let Some((rate, attempt)) = next {
            let before = ticks();
            let wall = tokio::time::Instant::now();
            let raw =
                load::open_loop(&mut conns, &self.bodies, rate, self.step(), STEP_GRACE).await;
            let seconds = wall.elapsed().as_secs_f64();
            let cpu = CpuCores::from_ticks(before.until(&ticks()), seconds);
            let mut step =
                report::step_report(rate, raw.seconds, raw.outcomes, &raw.latency_us, cpu);
            step.attempt = attempt;
            println!("  {}", step.row());
            next = if report::should_retry(&step, attempt) {
                Some((rate, attempt + 1))
            } else if step.sustained || args.keep_going {
                rates.next().map(|rate| (rate, 1))
            } else {
                None
            };
            steps.push(step);
        }
        let heartbeats = beats.stop().await;
        let max_sustained_per_s = report::max_sustained(&steps);
        let busiest = steps
            .iter()
            .filter(|s| s.outcomes.created > 0)
            .max_by(|a, b| a.achieved_per_s.total_cmp(&b.achieved_per_s));
        if let Some(step) = busiest {
            let per = report::marginal_cpu_us(step, &baseline);
            println!(
                "  CPU per allocation at {:.0}/s (beyond heartbeats): brokers {:.0} µs, redis {:.0} µs, generator {:.0} µs",
                step.achieved_per_s, per.brokers, per.redis, per.generator
            );
        }
        println!(
            "  highest sustained: {}; heartbeats {} sent, {} ok, {} re-registered, {} failed, p99 {:.1} ms",
            max_sustained_per_s.map_or("none".into(), |r| format!("{r} allocations/s")),
            heartbeats.sent,
            heartbeats.ok,
            heartbeats.reregistered,
            heartbeats.errors,
            heartbeats.p99_ms
        );
        drop(brokers);
        drop((server, cluster));
        Ok(RunReport {
            store,
            brokers: n,
            hosts: fleet.len() as u32,
            slots_per_host: fleet.slots_per_host,
            register_s,
            heartbeats,
            heartbeat_cpu_cores: baseline,
            steps,
            max_sustained_per_s,
        })
    }

    /// Resident memory of one memory-store broker: empty, with the hosts
    /// registered, and with the sessions allocated (heartbeats running).
    async fn memory(&self) -> anyhow::Result<MemoryReport> {
        let args = &self.args;
        let fleet = Arc::new(Fleet::new(args.memory_hosts, args.memory_slots));
        let broker = BrokerProcess::spawn(&self.bin, None, &self.key_file, TOKEN_TTL_MS)?;
        wait_listening(broker.addr, Duration::from_secs(20)).await?;
        let settle = || tokio::time::sleep(Duration::from_millis(500));
        settle().await;
        let mb = |bytes: u64| bytes as f64 / 1e6;
        let (empty, _) = procs::resident_bytes(broker.pid())?;
        fleet.register_all(broker.addr, REGISTER_CONCURRENCY).await?;
        let beats = Heartbeats::start(
            &fleet,
            &[broker.addr],
            HEARTBEAT_CONNS,
            Duration::from_millis(args.heartbeat_ms),
        );
        settle().await;
        let (with_hosts, _) = procs::resident_bytes(broker.pid())?;
        let fill = load::fill(
            broker.addr,
            32,
            &self.bodies,
            args.memory_sessions,
            Duration::from_secs(args.fill_limit_s),
        )
        .await;
        settle().await;
        let (with_sessions, peak) = procs::resident_bytes(broker.pid())?;
        let heartbeats = beats.stop().await;
        let bytes_per_session =
            with_sessions.saturating_sub(with_hosts) as f64 / fill.created.max(1) as f64;
        let report = MemoryReport {
            hosts: args.memory_hosts,
            slots_per_host: args.memory_slots,
            sessions_wanted: args.memory_sessions,
            rss_empty_mb: mb(empty),
            rss_with_hosts_mb: mb(with_hosts),
            rss_with_sessions_mb: mb(with_sessions),
            peak_rss_mb: mb(peak),
            bytes_per_host: with_hosts.saturating_sub(empty) as f64
                / f64::from(args.memory_hosts.max(1)),
            bytes_per_session,
            rss_at_sessions_wanted_mb: report::extrapolate_mb(
                with_sessions,
                bytes_per_session,
                args.memory_sessions.saturating_sub(fill.created),
            ),
            fill,
            heartbeats,
        };
        println!(
            "\nmemory store, 1 broker process, {} hosts × {} slots, heartbeats {:.0}/s, allocating up to {} sessions:",
            report.hosts,
            report.slots_per_host,
            report.heartbeats.scheduled_per_s,
            report.sessions_wanted
        );
        println!(
            "  {} allocated in {:.1} s ({:.0}/s closed loop, {} × 503, {} errors)",
            report.fill.created,
            report.fill.seconds,
            report.fill.created as f64 / report.fill.seconds.max(1e-9),
            report.fill.no_capacity,
            report.fill.errors
        );
        println!(
            "  RSS {:.1} MB empty, {:.1} MB with the hosts ({:.0} bytes each), {:.1} MB with the sessions \
             ({:.0} bytes each), peak {:.1} MB",
            report.rss_empty_mb,
            report.rss_with_hosts_mb,
            report.bytes_per_host,
            report.rss_with_sessions_mb,
            report.bytes_per_session,
            report.peak_rss_mb
        );
        println!(
            "  heartbeats {} sent, {} ok, {} re-registered after losing their lease, {} failed, p99 {:.1} ms",
            report.heartbeats.sent,
            report.heartbeats.ok,
            report.heartbeats.reregistered,
            report.heartbeats.errors,
            report.heartbeats.p99_ms
        );
        if report.heartbeats.reregistered > 0 {
            println!(
                "  (hosts that lost their lease had their sessions ended; the memory store keeps ended \
                 sessions' records, so the RSS above still holds all {} of them)",
                report.fill.created
            );
        }
        Ok(report)
    }
}
