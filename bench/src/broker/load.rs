//! The load: a fleet of simulated hosts that register and heartbeat with
//! signed requests, and players allocating sessions at a fixed arrival rate
//! (open loop) or as fast as answers come (closed loop, to fill a broker).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use gridplay_protocol::host_auth::{HOST_AUTH_HEADER, SigningClock, sign_request};
use gridplay_protocol::token::encode_public_key;
use gridplay_protocol::{AllocateRequest, HostRegistration, Profile, SlotOffer};
use hdrhistogram::Histogram;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde::Serialize;
use tokio::time::Instant;

use super::http::Conn;
use super::plan::{
    client_point, globe_point, host_seed, latency, region, requests_in_step, send_offset,
};
use super::report::Outcomes;

/// Distinct allocation bodies cycled through (clients at different places).
const BODIES: u64 = 4096;

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// A latency histogram in microseconds, 1 µs to 60 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// One simulated host: its key and the requests it sends.
struct SimHost {
    key: SigningKey,
    registration: Bytes,
    heartbeat_path: String,
    /// Its requests' signing times, never one twice.
    signing: SigningClock,
}

/// Simulated hosts spread evenly over the globe, each offering the same
/// number of game slots, with keys derived from their index.
pub struct Fleet {
    hosts: Vec<SimHost>,
    /// Game slots each host offers.
    pub slots_per_host: u32,
}

