//! The broker's HTTP API (axum): catalogue, candidates, sessions, hosts,
//! metrics, and the web client's static files.

mod capacity;
mod checks;
mod extract;
mod hosts;
mod limit;
mod network;
mod openapi;
mod relay;
mod sessions;
mod settle;
pub mod tls;

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use axum::serve::ListenerExt as _;
use ed25519_dalek::SigningKey;
use gridplay_protocol::GeoPoint;
use tower_http::services::{ServeDir, ServeFile};

use crate::BrokerError;
use crate::ice::IceConfig;
use crate::link::Links;
use crate::metrics::Metrics;
use crate::pricing::{Prices, SAMPLE_MS, SurgeRule};
use crate::settlement::Settlement;
use crate::store::{SessionStore, StoreTiming};

/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Broker settings.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// A host silent this long loses its slots.
    pub lease: Duration,
    /// How often hosts should heartbeat.
    pub heartbeat: Duration,
    /// How long a session token is valid (and a reservation waits for the player).
    pub token_ttl: Duration,
    /// Where clients that send no location are assumed to be.
    pub default_location: GeoPoint,
    /// Directory of the built web client, served at `/`.
    pub web_dir: Option<PathBuf>,
    /// Allocations per second one client address may make (bursts of twice
    /// that); `None` turns the limit off.
    pub allocations_per_ip: Option<NonZeroU32>,
    /// Checkers whose signed reports count towards host reputation
    /// (`0x` addresses, lowercase).
    pub checkers: Vec<String>,
    /// The only hosts that may register (their ids); `None` admits every host that signs
    /// its requests.
    pub admitted_hosts: Option<BTreeSet<String>>,
    /// Whether a host is placed only once a trusted checker has checked its capacity
    /// (see `capacity`); needs at least one checker.
    pub capacity_check: bool,
    /// With a chain: also admit any host whose proven payout address keeps at least this
    /// bond (wei) in the contract (see `admit_registration`).
    pub min_bond: Option<u128>,
    /// The base URL players and the settler reach this broker at (e.g.
    /// `https://broker.example`): hosts without an inbound port are reached at their relay
    /// under it. `None` relays for no host.
    pub public_url: Option<String>,
    /// STUN and TURN servers handed to players and hosts; `None` hands out none.
    pub ice: Option<IceConfig>,
    /// How a region's utilisation raises its hosts' prices; `None` keeps base prices.
    pub surge: Option<SurgeRule>,
    /// What an hour of a comparable instance costs on a centralised cloud, wei: the
    /// network page's "cost vs cloud" reference.
    pub cloud_price_per_hour: Option<u128>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(6),
            heartbeat: Duration::from_secs(2),
            token_ttl: Duration::from_secs(30),
            default_location: GeoPoint { lat: 0.0, lon: 0.0 },
            web_dir: None,
            allocations_per_ip: NonZeroU32::new(10),
            checkers: Vec::new(),
            admitted_hosts: None,
            capacity_check: false,
            min_bond: None,
            public_url: None,
            ice: None,
            surge: Some(SurgeRule::default()),
            cloud_price_per_hour: None,
        }
    }
}

impl BrokerConfig {
    /// The store timing these settings imply.
    pub fn timing(&self) -> StoreTiming {
        StoreTiming {
            lease_ms: self.lease.as_millis() as u64,
            confirm_ms: self.token_ttl.as_millis() as u64,
        }
    }
}

/// Everything the handlers share.
pub struct BrokerState {
    /// Hosts and sessions.
    pub store: Arc<dyn SessionStore>,
    /// Signs session tokens.
    pub key: SigningKey,
    /// Settings.
    pub config: BrokerConfig,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Per-address allocation limiter.
    limiter: Option<limit::AddressLimiter>,
    /// The settler, when this broker settles sessions on chain.
    pub settlement: Option<Arc<dyn Settlement>>,
    /// Hosts' signalling links open to this broker.
    pub links: Links,
    /// Every region's surge, as this replica samples it.
    pub prices: Prices,
}

impl BrokerState {
    /// A broker over `store`.
    pub fn new(store: Arc<dyn SessionStore>, key: SigningKey, config: BrokerConfig) -> Self {
        let limiter = config.allocations_per_ip.map(limit::AddressLimiter::new);
        let metrics = Metrics::default();
        let prices = Prices::new(config.surge);
        let links = Links::default();
        Self { store, key, config, metrics, limiter, settlement: None, links, prices }
    }

    /// The STUN and TURN servers for `who` (a session id, or `host-<id>`) at `now_ms`.
    pub fn ice_servers(&self, who: &str, now_ms: u64) -> Vec<gridplay_protocol::IceServer> {
        self.config.ice.as_ref().map(|ice| ice.servers(who, now_ms)).unwrap_or_default()
    }

    /// Refuses a host outside the admission list, when there is one and hosts cannot
    /// be admitted by their bond instead.
    pub fn admit(&self, host_id: &str) -> Result<(), BrokerError> {
        let listed = self.config.admitted_hosts.as_ref().map(|a| a.contains(host_id));
        if listed == Some(false) && self.config.min_bond.is_none() {
            tracing::info!(host = %host_id, "host refused: not admitted");
            return Err(BrokerError::NotAdmitted(host_id.to_owned()));
        }
        Ok(())
    }

