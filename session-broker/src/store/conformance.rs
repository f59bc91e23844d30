//! One behaviour suite that every [`SessionStore`] must pass.

use std::collections::BTreeMap;

use gridplay_protocol::{
    App, GeoPoint, Heartbeat, HostRegistration, Profile, SessionRecord, SessionState, SlotOffer,
};

use super::{SessionStore, StoreTiming, Want};
use crate::BrokerError;

/// Timing every case assumes.
pub const TIMING: StoreTiming = StoreTiming { lease_ms: 6_000, confirm_ms: 30_000 };
const T0: u64 = 1_000_000;

/// A registration with `game` and `phone` slots at a location.
pub fn host(id: &str, game: u32, phone: u32, lat: f64, lon: f64) -> HostRegistration {
    let offer = |profile, slots| SlotOffer {
        profile,
        slots,
        max_width: 1920,
        max_height: 1080,
        max_fps: 60,
    };
    HostRegistration {
        host_id: id.into(),
        whep_url: format!("http://{id}/whep"),
        ping_url: format!("http://{id}/ping"),
        gpu: "test".into(),
        region: "test".into(),
        location: GeoPoint { lat, lon },
        offers: vec![offer(Profile::Game, game), offer(Profile::Phone, phone)],
        price_per_block: 100,
        quic: None,
        payout_address: None,
        apps: Vec::new(),
        payout_proof: None,
        probation: false,
    }
}

fn session(id: &str, host: &str, profile: Profile) -> SessionRecord {
    SessionRecord {
        session_id: id.into(),
        host_id: host.into(),
        app: "orbit".into(),
        profile,
        allocated_at_ms: 0,
        state: SessionState::Allocated,
    }
}

const HERE: GeoPoint = GeoPoint { lat: 0.0, lon: 0.0 };

/// Any host with game slots.
const GAME: Want<'static> = Want { profile: Profile::Game, app: None };

async fn free(store: &dyn SessionStore, profile: Profile, now: u64) -> u32 {
    store.free_slots(now).await.unwrap().get(&profile).copied().unwrap_or(0)
}

/// Runs every case against fresh stores made by `fresh`.
pub async fn run<F, Fut, S>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
    S: SessionStore,
{
    claims_never_exceed_capacity_and_ending_frees(&fresh().await).await;
    capacity_verdicts_are_kept_and_listed_when_due(&fresh().await).await;
    profiles_have_separate_capacity(&fresh().await).await;
    lost_host_loses_slots_and_sessions_then_returns_afresh(&fresh().await).await;
    unconfirmed_reservations_lapse_confirmed_ones_stay(&fresh().await).await;
    only_the_owner_updates_and_ended_is_final(&fresh().await).await;
    heartbeat_names_ended_sessions(&fresh().await).await;
    nearby_hosts_come_nearest_first(&fresh().await).await;
    reputation_follows_checks_and_outlives_the_lease(&fresh().await).await;
    apps_are_found_only_on_live_hosts_that_offer_them(&fresh().await).await;
    load_is_counted_per_region_over_live_hosts(&fresh().await).await;
    a_request_signature_is_accepted_once(&fresh().await).await;
}

async fn load_is_counted_per_region_over_live_hosts(store: &dyn SessionStore) {
    use super::Load;
    let in_region = |id: &str, game, phone, region: &str| HostRegistration {
        region: region.into(),
        ..host(id, game, phone, 0.0, 0.0)
    };
    for registration in
        [in_region("a", 2, 1, "eu"), in_region("b", 3, 0, "eu"), in_region("c", 4, 0, "us")]
    {
        store.register_host(&registration, T0).await.unwrap();
    }
    for (id, host_id, profile) in
        [("s1", "a", Profile::Game), ("s2", "b", Profile::Game), ("s3", "a", Profile::Phone)]
    {
        assert!(store.claim(&session(id, host_id, profile), T0).await.unwrap());
    }
    // Past any replica's cached view of the counters.
    let read = T0 + 2_500;
    let loads = store.load_by_region(read).await.unwrap();
    assert_eq!(loads.get("eu"), Some(&Load { hosts: 2, used: 3, slots: 6 }));
    assert_eq!(loads.get("us"), Some(&Load { hosts: 1, used: 0, slots: 4 }));
    assert_eq!(loads["eu"].utilisation(), 0.5);
    // A host that lost its lease counts no more.
    let beat = Heartbeat { load: 0.0, sessions: vec![] };
    for id in ["a", "b"] {
        store.heartbeat(id, &beat, read).await.unwrap();
    }
    let loads = store.load_by_region(T0 + TIMING.lease_ms + 1_000).await.unwrap();
    assert_eq!(loads.keys().collect::<Vec<_>>(), ["eu"]);
}