impl Fleet {
    /// Builds `n` hosts of `slots` game slots (1920x1080@60) each.
    pub fn new(n: u32, slots: u32) -> Self {
        let hosts = (0..n)
            .map(|i| {
                let key = SigningKey::from_bytes(&host_seed(i));
                let host_id = encode_public_key(&key.verifying_key());
                let location = globe_point(i, n);
                let base = format!("http://10.{}.{}.{}:8081", i >> 16 & 255, i >> 8 & 255, i & 255);
                let registration = HostRegistration {
                    host_id: host_id.clone(),
                    whep_url: format!("{base}/whep"),
                    ping_url: format!("{base}/ping"),
                    gpu: "simulated RTX 4070".into(),
                    region: region(location).into(),
                    location,
                    offers: vec![SlotOffer {
                        profile: Profile::Game,
                        slots,
                        max_width: 1920,
                        max_height: 1080,
                        max_fps: 60,
                    }],
                    price_per_block: u64::from(1 + i % 5),
                    quic: None,
                    payout_address: None,
                    apps: Vec::new(),
                    payout_proof: None,
                    probation: false,
                };
                SimHost {
                    key,
                    registration: serde_json::to_vec(&registration).expect("serialisable").into(),
                    heartbeat_path: format!("/v1/hosts/{host_id}/heartbeat"),
                    signing: SigningClock::default(),
                }
            })
            .collect();
        Self { hosts, slots_per_host: slots }
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Registers host `i` over `conn`.
    async fn register(&self, i: usize, conn: &mut Conn) -> anyhow::Result<StatusCode> {
        let host = &self.hosts[i];
        let auth = signature(host, "/v1/hosts", &host.registration);
        let header = Some((&AUTH, auth));
        let (status, _) =
            conn.send(Method::POST, "/v1/hosts", header, host.registration.clone()).await?;
        Ok(status)
    }

    /// Registers every host at `addr`, `concurrency` at a time.
    pub async fn register_all(
        self: &Arc<Self>,
        addr: SocketAddr,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        let next = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (fleet, next) = (Arc::clone(self), Arc::clone(&next));
                tokio::spawn(async move {
                    let mut conn = Conn::new(addr);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        if i >= fleet.len() {
                            return Ok(());
                        }
                        let status = fleet.register(i, &mut conn).await?;
                        anyhow::ensure!(status == StatusCode::OK, "registering host {i}: {status}");
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await??;
        }
        Ok(())
    }
}

static AUTH: HeaderName = HeaderName::from_static(HOST_AUTH_HEADER);

fn signature(host: &SimHost, path: &str, body: &[u8]) -> HeaderValue {
    let auth = sign_request(&host.key, "POST", path, host.signing.next(unix_ms()), body);
    HeaderValue::from_str(&auth).expect("signature header is ASCII")
}

/// How the heartbeats fared while they ran.
#[derive(Debug, Clone, Serialize)]
pub struct HeartbeatStats {
    /// Heartbeats per second scheduled (hosts / period).
    pub scheduled_per_s: f64,
    /// Heartbeats sent.
    pub sent: u64,
    /// Answered 200.
    pub ok: u64,
    /// Answered 404 (the host's lease had lapsed): the host registered again.
    pub reregistered: u64,
    /// Other statuses, transport errors and timeouts.
    pub errors: u64,
    /// 99th percentile latency from the scheduled time, ms.
    pub p99_ms: f64,
}

/// Heartbeats running in the background until [`Heartbeats::stop`].
pub struct Heartbeats {
    stop: Arc<AtomicBool>,
    scheduled_per_s: f64,
    workers: Vec<tokio::task::JoinHandle<(HeartbeatStats, Histogram<u64>)>>,
}

impl Heartbeats {
    /// Every host heartbeats once per `period`, the fleet's beats spread
    /// evenly over it, round-robin over `conns` connections to `targets`.
    pub fn start(
        fleet: &Arc<Fleet>,
        targets: &[SocketAddr],
        conns: usize,
        period: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let hosts = fleet.len().max(1) as u64;
        let interval_ns = period.as_nanos() as u64 / hosts;
        let workers = (0..conns)
            .map(|w| {
                let (fleet, stop, next) = (Arc::clone(fleet), Arc::clone(&stop), Arc::clone(&next));
                let mut conn = Conn::new(targets[w % targets.len()]);
                tokio::spawn(async move {
                    let mut stats = HeartbeatStats {
                        scheduled_per_s: 0.0,
                        sent: 0,
                        ok: 0,
                        reregistered: 0,
                        errors: 0,
                        p99_ms: 0.0,
                    };
                    let mut histogram = new_histogram();
                    let body = Bytes::from_static(br#"{"load":0.3,"sessions":[]}"#);
                    while !stop.load(Ordering::Relaxed) {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let due = start + Duration::from_nanos(k * interval_ns);
                        tokio::time::sleep_until(due).await;
                        let host = &fleet.hosts[(k % hosts) as usize];
                        let auth = signature(host, &host.heartbeat_path, &body);
                        let sent = conn
                            .send(
                                Method::POST,
                                &host.heartbeat_path,
                                Some((&AUTH, auth)),
                                body.clone(),
                            )
                            .await;
                        histogram.saturating_record(due.elapsed().as_micros() as u64);
                        stats.sent += 1;
                        match sent.map(|(status, _)| status) {
                            Ok(StatusCode::OK) => stats.ok += 1,
                            Ok(StatusCode::NOT_FOUND) => {
                                stats.reregistered += 1;
                                let _ = fleet.register((k % hosts) as usize, &mut conn).await;
                            }
                            _ => stats.errors += 1,
                        }
                    }
                    (stats, histogram)
                })
            })
            .collect();
        let scheduled_per_s = hosts as f64 / period.as_secs_f64();
        Self { stop, scheduled_per_s, workers }
    }

    /// Stops the heartbeats and sums up how they went.
    pub async fn stop(self) -> HeartbeatStats {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = HeartbeatStats {
            scheduled_per_s: self.scheduled_per_s,
            sent: 0,
            ok: 0,
            reregistered: 0,
            errors: 0,
            p99_ms: 0.0,
        };
        let mut histogram = new_histogram();
        for worker in self.workers {
            if let Ok((stats, h)) = worker.await {
                total.sent += stats.sent;
                total.ok += stats.ok;
                total.reregistered += stats.reregistered;
                total.errors += stats.errors;
                let _ = histogram.add(&h);
            }
        }
        if !histogram.is_empty() {
            total.p99_ms = histogram.value_at_quantile(0.99) as f64 / 1e3;
        }
        total
    }
}

/// Allocation request bodies (1280x720@60 "orbit" from clients spread over
/// the globe), cycled through by request index.
pub fn allocation_bodies() -> Arc<Vec<Bytes>> {
    let bodies = (0..BODIES)
        .map(|i| {
            let request = AllocateRequest {
                app: "orbit".into(),
                profile: Profile::Game,
                width: 1280,
                height: 720,
                fps: 60,
                location: Some(client_point(i)),
                rtt_samples: None,
                max_rtt_ms: None,
                client_key: None,
                max_price_per_block: None,
            };
            Bytes::from(serde_json::to_vec(&request).expect("serialisable"))
        })
        .collect();
    Arc::new(bodies)
}

/// What one open-loop step measured.
pub struct StepRaw {
    /// How the requests ended.
    pub outcomes: Outcomes,
    /// Latency from the scheduled send time, µs.
    pub latency_us: Histogram<u64>,
    /// From the step's start to its last answer (at least the step's length).
    pub seconds: f64,
}

/// Sends `rate` allocations per second for `duration` over `conns`
/// (reused across steps), each due at its scheduled time whatever the answers
/// before it did; what is still unsent `grace` after the step is missed.
pub async fn open_loop(
    conns: &mut Vec<Conn>,
    bodies: &Arc<Vec<Bytes>>,
    rate: u32,
    duration: Duration,
    grace: Duration,
) -> StepRaw {
    let n = requests_in_step(rate, duration);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(5);
    let deadline = duration + grace;
    let workers: Vec<_> = conns
        .drain(..)
        .map(|mut conn| {
            let (next, bodies) = (Arc::clone(&next), Arc::clone(bodies));
            tokio::spawn(async move {
                let mut outcomes = Outcomes::default();
                let mut histogram = new_histogram();
                let mut last = Duration::ZERO;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let scheduled = send_offset(i, rate);
                    let picked = Instant::now().saturating_duration_since(start);
                    if picked > deadline {
                        outcomes.missed += 1;
                        histogram.saturating_record((picked - scheduled).as_micros() as u64);
                        continue;
                    }
                    if scheduled > picked {
                        tokio::time::sleep_until(start + scheduled).await;
                    }
                    let sent = start.elapsed();
                    let body = bodies[(i % bodies.len() as u64) as usize].clone();
                    let status = conn.post("/v1/sessions", body).await;
                    let done = start.elapsed();
                    match status {
                        Ok(StatusCode::CREATED) => outcomes.created += 1,
                        Ok(StatusCode::SERVICE_UNAVAILABLE) => outcomes.no_capacity += 1,
                        _ => outcomes.errors += 1,
                    }
                    let took = latency(scheduled, picked, sent, done);
                    histogram.saturating_record(took.as_micros() as u64);
                    last = last.max(done);
                }
                (conn, outcomes, histogram, last)
            })
        })
        .collect();
    let mut raw =
        StepRaw { outcomes: Outcomes::default(), latency_us: new_histogram(), seconds: 0.0 };
    let mut last = duration;
    for worker in workers {
        let (conn, outcomes, histogram, worker_last) = worker.await.expect("load worker");
        conns.push(conn);
        raw.outcomes.add(&outcomes);
        let _ = raw.latency_us.add(&histogram);
        last = last.max(worker_last);
    }
    raw.seconds = last.as_secs_f64();
    raw
}

/// What a closed-loop fill did.
#[derive(Debug, Clone, Serialize)]
pub struct FillStats {
    /// Sessions allocated (201).
    pub created: u64,
    /// 503 answers.
    pub no_capacity: u64,
    /// Other failures.
    pub errors: u64,
    /// Seconds the fill took.
    pub seconds: f64,
}

/// Allocates sessions over `conns` connections to `addr`, each sending its
/// next request as soon as the last is answered, until `count` sessions
/// exist or `limit` passes.
pub async fn fill(
    addr: SocketAddr,
    conns: usize,
    bodies: &Arc<Vec<Bytes>>,
    count: u64,
    limit: Duration,
) -> FillStats {
    let created = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|w| {
            let (created, bodies) = (Arc::clone(&created), Arc::clone(bodies));
            tokio::spawn(async move {
                let mut conn = Conn::new(addr);
                let (mut no_capacity, mut errors) = (0u64, 0u64);
                let mut i = w as u64;
                while created.load(Ordering::Relaxed) < count && started.elapsed() < limit {
                    let body = bodies[(i % bodies.len() as u64) as usize].clone();
                    i += conns as u64;
                    match conn.post("/v1/sessions", body).await {
                        Ok(StatusCode::CREATED) => {
                            created.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(StatusCode::SERVICE_UNAVAILABLE) => no_capacity += 1,
                        _ => errors += 1,
                    }
                }
                (no_capacity, errors)
            })
        })
        .collect();
    let mut stats = FillStats { created: 0, no_capacity: 0, errors: 0, seconds: 0.0 };
    for worker in workers {
        let (no_capacity, errors) = worker.await.expect("fill worker");
        stats.no_capacity += no_capacity;
        stats.errors += errors;
    }
    stats.created = created.load(Ordering::Relaxed);
    stats.seconds = started.elapsed().as_secs_f64();
    stats
}
