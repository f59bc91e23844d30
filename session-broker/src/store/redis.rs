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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gridplay_protocol::{
    GeoPoint, Heartbeat, HeartbeatAck, HostRegistration, Profile, SessionRecord, SessionState,
};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::{HostView, SessionStore, StoreTiming, distance_km};
use crate::BrokerError;

/// How long an ended session stays readable, in seconds.
const RETENTION_S: u64 = 24 * 3600;
/// Most lapsed reservations one sweep handles.
const SWEEP_BATCH: isize = 1000;

const GEO: &str = "gp:geo";
const SEEN: &str = "gp:seen";
const DEADLINES: &str = "gp:deadlines";

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

/// Parsed registrations by host, with the revision they were read at.
type RegistrationCache = Mutex<HashMap<String, (u64, Arc<HostRegistration>)>>;

/// Most registrations a replica keeps parsed in memory.
const REGISTRATION_CACHE: usize = 100_000;

/// Broker state in Redis.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    registrations: Arc<RegistrationCache>,
    timing: StoreTiming,
    claim: Script,
    update: Script,
    lose: Script,
    register: Script,
    heartbeat: Script,
}

impl RedisStore {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`).
    pub async fn connect(url: &str, timing: StoreTiming) -> Result<Self, BrokerError> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Self {
            conn,
            registrations: Arc::default(),
            timing,
            claim: Script::new(include_str!("lua/claim.lua")),
            update: Script::new(include_str!("lua/update.lua")),
            lose: Script::new(include_str!("lua/lose.lua")),
            register: Script::new(include_str!("lua/register.lua")),
            heartbeat: Script::new(include_str!("lua/heartbeat.lua")),
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
        redis::pipe().zrem(SEEN, host).zrem(GEO, host).exec_async(&mut conn).await?;
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
        redis::pipe()
            .geo_add(GEO, (redis::geo::Coord::lon_lat(loc.lon, geo_lat(loc.lat)), host))
            .zadd(SEEN, host, now_ms)
            .exec_async(&mut conn)
            .await?;
        Ok(())
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
        // One round trip for every session the host reports.
        let mut pipe = redis::pipe();
        for id in &beat.sessions {
            pipe.hget(session_key(host_id, id), "state");
        }
        let states: Vec<Option<String>> =
            if beat.sessions.is_empty() { Vec::new() } else { pipe.query_async(&mut conn).await? };
        let ended_sessions = beat
            .sessions
            .iter()
            .zip(states)
            .filter(|(_, state)| state.as_deref().is_none_or(|s| s == "ended"))
            .map(|(id, _)| id.clone())
            .collect();
        Ok(HeartbeatAck { ended_sessions })
    }

    async fn nearby_hosts(
        &self,
        near: GeoPoint,
        profile: Profile,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<HostView>, BrokerError> {
        let mut conn = self.conn.clone();
        let hosts: Vec<String> = redis::cmd("GEOSEARCH")
            .arg(GEO)
            .arg("FROMLONLAT")
            .arg(near.lon)
            .arg(geo_lat(near.lat))
            .arg("BYRADIUS")
            .arg(20_038)
            .arg("km")
            .arg("ASC")
            .arg("COUNT")
            // Over-fetch: lost hosts and hosts without the profile are filtered below.
            .arg(limit.max(1) * 2 + 8)
            .query_async(&mut conn)
            .await?;
        // One round trip for what changes per allocation (lease, counters,
        // registration revision); registrations themselves are cached per
        // revision and read only when a host re-registered.
        let mut pipe = redis::pipe();
        for host in &hosts {
            pipe.cmd("HMGET").arg(host_key(host)).arg(&["rev", "seen", "used:game", "used:phone"]);
        }
        let rows: Vec<(Option<u64>, Option<u64>, Option<u32>, Option<u32>)> =
            pipe.query_async(&mut conn).await?;
        let mut views = Vec::new();
        for (host, (rev, seen, used_game, used_phone)) in hosts.iter().zip(rows) {
            let (Some(rev), Some(seen)) = (rev, seen) else { continue };
            if now_ms.saturating_sub(seen) >= self.timing.lease_ms {
                continue;
            }
            let registration = self.registration(host, rev).await?;
            if registration.offer(profile).is_none() {
                continue;
            }
            let used = BTreeMap::from([
                (Profile::Game, used_game.unwrap_or(0)),
                (Profile::Phone, used_phone.unwrap_or(0)),
            ]);
            let distance_km = distance_km(near, registration.location);
            views.push(HostView { registration: (*registration).clone(), used, distance_km });
        }
        views.truncate(limit);
        Ok(views)
    }

    async fn claim(&self, record: &SessionRecord, now_ms: u64) -> Result<bool, BrokerError> {
        let host = record.host_id.as_str();
        let id = record.session_id.as_str();
        let record = SessionRecord {
            state: SessionState::Allocated,
            allocated_at_ms: now_ms,
            ..record.clone()
        };
        let mut conn = self.conn.clone();
        // Index and deadline go first: a broker that dies after the claim
        // still leaves the reservation findable and due to lapse.
        let indexed: bool = redis::cmd("SET")
            .arg(index_key(id))
            .arg(host)
            .arg("NX")
            .arg("EX")
            .arg(RETENTION_S)
            .query_async::<Option<String>>(&mut conn)
            .await?
            .is_some();
        if !indexed {
            return Ok(false);
        }
        let deadline = now_ms + self.timing.confirm_ms;
        let _: () = conn.zadd(DEADLINES, format!("{host}|{id}"), deadline).await?;
        let claimed: i64 = self
            .claim
            .key(host_key(host))
            .key(live_key(host))
            .key(session_key(host, id))
            .arg(now_ms)
            .arg(self.timing.lease_ms)
            .arg(id)
            .arg(profile_name(record.profile))
            .arg(serde_json::to_string(&record)?)
            .invoke_async(&mut conn)
            .await?;
        if claimed == 0 {
            redis::pipe()
                .del(index_key(id))
                .zrem(DEADLINES, format!("{host}|{id}"))
                .exec_async(&mut conn)
                .await?;
        }
        Ok(claimed == 1)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;
    use crate::testing::RedisServer;

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
