//! Two broker processes on one real Redis, and on a real Redis Cluster (3 masters, 3
//! replicas): 1,000 concurrent allocations for 100 slots give exactly 100 sessions and 900
//! clean refusals, and a broker killed mid-claims leaks no slot.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use gridplay_protocol::host_auth::{HOST_AUTH_HEADER, sign_request};
use gridplay_protocol::token::encode_public_key;
use gridplay_protocol::{AllocateResponse, GeoPoint, HostRegistration, Profile, SlotOffer};
use gridplay_session_broker::testing::{RedisCluster, RedisServer};
use reqwest::StatusCode;

const HOSTS: u8 = 10;
const SLOTS_PER_HOST: u32 = 10;
const REQUESTS: usize = 1000;
const REQUEST: &str = r#"{"app":"orbit","profile":"game","width":1280,"height":720,"fps":60}"#;

/// One test of this file at a time: each runs brokers and Redis servers that load every core.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

struct Broker {
    child: Child,
    url: String,
}

impl Broker {
    fn spawn(redis: &str, key_file: &std::path::Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(env!("CARGO_BIN_EXE_gridplay"))
            .args(["broker", "--listen", &format!("127.0.0.1:{port}"), "--redis-url", redis])
            .arg("--key-file")
            .arg(key_file)
            // Long enough for the whole burst on a loaded machine, short enough to watch lapse.
            .args(["--token-ttl-ms", "5000", "--allocations-per-ip", "0"])
            .env("RUST_LOG", "warn,redis=error")
            .stdout(Stdio::null())
            .spawn()
            .expect("gridplay binary");
        Self { child, url: format!("http://127.0.0.1:{port}") }
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{}/v1/apps", self.url)).send().await.is_err() {
            assert!(Instant::now() < deadline, "broker {} never came up", self.url);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn host_key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i + 1; 32])
}

async fn signed_post(
    http: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    path: &str,
    body: String,
) -> StatusCode {
    let auth = sign_request(key, "POST", path, now_ms(), body.as_bytes());
    let response = http
        .post(format!("{base}{path}"))
        .header(HOST_AUTH_HEADER, auth)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    response.status()
}

