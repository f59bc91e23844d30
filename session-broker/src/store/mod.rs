//! Broker state behind one trait: hosts with their leases and slot
//! counters, sessions with their states. Two implementations pass one
//! conformance suite: [`MemoryStore`] (one process) and [`RedisStore`]
//! (many broker replicas on one Redis or a Redis Cluster).
//!
//! Semantics both keep:
//! - a claim takes one slot of one profile on one live host atomically, or fails;
//! - a reservation not confirmed (`running`) by its deadline lapses and frees its slot;
//! - a host silent for one lease is lost at once: no claims, its sessions read as ended;
//! - `ended` is final.
//!
//! Time is passed in as Unix milliseconds so that replicas share one clock.

mod grid;
mod memory;
mod redis;
mod redis_connection;

#[cfg(test)]
pub(crate) mod conformance;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use gridplay_protocol::capacity::CapacityVerdict;
use gridplay_protocol::network::Checks;
use gridplay_protocol::{
    App, GeoPoint, Heartbeat, HeartbeatAck, HostRegistration, Profile, SessionRecord, SessionState,
};

pub use memory::MemoryStore;
pub use redis::{CACHE_REFRESH_MS, RedisStore};
pub use redis_connection::RedisTarget;

use crate::BrokerError;

/// Lease and reservation timing shared by every store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreTiming {
    /// A host silent this long (ms) is lost.
    pub lease_ms: u64,
    /// A reservation not confirmed within this long (ms) lapses.
    pub confirm_ms: u64,
}

/// What a session needs of a host: a profile's slots and, when named, an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want<'a> {
    /// The profile whose slots it takes.
    pub profile: Profile,
    /// The app it runs; `None` for any host of the profile.
    pub app: Option<&'a str>,
}

impl Want<'_> {
    /// Whether `registration` offers the profile and runs the app under it
    /// (a host on probation offers nothing yet).
    pub fn admits(&self, registration: &HostRegistration) -> bool {
        !registration.probation
            && registration.offer(self.profile).is_some()
            && self.app.is_none_or(|app| registration.app_profile(app) == Some(self.profile))
    }
}

/// How busy a set of hosts is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Live hosts.
    pub hosts: u32,
    /// Slots in use.
    pub used: u32,
    /// Slots offered.
    pub slots: u32,
}

impl Load {
    /// Counts one host's offers, `used` of which are in use per profile.
    fn add(&mut self, registration: &HostRegistration, used: impl Fn(Profile) -> u32) {
        self.hosts += 1;
        for offer in &registration.offers {
            self.slots += offer.slots;
            self.used += used(offer.profile).min(offer.slots);
        }
    }

    /// Slots in use ÷ slots offered (0 with none offered).
    pub fn utilisation(&self) -> f64 {
        match self.slots {
            0 => 0.0,
            slots => f64::from(self.used) / f64::from(slots),
        }
    }
}

/// A live host as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    /// What it registered (shared, not copied, per allocation).
    pub registration: Arc<HostRegistration>,
    /// Slots in use per profile.
    pub used: BTreeMap<Profile, u32>,
    /// Distance from the requested point, km.
    pub distance_km: f64,
    /// What checkers found, `0..=1` ([`crate::placement::next_reputation`]).
    pub reputation: f64,
}

