//! The host process: bind, register with the broker, heartbeat, serve WHEP.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use gridplay_protocol::quic::QuicEndpoint;
use gridplay_protocol::token::encode_public_key;
use gridplay_protocol::{GeoPoint, HostRegistration, SlotOffer};
use gridplay_streaming::audio::AudioFrame;
use gridplay_streaming::quic::{HostCertificate, QuicListener};
use tokio::net::TcpListener;

use crate::broker_link::{BrokerKey, BrokerLink};
use crate::catalogue::Catalogue;
use crate::dashboard::{Dashboard, DashboardConfig, Payouts, dashboard_router};
use crate::probes::Clock;
use crate::quic::serve_quic;
use crate::whep::{DEFAULT_MAX_WATCHERS, HostState, whep_router};
use crate::worker::WorkerCommand;
use crate::{HostError, gpu};

/// How a host runs.
#[derive(Clone)]
pub struct HostConfig {
    /// The broker's base URL.
    pub broker_url: String,
    /// Which broker key session tokens must be signed with: a broker presenting
    /// another is refused at registration.
    pub broker_key: BrokerKey,
    /// CA certificates (PEM) an `https://` broker's certificate must chain to, instead
    /// of the system's roots.
    pub broker_ca: Option<PathBuf>,
    /// The host's identity key; its public half is the host id.
    pub key: SigningKey,
    /// Address of the WHEP HTTP server players reach directly; `None` for none: players
    /// then reach the host through its signalling link to the broker, and the host needs
    /// no inbound port.
    pub listen: Option<SocketAddr>,
    /// Base URL players reach this host at, when it differs from `http://{listen}`.
    pub public_url: Option<String>,
    /// Address the WebRTC media sockets bind to.
    pub media_ip: IpAddr,
    /// Address players send media (WebRTC and QUIC) to, when not `media_ip`:
    /// a 1:1 NAT's public address, or a relay placed in front of the host.
    pub media_public_ip: Option<IpAddr>,
    /// UDP ports for sessions' media, one each (for firewalls and relays);
    /// `None` lets the system pick.
    pub media_ports: Option<RangeInclusive<u16>>,
    /// UDP address of the QUIC endpoint for native clients (port 0 picks
    /// one); `None` for none. Clients reach it at the media address
    /// (`media_public_ip`, else `media_ip`) and its port.
    pub quic_listen: Option<SocketAddr>,
    /// Slots per profile.
    pub offers: Vec<SlotOffer>,
    /// Region label.
    pub region: String,
    /// Where the host is.
    pub location: GeoPoint,
    /// Price per 15-minute block.
    pub price_per_block: u64,
    /// Where the host is paid (`0x` address) when it settles on chain.
    pub payout_address: Option<String>,
    /// The payout key's proof that this host is paid there
    /// (`gridplay_protocol::prove_payout`), for brokers that admit hosts by their bond.
    pub payout_proof: Option<String>,
    /// The apps it offers besides Orbit.
    pub catalogue: Catalogue,
    /// Starts each session's worker process; `None` runs frame loops in the host's own process.
    pub worker: Option<WorkerCommand>,
    /// Watchers (QUIC, each with an unexpired token) one session may have at once.
    pub max_watchers: usize,
    /// The time sessions' probe logs are kept on.
    pub clock: Clock,
    /// How long each frame of a session's sound lasts.
    pub sound_frame: AudioFrame,
    /// The owner's dashboard, if it is served.
    pub dashboard: Option<DashboardConfig>,
    /// The host's earnings and claims, for the dashboard.
    pub payouts: Option<Arc<dyn Payouts>>,
}

impl HostConfig {
    /// A host on one machine with its broker: loopback addresses (`port` 0
    /// picks a free one), `game_slots` game slots and as many phone slots
    /// (720x1280 portrait), the broker key pinned at the first registration
    /// (in memory), [`DEFAULT_MAX_WATCHERS`] watchers per session.
    pub fn local(
        broker_url: &str,
        ip: IpAddr,
        port: u16,
        game_slots: u32,
        key: SigningKey,
    ) -> Self {
        Self {
            broker_url: broker_url.to_owned(),
            broker_key: BrokerKey::PinnedOnFirstUse(None),
            broker_ca: None,
            key,
            listen: Some(SocketAddr::new(ip, port)),
            public_url: None,
            media_ip: ip,
            media_public_ip: None,
            media_ports: None,
            quic_listen: Some(SocketAddr::new(ip, 0)),
            offers: vec![
                SlotOffer {
                    profile: gridplay_protocol::Profile::Game,
                    slots: game_slots,
                    max_width: 1920,
                    max_height: 1080,
                    max_fps: 60,
                },
                SlotOffer {
                    profile: gridplay_protocol::Profile::Phone,
                    slots: game_slots,
                    max_width: 720,
                    max_height: 1280,
                    max_fps: 60,
                },
            ],
            region: "local".into(),
            location: GeoPoint { lat: 0.0, lon: 0.0 },
            price_per_block: 0,
            payout_address: None,
            payout_proof: None,
            catalogue: Catalogue::default(),
            worker: None,
            max_watchers: DEFAULT_MAX_WATCHERS,
            clock: Clock::default(),
            sound_frame: AudioFrame::default(),
            dashboard: None,
            payouts: None,
        }
    }
}

/// Describes the GPU sessions will render on, for the broker's records.
fn describe_gpu() -> String {
    match gpu::list_gpus() {
        Ok(gpus) => gpu::pick_best(&gpus).map_or("no Vulkan device".into(), |g| g.name.clone()),
        Err(e) => format!("Vulkan unavailable: {e}"),
    }
}

