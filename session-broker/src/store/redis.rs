//! The Redis store: many broker replicas share one Redis (or a Cluster).
//!
//! Every key of a host carries the host id as its hash tag, so the scripts
//! that claim and free slots touch one Cluster slot:
//! - `gp:{H}:host`  hash: `reg` (registration JSON), `seen` (ms), `cap:<profile>`, `used:<profile>`
//! - `gp:{H}:live`  set of the host's sessions not yet ended
//! - `gp:{H}:s:<id>` hash: `record` (JSON), `state`, `profile`; expires after it ends
//!
//! Global keys, each used alone: `gp:geo` (GEO set of hosts), `gp:seen`
//! (hosts by last heartbeat), `gp:deadlines` (reservations by confirm
//! deadline) and `gp:sess:<id>` (session → host).
//!
//! A claim is one round trip: the index, the deadline and the claim script
//! go in one pipeline, in that order. Placement reads a replica-local copy of
//! the live hosts and their counters ([`SessionStore::cached_candidates`]),
//! re-read in the background every [`CACHE_REFRESH_MS`] and corrected by every
//! claim's answer; the claim script alone decides whether a slot is free.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use gridplay_protocol::capacity::CapacityVerdict;
use gridplay_protocol::network::Checks;
use gridplay_protocol::{
    App, GeoPoint, Heartbeat, HeartbeatAck, HostRegistration, Profile, SessionRecord, SessionState,
};
use redis::{AsyncCommands, Script};

use super::grid::Grid;
use super::redis_connection::{Order, RedisConnection, RedisTarget};
use super::{HostView, Load, SessionStore, StoreTiming, Want, apps_of, distance_km};
use crate::BrokerError;
use crate::placement::{INITIAL_REPUTATION, REPUTATION_WEIGHT};

/// How long an ended session stays readable, in seconds.
const RETENTION_S: u64 = 24 * 3600;
/// Most lapsed reservations one sweep handles.
const SWEEP_BATCH: isize = 1000;

const GEO: &str = "gp:geo";
const SEEN: &str = "gp:seen";
const DEADLINES: &str = "gp:deadlines";
/// Hosts whose capacity check is due, scored by when.
const CAPACITY_DUE: &str = "gp:capacity-due";
/// Checker reports counted (`reports`), and of those found delivered (`delivered`).
const CHECKS: &str = "gp:checks";

/// Redis geo indexes stop at ±85.05112878° (Web Mercator) and searches miss
/// points at the very edge; nearer the poles a point is indexed at ±85°
/// (distances are still computed exactly).
fn geo_lat(lat: f64) -> f64 {
    lat.clamp(-85.0, 85.0)
}

fn host_key(host: &str) -> String {
    format!("gp:{{{host}}}:host")
}
fn live_key(host: &str) -> String {
    format!("gp:{{{host}}}:live")
}
fn session_key(host: &str, session: &str) -> String {
    format!("gp:{{{host}}}:s:{session}")
}
fn capacity_key(host: &str) -> String {
    format!("gp:{{{host}}}:capacity")
}
fn index_key(session: &str) -> String {
    format!("gp:sess:{session}")
}

fn profile_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Game => "game",
        Profile::Phone => "phone",
    }
}

fn state_name(state: SessionState) -> &'static str {
    match state {
        SessionState::Allocated => "allocated",
        SessionState::Running => "running",
        SessionState::Ended => "ended",
    }
}

fn parse_state(name: &str) -> Result<SessionState, BrokerError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| BrokerError::Store(format!("unknown session state `{name}`")))
}

impl From<redis::RedisError> for BrokerError {
    fn from(e: redis::RedisError) -> Self {
        BrokerError::Store(e.to_string())
    }
}

impl From<serde_json::Error> for BrokerError {
    fn from(e: serde_json::Error) -> Self {
        BrokerError::Store(format!("corrupt record: {e}"))
    }
}

/// How old (ms) the candidate cache may get before a request starts a
/// background re-read.
pub const CACHE_REFRESH_MS: u64 = 250;
/// How old (ms) the candidate cache may get before requests wait for a re-read.
const CACHE_MAX_AGE_MS: u64 = 2_000;
/// Hosts read per pipeline when re-reading the cache.
const CACHE_CHUNK: usize = 512;
/// Radii (km) the exact nearby search widens through; the last is half the
/// Earth's circumference, so the whole globe.
const SEARCH_RADII_KM: [u32; 3] = [1_000, 4_000, 20_038];

/// Answers of the claim script (see `lua/claim.lua`); a success answers the
/// profile's used slots after the claim (at least 1).
const CLAIM_FULL: i64 = 0;
const CLAIM_HOST_LOST: i64 = -1;

/// Index of a profile's counter in [`CachedHost::used`].
fn profile_index(profile: Profile) -> usize {
    match profile {
        Profile::Game => 0,
        Profile::Phone => 1,
    }
}