async fn capacity_verdicts_are_kept_and_listed_when_due(store: &dyn SessionStore) {
    use gridplay_protocol::capacity::{CapacityState, CapacityVerdict};
    let verdict = |host: &str, due_ms: Option<u64>| CapacityVerdict {
        host_id: host.into(),
        offers_key: "k".into(),
        claimed: Vec::new(),
        state: if due_ms.is_some() { CapacityState::Probation } else { CapacityState::Admitted },
        admitted: BTreeMap::new(),
        profiles: Vec::new(),
        checker: None,
        reason: String::new(),
        due_ms,
        failures: 0,
    };
    assert_eq!(store.capacity("a").await.unwrap(), None);
    for (host, due) in [("a", Some(30)), ("b", Some(10)), ("c", None), ("d", Some(500))] {
        store.set_capacity(&verdict(host, due)).await.unwrap();
    }
    let due = |now| async move {
        let due = store.capacity_due(now, 10).await.unwrap();
        due.into_iter().map(|v| v.host_id).collect::<Vec<_>>()
    };
    assert_eq!(due(100).await, ["b", "a"], "due ones, the longest due first");
    assert_eq!(store.capacity_due(100, 1).await.unwrap().len(), 1);
    // Admitted, a host is due no more; its verdict stays.
    store.set_capacity(&verdict("b", None)).await.unwrap();
    assert_eq!(due(1000).await, ["a", "d"]);
    assert_eq!(store.capacity("b").await.unwrap(), Some(verdict("b", None)));
    // A live host's registration is there to read; a lost or unknown one's is not.
    store.register_host(&host("h", 1, 0, 0.0, 0.0), T0).await.unwrap();
    assert_eq!(store.host("h", T0).await.unwrap().host_id, "h");
    let lost = T0 + TIMING.lease_ms;
    assert_eq!(store.host("h", lost).await, Err(BrokerError::HostNotFound));
    assert_eq!(store.host("nobody", T0).await, Err(BrokerError::HostNotFound));
}

async fn a_request_signature_is_accepted_once(store: &dyn SessionStore) {
    let first = |sig: &'static str, now| store.first_signature_use(sig, now, 60_000);
    assert!(first("1000.abc", T0).await.unwrap());
    assert!(!first("1000.abc", T0 + 1).await.unwrap(), "a replay is refused");
    assert!(!first("1000.abc", T0 + 30_000).await.unwrap(), "within its time, on any call");
    assert!(first("1000.abd", T0 + 1).await.unwrap(), "another signature is its own");
}

/// A catalogue app named `id`.
pub fn app(id: &str) -> App {
    App { id: id.into(), title: id.into(), profile: Profile::Game, description: String::new() }
}