async fn register_hosts(http: &reqwest::Client, base: &str) {
    for i in 0..HOSTS {
        let key = host_key(i);
        let registration = HostRegistration {
            host_id: encode_public_key(&key.verifying_key()),
            whep_url: format!("http://127.0.0.1:{}/whep", 20_000 + u32::from(i)),
            ping_url: format!("http://127.0.0.1:{}/ping", 20_000 + u32::from(i)),
            gpu: "simulated".into(),
            region: "local".into(),
            location: GeoPoint { lat: f64::from(i), lon: 0.0 },
            offers: vec![SlotOffer {
                profile: Profile::Game,
                slots: SLOTS_PER_HOST,
                max_width: 1920,
                max_height: 1080,
                max_fps: 60,
            }],
            price_per_block: 1,
            quic: None,
            payout_address: None,
            apps: Vec::new(),
            payout_proof: None,
            probation: false,
        };
        let status = signed_post(
            http,
            base,
            &key,
            "/v1/hosts",
            serde_json::to_string(&registration).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// Keeps the simulated hosts' leases alive until dropped.
fn heartbeat_hosts(http: reqwest::Client, base: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            for i in 0..HOSTS {
                let key = host_key(i);
                let path =
                    format!("/v1/hosts/{}/heartbeat", encode_public_key(&key.verifying_key()));
                signed_post(&http, &base, &key, &path, r#"{"load":0,"sessions":[]}"#.into()).await;
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
    })
}

async fn free_game_slots(http: &reqwest::Client, base: &str) -> u32 {
    let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(r#"gridplay_broker_free_slots{profile="game"} "#))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_brokers_share_one_redis_without_double_booking_or_leaks() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let redis = RedisServer::start().expect("redis-server (apt-get install redis-server)");
    two_brokers_without_double_booking_or_leaks(&redis.url(), "single").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_brokers_share_one_redis_cluster_without_double_booking_or_leaks() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let cluster =
        RedisCluster::start(3).expect("redis-server and redis-cli (apt-get install redis-server)");
    two_brokers_without_double_booking_or_leaks(&cluster.url(), "cluster").await;
}

/// The proof on the Redis at `redis_url`; `name` tells runs' files apart.
async fn two_brokers_without_double_booking_or_leaks(redis_url: &str, name: &str) {
    let dir = std::env::temp_dir().join(format!("gridplay-brokers-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("broker.key");
    std::fs::write(&key_file, [7u8; 32]).unwrap();
    let a = Broker::spawn(redis_url, &key_file);
    let mut b = Broker::spawn(redis_url, &key_file);
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    a.wait_ready(&http).await;
    b.wait_ready(&http).await;
    register_hosts(&http, &a.url).await;
    let beats = heartbeat_hosts(http.clone(), a.url.clone());

    // 1,000 concurrent allocations, half at each broker.
    let urls = Arc::new([a.url.clone(), b.url.clone()]);
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (http, urls) = (http.clone(), Arc::clone(&urls));
            tokio::spawn(async move {
                let response = http
                    .post(format!("{}/v1/sessions", urls[i % 2]))
                    .header("content-type", "application/json")
                    .body(REQUEST)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let retry_after = response.headers().contains_key("retry-after");
                let body = response.text().await.unwrap();
                (status, retry_after, body)
            })
        })
        .collect();
    let mut sessions: Vec<AllocateResponse> = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (status, retry_after, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => sessions.push(serde_json::from_str(&body).unwrap()),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(retry_after, "503 without Retry-After");
                assert!(body.contains("no_capacity"), "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((sessions.len(), refused), (100, 900));
    let ids: HashSet<&str> = sessions.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(ids.len(), 100, "session ids are unique");
    let mut per_host: HashMap<&str, u32> = HashMap::new();
    for s in &sessions {
        *per_host.entry(s.host_id.as_str()).or_default() += 1;
    }
    assert_eq!(per_host.len(), usize::from(HOSTS));
    assert!(per_host.values().all(|&n| n == SLOTS_PER_HOST), "{per_host:?}");
    assert_eq!(free_game_slots(&http, &a.url).await, 0);

    // Unconfirmed reservations lapse; then kill broker B in the middle of a
    // burst of claims: nothing it reserved stays held.
    let deadline = Instant::now() + Duration::from_secs(30);
    while free_game_slots(&http, &a.url).await < 100 {
        assert!(Instant::now() < deadline, "reservations never lapsed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let burst: Vec<_> = (0..300)
        .map(|_| {
            let (http, url) = (http.clone(), b.url.clone());
            tokio::spawn(async move {
                let _ = http
                    .post(format!("{url}/v1/sessions"))
                    .header("content-type", "application/json")
                    .body(REQUEST)
                    .send()
                    .await;
            })
        })
        .collect();
    while free_game_slots(&http, &a.url).await == 100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    for task in burst {
        let _ = task.await;
    }
    let held = 100 - free_game_slots(&http, &a.url).await;
    assert!(held > 0, "the burst claimed slots before the kill");
    let deadline = Instant::now() + Duration::from_secs(30);
    while free_game_slots(&http, &a.url).await < 100 {
        assert!(Instant::now() < deadline, "slots leaked by the killed broker");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    beats.abort();
    let _ = std::fs::remove_dir_all(dir);
}

/// One allocation of the churn load: when, what status, whether a 503 said when to retry.
struct Attempt {
    at: Instant,
    /// How long the broker took to answer.
    took: Duration,
    status: StatusCode,
    retry_after: bool,
}

/// The churn load's attempts so far, shared by its tasks.
type Attempts = Arc<std::sync::Mutex<Vec<Attempt>>>;

/// Allocates at `url` and ends the session at once (freeing its slot), recording each
/// attempt in `attempts`, until `stop`.
fn churn(
    http: reqwest::Client,
    url: String,
    attempts: Attempts,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let asked = Instant::now();
            let response = http
                .post(format!("{url}/v1/sessions"))
                .header("content-type", "application/json")
                .body(REQUEST)
                .send()
                .await
                .unwrap();
            let (status, retry_after) =
                (response.status(), response.headers().contains_key("retry-after"));
            let at = Instant::now();
            attempts.lock().unwrap().push(Attempt { at, took: at - asked, status, retry_after });
            if status == StatusCode::CREATED {
                let session: AllocateResponse = response.json().await.unwrap();
                // Ended at once; one that fails to end (mid-failover) lapses unconfirmed.
                let _ = http
                    .delete(format!("{url}/v1/sessions/{}", session.session_id))
                    .bearer_auth(&session.token)
                    .send()
                    .await;
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    })
}

/// Not yet reliable: about one run in three, a write a failover lost leaves a session unreadable
/// (its index on another master) or a slot held. Run it with `--ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a failover can still lose writes that span slots"]
async fn a_cluster_master_killed_mid_churn_loses_no_confirmed_session_and_brokers_recover() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut cluster =
        RedisCluster::start(3).expect("redis-server and redis-cli (apt-get install redis-server)");
    let url = cluster.url();
    let fault = async {
        let port = cluster.kill_a_master().unwrap();
        format!("master on port {port} killed")
    };
    outage_under_churn(&url, "failover", fault).await;
}

/// A single Redis that keeps every write in its append-only file (fsync on each): killed with
/// SIGKILL mid-churn and started again from that file a second later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_killed_mid_churn_and_restarted_from_its_aof_loses_no_confirmed_session() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let dir = std::env::temp_dir().join(format!("gridplay-aof-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis =
        RedisServer::start_durable(&dir).expect("redis-server (apt-get install redis-server)");
    let url = redis.url();
    let fault = async {
        redis.kill().unwrap();
        // The outage: a second with no Redis at all.
        tokio::time::sleep(Duration::from_secs(1)).await;
        redis.restart().unwrap();
        "redis-server killed, restarted from its AOF 1 s later".to_owned()
    };
    outage_under_churn(&url, "aof-restart", fault).await;
    drop(redis);
    let _ = std::fs::remove_dir_all(dir);
}

/// Two brokers on the Redis at `redis_url` confirm ten sessions, then place and end sessions
/// in a churn while `fault` strikes the store: every answer is a placement or a 503 with
/// Retry-After, the brokers place again within a bounded time, and no confirmed session is
/// lost.
async fn outage_under_churn(
    redis_url: &str,
    name: &str,
    fault: impl std::future::Future<Output = String>,
) {
    let dir = std::env::temp_dir().join(format!("gridplay-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("broker.key");
    std::fs::write(&key_file, [7u8; 32]).unwrap();
    let (a, b) = (Broker::spawn(redis_url, &key_file), Broker::spawn(redis_url, &key_file));
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    a.wait_ready(&http).await;
    b.wait_ready(&http).await;
    register_hosts(&http, &a.url).await;
    let beats = heartbeat_hosts(http.clone(), a.url.clone());

    // Ten sessions, confirmed by their hosts, before the failure.
    let hosts: HashMap<String, SigningKey> = (0..HOSTS)
        .map(|i| (encode_public_key(&host_key(i).verifying_key()), host_key(i)))
        .collect();
    let mut confirmed = Vec::new();
    for _ in 0..10 {
        let response = http
            .post(format!("{}/v1/sessions", a.url))
            .header("content-type", "application/json")
            .body(REQUEST)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let session: AllocateResponse = response.json().await.unwrap();
        let path = format!("/v1/hosts/{}/sessions/{}", session.host_id, session.session_id);
        let body = r#"{"state":"running"}"#.to_owned();
        assert_eq!(
            signed_post(&http, &a.url, &hosts[&session.host_id], &path, body).await,
            StatusCode::OK
        );
        confirmed.push(session.session_id);
    }

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attempts: Attempts = Arc::default();
    let load = [&a.url, &b.url]
        .map(|url| churn(http.clone(), url.clone(), Arc::clone(&attempts), Arc::clone(&stop)));
    let killed_at = Instant::now();
    let what = fault.await;
    // Until both brokers have placed for 3 s on end with no refusal, the Cluster's node
    // timeout (2 s) long past.
    let deadline = killed_at + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "the brokers never recovered from the failover");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let attempts = attempts.lock().unwrap();
        let last_refusal = attempts
            .iter()
            .filter(|t| t.status != StatusCode::CREATED)
            .map(|t| t.at)
            .max()
            .unwrap_or(killed_at);
        let placed_since = attempts.iter().filter(|t| t.at > last_refusal).count();
        if killed_at.elapsed() > Duration::from_secs(3)
            && last_refusal.elapsed() > Duration::from_secs(3)
            && placed_since > 0
        {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    beats.abort();
    let attempts = std::mem::take(&mut *attempts.lock().unwrap());

    // Every answer was a placement or a clean 503 saying when to retry; never a 500.
    let bad: Vec<_> = attempts
        .iter()
        .filter(|t| {
            !(t.status == StatusCode::CREATED
                || (t.status == StatusCode::SERVICE_UNAVAILABLE && t.retry_after))
        })
        .map(|t| t.status)
        .collect();
    assert!(bad.is_empty(), "answers other than 201 or 503 with Retry-After: {bad:?}");
    let failed: Vec<&Attempt> =
        attempts.iter().filter(|t| t.status != StatusCode::CREATED).collect();
    let gap = failed.iter().map(|t| t.at).max().map_or(Duration::ZERO, |last| last - killed_at);
    let placed =
        attempts.iter().filter(|t| t.at > killed_at && t.status == StatusCode::CREATED).count();
    let slowest = attempts.iter().map(|t| t.took).max().unwrap_or_default();
    eprintln!(
        "{name}: {what}; {placed} placed after it, {} refused with 503, last refusal {} ms after the fault, slowest answer {} ms",
        failed.len(),
        gap.as_millis(),
        slowest.as_millis()
    );
    assert!(slowest < Duration::from_secs(10), "an answer took {slowest:?}");
    assert!(placed > 0, "nothing was placed after the failover");
    assert!(gap < Duration::from_secs(20), "503s for {gap:?} after the kill");

    // No confirmed session was lost: every one is still running, by either broker.
    for (i, id) in confirmed.iter().enumerate() {
        let url = if i % 2 == 0 { &a.url } else { &b.url };
        let record: serde_json::Value =
            http.get(format!("{url}/v1/sessions/{id}")).send().await.unwrap().json().await.unwrap();
        assert_eq!(record["state"], "running", "{id}: {record}");
    }
    // Slots are placed again: at least the ten running ones stay held, and no more than all.
    let free = free_game_slots(&http, &a.url).await;
    assert!(free <= 100 - 10, "{free} slots free with ten sessions running");
    let _ = std::fs::remove_dir_all(dir);
}
