//! The pure parts of the broker benchmark's plan: when each request is due,
//! how much capacity the simulated hosts need, where hosts and clients are
//! on the globe, which key each host signs with, and how a request's latency
//! is counted. No I/O and no clock: times are offsets from a step's start.

use std::time::Duration;

use gridplay_protocol::{GeoPoint, MAX_SLOTS};
use serde::Serialize;

/// Where broker state lives in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    /// In the broker process (`gridplay broker` with no store flag).
    Memory,
    /// In one redis-server shared by the brokers (`--redis-url`).
    Redis,
    /// In a Redis Cluster of 3 masters and 3 replicas on this machine (`--redis-url redis+cluster://…`).
    Cluster,
}

/// Parses a run spec `STORE:PROCESSES` (`memory:1`, `redis:2`, `cluster:2`); the memory
/// store lives in one process, so it takes exactly one.
pub fn parse_run(spec: &str) -> Result<(Store, usize), String> {
    let (store, n) = spec.split_once(':').unwrap_or((spec, "1"));
    let n: usize = n.parse().map_err(|_| format!("`{spec}`: process count is not a number"))?;
    let store = match store {
        "memory" => Store::Memory,
        "redis" => Store::Redis,
        "cluster" => Store::Cluster,
        other => {
            return Err(format!("`{spec}`: unknown store `{other}` (memory, redis or cluster)"));
        }
    };
    match (store, n) {
        (_, 0) => Err(format!("`{spec}`: at least one broker process")),
        (Store::Memory, 2..) => Err(format!("`{spec}`: the memory store lives in one process")),
        _ => Ok((store, n)),
    }
}

/// Sleep overshoot of an idle connection that is not counted as latency:
/// tokio's timer wheel fires at millisecond granularity.
pub const TIMER_SLACK: Duration = Duration::from_millis(2);

/// How long after its scheduled time request `i` of a step offered at
/// `rate` requests per second is due (`i / rate` seconds).
pub fn send_offset(i: u64, rate: u32) -> Duration {
    let nanos = u128::from(i) * 1_000_000_000 / u128::from(rate.max(1));
    Duration::from_nanos(nanos as u64)
}

/// Requests a step offered at `rate` per second for `duration` sends.
pub fn requests_in_step(rate: u32, duration: Duration) -> u64 {
    (u128::from(rate) * duration.as_millis() / 1000) as u64
}

/// Slots each of `hosts` hosts offers so that a sweep over `rates` (each
/// step `step` long) plus `extra` allocations never runs out of capacity:
/// twice what the sweep needs (clients cluster, and placement only looks at
/// nearby hosts), at least `min`, at most the protocol's [`MAX_SLOTS`].
pub fn slots_per_host(rates: &[u32], step: Duration, extra: u64, hosts: u32, min: u32) -> u32 {
    let total: u64 = rates.iter().map(|&r| requests_in_step(r, step)).sum::<u64>() + extra;
    let needed = (2 * total).div_ceil(u64::from(hosts.max(1)));
    (needed.min(u64::from(MAX_SLOTS)) as u32).clamp(min.min(MAX_SLOTS), MAX_SLOTS)
}

/// Latency of one request counted from its scheduled send time, so that a
/// slow answer delays the requests behind it in the measurement too
/// (no coordinated omission). All times are offsets from the step start:
/// `scheduled` when it was due, `picked` when a connection became free to
/// take it, `sent` when it was written, `done` when the answer was read.
///
/// The one thing forgiven is timer slack: when the connection was idle at the
/// scheduled time and only the sleep overshot (by at most [`TIMER_SLACK`]),
/// latency counts from the actual send.
pub fn latency(scheduled: Duration, picked: Duration, sent: Duration, done: Duration) -> Duration {
    let idle = picked <= scheduled;
    let slack = sent.saturating_sub(scheduled);
    let from = if idle && slack <= TIMER_SLACK { sent } else { scheduled };
    done.saturating_sub(from)
}

/// Highest latitude of simulated hosts and clients: nobody plays at the
/// poles, and Redis GEO commands reject latitudes beyond ±85.05°.
pub const MAX_LAT: f64 = 80.0;

/// The `i`th of `n` points spread evenly over the sphere up to ±[`MAX_LAT`]
/// (a Fibonacci lattice): where simulated host `i` stands.
pub fn globe_point(i: u32, n: u32) -> GeoPoint {
    let n = f64::from(n.max(1));
    let z = MAX_LAT.to_radians().sin() * (1.0 - 2.0 * (f64::from(i) + 0.5) / n);
    let golden_angle = 180.0 * (3.0 - 5f64.sqrt());
    let lon = (f64::from(i) * golden_angle).rem_euclid(360.0) - 180.0;
    GeoPoint { lat: z.asin().to_degrees(), lon }
}

/// A pseudo-random point uniform over the sphere up to ±[`MAX_LAT`], fixed
/// by `i`: where the client of allocation `i` is.
pub fn client_point(i: u64) -> GeoPoint {
    let u = unit(splitmix64(i.wrapping_mul(2)));
    let v = unit(splitmix64(i.wrapping_mul(2) + 1));
    let z = MAX_LAT.to_radians().sin() * (2.0 * u - 1.0);
    GeoPoint { lat: z.asin().to_degrees(), lon: 360.0 * v - 180.0 }
}

