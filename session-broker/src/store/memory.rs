//! The in-memory store: one lock around all state, so every operation is atomic.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gridplay_protocol::capacity::CapacityVerdict;
use gridplay_protocol::network::Checks;
use gridplay_protocol::{
    App, GeoPoint, Heartbeat, HeartbeatAck, HostRegistration, Profile, SessionRecord, SessionState,
};

use super::grid::Grid;
use super::{HostView, Load, SessionStore, StoreTiming, Want, apps_of};
use crate::BrokerError;
use crate::placement::{INITIAL_REPUTATION, next_reputation};

#[derive(Debug)]
struct Host {
    registration: Arc<HostRegistration>,
    last_seen_ms: u64,
    used: BTreeMap<Profile, u32>,
    /// Its sessions not yet ended.
    live: HashSet<String>,
}

#[derive(Debug, Default)]
struct State {
    hosts: HashMap<String, Host>,
    sessions: HashMap<String, SessionRecord>,
    /// Unconfirmed reservations by deadline, so lapsing never scans all sessions.
    pending: BTreeSet<(u64, String)>,
    /// Hosts by location, with the host ids in grid order; rebuilt on the
    /// next search after a host comes, moves or goes.
    grid: Option<(Grid, Vec<String>)>,
    /// Checker-fed reputations, kept whatever happens to the hosts' leases.
    reputations: HashMap<String, f64>,
    /// Checker reports counted.
    checks: Checks,
    /// Capacity verdicts by host, kept likewise.
    capacities: HashMap<String, CapacityVerdict>,
    /// Until when each counted (checker, session) report stays marked, Unix ms.
    counted_checks: HashMap<(String, String), u64>,
    /// Host request signatures seen, by when their mark lapses (Unix ms), oldest first.
    seen_signatures: BTreeSet<(u64, String)>,
    /// The same signatures, for lookup.
    seen_signature_ids: HashSet<String>,
}