/// Runs a host until `shutdown` resolves; `on_ready` gets the bound WHEP address (none
/// when players reach the host through its signalling link).
pub async fn run_host(
    config: HostConfig,
    on_ready: impl FnOnce(Option<SocketAddr>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HostError> {
    if !config.catalogue.apps().is_empty() {
        crate::workloads::app::preflight(&config.catalogue)?;
    }
    let listener = match config.listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let addr = listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let host_id = encode_public_key(&config.key.verifying_key());
    let gpu = tokio::task::spawn_blocking(describe_gpu).await.unwrap_or_default();
    tracing::info!(%gpu, host = %host_id, "rendering device");
    let base = match (&config.public_url, addr) {
        (Some(url), _) => Some(url.trim_end_matches('/').to_owned()),
        (None, Some(addr)) => Some(format!("http://{addr}")),
        (None, None) => None,
    };
    // Empty endpoints ask the broker to relay players' signalling over the link.
    let endpoint = |path: &str| base.as_ref().map(|b| format!("{b}{path}")).unwrap_or_default();
    // A host reached only through its link, at a private media address, is behind a NAT:
    // QUIC, which has no ICE, cannot reach it, and native players use WebRTC instead.
    let quic_reachable = config.listen.is_some()
        || config.media_public_ip.is_some()
        || config.media_ip.is_loopback();
    if config.quic_listen.is_some() && !quic_reachable {
        tracing::info!("no QUIC endpoint: behind a NAT, native players come over WebRTC");
    }
    let quic = match config.quic_listen.filter(|_| quic_reachable) {
        Some(addr) => {
            let cert = HostCertificate::generate()?;
            let listener = Arc::new(QuicListener::bind(addr, &cert)?);
            let port = listener.local_addr()?.port();
            let endpoint = QuicEndpoint {
                addr: SocketAddr::new(config.media_public_ip.unwrap_or(config.media_ip), port)
                    .to_string(),
                cert_sha256: cert.sha256_hex().to_owned(),
            };
            tracing::info!(addr = %endpoint.addr, "QUIC endpoint");
            Some((listener, endpoint))
        }
        None => None,
    };
    let registration = HostRegistration {
        host_id: host_id.clone(),
        whep_url: endpoint("/whep"),
        ping_url: endpoint("/ping"),
        gpu,
        region: config.region.clone(),
        location: config.location,
        offers: config.offers.clone(),
        price_per_block: config.price_per_block,
        quic: quic.as_ref().map(|(_, endpoint)| endpoint.clone()),
        payout_address: config.payout_address.clone(),
        apps: config.catalogue.apps(),
        payout_proof: config.payout_proof.clone(),
        probation: false,
    };
    let slots = config.offers.iter().map(|o| o.slots).sum();
    let link = Arc::new(BrokerLink::new(
        &config.broker_url,
        config.key.clone(),
        registration,
        config.broker_key.clone(),
        config.broker_ca.as_deref(),
    )?);
    // A host without a port of its own links before it registers, so that no player is
    // placed on it before its signalling can reach it.
    let signalling = match listener {
        Some(_) => None,
        None => Some(link.open_signalling().await?),
    };
    let (broker_key, heartbeat) = link.register().await?;
    let state = HostState::new(
        config.key.clone(),
        broker_key,
        config.media_ip,
        slots,
        Some(Arc::clone(&link)),
    );
    let state = Arc::new(
        state
            .with_media_ports(config.media_ports.clone())
            .with_media_public_ip(config.media_public_ip)
            .with_catalogue(config.catalogue.clone())
            .with_worker(config.worker.clone())
            .with_max_watchers(config.max_watchers)
            .with_clock(config.clock.clone())
            .with_sound_frame(config.sound_frame),
    );
    let heartbeats = {
        let (link, running, ending) = (Arc::clone(&link), Arc::clone(&state), Arc::clone(&state));
        tokio::spawn(async move {
            link.heartbeat_forever(
                heartbeat,
                move || running.session_ids(),
                move |ids| ending.end_sessions(ids),
            )
            .await
        })
    };
    let quic_server = quic.map(|(listener, _)| {
        let server = tokio::spawn(serve_quic(Arc::clone(&listener), Arc::clone(&state)));
        (listener, server)
    });
    let dashboard = match &config.dashboard {
        Some(dashboard_config) => {
            let listener = TcpListener::bind(dashboard_config.listen).await?;
            let url = dashboard_config.url(listener.local_addr()?);
            let dashboard = Arc::new(Dashboard {
                state: Arc::clone(&state),
                link: Arc::clone(&link),
                payouts: config.payouts.clone(),
                up_since_ms: config.clock.now_ms(),
                clock: config.clock.clone(),
                settled: Default::default(),
            });
            let router = dashboard_router(dashboard, dashboard_config);
            tracing::info!(%url, "owner's dashboard");
            Some(tokio::spawn(async move { axum::serve(listener, router).await }))
        }
        None => None,
    };
    let router = whep_router(Arc::clone(&state));
    let signalling = signalling.map(|socket| {
        let link = Arc::clone(&link);
        tokio::spawn(crate::signalling::keep_link(link, socket, router.clone()))
    });
    on_ready(addr);
    let served = match listener {
        Some(listener) => axum::serve(listener, router).with_graceful_shutdown(shutdown).await,
        None => {
            shutdown.await;
            Ok(())
        }
    };
    heartbeats.abort();
    if let Some(dashboard) = dashboard {
        dashboard.abort();
    }
    if let Some(signalling) = signalling {
        signalling.abort();
    }
    state.end_all();
    if let Some((listener, server)) = quic_server {
        listener.close();
        server.abort();
    }
    served.map_err(HostError::from)
}