/// A coarse region label for a location.
pub fn region(point: GeoPoint) -> &'static str {
    match point.lon {
        lon if lon < -30.0 => "americas",
        lon if lon < 60.0 => "emea",
        _ => "apac",
    }
}

/// The ed25519 secret key seed of simulated host `i`: deterministic, so runs
/// are repeatable, and distinct per host.
pub fn host_seed(i: u32) -> [u8; 32] {
    let mut seed = [0u8; 32];
    for (k, chunk) in seed.chunks_exact_mut(8).enumerate() {
        let word = splitmix64(((u64::from(i) << 2) | k as u64) ^ 0x6772_6964_706c_6179);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    seed
}

/// SplitMix64: a tiny, well-mixed hash of a counter.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hash mapped to [0, 1).
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn run_specs_name_a_store_and_a_process_count() {
        assert_eq!(parse_run("memory:1"), Ok((Store::Memory, 1)));
        assert_eq!(parse_run("redis:2"), Ok((Store::Redis, 2)));
        assert_eq!(parse_run("redis"), Ok((Store::Redis, 1)));
        assert_eq!(parse_run("cluster:2"), Ok((Store::Cluster, 2)));
        assert!(parse_run("memory:2").is_err());
        assert!(parse_run("redis:0").is_err());
        assert!(parse_run("redis:x").is_err());
        assert!(parse_run("etcd:1").is_err());
    }

    #[test]
    fn requests_are_spaced_evenly_at_the_offered_rate() {
        assert_eq!(send_offset(0, 5000), Duration::ZERO);
        assert_eq!(send_offset(1, 5000), Duration::from_micros(200));
        assert_eq!(send_offset(15_000, 15_000), Duration::from_secs(1));
        assert_eq!(send_offset(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(requests_in_step(10_000, Duration::from_secs(2)), 20_000);
        assert_eq!(requests_in_step(15_000, MS(2500)), 37_500);
        // Strictly increasing: no two requests share a slot in the schedule.
        assert!((0..10_000).all(|i| send_offset(i, 7_000) < send_offset(i + 1, 7_000)));
    }

    #[test]
    fn capacity_covers_the_sweep_twice_within_protocol_limits() {
        let rates = [2_000, 5_000];
        let step = Duration::from_secs(2);
        // 14,000 allocations, doubled, over 1,000 hosts.
        assert_eq!(slots_per_host(&rates, step, 0, 1_000, 10), 28);
        assert_eq!(slots_per_host(&rates, step, 1_000, 1_000, 10), 30);
        assert_eq!(slots_per_host(&[100], step, 0, 10_000, 10), 10, "at least the minimum");
        assert_eq!(slots_per_host(&[1_000_000], step, 0, 10, 10), MAX_SLOTS, "capped");
        assert_eq!(slots_per_host(&rates, step, 0, 0, 10), MAX_SLOTS, "no hosts: no panic");
    }

    #[test]
    fn latency_counts_from_the_schedule_when_the_generator_was_behind() {
        // Idle connection, sleep overshot by 1 ms: timer slack, not counted.
        assert_eq!(latency(MS(10), MS(5), MS(11), MS(14)), MS(3));
        // Idle, but the send came 5 ms late (a starved generator): counted.
        assert_eq!(latency(MS(10), MS(5), MS(15), MS(18)), MS(8));
        // Every connection was busy until 30 ms: the queueing is latency.
        assert_eq!(latency(MS(10), MS(30), MS(30), MS(32)), MS(22));
        // Never negative.
        assert_eq!(latency(MS(10), MS(10), MS(10), MS(9)), Duration::ZERO);
    }

    #[test]
    fn hosts_cover_the_globe_evenly_with_valid_coordinates() {
        let n = 10_000;
        let points: Vec<GeoPoint> = (0..n).map(|i| globe_point(i, n)).collect();
        assert!(points.iter().all(|p| p.validate().is_ok() && p.lat.abs() <= MAX_LAT));
        let north = points.iter().filter(|p| p.lat > 0.0).count();
        assert_eq!(north, 5_000);
        let americas = points.iter().filter(|p| region(**p) == "americas").count();
        // (180 - 30) / 360 of the longitudes.
        assert!((americas as f64 / f64::from(n) - 150.0 / 360.0).abs() < 0.01, "{americas}");
    }

    #[test]
    fn clients_are_uniform_over_the_sphere_and_repeatable() {
        let points: Vec<GeoPoint> = (0..20_000).map(client_point).collect();
        assert!(points.iter().all(|p| p.validate().is_ok() && p.lat.abs() <= MAX_LAT));
        assert_eq!(client_point(42), client_point(42));
        // Uniform on the sphere: the band above 30° north holds
        // (sin 80° - sin 30°) / (2 sin 80°) of the area.
        let high = points.iter().filter(|p| p.lat > 30.0).count() as f64 / 20_000.0;
        let band = (80f64.to_radians().sin() - 0.5) / (2.0 * 80f64.to_radians().sin());
        assert!((high - band).abs() < 0.01, "{high} vs {band}");
        let east = points.iter().filter(|p| p.lon > 0.0).count() as f64 / 20_000.0;
        assert!((east - 0.5).abs() < 0.02, "{east}");
    }

    #[test]
    fn host_keys_are_deterministic_and_distinct() {
        assert_eq!(host_seed(7), host_seed(7));
        let seeds: HashSet<[u8; 32]> = (0..20_000).map(host_seed).collect();
        assert_eq!(seeds.len(), 20_000);
    }
}
