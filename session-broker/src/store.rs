//! Broker state: hosts with their slots and leases, sessions with their
//! states. Time is passed in; nothing here reads a clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gridplay_protocol::{AllocateRequest, HostRegistration, SessionRecord, SessionState};

use crate::BrokerError;
use crate::placement::{Candidate, place};

/// A registered host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// What the host registered with.
    pub registration: HostRegistration,
    /// When it was last heard from.
    pub last_seen: Instant,
}

/// A session the broker placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// The public record.
    pub record: SessionRecord,
    /// When the slot was reserved.
    pub allocated_at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    hosts: HashMap<String, HostEntry>,
    sessions: HashMap<String, SessionEntry>,
}

impl Inner {
    fn used_slots(&self, host_id: &str) -> u32 {
        self.sessions
            .values()
            .filter(|s| s.record.host_id == host_id && s.record.state != SessionState::Ended)
            .count() as u32
    }
}

/// The in-memory store: one lock around hosts and sessions, so a claim is atomic.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    lease: Duration,
    confirm_within: Duration,
}

impl MemoryStore {
    /// A store whose hosts lose their slots after `lease` of silence and whose
    /// reservations lapse if not confirmed within `confirm_within`.
    pub fn new(lease: Duration, confirm_within: Duration) -> Self {
        Self { inner: Mutex::new(Inner::default()), lease, confirm_within }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers (or re-registers) a host; idempotent.
    pub fn register_host(&self, registration: HostRegistration, now: Instant) {
        let id = registration.host_id.clone();
        self.lock().hosts.insert(id, HostEntry { registration, last_seen: now });
    }

    /// Renews a host's lease.
    pub fn heartbeat(&self, host_id: &str, now: Instant) -> Result<(), BrokerError> {
        let mut inner = self.lock();
        let host = inner.hosts.get_mut(host_id).ok_or(BrokerError::HostNotFound)?;
        host.last_seen = now;
        Ok(())
    }

    /// Places a request on a host and reserves one slot, atomically.
    pub fn allocate(
        &self,
        session_id: String,
        request: &AllocateRequest,
        now: Instant,
    ) -> Result<(SessionRecord, HostRegistration), BrokerError> {
        let mut inner = self.lock();
        self.expire_locked(&mut inner, now);
        let candidates: Vec<Candidate> = inner
            .hosts
            .values()
            .map(|h| Candidate {
                host_id: h.registration.host_id.clone(),
                slots: h.registration.slots,
                used: inner.used_slots(&h.registration.host_id),
            })
            .collect();
        let chosen = place(&candidates, request).ok_or(BrokerError::NoCapacity)?;
        let host = inner.hosts[&chosen.host_id].registration.clone();
        let record = SessionRecord {
            session_id: session_id.clone(),
            host_id: host.host_id.clone(),
            app: request.app.clone(),
            state: SessionState::Allocated,
        };
        inner
            .sessions
            .insert(session_id, SessionEntry { record: record.clone(), allocated_at: now });
        Ok((record, host))
    }

    /// The current record of a session.
    pub fn session(&self, session_id: &str, now: Instant) -> Result<SessionRecord, BrokerError> {
        let mut inner = self.lock();
        self.expire_locked(&mut inner, now);
        inner.sessions.get(session_id).map(|s| s.record.clone()).ok_or(BrokerError::SessionNotFound)
    }

    /// Ends a session and frees its slot; ending an ended session is a no-op.
    pub fn end_session(&self, session_id: &str) -> Result<SessionRecord, BrokerError> {
        let mut inner = self.lock();
        let session = inner.sessions.get_mut(session_id).ok_or(BrokerError::SessionNotFound)?;
        session.record.state = SessionState::Ended;
        Ok(session.record.clone())
    }

    /// A host reports a session's state (running or ended).
    pub fn host_update(
        &self,
        host_id: &str,
        session_id: &str,
        state: SessionState,
        now: Instant,
    ) -> Result<SessionRecord, BrokerError> {
        let mut inner = self.lock();
        let host = inner.hosts.get_mut(host_id).ok_or(BrokerError::HostNotFound)?;
        host.last_seen = now;
        let session = inner.sessions.get_mut(session_id).ok_or(BrokerError::SessionNotFound)?;
        if session.record.host_id != host_id {
            return Err(BrokerError::WrongHost);
        }
        // Ended is final: a late "running" cannot revive a freed slot.
        if session.record.state != SessionState::Ended {
            session.record.state = state;
        }
        Ok(session.record.clone())
    }

    /// Free slots over all live hosts.
    pub fn free_slots(&self, now: Instant) -> u32 {
        let mut inner = self.lock();
        self.expire_locked(&mut inner, now);
        inner
            .hosts
            .values()
            .map(|h| h.registration.slots.saturating_sub(inner.used_slots(&h.registration.host_id)))
            .sum()
    }

    /// Drops hosts whose lease ran out (their sessions end) and reservations
    /// never confirmed in time.
    pub fn expire(&self, now: Instant) {
        let mut inner = self.lock();
        self.expire_locked(&mut inner, now);
    }

    fn expire_locked(&self, inner: &mut Inner, now: Instant) {
        let lease = self.lease;
        inner.hosts.retain(|_, h| now.saturating_duration_since(h.last_seen) < lease);
        let Inner { hosts, sessions } = inner;
        for session in sessions.values_mut() {
            let host_gone = !hosts.contains_key(&session.record.host_id);
            let unconfirmed = session.record.state == SessionState::Allocated
                && now.saturating_duration_since(session.allocated_at) >= self.confirm_within;
            if host_gone || unconfirmed {
                session.record.state = SessionState::Ended;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridplay_protocol::Profile;

    const LEASE: Duration = Duration::from_secs(6);
    const CONFIRM: Duration = Duration::from_secs(30);

    fn host(id: &str, slots: u32) -> HostRegistration {
        HostRegistration {
            host_id: id.into(),
            whep_url: format!("http://{id}/whep"),
            slots,
            gpu: "test".into(),
        }
    }

    fn request() -> AllocateRequest {
        AllocateRequest {
            app: "orbit".into(),
            profile: Profile::Game,
            width: 1280,
            height: 720,
            fps: 60,
        }
    }

    #[test]
    fn never_hands_out_more_slots_than_exist() {
        let store = MemoryStore::new(LEASE, CONFIRM);
        let t0 = Instant::now();
        store.register_host(host("h", 2), t0);
        assert!(store.allocate("s1".into(), &request(), t0).is_ok());
        assert!(store.allocate("s2".into(), &request(), t0).is_ok());
        assert_eq!(store.allocate("s3".into(), &request(), t0), Err(BrokerError::NoCapacity));
        store.end_session("s1").unwrap();
        assert!(store.allocate("s3".into(), &request(), t0).is_ok());
    }

    #[test]
    fn a_silent_host_loses_its_slots_and_sessions() {
        let store = MemoryStore::new(LEASE, CONFIRM);
        let t0 = Instant::now();
        store.register_host(host("h", 1), t0);
        store.allocate("s1".into(), &request(), t0).unwrap();
        store.host_update("h", "s1", SessionState::Running, t0).unwrap();
        store.heartbeat("h", t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(
            store.session("s1", t0 + Duration::from_secs(10)).unwrap().state,
            SessionState::Running
        );
        let late = t0 + Duration::from_secs(12);
        assert_eq!(store.session("s1", late).unwrap().state, SessionState::Ended);
        assert_eq!(store.heartbeat("h", late), Err(BrokerError::HostNotFound));
        assert_eq!(store.free_slots(late), 0);
        store.register_host(host("h", 1), late);
        assert_eq!(store.free_slots(late), 1);
    }

    #[test]
    fn unconfirmed_reservations_lapse() {
        let store = MemoryStore::new(Duration::from_secs(600), CONFIRM);
        let t0 = Instant::now();
        store.register_host(host("h", 1), t0);
        store.allocate("s1".into(), &request(), t0).unwrap();
        assert_eq!(store.free_slots(t0 + CONFIRM - Duration::from_millis(1)), 0);
        assert_eq!(store.free_slots(t0 + CONFIRM), 1);
    }

    #[test]
    fn only_the_owning_host_updates_and_ended_is_final() {
        let store = MemoryStore::new(LEASE, CONFIRM);
        let t0 = Instant::now();
        store.register_host(host("a", 1), t0);
        store.register_host(host("b", 1), t0);
        let (record, _) = store.allocate("s1".into(), &request(), t0).unwrap();
        let other = if record.host_id == "a" { "b" } else { "a" };
        assert_eq!(
            store.host_update(other, "s1", SessionState::Ended, t0),
            Err(BrokerError::WrongHost)
        );
        store.host_update(&record.host_id, "s1", SessionState::Ended, t0).unwrap();
        let after = store.host_update(&record.host_id, "s1", SessionState::Running, t0).unwrap();
        assert_eq!(after.state, SessionState::Ended);
    }
}