async fn apps_are_found_only_on_live_hosts_that_offer_them(store: &dyn SessionStore) {
    let mut terminal = host("terminal", 1, 0, 1.0, 1.0);
    terminal.apps = vec![app("xterm")];
    store.register_host(&terminal, T0).await.unwrap();
    let mut both = host("both", 1, 0, 2.0, 2.0);
    both.apps = vec![app("vkcube"), app("xterm")];
    store.register_host(&both, T0).await.unwrap();
    store.register_host(&host("plain", 1, 0, 0.5, 0.5), T0).await.unwrap();
    let ids = |hosts: Vec<super::HostView>| -> Vec<String> {
        hosts.iter().map(|h| h.registration.host_id.clone()).collect()
    };
    let want = |app| Want { profile: Profile::Game, app: Some(app) };
    let found = store.nearby_hosts(HERE, want("xterm"), 10, T0).await.unwrap();
    assert_eq!(ids(found), ["terminal", "both"]);
    let found = store.nearby_hosts(HERE, want("vkcube"), 10, T0).await.unwrap();
    assert_eq!(ids(found), ["both"]);
    let found = store.nearby_hosts(HERE, want("orbit"), 10, T0).await.unwrap();
    assert_eq!(ids(found), ["plain", "terminal", "both"], "every host runs the built-in apps");
    assert!(store.nearby_hosts(HERE, want("chess"), 10, T0).await.unwrap().is_empty());
    let offered = store.offered_apps(T0).await.unwrap();
    assert_eq!(offered.keys().collect::<Vec<_>>(), ["vkcube", "xterm"]);
    // Only "terminal" keeps its lease: "both" and its vkcube go.
    let later = T0 + TIMING.lease_ms;
    let beat = Heartbeat { load: 0.0, sessions: vec![] };
    store.heartbeat("terminal", &beat, later - 1).await.unwrap();
    let offered = store.offered_apps(later).await.unwrap();
    assert_eq!(offered.keys().collect::<Vec<_>>(), ["xterm"]);
    let found = store.cached_candidates(HERE, want("vkcube"), 10, later).await.unwrap();
    assert!(found.is_none_or(|hosts| hosts.is_empty()));
}

async fn reputation_follows_checks_and_outlives_the_lease(store: &dyn SessionStore) {
    use gridplay_protocol::network::Checks;
    assert_eq!(store.record_check("nobody", true).await, Err(BrokerError::HostNotFound));
    store.register_host(&host("h", 1, 0, 0.0, 0.0), T0).await.unwrap();
    let here = GeoPoint { lat: 0.0, lon: 0.0 };
    let seen =
        |now| async move { store.nearby_hosts(here, GAME, 4, now).await.unwrap()[0].reputation };
    assert_eq!(seen(T0).await, 1.0, "unchecked hosts start spotless");
    assert_eq!(store.record_check("h", false).await.unwrap(), 0.75);
    assert_eq!(seen(T0).await, 0.75);
    // Losing the lease and registering again does not wipe the record.
    let late = T0 + 11_000;
    store.sweep(late).await.unwrap();
    store.register_host(&host("h", 1, 0, 0.0, 0.0), late).await.unwrap();
    assert_eq!(seen(late).await, 0.75);
    assert_eq!(store.record_check("h", true).await.unwrap(), 0.8125);
    assert_eq!(
        store.checks().await.unwrap(),
        Checks { reports: 2, delivered: 1 },
        "a refused one is not counted"
    );
    let beat = Heartbeat { load: 0.0, sessions: vec![] };
    let ack = store.heartbeat("h", &beat, late + 1).await.unwrap();
    assert_eq!(ack.reputation, Some(0.8125), "the host hears its reputation");
}

async fn claims_never_exceed_capacity_and_ending_frees(store: &dyn SessionStore) {
    store.register_host(&host("h", 2, 0, 0.0, 0.0), T0).await.unwrap();
    assert!(store.claim(&session("s1", "h", Profile::Game), T0).await.unwrap());
    assert!(
        !store.claim(&session("s1", "h", Profile::Game), T0).await.unwrap(),
        "a session id is claimed once"
    );
    assert!(store.claim(&session("s2", "h", Profile::Game), T0).await.unwrap());
    assert!(!store.claim(&session("s3", "h", Profile::Game), T0).await.unwrap(), "full");
    assert!(
        !store.claim(&session("s4", "nobody", Profile::Game), T0).await.unwrap(),
        "unknown host"
    );
    assert_eq!(store.session("s3", T0).await, Err(BrokerError::SessionNotFound));
    let ended = store.update_session("s1", None, SessionState::Ended, T0).await.unwrap();
    assert_eq!(ended.state, SessionState::Ended);
    assert_eq!(free(store, Profile::Game, T0).await, 1);
    assert!(store.claim(&session("s3", "h", Profile::Game), T0).await.unwrap());
    let s3 = store.session("s3", T0).await.unwrap();
    assert_eq!(
        (s3.state, s3.allocated_at_ms, s3.app.as_str()),
        (SessionState::Allocated, T0, "orbit")
    );
}