    /// Admits a registration: a host on the admission list, or, with a minimum bond, one that
    /// proves its payout address and whose bond there (on chain) meets the minimum.
    pub async fn admit_registration(
        &self,
        registration: &gridplay_protocol::HostRegistration,
    ) -> Result<(), BrokerError> {
        let host = registration.host_id.as_str();
        if self.config.admitted_hosts.as_ref().is_some_and(|a| a.contains(host)) {
            return Ok(());
        }
        let Some(min) = self.config.min_bond else { return self.admit(host) };
        let Some(settlement) = &self.settlement else {
            return Err(BrokerError::NotBonded("this broker reads no chain".into()));
        };
        let why = match registration.proven_payout_address() {
            Err(e) => {
                format!("its payout address is not proven ({e}): give the host --payout-key-file")
            }
            Ok(address) => match settlement.host_bond(address).await? {
                bond if bond >= min => return Ok(()),
                bond => format!(
                    "{address} has a bond of {bond} wei, under the {min} wei this broker asks for"
                ),
            },
        };
        tracing::info!(host, "host refused: {why}");
        Err(BrokerError::NotBonded(why))
    }

    /// This broker also settles sessions on chain.
    pub fn with_settlement(mut self, settlement: Arc<dyn Settlement>) -> Self {
        self.settlement = Some(settlement);
        self
    }

    /// A broker on the in-memory store.
    pub fn in_memory(key: SigningKey, config: BrokerConfig) -> Self {
        let store = Arc::new(crate::MemoryStore::new(config.timing()));
        Self::new(store, key, config)
    }
}

type Shared = Arc<BrokerState>;

/// Unix time in milliseconds: the clock replicas share.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// The broker's router.
pub fn app(state: Shared) -> Router {
    let api = Router::new()
        .route("/v1/apps", get(sessions::list_apps))
        .route("/v1/candidates", get(sessions::candidates))
        .route(
            "/v1/sessions",
            post(sessions::allocate).route_layer(axum::middleware::from_fn_with_state(
                Arc::clone(&state),
                limit::limit_per_address,
            )),
        )
        .route("/v1/sessions/{id}", get(sessions::get_session).delete(sessions::end_session))
        .route("/v1/sessions/{id}/token", post(sessions::renew_token))
        .route("/v1/hosts", post(hosts::register))
        .route("/v1/hosts/{id}/heartbeat", post(hosts::heartbeat))
        .route("/v1/hosts/{id}/sessions/{session_id}", post(hosts::update_session))
        .route("/v1/hosts/{id}/link", get(relay::link))
        .route("/v1/hosts/{id}/relay/{*path}", any(relay::relay).layer(relay::cors()))
        .route("/v1/checks", post(checks::submit))
        .route("/v1/capacity/due", get(capacity::due))
        .route("/v1/capacity/sessions", post(capacity::sessions))
        .route("/v1/capacity", post(capacity::report))
        .route("/v1/hosts/{id}/capacity", get(capacity::of_host))
        .route("/v1/settlement", get(settle::info))
        .route(
            "/v1/sessions/{id}/voucher",
            post(settle::voucher).route_layer(axum::middleware::from_fn_with_state(
                Arc::clone(&state),
                limit::limit_per_address,
            )),
        )
        .route("/v1/sessions/{id}/receipt", get(settle::receipt))
        .route("/v1/settlement/claims/{host}", get(settle::host_claims))
        .route("/v1/network", get(network::view))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi::document))
        .layer(DefaultBodyLimit::max(MAX_BODY));
    let router = match &state.config.web_dir {
        Some(dir) => api.fallback_service(
            ServeDir::new(dir).not_found_service(ServeFile::new(dir.join("index.html"))),
        ),
        None => api,
    };
    router.with_state(state)
}

async fn metrics(State(state): State<Shared>) -> impl IntoResponse {
    let now = unix_ms();
    let free = state.store.free_slots(now).await.unwrap_or_default();
    state.metrics.set_free_slots(&free);
    match network::network_view(&state, now).await {
        Ok(view) => state.metrics.set_network(&view),
        Err(e) => tracing::warn!("network figures for /metrics: {e}"),
    }
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.encode(),
    )
}

/// Serves the broker on `listener` (plain TCP, or a [`tls::TlsListener`]) until
/// `shutdown` resolves, sweeping lost hosts and lapsed reservations every second,
/// sampling regions' load for their prices every [`SAMPLE_MS`], and, when it settles,
/// committing an epoch every epoch period.
pub async fn serve<L>(
    listener: L,
    state: Shared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    let sweeper = {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut sampled = None;
            loop {
                tick.tick().await;
                let now = unix_ms();
                if let Err(e) = state.store.sweep(now).await {
                    tracing::warn!("sweep failed: {e}");
                }
                // Every region's load, once per SAMPLE_MS of the wall clock.
                if sampled.replace(now / SAMPLE_MS) != Some(now / SAMPLE_MS) {
                    match state.store.load_by_region(now).await {
                        Ok(loads) => state.prices.sample(&loads, now),
                        Err(e) => tracing::warn!("reading regions' load failed: {e}"),
                    }
                }
            }
        })
    };
    // The settler runs its own rounds; at shutdown it is told to stop and waited for, so that
    // a round under way finishes or is given up cleanly rather than cut anywhere.
    let (stop_settler, stopped) = tokio::sync::watch::channel(false);
    let settler = state.settlement.as_ref().map(|settlement| {
        let settlement = Arc::clone(settlement);
        // Hosts' records are read with tokens the settler signs itself.
        let token_key = state.key.clone();
        tokio::spawn(async move { settlement.run(token_key, stopped).await })
    });
    // Through `tap_io`, any listener's peer address is the connection's address.
    let served = axum::serve(
        listener.tap_io(|_| {}),
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    sweeper.abort();
    let _ = stop_settler.send(true);
    if let Some(settler) = settler {
        let _ = settler.await;
    }
    served
}
