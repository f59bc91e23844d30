//! The processes under test: `gridplay broker` children, redis-server (via
//! `redis-cli`), `redis-benchmark` for the EVALSHA ceiling, and what
//! `/proc` says about their CPU time and memory.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use serde::Serialize;

use super::report::{
    RedisBenchmark, parse_machine_busy_ticks, parse_redis_benchmark_csv, parse_stat_ticks,
    parse_status_kb,
};

/// The claim script the Redis store runs for every allocation.
pub const CLAIM_LUA: &str = include_str!("../../../session-broker/src/store/lua/claim.lua");

/// A `gridplay broker` child process, killed on drop.
pub struct BrokerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl BrokerProcess {
    /// Starts `bin broker` on a free loopback port with the per-address
    /// limit off, warnings-only logs and reservations that live `token_ttl_ms`;
    /// on Redis when `redis_url` is given, else on the memory store.
    pub fn spawn(
        bin: &Path,
        redis_url: Option<&str>,
        key_file: &Path,
        token_ttl_ms: u64,
    ) -> anyhow::Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut command = Command::new(bin);
        command.args(["broker", "--listen", &addr.to_string(), "--allocations-per-ip", "0"]);
        command.arg("--key-file").arg(key_file);
        command.args(["--token-ttl-ms", &token_ttl_ms.to_string()]);
        if let Some(url) = redis_url {
            command.args(["--redis-url", url]);
        }
        let child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Self { child, addr })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) a process has used, in clock ticks; 0 once it is gone.
pub fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat_ticks(&s))
        .unwrap_or(0)
}

/// CPU time this process (the load generator) has used, in clock ticks.
pub fn own_cpu_ticks() -> u64 {
    cpu_ticks(std::process::id())
}

/// Busy CPU time of the whole machine, in clock ticks.
pub fn machine_busy_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_machine_busy_ticks(&s))
        .unwrap_or(0)
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Resident memory now and at its peak (`VmRSS`, `VmHWM`), in bytes.
pub fn resident_bytes(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = parse_status_kb(&status, "VmRSS").context("no VmRSS")?;
    let hwm = parse_status_kb(&status, "VmHWM").context("no VmHWM")?;
    Ok((rss, hwm))
}

/// The port of a `redis://host:port` URL.
pub fn redis_port(url: &str) -> anyhow::Result<u16> {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .context("redis URL port")
}

/// Runs `redis-cli -p port args...` and returns its output.
pub fn redis_cli(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .context("redis-cli (apt-get install redis-tools)")?;
    anyhow::ensure!(output.status.success(), "redis-cli {args:?}: {}", output.status);
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The process id of the redis-server on `port` (from `INFO server`).
pub fn redis_pid(port: u16) -> anyhow::Result<u32> {
    let info = redis_cli(port, &["info", "server"])?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
        .context("process_id in INFO server")
}

/// The raw Redis ceiling: the rate of the claim script alone.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// The `redis-benchmark` command line (with the script's SHA).
    pub command: String,
    /// What it measured.
    pub result: RedisBenchmark,
}

/// Measures how many EVALSHAs of the broker's own claim script (each on a
/// fresh session key, against one host with room) Redis answers per second,
/// with `redis-benchmark -c clients -P 1` on the redis-server at `port`.
pub fn evalsha_ceiling(port: u16, requests: u64, clients: u32) -> anyhow::Result<Ceiling> {
    let sha = redis_cli(port, &["script", "load", CLAIM_LUA])?;
    let host = "gp:{bench}:host";
    let now = "1000000";
    redis_cli(port, &["hset", host, "seen", now, "cap:game", "1000000000"])?;
    let record = r#"{"session_id":"s","host_id":"bench","app":"orbit","profile":"game","allocated_at_ms":1000000,"state":"allocated"}"#;
    let args: Vec<String> = [
        "-p",
        &port.to_string(),
        "-n",
        &requests.to_string(),
        "-c",
        &clients.to_string(),
        "-P",
        "1",
        "-r",
        "100000000",
        "--csv",
        "evalsha",
        &sha,
        "3",
        host,
        "gp:{bench}:live",
        "gp:{bench}:s:__rand_int__",
        now,
        "6000",
        "__rand_int__",
        "game",
        record,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let output = Command::new("redis-benchmark")
        .args(&args)
        .stderr(Stdio::null())
        .output()
        .context("redis-benchmark (apt-get install redis-tools)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let result = parse_redis_benchmark_csv(&text)
        .with_context(|| format!("redis-benchmark output: {text}"))?;
    let shown: Vec<String> = args
        .iter()
        .map(|a| if a.contains(['"', ' ', '{']) { format!("'{a}'") } else { a.clone() })
        .collect();
    Ok(Ceiling { command: format!("redis-benchmark {}", shown.join(" ")), result })
}