async fn profiles_have_separate_capacity(store: &dyn SessionStore) {
    store.register_host(&host("h", 1, 1, 0.0, 0.0), T0).await.unwrap();
    assert!(store.claim(&session("g", "h", Profile::Game), T0).await.unwrap());
    assert!(!store.claim(&session("g2", "h", Profile::Game), T0).await.unwrap());
    assert!(store.claim(&session("p", "h", Profile::Phone), T0).await.unwrap());
    assert_eq!(free(store, Profile::Phone, T0).await, 0);
}

async fn lost_host_loses_slots_and_sessions_then_returns_afresh(store: &dyn SessionStore) {
    store.register_host(&host("h", 1, 0, 0.0, 0.0), T0).await.unwrap();
    assert!(store.claim(&session("s", "h", Profile::Game), T0).await.unwrap());
    store.update_session("s", Some("h"), SessionState::Running, T0).await.unwrap();
    let beat = Heartbeat { load: 0.5, sessions: vec!["s".into()] };
    store.heartbeat("h", &beat, T0 + 5_000).await.unwrap();
    assert_eq!(store.session("s", T0 + 10_000).await.unwrap().state, SessionState::Running);
    let late = T0 + 11_000;
    assert_eq!(store.session("s", late).await.unwrap().state, SessionState::Ended, "lost at once");
    assert!(!store.claim(&session("s2", "h", Profile::Game), late).await.unwrap());
    assert_eq!(store.heartbeat("h", &beat, late).await, Err(BrokerError::HostNotFound));
    assert_eq!(free(store, Profile::Game, late).await, 0);
    store.sweep(late).await.unwrap();
    assert_eq!(store.session("s", late).await.unwrap().state, SessionState::Ended);
    store.register_host(&host("h", 1, 0, 0.0, 0.0), late).await.unwrap();
    assert_eq!(free(store, Profile::Game, late).await, 1, "returns with its slots free");
    let ack = store.heartbeat("h", &beat, late).await.unwrap();
    assert_eq!(ack.ended_sessions, vec!["s".to_owned()]);
    assert!(store.claim(&session("s2", "h", Profile::Game), late).await.unwrap());
}

async fn unconfirmed_reservations_lapse_confirmed_ones_stay(store: &dyn SessionStore) {
    store.register_host(&host("h", 2, 0, 0.0, 0.0), T0).await.unwrap();
    assert!(store.claim(&session("idle", "h", Profile::Game), T0).await.unwrap());
    assert!(store.claim(&session("played", "h", Profile::Game), T0).await.unwrap());
    store.update_session("played", Some("h"), SessionState::Running, T0 + 1_000).await.unwrap();
    let due = T0 + TIMING.confirm_ms;
    let beat = Heartbeat { load: 0.0, sessions: vec![] };
    for at in (T0..due).step_by(5_000).chain([due - 1]) {
        store.heartbeat("h", &beat, at).await.unwrap();
    }
    assert_eq!(store.session("idle", due - 1).await.unwrap().state, SessionState::Allocated);
    assert_eq!(store.session("idle", due).await.unwrap().state, SessionState::Ended);
    store.sweep(due).await.unwrap();
    assert_eq!(free(store, Profile::Game, due).await, 1);
    assert_eq!(store.session("played", due).await.unwrap().state, SessionState::Running);
    // A late confirmation cannot revive a lapsed reservation.
    let late = store.update_session("idle", Some("h"), SessionState::Running, due).await.unwrap();
    assert_eq!(late.state, SessionState::Ended);
    assert_eq!(free(store, Profile::Game, due).await, 1);
}