/// A live host as this replica last read it.
struct CachedHost {
    registration: Arc<HostRegistration>,
    /// Last heartbeat, Unix ms; 0 once a claim found it lost.
    seen_ms: AtomicU64,
    /// Used slots per profile ([`profile_index`]); `u32::MAX` once a claim
    /// found the profile full.
    used: [AtomicU32; 2],
    /// What checkers found (as of the read).
    reputation: f64,
}

/// The live hosts at one moment, indexed for nearest-first search.
struct Snapshot {
    /// When it was read, Unix ms.
    taken_ms: u64,
    hosts: Vec<CachedHost>,
    by_id: HashMap<String, usize>,
    grid: Grid,
}

/// This replica's copy of the live hosts, for placement.
#[derive(Default)]
struct CandidateCache {
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// A background re-read is under way.
    refreshing: AtomicBool,
    /// Serialises re-reads.
    reading: tokio::sync::Mutex<()>,
}

impl CandidateCache {
    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.read().expect("cache lock").clone()
    }

    /// Applies a claim's answer to the cached counters.
    fn learn(&self, host: &str, profile: Profile, answer: i64) {
        let Some(snapshot) = self.current() else { return };
        let Some(cached) = snapshot.by_id.get(host).map(|&i| &snapshot.hosts[i]) else { return };
        let used = &cached.used[profile_index(profile)];
        match answer {
            CLAIM_HOST_LOST => cached.seen_ms.store(0, Ordering::Relaxed),
            CLAIM_FULL => used.store(u32::MAX, Ordering::Relaxed),
            n if n > 0 => used.store(u32::try_from(n).unwrap_or(u32::MAX), Ordering::Relaxed),
            _ => {}
        }
    }
}

/// Parsed registrations by host, with the revision they were read at.
type RegistrationCache = Mutex<HashMap<String, (u64, Arc<HostRegistration>)>>;

/// Most registrations a replica keeps parsed in memory.
const REGISTRATION_CACHE: usize = 100_000;

/// Broker state in Redis.
#[derive(Clone)]
pub struct RedisStore {
    conn: RedisConnection,
    /// A second connection for cache re-reads, so their long pipelines do
    /// not queue in front of claims.
    cache_conn: RedisConnection,
    cache: Arc<CandidateCache>,
    registrations: Arc<RegistrationCache>,
    timing: StoreTiming,
    claim: Script,
    update: Script,
    lose: Script,
    register: Script,
    heartbeat: Script,
    reputation: Script,
}

impl RedisStore {
    /// Connects to `url`: one server (`redis://127.0.0.1:6379`) or a Cluster
    /// (`redis+cluster://host:port,host:port`; see [`RedisTarget::parse`]).
    pub async fn connect(url: &str, timing: StoreTiming) -> Result<Self, BrokerError> {
        let target = RedisTarget::parse(url)?;
        let conn = RedisConnection::connect(&target).await?;
        let cache_conn = RedisConnection::connect(&target).await?;
        Ok(Self {
            conn,
            cache_conn,
            cache: Arc::default(),
            registrations: Arc::default(),
            timing,
            claim: Script::new(include_str!("lua/claim.lua")),
            update: Script::new(include_str!("lua/update.lua")),
            lose: Script::new(include_str!("lua/lose.lua")),
            register: Script::new(include_str!("lua/register.lua")),
            heartbeat: Script::new(include_str!("lua/heartbeat.lua")),
            reputation: Script::new(include_str!("lua/reputation.lua")),
        })
    }

    /// Ends every session of a lost host and forgets it.
    async fn lose_host(&self, host: &str) -> Result<(), BrokerError> {
        let mut conn = self.conn.clone();
        loop {
            let live: Vec<String> = conn.smembers(live_key(host)).await?;
            let mut invocation = self.lose.prepare_invoke();
            invocation.key(host_key(host)).key(live_key(host));
            for id in &live {
                invocation.key(session_key(host, id));
            }
            let done: i64 = invocation.arg(RETENTION_S).invoke_async(&mut conn).await?;
            if done == 1 {
                break;
            }
        }
        conn.run::<()>(redis::pipe().zrem(SEEN, host).zrem(GEO, host), Order::Free).await?;
        Ok(())
    }

    async fn set_state(
        &self,
        host: &str,
        session: &str,
        state: SessionState,
        only_if: Option<SessionState>,
    ) -> Result<Option<SessionState>, BrokerError> {
        let mut conn = self.conn.clone();
        let result: Option<String> = self
            .update
            .key(host_key(host))
            .key(live_key(host))
            .key(session_key(host, session))
            .arg(session)
            .arg(state_name(state))
            .arg(only_if.map_or("", state_name))
            .arg(RETENTION_S)
            .invoke_async(&mut conn)
            .await?;
        result.as_deref().map(parse_state).transpose()
    }