/// Where broker state lives.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Registers or re-registers a host. A host returning after losing its
    /// lease starts afresh: its old sessions are ended and its slots free.
    async fn register_host(
        &self,
        registration: &HostRegistration,
        now_ms: u64,
    ) -> Result<(), BrokerError>;

    /// Renews a host's lease; answers which of its reported sessions are ended.
    async fn heartbeat(
        &self,
        host_id: &str,
        beat: &Heartbeat,
        now_ms: u64,
    ) -> Result<HeartbeatAck, BrokerError>;

    /// Weighs one checker report into a host's reputation
    /// ([`crate::placement::next_reputation`]) and returns the new value, and counts it
    /// in [`checks`](Self::checks). The reputation outlives the host's leases and
    /// re-registrations.
    /// [`BrokerError::HostNotFound`] for a host never registered.
    async fn record_check(&self, host_id: &str, delivered: bool) -> Result<f64, BrokerError>;

    /// Every checker report counted so far, and how many found the service delivered.
    async fn checks(&self) -> Result<Checks, BrokerError>;

    /// Up to `limit` live hosts that admit `want`, nearest to `near` first.
    async fn nearby_hosts(
        &self,
        near: GeoPoint,
        want: Want<'_>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<HostView>, BrokerError>;

    /// Like [`nearby_hosts`](Self::nearby_hosts), but only hosts this
    /// replica believes have a free `profile` slot, from a copy it keeps
    /// in memory that may lag the store by a moment (for the Redis store,
    /// [`CACHE_REFRESH_MS`] plus a re-read). For placement only: a claim
    /// re-checks everything, and a caller that finds nothing here asks
    /// `nearby_hosts` before saying there is no capacity. `None` when the
    /// store keeps no such copy (its `nearby_hosts` is already cheap).
    async fn cached_candidates(
        &self,
        near: GeoPoint,
        want: Want<'_>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Option<Vec<HostView>>, BrokerError> {
        let _ = (near, want, limit, now_ms);
        Ok(None)
    }

    /// Atomically takes one `record.profile` slot on `record.host_id` for a new
    /// session in state `allocated`; `false` when the host is full or lost.
    async fn claim(&self, record: &SessionRecord, now_ms: u64) -> Result<bool, BrokerError>;

    /// A session's record as of `now_ms`.
    async fn session(&self, session_id: &str, now_ms: u64) -> Result<SessionRecord, BrokerError>;

    /// Moves a session to `state`; `host_id` (when the host asks) must own it.
    /// Ending frees the slot; `ended` is final.
    async fn update_session(
        &self,
        session_id: &str,
        host_id: Option<&str>,
        state: SessionState,
        now_ms: u64,
    ) -> Result<SessionRecord, BrokerError>;

    /// Makes lost hosts' and lapsed reservations' effects permanent; returns
    /// the number of hosts dropped.
    async fn sweep(&self, now_ms: u64) -> Result<usize, BrokerError>;

    /// Free slots per profile over all live hosts.
    async fn free_slots(&self, now_ms: u64) -> Result<BTreeMap<Profile, u32>, BrokerError>;

    /// Slots in use and slots offered over all live hosts of each region (a
    /// replica's cached view may lag by a moment).
    async fn load_by_region(&self, now_ms: u64) -> Result<BTreeMap<String, Load>, BrokerError>;

    /// The apps live hosts offer besides the built-in ones, by id (the
    /// first registration read wins where hosts describe one id differently).
    async fn offered_apps(&self, now_ms: u64) -> Result<BTreeMap<String, App>, BrokerError>;

    /// Like [`record_check`](Self::record_check), but once per `(checker, session_id)`
    /// across replicas: `None`, changing nothing, when that checker's report on that
    /// session was counted in the last `keep_ms`. A report that fails to count (an unknown
    /// host, a store error) is not marked.
    async fn record_check_once(
        &self,
        checker: &str,
        session_id: &str,
        host_id: &str,
        delivered: bool,
        now_ms: u64,
        keep_ms: u64,
    ) -> Result<Option<f64>, BrokerError>;

    /// A live host's registration; [`BrokerError::HostNotFound`] for any other.
    async fn host(&self, host_id: &str, now_ms: u64) -> Result<Arc<HostRegistration>, BrokerError>;

    /// The capacity verdict kept for a host, if any; it outlives the host's leases.
    async fn capacity(&self, host_id: &str) -> Result<Option<CapacityVerdict>, BrokerError>;

    /// Keeps `verdict` for its host, replacing the one before.
    async fn set_capacity(&self, verdict: &CapacityVerdict) -> Result<(), BrokerError>;

    /// Up to `limit` verdicts whose check is due by `now_ms`, the longest due first.
    async fn capacity_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<CapacityVerdict>, BrokerError>;

    /// Marks a host request's signature (base64url) as used for `keep_ms`,
    /// across replicas: `true` the first time, `false` while it is still marked (a replay).
    async fn first_signature_use(
        &self,
        signature: &str,
        now_ms: u64,
        keep_ms: u64,
    ) -> Result<bool, BrokerError>;
}

/// The apps `registrations` offer besides the built-in ones, by id; the
/// first registration wins where hosts describe one id differently.
fn apps_of<'a>(registrations: impl Iterator<Item = &'a HostRegistration>) -> BTreeMap<String, App> {
    let mut apps = BTreeMap::new();
    for app in registrations.flat_map(|r| &r.apps) {
        apps.entry(app.id.clone()).or_insert_with(|| app.clone());
    }
    apps
}

/// Great-circle distance in km (haversine).
pub fn distance_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_matches_known_cities() {
        let paris = GeoPoint { lat: 48.8566, lon: 2.3522 };
        let london = GeoPoint { lat: 51.5074, lon: -0.1278 };
        assert!((distance_km(paris, london) - 344.0).abs() < 5.0);
        assert_eq!(distance_km(paris, paris), 0.0);
    }
}