async fn only_the_owner_updates_and_ended_is_final(store: &dyn SessionStore) {
    store.register_host(&host("a", 1, 0, 0.0, 0.0), T0).await.unwrap();
    store.register_host(&host("b", 1, 0, 0.0, 0.0), T0).await.unwrap();
    assert!(store.claim(&session("s", "a", Profile::Game), T0).await.unwrap());
    assert_eq!(
        store.update_session("s", Some("b"), SessionState::Ended, T0).await,
        Err(BrokerError::WrongHost)
    );
    assert_eq!(
        store.update_session("missing", Some("a"), SessionState::Ended, T0).await,
        Err(BrokerError::SessionNotFound)
    );
    store.update_session("s", Some("a"), SessionState::Ended, T0).await.unwrap();
    let again = store.update_session("s", Some("a"), SessionState::Running, T0).await.unwrap();
    assert_eq!(again.state, SessionState::Ended);
    store.update_session("s", None, SessionState::Ended, T0).await.unwrap();
    assert_eq!(free(store, Profile::Game, T0).await, 2, "ending twice frees once");
}

async fn heartbeat_names_ended_sessions(store: &dyn SessionStore) {
    store.register_host(&host("h", 2, 0, 0.0, 0.0), T0).await.unwrap();
    assert!(store.claim(&session("live", "h", Profile::Game), T0).await.unwrap());
    assert!(store.claim(&session("done", "h", Profile::Game), T0).await.unwrap());
    store.update_session("done", None, SessionState::Ended, T0).await.unwrap();
    let beat =
        Heartbeat { load: 0.1, sessions: vec!["live".into(), "done".into(), "unknown".into()] };
    let ack = store.heartbeat("h", &beat, T0).await.unwrap();
    assert_eq!(ack.ended_sessions, vec!["done".to_owned(), "unknown".to_owned()]);
}

async fn nearby_hosts_come_nearest_first(store: &dyn SessionStore) {
    store.register_host(&host("far", 1, 0, 40.0, 40.0), T0).await.unwrap();
    store.register_host(&host("near", 1, 0, 1.0, 1.0), T0).await.unwrap();
    store.register_host(&host("mid", 1, 0, 10.0, 10.0), T0).await.unwrap();
    let polar = host("polar", 1, 0, 89.9, 0.0);
    store.register_host(&polar, T0).await.unwrap();
    let mut phone_only = host("phone", 1, 1, 0.5, 0.5);
    phone_only.offers.retain(|o| o.profile == Profile::Phone);
    store.register_host(&phone_only, T0).await.unwrap();
    let hosts = store.nearby_hosts(HERE, GAME, 2, T0).await.unwrap();
    let ids: Vec<&str> = hosts.iter().map(|h| h.registration.host_id.as_str()).collect();
    assert_eq!(ids, ["near", "mid"]);
    assert!((hosts[0].distance_km - 157.0).abs() < 2.0, "{}", hosts[0].distance_km);
    assert!(store.claim(&session("s", "near", Profile::Game), T0).await.unwrap());
    let hosts = store.nearby_hosts(HERE, GAME, 10, T0).await.unwrap();
    assert_eq!(hosts[0].used.get(&Profile::Game), Some(&1));
    assert_eq!(hosts.len(), 4);
    assert_eq!(hosts[3].registration.host_id, "polar", "hosts near the poles are found too");
    let silent = T0 + TIMING.lease_ms;
    store.heartbeat("mid", &Heartbeat { load: 0.0, sessions: vec![] }, silent - 1).await.unwrap();
    let hosts = store.nearby_hosts(HERE, GAME, 10, silent).await.unwrap();
    assert_eq!(hosts.iter().map(|h| h.registration.host_id.as_str()).collect::<Vec<_>>(), ["mid"]);
}