    /// Marks `key` for `keep_ms` unless it is marked already; whether this
    /// call marked it (`SET NX` is the whole of the check-and-mark).
    async fn mark_once(&self, key: &str, keep_ms: u64) -> Result<bool, BrokerError> {
        let marked: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(keep_ms.max(1))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(marked.is_some())
    }

    /// A host's registration at revision `rev`, from the cache or Redis.
    async fn registration(
        &self,
        host: &str,
        rev: u64,
    ) -> Result<Arc<HostRegistration>, BrokerError> {
        if let Some((cached_rev, registration)) =
            self.registrations.lock().expect("cache lock").get(host)
            && *cached_rev == rev
        {
            return Ok(Arc::clone(registration));
        }
        let mut conn = self.conn.clone();
        let json: Option<String> = conn.hget(host_key(host), "reg").await?;
        let registration = Arc::new(serde_json::from_str::<HostRegistration>(
            &json.ok_or(BrokerError::HostNotFound)?,
        )?);
        let mut cache = self.registrations.lock().expect("cache lock");
        if cache.len() >= REGISTRATION_CACHE {
            cache.clear();
        }
        cache.insert(host.to_owned(), (rev, Arc::clone(&registration)));
        Ok(registration)
    }

    /// The candidate cache, re-read first when missing or too old, and in
    /// the background when merely old.
    async fn snapshot(&self, now_ms: u64) -> Result<Arc<Snapshot>, BrokerError> {
        let age = |s: &Snapshot| now_ms.saturating_sub(s.taken_ms);
        if let Some(snapshot) = self.cache.current()
            && age(&snapshot) < CACHE_MAX_AGE_MS
        {
            if age(&snapshot) >= CACHE_REFRESH_MS
                && !self.cache.refreshing.swap(true, Ordering::AcqRel)
            {
                let store = self.clone();
                tokio::spawn(async move {
                    let _reading = store.cache.reading.lock().await;
                    if let Err(e) = store.read_snapshot(now_ms).await {
                        tracing::warn!("re-reading the candidate cache: {e}");
                    }
                    store.cache.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(snapshot);
        }
        let _reading = self.cache.reading.lock().await;
        match self.cache.current() {
            Some(snapshot) if age(&snapshot) < CACHE_MAX_AGE_MS => Ok(snapshot),
            _ => self.read_snapshot(now_ms).await,
        }
    }

    /// Reads every live host's lease, counters and registration into a new
    /// snapshot (registrations only when their revision changed).
    async fn read_snapshot(&self, now_ms: u64) -> Result<Arc<Snapshot>, BrokerError> {
        let mut conn = self.cache_conn.clone();
        let cutoff = now_ms.saturating_sub(self.timing.lease_ms) + 1;
        let ids: Vec<String> = conn.zrangebyscore(SEEN, cutoff, "+inf").await?;
        // Per host: rev, seen, used:game, used:phone, rep.
        type Row = (Option<u64>, Option<u64>, Option<u32>, Option<u32>, Option<f64>);
        let mut rows: Vec<Row> = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CACHE_CHUNK) {
            let mut pipe = redis::pipe();
            for host in chunk {
                pipe.cmd("HMGET").arg(host_key(host)).arg(&[
                    "rev",
                    "seen",
                    "used:game",
                    "used:phone",
                    "rep",
                ]);
            }
            rows.extend(conn.run::<Vec<Row>>(&pipe, Order::Free).await?);
        }
        let mut registrations: Vec<Option<Arc<HostRegistration>>> = {
            let cache = self.registrations.lock().expect("cache lock");
            ids.iter()
                .zip(&rows)
                .map(|(host, row)| {
                    cache
                        .get(host)
                        .filter(|(rev, _)| Some(*rev) == row.0)
                        .map(|(_, r)| Arc::clone(r))
                })
                .collect()
        };
        let missing: Vec<usize> =
            (0..ids.len()).filter(|&i| registrations[i].is_none() && rows[i].0.is_some()).collect();
        for chunk in missing.chunks(CACHE_CHUNK) {
            let mut pipe = redis::pipe();
            for &i in chunk {
                pipe.hget(host_key(&ids[i]), "reg");
            }
            let jsons: Vec<Option<String>> = conn.run(&pipe, Order::Free).await?;
            let mut cache = self.registrations.lock().expect("cache lock");
            if cache.len() + chunk.len() > REGISTRATION_CACHE {
                cache.clear();
            }
            for (&i, json) in chunk.iter().zip(jsons) {
                let Some(json) = json else { continue };
                let registration = Arc::new(serde_json::from_str::<HostRegistration>(&json)?);
                let rev = rows[i].0.unwrap_or_default();
                cache.insert(ids[i].clone(), (rev, Arc::clone(&registration)));
                registrations[i] = Some(registration);
            }
        }
        let mut hosts = Vec::with_capacity(ids.len());
        let mut by_id = HashMap::with_capacity(ids.len());
        for ((id, row), registration) in ids.into_iter().zip(rows).zip(registrations) {
            let (Some(registration), Some(seen)) = (registration, row.1) else { continue };
            by_id.insert(id, hosts.len());
            hosts.push(CachedHost {
                registration,
                seen_ms: AtomicU64::new(seen),
                used: [AtomicU32::new(row.2.unwrap_or(0)), AtomicU32::new(row.3.unwrap_or(0))],
                reputation: row.4.unwrap_or(INITIAL_REPUTATION),
            });
        }
        let grid = Grid::new(hosts.iter().map(|h| h.registration.location).collect());
        let snapshot = Arc::new(Snapshot { taken_ms: now_ms, hosts, by_id, grid });
        *self.cache.snapshot.write().expect("cache lock") = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    async fn host_of(&self, session: &str) -> Result<String, BrokerError> {
        let mut conn = self.conn.clone();
        let host: Option<String> = conn.get(index_key(session)).await?;
        host.ok_or(BrokerError::SessionNotFound)
    }

    async fn host_alive(&self, host: &str, now_ms: u64) -> Result<bool, BrokerError> {
        let mut conn = self.conn.clone();
        let seen: Option<u64> = conn.hget(host_key(host), "seen").await?;
        Ok(seen.is_some_and(|s| now_ms.saturating_sub(s) < self.timing.lease_ms))
    }

    async fn read(
        &self,
        host: &str,
        session: &str,
        now_ms: u64,
    ) -> Result<SessionRecord, BrokerError> {
        let mut conn = self.conn.clone();
        let (record, state): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(session_key(host, session))
            .arg("record")
            .arg("state")
            .query_async(&mut conn)
            .await?;
        let (Some(record), Some(state)) = (record, state) else {
            return Err(BrokerError::SessionNotFound);
        };
        let mut record: SessionRecord = serde_json::from_str(&record)?;
        record.state = parse_state(&state)?;
        let lapsed = record.state == SessionState::Allocated
            && now_ms >= record.allocated_at_ms + self.timing.confirm_ms;
        if lapsed || (record.state != SessionState::Ended && !self.host_alive(host, now_ms).await?)
        {
            record.state = SessionState::Ended;
        }
        Ok(record)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn register_host(
        &self,
        registration: &HostRegistration,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        let host = registration.host_id.as_str();
        let json = serde_json::to_string(registration)?;
        let mut conn = self.conn.clone();
        loop {
            let mut invocation = self.register.key(host_key(host));
            invocation.key(live_key(host)).arg(now_ms).arg(self.timing.lease_ms).arg(&json);
            for offer in &registration.offers {
                invocation.arg(profile_name(offer.profile)).arg(offer.slots);
            }
            let done: i64 = invocation.invoke_async(&mut conn).await?;
            if done == 1 {
                break;
            }
            self.lose_host(host).await?;
        }
        let loc = registration.location;
        let mut pipe = redis::pipe();
        pipe.geo_add(GEO, (redis::geo::Coord::lon_lat(loc.lon, geo_lat(loc.lat)), host))
            .zadd(SEEN, host, now_ms);
        conn.run::<()>(&pipe, Order::Free).await?;
        Ok(())
    }

    async fn record_check(&self, host_id: &str, delivered: bool) -> Result<f64, BrokerError> {
        let mut conn = self.conn.clone();
        let reputation: Option<f64> = self
            .reputation
            .key(host_key(host_id))
            .arg(u8::from(delivered))
            .arg(REPUTATION_WEIGHT)
            .arg(INITIAL_REPUTATION)
            .invoke_async(&mut conn)
            .await?;
        let reputation = reputation.ok_or(BrokerError::HostNotFound)?;
        let mut pipe = redis::pipe();
        pipe.hincr(CHECKS, "reports", 1).hincr(CHECKS, "delivered", u64::from(delivered));
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(reputation)
    }

    async fn checks(&self) -> Result<Checks, BrokerError> {
        let counted: (Option<u64>, Option<u64>) = redis::cmd("HMGET")
            .arg(CHECKS)
            .arg(&["reports", "delivered"])
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(Checks { reports: counted.0.unwrap_or(0), delivered: counted.1.unwrap_or(0) })
    }

    async fn heartbeat(
        &self,
        host_id: &str,
        beat: &Heartbeat,
        now_ms: u64,
    ) -> Result<HeartbeatAck, BrokerError> {
        let mut conn = self.conn.clone();
        let alive: i64 = self
            .heartbeat
            .key(host_key(host_id))
            .arg(now_ms)
            .arg(self.timing.lease_ms)
            .invoke_async(&mut conn)
            .await?;
        if alive == 0 {
            return Err(BrokerError::HostNotFound);
        }
        let _: () = conn.zadd(SEEN, host_id, now_ms).await?;
        // One round trip for the reputation and every session the host reports (the host's
        // keys share a slot).
        let mut pipe = redis::pipe();
        pipe.hget(host_key(host_id), "rep");
        for id in &beat.sessions {
            pipe.hget(session_key(host_id, id), "state");
        }
        let mut states: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        let reputation = states.remove(0).and_then(|rep| rep.parse::<f64>().ok());
        let ended_sessions = beat
            .sessions
            .iter()
            .zip(states)
            .filter(|(_, state)| state.as_deref().is_none_or(|s| s == "ended"))
            .map(|(id, _)| id.clone())
            .collect();
        let reputation = Some(reputation.unwrap_or(INITIAL_REPUTATION));
        Ok(HeartbeatAck { ended_sessions, reputation, ..HeartbeatAck::default() })
    }

    async fn nearby_hosts(
        &self,
        near: GeoPoint,
        want: Want<'_>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<HostView>, BrokerError> {
        let mut conn = self.conn.clone();
        // Over-fetch: lost hosts and hosts without the profile are filtered below.
        let fetch = limit.max(1) * 2 + 8;
        // Widen the circle only while it holds too few hosts: a small circle
        // costs Redis a few geohash cells, the whole globe every host.
        let mut hosts: Vec<String> = Vec::new();
        for radius in SEARCH_RADII_KM {
            hosts = redis::cmd("GEOSEARCH")
                .arg(GEO)
                .arg("FROMLONLAT")
                .arg(near.lon)
                .arg(geo_lat(near.lat))
                .arg("BYRADIUS")
                .arg(radius)
                .arg("km")
                .arg("ASC")
                .arg("COUNT")
                .arg(fetch)
                .query_async(&mut conn)
                .await?;
            if hosts.len() >= fetch {
                break;
            }
        }
        // One round trip for what changes per allocation (lease, counters,
        // registration revision); registrations themselves are cached per
        // revision and read only when a host re-registered.
        let mut pipe = redis::pipe();
        for host in &hosts {
            pipe.cmd("HMGET").arg(host_key(host)).arg(&[
                "rev",
                "seen",
                "used:game",
                "used:phone",
                "rep",
            ]);
        }
        type Row = (Option<u64>, Option<u64>, Option<u32>, Option<u32>, Option<f64>);
        let rows: Vec<Row> = conn.run(&pipe, Order::Free).await?;
        let mut views = Vec::new();
        for (host, (rev, seen, used_game, used_phone, rep)) in hosts.iter().zip(rows) {
            let (Some(rev), Some(seen)) = (rev, seen) else { continue };
            if now_ms.saturating_sub(seen) >= self.timing.lease_ms {
                continue;
            }
            let registration = self.registration(host, rev).await?;
            if !want.admits(&registration) {
                continue;
            }
            let used = BTreeMap::from([
                (Profile::Game, used_game.unwrap_or(0)),
                (Profile::Phone, used_phone.unwrap_or(0)),
            ]);
            let distance_km = distance_km(near, registration.location);
            let reputation = rep.unwrap_or(INITIAL_REPUTATION);
            views.push(HostView { registration, used, distance_km, reputation });
        }
        views.truncate(limit);
        Ok(views)
    }

    async fn cached_candidates(
        &self,
        near: GeoPoint,
        want: Want<'_>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Option<Vec<HostView>>, BrokerError> {
        let snapshot = self.snapshot(now_ms).await?;
        let ix = profile_index(want.profile);
        let nearest = snapshot.grid.nearest(near, limit, |i| {
            let host = &snapshot.hosts[i];
            let seen = host.seen_ms.load(Ordering::Relaxed);
            want.admits(&host.registration)
                && host.registration.offer(want.profile).is_some_and(|offer| {
                    now_ms.saturating_sub(seen) < self.timing.lease_ms
                        && host.used[ix].load(Ordering::Relaxed) < offer.slots
                })
        });
        let views = nearest
            .into_iter()
            .map(|(distance_km, i)| {
                let host = &snapshot.hosts[i];
                let used = [Profile::Game, Profile::Phone]
                    .map(|p| (p, host.used[profile_index(p)].load(Ordering::Relaxed)));
                HostView {
                    registration: Arc::clone(&host.registration),
                    used: BTreeMap::from(used),
                    distance_km,
                    reputation: host.reputation,
                }
            })
            .collect();
        Ok(Some(views))
    }

    async fn claim(&self, record: &SessionRecord, now_ms: u64) -> Result<bool, BrokerError> {
        let host = record.host_id.as_str();
        let id = record.session_id.as_str();
        let profile = profile_name(record.profile);
        let record = SessionRecord {
            state: SessionState::Allocated,
            allocated_at_ms: now_ms,
            ..record.clone()
        };
        let json = serde_json::to_string(&record)?;
        let (host_k, live_k, session_k) = (host_key(host), live_key(host), session_key(host, id));
        let deadline_member = format!("{host}|{id}");
        let mut conn = self.conn.clone();
        let mut claim = self.claim.prepare_invoke();
        claim.key(&host_k).key(&live_k).key(&session_k);
        claim.arg(now_ms).arg(self.timing.lease_ms).arg(id).arg(profile).arg(&json);
        let index = redis::cmd("SET")
            .arg(index_key(id))
            .arg(host)
            .arg("NX")
            .arg("EX")
            .arg(RETENTION_S)
            .clone();
        let deadline = redis::cmd("ZADD")
            .arg(DEADLINES)
            .arg("NX")
            .arg(now_ms + self.timing.confirm_ms)
            .arg(&deadline_member)
            .clone();
        // In this order: index and deadline go first, so a broker that dies after the claim
        // still leaves the reservation findable and due to lapse.
        type Answers =
            (redis::RedisResult<Option<String>>, redis::RedisResult<i64>, redis::RedisResult<i64>);
        let (indexed, deadline_added, answer): Answers = if conn.is_cluster() {
            // Their keys lie in three slots: one by one, the script last.
            let mut first = redis::pipe();
            first.add_command(index).add_command(deadline);
            let (indexed, deadline_added) = conn.run(&first, Order::Kept).await?;
            (Ok(indexed), Ok(deadline_added), claim.invoke_async(&mut conn).await)
        } else {
            // One round trip.
            let mut pipe = redis::pipe();
            pipe.ignore_errors().add_command(index).add_command(deadline);
            pipe.cmd("EVALSHA").arg(self.claim.get_hash()).arg(3);
            pipe.arg(&host_k).arg(&live_k).arg(&session_k);
            pipe.arg(now_ms).arg(self.timing.lease_ms).arg(id).arg(profile).arg(&json);
            pipe.query_async(&mut conn).await?
        };
        let indexed = indexed?.is_some();
        let deadline_added = deadline_added? == 1;
        let answer = match answer {
            Ok(answer) => answer,
            // Redis forgot the script (restart, SCRIPT FLUSH): load it and claim again.
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                claim.invoke_async(&mut conn).await?
            }
            Err(e) => return Err(e.into()),
        };
        self.cache.learn(host, record.profile, answer);
        let claimed = answer > 0;
        if claimed && indexed {
            // Not waited for on a replica: a claim a failover loses frees the slot for another
            // player, whom the host then turns away (it counts its own slots).
            return Ok(true);
        }
        if claimed {
            // The id is already another host's session: give the slot back.
            self.set_state(host, id, SessionState::Ended, None).await?;
        }
        // Undo only what this call wrote: the index and deadline of an
        // existing session with this id stay.
        let mut undo = redis::pipe();
        if indexed {
            undo.del(index_key(id));
        }
        if deadline_added {
            undo.zrem(DEADLINES, &deadline_member);
        }
        if indexed || deadline_added {
            conn.run::<()>(&undo, Order::Kept).await?;
        }
        Ok(false)
    }

    async fn session(&self, session_id: &str, now_ms: u64) -> Result<SessionRecord, BrokerError> {
        let host = self.host_of(session_id).await?;
        self.read(&host, session_id, now_ms).await
    }

    async fn update_session(
        &self,
        session_id: &str,
        host_id: Option<&str>,
        state: SessionState,
        now_ms: u64,
    ) -> Result<SessionRecord, BrokerError> {
        let host = self.host_of(session_id).await?;
        if host_id.is_some_and(|h| h != host) {
            return Err(BrokerError::WrongHost);
        }
        let current = self.read(&host, session_id, now_ms).await?;
        let target = if current.state == SessionState::Ended { SessionState::Ended } else { state };
        self.set_state(&host, session_id, target, None).await?;
        if target != SessionState::Allocated {
            let mut conn = self.conn.clone();
            // On a replica before its deadline goes, so that a failover keeps the session's state.
            // (WAIT holds this connection for a round trip to the replica: once per session.)
            conn.replicated(&session_key(&host, session_id)).await?;
            let _: () = conn.zrem(DEADLINES, format!("{host}|{session_id}")).await?;
        }
        self.read(&host, session_id, now_ms).await
    }

    async fn sweep(&self, now_ms: u64) -> Result<usize, BrokerError> {
        let mut conn = self.conn.clone();
        let cutoff = now_ms.saturating_sub(self.timing.lease_ms);
        let lost: Vec<String> = conn.zrangebyscore(SEEN, "-inf", cutoff).await?;
        for host in &lost {
            if !self.host_alive(host, now_ms).await? {
                self.lose_host(host).await?;
            }
        }
        let due: Vec<String> =
            conn.zrangebyscore_limit(DEADLINES, "-inf", now_ms, 0, SWEEP_BATCH).await?;
        for entry in due {
            if let Some((host, id)) = entry.split_once('|') {
                self.set_state(host, id, SessionState::Ended, Some(SessionState::Allocated))
                    .await?;
            }
            let _: () = conn.zrem(DEADLINES, &entry).await?;
        }
        Ok(lost.len())
    }

    async fn free_slots(&self, now_ms: u64) -> Result<BTreeMap<Profile, u32>, BrokerError> {
        let mut conn = self.conn.clone();
        let cutoff = now_ms.saturating_sub(self.timing.lease_ms) + 1;
        let hosts: Vec<String> = conn.zrangebyscore(SEEN, cutoff, "+inf").await?;
        let mut free = BTreeMap::new();
        for host in hosts {
            let entry: BTreeMap<String, String> = conn.hgetall(host_key(&host)).await?;
            for (field, cap) in &entry {
                let Some(profile) = field.strip_prefix("cap:") else { continue };
                let profile: Profile =
                    serde_json::from_value(serde_json::Value::String(profile.into()))?;
                let cap: u32 = cap.parse().unwrap_or(0);
                let used: u32 = entry
                    .get(&format!("used:{}", profile_name(profile)))
                    .and_then(|u| u.parse().ok())
                    .unwrap_or(0);
                *free.entry(profile).or_insert(0) += cap.saturating_sub(used);
            }
        }
        Ok(free)
    }

    async fn load_by_region(&self, now_ms: u64) -> Result<BTreeMap<String, Load>, BrokerError> {
        let snapshot = self.snapshot(now_ms).await?;
        let mut loads = BTreeMap::<String, Load>::new();
        let live = snapshot.hosts.iter().filter(|h| {
            now_ms.saturating_sub(h.seen_ms.load(Ordering::Relaxed)) < self.timing.lease_ms
        });
        for host in live {
            let used = |profile| host.used[profile_index(profile)].load(Ordering::Relaxed);
            loads
                .entry(host.registration.region.clone())
                .or_default()
                .add(&host.registration, used);
        }
        Ok(loads)
    }

    async fn offered_apps(&self, now_ms: u64) -> Result<BTreeMap<String, App>, BrokerError> {
        let snapshot = self.snapshot(now_ms).await?;
        let live = snapshot.hosts.iter().filter(|h| {
            now_ms.saturating_sub(h.seen_ms.load(Ordering::Relaxed)) < self.timing.lease_ms
        });
        Ok(apps_of(live.map(|h| &*h.registration)))
    }

    async fn record_check_once(
        &self,
        checker: &str,
        session_id: &str,
        host_id: &str,
        delivered: bool,
        _now_ms: u64,
        keep_ms: u64,
    ) -> Result<Option<f64>, BrokerError> {
        // One slot for every mark.
        let key = format!("gp:{{check}}:{checker}:{session_id}");
        if !self.mark_once(&key, keep_ms).await? {
            return Ok(None);
        }
        let counted = self.record_check(host_id, delivered).await;
        if counted.is_err() {
            let _: Result<(), _> = self.conn.clone().del(&key).await;
        }
        counted.map(Some)
    }

    async fn host(&self, host_id: &str, now_ms: u64) -> Result<Arc<HostRegistration>, BrokerError> {
        if !self.host_alive(host_id, now_ms).await? {
            return Err(BrokerError::HostNotFound);
        }
        let json: Option<String> = self.conn.clone().hget(host_key(host_id), "reg").await?;
        Ok(Arc::new(serde_json::from_str(&json.ok_or(BrokerError::HostNotFound)?)?))
    }

    async fn capacity(&self, host_id: &str) -> Result<Option<CapacityVerdict>, BrokerError> {
        let json: Option<String> = self.conn.clone().get(capacity_key(host_id)).await?;
        Ok(json.map(|json| serde_json::from_str(&json)).transpose()?)
    }

    async fn set_capacity(&self, verdict: &CapacityVerdict) -> Result<(), BrokerError> {
        let host = verdict.host_id.as_str();
        let mut pipe = redis::pipe();
        pipe.set(capacity_key(host), serde_json::to_string(verdict)?);
        match verdict.due_ms {
            Some(due) => pipe.zadd(CAPACITY_DUE, host, due),
            None => pipe.zrem(CAPACITY_DUE, host),
        };
        // The verdict first: a host listed as due always has one to read.
        self.conn.clone().run::<()>(&pipe, Order::Kept).await?;
        Ok(())
    }

    async fn capacity_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<CapacityVerdict>, BrokerError> {
        let mut conn = self.conn.clone();
        let hosts: Vec<String> =
            conn.zrangebyscore_limit(CAPACITY_DUE, "-inf", now_ms, 0, limit as isize).await?;
        let mut due = Vec::with_capacity(hosts.len());
        for host in hosts {
            if let Some(verdict) = self.capacity(&host).await? {
                due.push(verdict);
            }
        }
        Ok(due)
    }

    async fn first_signature_use(
        &self,
        signature: &str,
        _now_ms: u64,
        keep_ms: u64,
    ) -> Result<bool, BrokerError> {
        // Each signature its own slot.
        self.mark_once(&format!("gp:{{{signature}}}:seen"), keep_ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;
    use crate::testing::{RedisCluster, RedisServer};

    fn ids(hosts: &[HostView]) -> Vec<&str> {
        hosts.iter().map(|h| h.registration.host_id.as_str()).collect()
    }

    #[tokio::test]
    async fn cached_candidates_follow_claims_and_skip_full_or_lost_hosts() {
        let server = RedisServer::start().expect("redis-server (apt-get install redis-server)");
        let (a, b) = (
            RedisStore::connect(&server.url(), conformance::TIMING).await.unwrap(),
            RedisStore::connect(&server.url(), conformance::TIMING).await.unwrap(),
        );
        let t0 = 1_000_000;
        a.register_host(&conformance::host("near", 1, 0, 1.0, 1.0), t0).await.unwrap();
        a.register_host(&conformance::host("far", 2, 0, 20.0, 20.0), t0).await.unwrap();
        let here = GeoPoint { lat: 0.0, lon: 0.0 };
        let cached = |store: &RedisStore, now| {
            let store = store.clone();
            async move {
                store
                    .cached_candidates(here, Want { profile: Profile::Game, app: None }, 8, now)
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        assert_eq!(ids(&cached(&a, t0).await), ["near", "far"]);
        assert_eq!(ids(&cached(&b, t0).await), ["near", "far"]);
        // A fills `near`: it knows at once; B learns when its own claim fails.
        let session = |id: &str, host: &str| SessionRecord {
            session_id: id.into(),
            host_id: host.into(),
            app: "orbit".into(),
            profile: Profile::Game,
            allocated_at_ms: t0,
            state: SessionState::Allocated,
        };
        assert!(a.claim(&session("s1", "near"), t0).await.unwrap());
        assert_eq!(ids(&cached(&a, t0).await), ["far"]);
        assert_eq!(ids(&cached(&b, t0).await), ["near", "far"], "stale until corrected");
        assert!(!b.claim(&session("s2", "near"), t0).await.unwrap());
        assert_eq!(ids(&cached(&b, t0).await), ["far"]);
        // The claim on `far` reports its counter.
        assert!(b.claim(&session("s3", "far"), t0).await.unwrap());
        assert_eq!(cached(&b, t0).await[0].used[&Profile::Game], 1);
        // Past the cache's longest age it is read again: the lease of both
        // hosts has run out by then for B, and `near`'s slot is free once
        // its session ends.
        a.update_session("s1", None, SessionState::Ended, t0).await.unwrap();
        let later = t0 + CACHE_MAX_AGE_MS;
        a.heartbeat("near", &Heartbeat { load: 0.0, sessions: vec![] }, later).await.unwrap();
        assert_eq!(ids(&cached(&b, later).await), ["near", "far"]);
        let lost = t0 + conformance::TIMING.lease_ms;
        assert_eq!(ids(&cached(&b, lost).await), ["near"], "far's lease ran out");
        // Nothing is left in the index or the deadlines by failed claims.
        let mut conn = a.conn.clone();
        let index: Option<String> = conn.get(index_key("s2")).await.unwrap();
        assert_eq!(index, None);
        let deadlines: Vec<String> = conn.zrange(DEADLINES, 0, -1).await.unwrap();
        assert_eq!(deadlines, ["far|s3"]);
    }

    #[tokio::test]
    async fn passes_the_conformance_suite_on_a_three_master_three_replica_cluster() {
        let cluster = RedisCluster::start(3)
            .expect("redis-server and redis-cli (apt-get install redis-server)");
        let url = cluster.url();
        conformance::run(|| async {
            let store = RedisStore::connect(&url, conformance::TIMING).await.unwrap();
            assert!(store.conn.is_cluster());
            let mut conn = store.conn.clone();
            let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
            store
        })
        .await;
    }

    #[tokio::test]
    async fn passes_the_conformance_suite_on_a_real_redis() {
        let server = RedisServer::start().expect("redis-server (apt-get install redis-server)");
        let url = server.url();
        conformance::run(|| async {
            let store = RedisStore::connect(&url, conformance::TIMING).await.unwrap();
            let mut conn = store.conn.clone();
            let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
            store
        })
        .await;
    }
}