/// Broker state in this process (the default store).
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    timing: StoreTiming,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(timing: StoreTiming) -> Self {
        Self { state: Mutex::new(State::default()), timing }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn host_alive(&self, host_id: &str, now_ms: u64, timing: StoreTiming) -> bool {
        self.hosts
            .get(host_id)
            .is_some_and(|h| now_ms.saturating_sub(h.last_seen_ms) < timing.lease_ms)
    }

    /// Moves a session out of the pending set (confirmed or ended).
    fn unpend(&mut self, record: &SessionRecord, timing: StoreTiming) {
        self.pending
            .remove(&(record.allocated_at_ms + timing.confirm_ms, record.session_id.clone()));
    }

    /// Ends a session and frees its slot (no-op when already ended).
    fn end(&mut self, session_id: &str, timing: StoreTiming) {
        let Some(record) = self.sessions.get_mut(session_id) else { return };
        if record.state == SessionState::Ended {
            return;
        }
        record.state = SessionState::Ended;
        let record = record.clone();
        self.unpend(&record, timing);
        if let Some(host) = self.hosts.get_mut(&record.host_id) {
            host.live.remove(session_id);
            if let Some(used) = host.used.get_mut(&record.profile) {
                *used = used.saturating_sub(1);
            }
        }
    }

    /// Lapses the unconfirmed reservations whose deadline has come.
    fn lapse(&mut self, now_ms: u64, timing: StoreTiming) {
        while let Some((deadline, id)) = self.pending.first().cloned() {
            if deadline > now_ms {
                break;
            }
            self.pending.pop_first();
            self.end(&id, timing);
        }
    }

    /// Ends every session of a host and zeroes its counters.
    fn lose_host(&mut self, host_id: &str, timing: StoreTiming) {
        let ids: Vec<String> =
            self.hosts.get(host_id).map(|h| h.live.iter().cloned().collect()).unwrap_or_default();
        for id in ids {
            self.end(&id, timing);
        }
        if let Some(host) = self.hosts.get_mut(host_id) {
            host.used.clear();
        }
    }

    /// The record as readers see it: a lost host's sessions are ended.
    fn effective(&self, record: &SessionRecord, now_ms: u64, timing: StoreTiming) -> SessionRecord {
        let lapsed = record.state == SessionState::Allocated
            && now_ms >= record.allocated_at_ms + timing.confirm_ms;
        let lost = !self.host_alive(&record.host_id, now_ms, timing);
        let mut record = record.clone();
        if lapsed || lost {
            record.state = SessionState::Ended;
        }
        record
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn register_host(
        &self,
        registration: &HostRegistration,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        let mut state = self.lock();
        let id = &registration.host_id;
        if state.hosts.contains_key(id) && !state.host_alive(id, now_ms, self.timing) {
            state.lose_host(id, self.timing);
        }
        // A new or moved host changes where searches find it.
        let (used, live, regrid) = match state.hosts.remove(id) {
            Some(h) => (h.used, h.live, h.registration.location != registration.location),
            None => (BTreeMap::new(), HashSet::new(), true),
        };
        if regrid {
            state.grid = None;
        }
        let host =
            Host { registration: Arc::new(registration.clone()), last_seen_ms: now_ms, used, live };
        state.hosts.insert(id.clone(), host);
        Ok(())
    }

    async fn record_check(&self, host_id: &str, delivered: bool) -> Result<f64, BrokerError> {
        let mut state = self.lock();
        if !state.hosts.contains_key(host_id) {
            return Err(BrokerError::HostNotFound);
        }
        state.checks.reports += 1;
        state.checks.delivered += u64::from(delivered);
        let reputation = state.reputations.entry(host_id.to_owned()).or_insert(INITIAL_REPUTATION);
        *reputation = next_reputation(*reputation, delivered);
        Ok(*reputation)
    }

    async fn checks(&self) -> Result<Checks, BrokerError> {
        Ok(self.lock().checks)
    }

    async fn heartbeat(
        &self,
        host_id: &str,
        beat: &Heartbeat,
        now_ms: u64,
    ) -> Result<HeartbeatAck, BrokerError> {
        let mut state = self.lock();
        if !state.host_alive(host_id, now_ms, self.timing) {
            return Err(BrokerError::HostNotFound);
        }
        state.lapse(now_ms, self.timing);
        state.hosts.get_mut(host_id).expect("alive host").last_seen_ms = now_ms;
        let ended_sessions = beat
            .sessions
            .iter()
            .filter(|id| {
                state
                    .sessions
                    .get(*id)
                    .is_none_or(|s| s.state == SessionState::Ended || s.host_id != host_id)
            })
            .cloned()
            .collect();
        let reputation = state.reputations.get(host_id).copied().unwrap_or(INITIAL_REPUTATION);
        Ok(HeartbeatAck { ended_sessions, reputation: Some(reputation), ..HeartbeatAck::default() })
    }

    async fn nearby_hosts(
        &self,
        near: GeoPoint,
        want: Want<'_>,
        limit: usize,
        now_ms: u64,
    ) -> Result<Vec<HostView>, BrokerError> {
        let mut state = self.lock();
        state.lapse(now_ms, self.timing);
        if state.grid.is_none() {
            let ids: Vec<String> = state.hosts.keys().cloned().collect();
            let points = ids.iter().map(|id| state.hosts[id].registration.location).collect();
            state.grid = Some((Grid::new(points), ids));
        }
        let (grid, ids) = state.grid.as_ref().expect("just built");
        let host = |i: usize| &state.hosts[&ids[i]];
        let nearest = grid.nearest(near, limit, |i| {
            let h = host(i);
            now_ms.saturating_sub(h.last_seen_ms) < self.timing.lease_ms
                && want.admits(&h.registration)
        });
        let hosts = nearest
            .into_iter()
            .map(|(distance_km, i)| (distance_km, host(i)))
            .map(|(distance_km, h)| HostView {
                registration: Arc::clone(&h.registration),
                used: h.used.clone(),
                distance_km,
                reputation: state
                    .reputations
                    .get(&h.registration.host_id)
                    .copied()
                    .unwrap_or(INITIAL_REPUTATION),
            })
            .collect();
        Ok(hosts)
    }

    async fn claim(&self, record: &SessionRecord, now_ms: u64) -> Result<bool, BrokerError> {
        let mut state = self.lock();
        if !state.host_alive(&record.host_id, now_ms, self.timing)
            || state.sessions.contains_key(&record.session_id)
        {
            return Ok(false);
        }
        state.lapse(now_ms, self.timing);
        let host = state.hosts.get_mut(&record.host_id).expect("alive host");
        let capacity = host.registration.offer(record.profile).map_or(0, |o| o.slots);
        let used = host.used.entry(record.profile).or_insert(0);
        if *used >= capacity {
            return Ok(false);
        }
        *used += 1;
        host.live.insert(record.session_id.clone());
        let record = SessionRecord {
            state: SessionState::Allocated,
            allocated_at_ms: now_ms,
            ..record.clone()
        };
        state.pending.insert((now_ms + self.timing.confirm_ms, record.session_id.clone()));
        state.sessions.insert(record.session_id.clone(), record);
        Ok(true)
    }

    async fn session(&self, session_id: &str, now_ms: u64) -> Result<SessionRecord, BrokerError> {
        let state = self.lock();
        let record = state.sessions.get(session_id).ok_or(BrokerError::SessionNotFound)?;
        Ok(state.effective(record, now_ms, self.timing))
    }

    async fn update_session(
        &self,
        session_id: &str,
        host_id: Option<&str>,
        new_state: SessionState,
        now_ms: u64,
    ) -> Result<SessionRecord, BrokerError> {
        let mut state = self.lock();
        let record = state.sessions.get(session_id).ok_or(BrokerError::SessionNotFound)?;
        if host_id.is_some_and(|h| h != record.host_id) {
            return Err(BrokerError::WrongHost);
        }
        let current = state.effective(record, now_ms, self.timing);
        if current.state == SessionState::Ended || new_state == SessionState::Ended {
            state.end(session_id, self.timing);
        } else if let Some(record) = state.sessions.get_mut(session_id) {
            record.state = new_state;
            if new_state == SessionState::Running {
                let record = record.clone();
                state.unpend(&record, self.timing);
            }
        }
        Ok(state.sessions[session_id].clone())
    }

    async fn sweep(&self, now_ms: u64) -> Result<usize, BrokerError> {
        let mut state = self.lock();
        let lost: Vec<String> = state
            .hosts
            .keys()
            .filter(|id| !state.host_alive(id, now_ms, self.timing))
            .cloned()
            .collect();
        for id in &lost {
            state.lose_host(id, self.timing);
            state.hosts.remove(id);
        }
        if !lost.is_empty() {
            state.grid = None;
        }
        state.lapse(now_ms, self.timing);
        Ok(lost.len())
    }

    async fn free_slots(&self, now_ms: u64) -> Result<BTreeMap<Profile, u32>, BrokerError> {
        let mut state = self.lock();
        state.lapse(now_ms, self.timing);
        let mut free = BTreeMap::new();
        for host in state
            .hosts
            .values()
            .filter(|h| now_ms.saturating_sub(h.last_seen_ms) < self.timing.lease_ms)
        {
            for offer in &host.registration.offers {
                let used = host.used.get(&offer.profile).copied().unwrap_or(0);
                *free.entry(offer.profile).or_insert(0) += offer.slots.saturating_sub(used);
            }
        }
        Ok(free)
    }

    async fn load_by_region(&self, now_ms: u64) -> Result<BTreeMap<String, Load>, BrokerError> {
        let mut state = self.lock();
        state.lapse(now_ms, self.timing);
        let mut loads = BTreeMap::<String, Load>::new();
        let live = state
            .hosts
            .values()
            .filter(|h| now_ms.saturating_sub(h.last_seen_ms) < self.timing.lease_ms);
        for host in live {
            let used = |profile| host.used.get(&profile).copied().unwrap_or(0);
            loads
                .entry(host.registration.region.clone())
                .or_default()
                .add(&host.registration, used);
        }
        Ok(loads)
    }

    async fn offered_apps(&self, now_ms: u64) -> Result<BTreeMap<String, App>, BrokerError> {
        let state = self.lock();
        let live = state
            .hosts
            .values()
            .filter(|h| now_ms.saturating_sub(h.last_seen_ms) < self.timing.lease_ms);
        Ok(apps_of(live.map(|h| &*h.registration)))
    }

    async fn record_check_once(
        &self,
        checker: &str,
        session_id: &str,
        host_id: &str,
        delivered: bool,
        now_ms: u64,
        keep_ms: u64,
    ) -> Result<Option<f64>, BrokerError> {
        let key = (checker.to_owned(), session_id.to_owned());
        {
            let mut state = self.lock();
            state.counted_checks.retain(|_, until| *until > now_ms);
            if state.counted_checks.contains_key(&key) {
                return Ok(None);
            }
            state.counted_checks.insert(key.clone(), now_ms.saturating_add(keep_ms));
        }
        let counted = self.record_check(host_id, delivered).await;
        if counted.is_err() {
            self.lock().counted_checks.remove(&key);
        }
        counted.map(Some)
    }

    async fn host(&self, host_id: &str, now_ms: u64) -> Result<Arc<HostRegistration>, BrokerError> {
        let state = self.lock();
        match state.hosts.get(host_id) {
            Some(host) if state.host_alive(host_id, now_ms, self.timing) => {
                Ok(Arc::clone(&host.registration))
            }
            _ => Err(BrokerError::HostNotFound),
        }
    }

    async fn capacity(&self, host_id: &str) -> Result<Option<CapacityVerdict>, BrokerError> {
        Ok(self.lock().capacities.get(host_id).cloned())
    }

    async fn set_capacity(&self, verdict: &CapacityVerdict) -> Result<(), BrokerError> {
        self.lock().capacities.insert(verdict.host_id.clone(), verdict.clone());
        Ok(())
    }

    async fn capacity_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<CapacityVerdict>, BrokerError> {
        let state = self.lock();
        let mut due: Vec<CapacityVerdict> = state
            .capacities
            .values()
            .filter(|v| v.due_ms.is_some_and(|due| due <= now_ms))
            .cloned()
            .collect();
        due.sort_by_key(|v| v.due_ms);
        due.truncate(limit);
        Ok(due)
    }

    async fn first_signature_use(
        &self,
        signature: &str,
        now_ms: u64,
        keep_ms: u64,
    ) -> Result<bool, BrokerError> {
        let mut state = self.lock();
        while let Some((until, _)) = state.seen_signatures.first() {
            if *until > now_ms {
                break;
            }
            if let Some((_, lapsed)) = state.seen_signatures.pop_first() {
                state.seen_signature_ids.remove(&lapsed);
            }
        }
        if !state.seen_signature_ids.insert(signature.to_owned()) {
            return Ok(false);
        }
        state.seen_signatures.insert((now_ms.saturating_add(keep_ms.max(1)), signature.to_owned()));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        conformance::run(|| async { MemoryStore::new(conformance::TIMING) }).await;
    }

    #[tokio::test]
    async fn a_signature_mark_lapses_after_its_time() {
        let store = MemoryStore::new(conformance::TIMING);
        assert!(store.first_signature_use("1.a", 1_000, 500).await.unwrap());
        assert!(!store.first_signature_use("1.a", 1_499, 500).await.unwrap());
        assert!(store.first_signature_use("1.a", 1_500, 500).await.unwrap(), "lapsed");
        assert_eq!(store.lock().seen_signatures.len(), 1, "lapsed marks are dropped");
    }
}
