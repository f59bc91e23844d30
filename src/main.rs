//! `gridplay`: the one command-line entry to every Gridplay role.

mod capacity;
mod checker;
mod claim;
mod demo_chain;
mod dispute;
mod host_config;
mod host_init;
mod payouts;
mod play;
mod relay;
mod settle;
mod verify_receipt;

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};
use ed25519_dalek::SigningKey;
use gridplay_chain::settlement::SettlementClient;
use gridplay_host::catalogue::Catalogue;
use gridplay_host::dashboard::DashboardConfig;
use gridplay_host::probes::Clock;
use gridplay_host::worker::WorkerCommand;
use gridplay_host::workloads::app::cgroup::Limits;
use gridplay_host::{BrokerKey, DEFAULT_MAX_WATCHERS, HostConfig, run_host};
use gridplay_protocol::settlement::ServiceLevel;
use gridplay_protocol::{GeoPoint, Profile, SlotOffer};
use gridplay_session_broker::admission::parse_admitted_hosts;
use gridplay_session_broker::ice::IceConfig;
use gridplay_session_broker::pricing::SurgeRule;
use gridplay_session_broker::unix_ms;
use gridplay_session_broker::{
    BrokerConfig, BrokerState, MemoryStore, RedisStore, SessionStore, serve, tls,
};
use gridplay_settler::{SettlementConfig, Settler};
use gridplay_streaming::audio::AudioFrame;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Gridplay: a session host network for cloud gaming and cloud phones.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole network on this machine: a broker serving the web client and one host.
    Up(UpArgs),
    /// Run a session broker.
    Broker(BrokerArgs),
    /// Run a session host that registers with a broker.
    // A flag given twice (in --config's file and on the command line) takes the last.
    #[command(args_override_self = true, args_conflicts_with_subcommands = true)]
    Host(Box<HostArgs>),
    /// Play a session: allocate, stream, decode, send input, print a summary.
    Play(play::PlayArgs),
    /// Check a host as a synthetic client and print a signed report of the service it delivered.
    Checker(checker::CheckerArgs),
    /// Relay UDP ports with added delay, jitter and loss (for testing on impaired networks).
    Relay(relay::RelayArgs),
    /// Submit the signed epoch roots of a local ledger to the settlement contract, exactly once.
    Settle(settle::SettleArgs),
    /// Claim this host's totals for the epochs of session receipts, once the epochs are final.
    Claim(claim::ClaimArgs),
    /// Refund the blocks of a session receipt that a checker's signed summaries bill lower.
    Dispute(dispute::DisputeArgs),
    /// Check a session receipt against the chain alone: voucher, leaves, proofs, roots, commits.
    VerifyReceipt(verify_receipt::VerifyReceiptArgs),
    /// One session's frame loop, started by a host for each session (not for people).
    #[command(hide = true)]
    Worker,
}

/// Each session's frame loop runs in a `gridplay worker` process of its own.
fn worker_command() -> anyhow::Result<WorkerCommand> {
    let program = std::env::current_exe().context("finding this executable for session workers")?;
    Ok(WorkerCommand { program, args: vec!["worker".into()] })
}

/// The STUN and TURN servers a broker hands to players and hosts.
#[derive(Args, Clone)]
struct IceArgs {
    /// A STUN server players and hosts learn their public address from (stun:HOST:PORT);
    /// repeat for more.
    #[arg(long = "stun-url", env = "GRIDPLAY_STUN_URLS", value_delimiter = ',')]
    stun_urls: Vec<String>,
    /// A TURN server that relays media for players and hosts behind NATs
    /// (turn:HOST:PORT?transport=udp); repeat for more. Needs --turn-secret-file.
    #[arg(
        long = "turn-url",
        env = "GRIDPLAY_TURN_URLS",
        value_delimiter = ',',
        requires = "turn_secret_file"
    )]
    turn_urls: Vec<String>,
    /// File holding the secret the broker shares with its TURN servers (coturn's
    /// static-auth-secret), with which it makes short-lived TURN credentials.
    #[arg(long, env = "GRIDPLAY_TURN_SECRET_FILE")]
    turn_secret_file: Option<PathBuf>,
    /// How long TURN credentials last, in seconds (a relay a session uses must be renewed
    /// within it).
    #[arg(long, env = "GRIDPLAY_TURN_TTL_S", default_value_t = 86_400)]
    turn_ttl_s: u64,
}

impl IceArgs {
    /// The ICE servers these flags name; none when they name none.
    fn config(&self) -> anyhow::Result<Option<IceConfig>> {
        if self.stun_urls.is_empty() && self.turn_urls.is_empty() {
            return Ok(None);
        }
        let secret = match &self.turn_secret_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        };
        let ttl = std::time::Duration::from_secs(self.turn_ttl_s);
        let ice = IceConfig::new(
            self.stun_urls.clone(),
            self.turn_urls.clone(),
            secret.as_deref().map(str::as_bytes),
            ttl,
        )?;
        tracing::info!(stun = ?self.stun_urls, turn = ?self.turn_urls, "ICE servers for players and hosts");
        Ok(Some(ice))
    }
}

/// HTTPS for the broker (and the web client it serves).
#[derive(Args, Clone)]
struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, env = "GRIDPLAY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM); needs --tls-cert.
    #[arg(long, env = "GRIDPLAY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The scheme the broker is reached by.
    fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() { "https" } else { "http" }
    }

    /// Serves the broker on `listener`, over TLS when configured, until `shutdown`.
    async fn serve(
        self,
        listener: TcpListener,
        state: Arc<BrokerState>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let config = tls::server_config(cert, key)?;
                serve(tls::TlsListener::new(listener, config)?, state, shutdown).await?;
            }
            _ => serve(listener, state, shutdown).await?,
        }
        Ok(())
    }
}

#[derive(Args)]
struct UpArgs {
    /// Port of the broker and web client.
    #[arg(long, env = "GRIDPLAY_PORT", default_value_t = 8080)]
    port: u16,
    /// Port of a WHEP endpoint of the host's own; without it, players' signalling reaches
    /// the host through its link to the broker.
    #[arg(long, env = "GRIDPLAY_HOST_PORT")]
    host_port: Option<u16>,
    /// Address everything binds to.
    #[arg(long, env = "GRIDPLAY_BIND", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Directory of the built web client.
    #[arg(long, env = "GRIDPLAY_WEB_DIR", default_value = "client-web/dist")]
    web_dir: PathBuf,
    /// Game sessions the host offers at once.
    #[arg(long, env = "GRIDPLAY_SLOTS", default_value_t = 4)]
    slots: u32,
    /// Settle on a local chain: the anvil binary to start (`make up` passes the one `make
    /// chain-deps` installs). The contract is deployed, the host bonded and a demo player funded.
    #[arg(long, env = "GRIDPLAY_ANVIL")]
    anvil: Option<PathBuf>,
    /// Seconds between epoch commits when settling.
    #[arg(long, env = "GRIDPLAY_EPOCH_SECONDS", default_value_t = 20)]
    epoch_seconds: u64,
    /// The host's app catalogue (TOML, one [[app]] table per app), offered beside Orbit.
    #[arg(long, env = "GRIDPLAY_APPS")]
    apps: Option<PathBuf>,
    #[command(flatten)]
    app_limits: AppLimitArgs,
    #[command(flatten)]
    sound: SoundArgs,
    #[command(flatten)]
    dashboard: DashboardArgs,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    ice: IceArgs,
    /// CA certificates (PEM) the host checks the broker's certificate against, instead of the
    /// system's roots (with --tls-cert: the CA that signed it).
    #[arg(long, env = "GRIDPLAY_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Place players on the host only once a checker (run here) has checked its capacity,
    /// and on no more slots than met the service level.
    #[arg(long, env = "GRIDPLAY_CAPACITY_CHECK")]
    capacity_check: bool,
    /// Admit the host only if it keeps at least this bond (wei) on the demo chain (needs
    /// --anvil); the host proves its payout address with the demo host's key.
    #[arg(long, env = "GRIDPLAY_MIN_BOND", requires = "anvil")]
    min_bond: Option<u128>,
    #[command(flatten)]
    pricing: PricingArgs,
}

#[derive(Args)]
struct BrokerArgs {
    /// Address to listen on.
    #[arg(long, env = "GRIDPLAY_BROKER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Base URL players reach this broker at (e.g. https://broker.example), under which hosts
    /// without an inbound port are relayed; default: the listen address, unless that is 0.0.0.0 or [::].
    #[arg(long, env = "GRIDPLAY_BROKER_PUBLIC_URL")]
    public_url: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    ice: IceArgs,
    /// Directory of the built web client to serve at `/`.
    #[arg(long, env = "GRIDPLAY_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// Keep state in Redis so several brokers share it: one server (redis://127.0.0.1:6379)
    /// or a Cluster (redis+cluster://host:port,host:port, or several URLs separated by commas);
    /// without it state lives in this process.
    #[arg(long, env = "GRIDPLAY_REDIS_URL")]
    redis_url: Option<String>,
    /// File holding the broker's token-signing key (created if missing). Brokers
    /// sharing one Redis must share this key.
    #[arg(long, env = "GRIDPLAY_BROKER_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Milliseconds a reservation waits for the player to connect (and a token lives).
    #[arg(long, env = "GRIDPLAY_TOKEN_TTL_MS", default_value_t = 30_000)]
    token_ttl_ms: u64,
    /// Allocations per second one client address may make (bursts of twice that); 0 turns the limit off.
    #[arg(long, env = "GRIDPLAY_ALLOCATIONS_PER_IP", default_value_t = 10)]
    allocations_per_ip: u32,
    /// Checkers whose signed reports count towards host reputation (0x addresses; repeat or comma-separate).
    #[arg(long = "checker", env = "GRIDPLAY_CHECKERS", value_delimiter = ',', value_parser = parse_address)]
    checkers: Vec<String>,
    /// Place players on a new or changed host only once one of the --checker checkers has
    /// checked its capacity (`gridplay checker --capacity`), and on no more slots than met
    /// the service level.
    #[arg(long, env = "GRIDPLAY_CAPACITY_CHECK")]
    capacity_check: bool,
    /// Also admit any host that proves its payout address (`gridplay host
    /// --payout-key-file`) and keeps at least this bond there in the contract, in wei
    /// (needs --rpc-url); others get 403 `not_bonded`.
    #[arg(long, env = "GRIDPLAY_MIN_BOND", requires = "rpc_url")]
    min_bond: Option<u128>,
    /// Admit only the hosts listed in this file (one host id per line, as `gridplay host`
    /// logs it at start; `#` comments): any other host is refused with 403 and never placed.
    #[arg(long, env = "GRIDPLAY_ADMIT_HOSTS")]
    admit_hosts: Option<PathBuf>,
    #[command(flatten)]
    pricing: PricingArgs,
    /// Settle sessions on this EVM JSON-RPC endpoint (with --contract and --operator-key-file);
    /// run it on one broker replica.
    #[arg(long, env = "GRIDPLAY_RPC_URL")]
    rpc_url: Option<String>,
    /// The settlement contract's address.
    #[arg(long, env = "GRIDPLAY_CONTRACT")]
    contract: Option<alloy::primitives::Address>,
    /// File holding the operator's secp256k1 key (hex), which commits epochs.
    #[arg(long, env = "GRIDPLAY_OPERATOR_KEY_FILE")]
    operator_key_file: Option<PathBuf>,
    /// Seconds between epoch commits (fractions allowed, at least 0.1).
    #[arg(long, env = "GRIDPLAY_EPOCH_SECONDS", default_value_t = 900.0)]
    epoch_seconds: f64,
    /// The JSON-RPC endpoint players are told to check receipts against (default: --rpc-url).
    #[arg(long, env = "GRIDPLAY_PUBLIC_RPC_URL")]
    public_rpc_url: Option<String>,
    /// Directory of what the settler must keep across restarts: every player's cumulative
    /// spend after the last commit (each commit must carry it forward, or it can be voided and
    /// the operator's bond burned) and the journal of vouchers, billed blocks and receipts.
    #[arg(long, env = "GRIDPLAY_SETTLEMENT_STATE", default_value = "gridplay-settlement")]
    settlement_state: PathBuf,
    /// Let the settler read hosts' records from loopback, private (RFC 1918, ULA) and
    /// link-local addresses: for a network on one machine or one LAN. Without it, a host
    /// registering such an endpoint is never read (nor paid).
    #[arg(long, env = "GRIDPLAY_ALLOW_PRIVATE_HOSTS")]
    allow_private_hosts: bool,
}

/// The period between settling rounds, from seconds (at least 0.1).
fn epoch_period(seconds: f64) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(seconds.max(0.1))
        .map_err(|e| anyhow::anyhow!("--epoch-seconds {seconds}: {e}"))
}

/// A `0x` Ethereum address, lowercased.
fn parse_address(text: &str) -> Result<String, String> {
    let hex = text
        .strip_prefix("0x")
        .filter(|h| h.len() == 40 && h.chars().all(|c| c.is_ascii_hexdigit()));
    hex.map(|h| format!("0x{}", h.to_lowercase()))
        .ok_or_else(|| format!("expected a 0x address, got `{text}`"))
}

/// What `gridplay host` does besides hosting.
#[derive(Subcommand)]
enum HostAction {
    /// Measure this machine (device, encoder, what a frame costs) and write a commented
    /// configuration for `gridplay host --config`.
    Init(host_init::InitArgs),
    /// Print the systemd unit that runs `gridplay host --config FILE` (or install it).
    Service(host_init::ServiceArgs),
}

#[derive(Args)]
struct HostArgs {
    #[command(subcommand)]
    action: Option<HostAction>,
    /// Read flags from this TOML file, one key per flag (`game-slots = 4`, `no-quic = true`);
    /// flags on the command line win over it.
    #[arg(long, env = "GRIDPLAY_HOST_CONFIG")]
    config: Option<PathBuf>,
    /// The broker's base URL (`https://` verified against the system's roots or --ca-file).
    #[arg(long, env = "GRIDPLAY_BROKER_URL", default_value = "http://127.0.0.1:8080")]
    broker_url: String,
    /// CA certificates (PEM) an `https://` broker's certificate must chain to, instead of the
    /// system's roots.
    #[arg(long, env = "GRIDPLAY_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// File holding the host's identity key (created if missing); its public half is the host id.
    #[arg(long, env = "GRIDPLAY_HOST_KEY_FILE", default_value = "gridplay-host.key")]
    key_file: PathBuf,
    /// The broker's token-signing public key (base64url ed25519, as `gridplay broker` prints
    /// it at start): a broker presenting any other is refused. Without it, the key the broker
    /// presents at the first registration is pinned in `<key file>.broker` and required from
    /// then on (delete that file to trust a new broker key).
    #[arg(long, env = "GRIDPLAY_BROKER_KEY", value_parser = parse_broker_key)]
    broker_key: Option<ed25519_dalek::VerifyingKey>,
    /// Watchers (QUIC) one session may have at once.
    #[arg(long, env = "GRIDPLAY_MAX_WATCHERS", default_value_t = DEFAULT_MAX_WATCHERS)]
    max_watchers: usize,
    /// Address of a WHEP HTTP endpoint players reach directly. Without it the host needs no
    /// inbound port: players' signalling comes through its link to the broker.
    #[arg(long, env = "GRIDPLAY_HOST_LISTEN")]
    listen: Option<SocketAddr>,
    /// Base URL players reach this host's WHEP endpoint at (e.g. http://host.example:8081),
    /// when not the listen address.
    #[arg(long, env = "GRIDPLAY_PUBLIC_URL", requires = "listen")]
    public_url: Option<String>,
    /// Address the WebRTC media sockets bind to (the host's reachable address).
    #[arg(long, env = "GRIDPLAY_MEDIA_IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    media_ip: IpAddr,
    /// Address players send media to, when not --media-ip: a 1:1 NAT's public address, or a relay in front.
    #[arg(long, env = "GRIDPLAY_MEDIA_PUBLIC_IP")]
    media_public_ip: Option<IpAddr>,
    /// UDP ports for media, one per session, e.g. 40000-40015 (default: any free port).
    #[arg(long, env = "GRIDPLAY_MEDIA_PORTS", value_parser = parse_port_range)]
    media_ports: Option<std::ops::RangeInclusive<u16>>,
    /// UDP port of the QUIC endpoint for native clients, on the media address (0: any free port).
    #[arg(long, env = "GRIDPLAY_QUIC_PORT", default_value_t = 0, conflicts_with = "no_quic")]
    quic_port: u16,
    /// Serve no QUIC endpoint (browsers only).
    #[arg(long)]
    no_quic: bool,
    /// Game sessions (up to 1920x1080@60) offered at once.
    #[arg(long, env = "GRIDPLAY_GAME_SLOTS", default_value_t = 4)]
    game_slots: u32,
    /// Phone sessions (up to 720x1280@60) offered at once; 0 offers none.
    #[arg(long, env = "GRIDPLAY_PHONE_SLOTS", default_value_t = 0)]
    phone_slots: u32,
    /// Region label shown to operators.
    #[arg(long, env = "GRIDPLAY_REGION", default_value = "local")]
    region: String,
    /// Latitude of this host.
    #[arg(long, env = "GRIDPLAY_LAT", default_value_t = 0.0, allow_negative_numbers = true)]
    lat: f64,
    /// Longitude of this host.
    #[arg(long, env = "GRIDPLAY_LON", default_value_t = 0.0, allow_negative_numbers = true)]
    lon: f64,
    /// Price per 15-minute block, in the settlement token's smallest unit.
    #[arg(long, env = "GRIDPLAY_PRICE_PER_BLOCK", default_value_t = 0)]
    price_per_block: u64,
    /// The address (0x) this host is paid at when sessions settle on chain.
    #[arg(long, env = "GRIDPLAY_PAYOUT_ADDRESS", value_parser = parse_address)]
    payout_address: Option<String>,
    /// File holding the payout key (hex secp256k1): the host then proves to the broker that
    /// it is paid at that key's address (brokers that admit hosts by bond ask for it).
    #[arg(long, env = "GRIDPLAY_PAYOUT_KEY_FILE")]
    payout_key_file: Option<PathBuf>,
    /// JSON-RPC endpoint of the chain the broker settles on, for the dashboard's earnings
    /// and claims (default: the one the broker names).
    #[arg(long, env = "GRIDPLAY_RPC_URL")]
    rpc_url: Option<String>,
    /// The app catalogue (TOML, one [[app]] table per app), offered beside Orbit.
    #[arg(long, env = "GRIDPLAY_APPS")]
    apps: Option<PathBuf>,
    #[command(flatten)]
    app_limits: AppLimitArgs,
    #[command(flatten)]
    sound: SoundArgs,
    #[command(flatten)]
    dashboard: DashboardArgs,
    /// Directory of the built web client, whose owner.html is the dashboard's page.
    #[arg(long, env = "GRIDPLAY_WEB_DIR", default_value = "client-web/dist")]
    web_dir: PathBuf,
}

/// What each app session may use.
#[derive(Args)]
struct AppLimitArgs {
    /// CPU time each app session may use, in cores.
    #[arg(long, env = "GRIDPLAY_APP_CPUS", default_value_t = 1.0)]
    app_cpus: f64,
    /// Memory each app session may use, in MiB.
    #[arg(long, env = "GRIDPLAY_APP_MEMORY_MIB", default_value_t = 2048)]
    app_memory_mib: u64,
    /// Processes and threads each app session may run.
    #[arg(long, env = "GRIDPLAY_APP_PROCESSES", default_value_t = 512)]
    app_processes: u32,
}

/// How sessions' sound is sent.
#[derive(Args)]
struct SoundArgs {
    /// Length of each frame of a session's sound, in ms: 5 (the least delay, no FEC),
    /// 10 or 20 (the most resilient to loss).
    #[arg(long, env = "GRIDPLAY_SOUND_FRAME_MS", default_value = "10", value_parser = parse_sound_frame)]
    sound_frame_ms: AudioFrame,
}

/// Demand pricing, and the network page's cloud reference.
#[derive(Args)]
struct PricingArgs {
    /// What an hour of a comparable instance costs on a centralised cloud, in wei: the
    /// network page shows what players paid per delivered hour against it.
    #[arg(long, env = "GRIDPLAY_CLOUD_PRICE_PER_HOUR")]
    cloud_price_per_hour: Option<u128>,
    /// The most a busy region multiplies its hosts' prices by: from ×1 at 60 % of its
    /// slots in use (over five minutes) up to this at 100 %, in steps of ×0.25; 1 keeps
    /// every host at its own price.
    #[arg(long, env = "GRIDPLAY_SURGE_CAP", default_value_t = 2.0, value_parser = parse_surge_cap)]
    surge_cap: f64,
}

impl PricingArgs {
    /// The surge rule the cap makes, if any.
    fn rule(&self) -> Option<SurgeRule> {
        let cap_milli = (self.surge_cap * 1000.0).round() as u32;
        (cap_milli > 1000).then(|| SurgeRule { cap_milli, ..SurgeRule::default() })
    }
}

/// Parses a surge cap: a factor from 1 to 10.
fn parse_surge_cap(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(cap) if (1.0..=10.0).contains(&cap) => Ok(cap),
        _ => Err(format!("{text} is not a factor from 1 to 10")),
    }
}

/// The owner's dashboard.
#[derive(Args)]
struct DashboardArgs {
    /// Address of the owner's dashboard (port 0: a free one, printed at start). On loopback
    /// it answers only this machine; anywhere else it asks for a token printed at start.
    #[arg(long, env = "GRIDPLAY_DASHBOARD", default_value = "127.0.0.1:0")]
    dashboard: SocketAddr,
    /// Serve no owner's dashboard.
    #[arg(long, env = "GRIDPLAY_NO_DASHBOARD")]
    no_dashboard: bool,
    /// The token the dashboard's API asks for (default: a fresh one each start, unless the
    /// dashboard is on loopback).
    #[arg(long, env = "GRIDPLAY_DASHBOARD_TOKEN")]
    dashboard_token: Option<String>,
}

impl DashboardArgs {
    /// The dashboard's settings, its page from the web client built in `web_dir`.
    fn config(self, web_dir: PathBuf) -> anyhow::Result<Option<DashboardConfig>> {
        if self.no_dashboard {
            return Ok(None);
        }
        let page = web_dir.join("owner.html");
        let web_dir = match page.is_file() {
            true => Some(web_dir),
            false => {
                tracing::warn!(missing = %page.display(), "the dashboard serves its API alone");
                None
            }
        };
        Ok(Some(DashboardConfig::new(self.dashboard, self.dashboard_token, web_dir)?))
    }
}

/// Parses a sound frame length in ms.
fn parse_sound_frame(ms: &str) -> Result<AudioFrame, String> {
    ms.parse().ok().and_then(AudioFrame::from_ms).ok_or_else(|| format!("{ms} is not 5, 10 or 20"))
}

/// The catalogue at `path`, or none, with the sessions' limits.
fn load_catalogue(
    path: Option<&std::path::Path>,
    limits: &AppLimitArgs,
) -> anyhow::Result<Catalogue> {
    if !(limits.app_cpus > 0.0 && limits.app_cpus <= 1024.0) {
        anyhow::bail!("--app-cpus must be above 0 and at most 1024");
    }
    let Some(path) = path else { return Ok(Catalogue::default()) };
    let mut catalogue = Catalogue::load(path)?;
    catalogue.limits = Limits {
        cpus: limits.app_cpus,
        memory_bytes: limits.app_memory_mib.max(16).saturating_mul(1 << 20),
        pids: limits.app_processes.max(16),
    };
    let ids: Vec<String> = catalogue.apps().into_iter().map(|a| a.id).collect();
    tracing::info!(file = %path.display(), apps = ?ids, "app catalogue");
    Ok(catalogue)
}

/// The host ids listed in the admission file at `path`.
fn load_admitted_hosts(
    path: &std::path::Path,
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the admission file {}", path.display()))?;
    let hosts =
        parse_admitted_hosts(&path.display().to_string(), &text).map_err(anyhow::Error::msg)?;
    tracing::info!(file = %path.display(), hosts = hosts.len(), "only listed hosts are admitted");
    Ok(hosts)
}

/// Parses a base64url ed25519 public key.
fn parse_broker_key(text: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    gridplay_protocol::token::decode_public_key(text.trim())
        .map_err(|e| format!("expected a base64url ed25519 public key: {e}"))
}

/// Where a host pins its broker's key: beside its own key file, `<key file>.broker`.
fn broker_pin_file(key_file: &std::path::Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".broker");
    PathBuf::from(name)
}

/// Parses `FIRST-LAST` into a port range.
fn parse_port_range(text: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let bad = || format!("expected FIRST-LAST ports, got `{text}`");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok(a..=b)
}

/// The default log filter: our own INFO lines, the WebRTC stack's warnings, less three it
/// gives for every session (our pacer replacing its default, DTLS without a server name,
/// SCTP's first packet before its association) and the ICE and mDNS chatter.
const QUIET_LIBRARIES: &str = "info,webrtc=warn,rtc=warn,rtc_mdns=off,rtc_ice=off,\
    rtc_interceptor::registry=error,rtc_dtls::config=error,rtc_sctp::endpoint=error,redis=error";

/// Parses the command line `args`; for `gridplay host --config FILE`, the file's flags are
/// read in before the command line's, which win.
fn parse_cli(args: Vec<OsString>) -> anyhow::Result<Cli> {
    let cli = Cli::parse_from(&args);
    let Command::Host(host) = &cli.command else { return Ok(cli) };
    let (None, Some(path)) = (&host.action, &host.config) else { return Ok(cli) };
    let command = Cli::command();
    let host_command = command.find_subcommand("host").context("the host command")?;
    let from_file = host_config::flags_from_file(path, host_command)?;
    let at = args.iter().position(|a| a == "host").context("the host command")? + 1;
    Ok(Cli::parse_from(
        args[..at].iter().cloned().chain(from_file).chain(args[at..].iter().cloned()),
    ))
}

fn main() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours for a terminal; plain lines for a file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| QUIET_LIBRARIES.into()),
        )
        .init();
    let cli = parse_cli(std::env::args_os().collect())?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal();
        match cli.command {
            Command::Up(args) => up(args, shutdown).await,
            Command::Broker(args) => broker(args, shutdown).await,
            Command::Host(args) => match &args.action {
                Some(HostAction::Init(init)) => host_init::init(init),
                Some(HostAction::Service(service)) => host_init::service(service),
                None => host(*args, shutdown).await,
            },
            Command::Play(args) => play::run(args).await,
            Command::Checker(args) => checker::run(args).await,
            Command::Relay(args) => relay::run(args).await,
            Command::Settle(args) => settle::run(args).await,
            Command::VerifyReceipt(args) => verify_receipt::run(args).await,
            Command::Claim(args) => claim::run(args).await,
            Command::Dispute(args) => dispute::run(args).await,
            Command::Worker => {
                let worker = tokio::task::spawn_blocking(gridplay_host::worker::worker_main);
                worker.await?.context("worker")
            }
        }
    })
}

/// Resolves (for every clone) once Ctrl-C or SIGTERM arrives.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}

async fn wait(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn random_key() -> anyhow::Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads a hex secp256k1 private key (`0x` optional) from `path`.
fn read_secp256k1_key(path: &std::path::Path) -> anyhow::Result<k256::ecdsa::SigningKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let text = text.trim();
    gridplay_protocol::probe::from_hex(text.strip_prefix("0x").unwrap_or(text))
        .and_then(|bytes| k256::ecdsa::SigningKey::from_slice(&bytes).ok())
        .with_context(|| format!("{} must hold a hex secp256k1 private key", path.display()))
}

/// Reads a 32-byte ed25519 seed from `path`, creating it (mode 0600) if missing.
fn load_or_create_key(path: &std::path::Path) -> anyhow::Result<SigningKey> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read(path) {
        Ok(bytes) => {
            let seed: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", path.display()))?;
            Ok(SigningKey::from_bytes(&seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = random_key()?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(key.as_bytes())?;
            tracing::info!("created key {}", path.display());
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

async fn broker_state(
    config: BrokerConfig,
    key: SigningKey,
    redis_url: Option<&str>,
    settlement: Option<SettlementConfig>,
) -> anyhow::Result<Arc<BrokerState>> {
    let store: Arc<dyn SessionStore> = match redis_url {
        Some(url) => Arc::new(
            RedisStore::connect(url, config.timing()).await.context("connecting to Redis")?,
        ),
        None => Arc::new(MemoryStore::new(config.timing())),
    };
    let state = BrokerState::new(store, key, config);
    Ok(Arc::new(match settlement {
        Some(settlement) => {
            let settler = Settler::start(settlement, unix_ms()).await.context("settlement")?;
            state.with_settlement(Arc::new(settler))
        }
        None => state,
    }))
}

async fn up(args: UpArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let catalogue = load_catalogue(args.apps.as_deref(), &args.app_limits)?;
    if !args.web_dir.join("index.html").exists() {
        anyhow::bail!(
            "web client not built at {} (run `make up`, or `npm --prefix client-web run build`)",
            args.web_dir.display()
        );
    }
    let listener = TcpListener::bind((args.bind, args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.bind, args.port))?;
    let broker_addr = listener.local_addr()?;
    let dashboard = args.dashboard.config(args.web_dir.clone())?;
    let epoch = std::time::Duration::from_secs(args.epoch_seconds.max(1));
    let chain = match &args.anvil {
        Some(path) => Some(demo_chain::start(path, epoch).await?),
        None => None,
    };
    let scheme = args.tls.scheme();
    let broker_url = format!("{scheme}://{broker_addr}");
    // With capacity checks, a checker of its own checks the host.
    let checker_key = checker::random_key()?;
    let checker = gridplay_protocol::probe::Address::of(checker_key.verifying_key()).to_string();
    let config = BrokerConfig {
        web_dir: Some(args.web_dir),
        public_url: Some(broker_url.clone()),
        ice: args.ice.config()?,
        capacity_check: args.capacity_check,
        checkers: if args.capacity_check { vec![checker] } else { Vec::new() },
        min_bond: args.min_bond,
        surge: args.pricing.rule(),
        cloud_price_per_hour: args.pricing.cloud_price_per_hour,
        ..BrokerConfig::default()
    };
    // `chain` lives to the end of `up`: dropping it stops anvil.
    let settlement = chain.as_ref().map(|c| c.settlement.clone());
    let payout_key = chain.as_ref().map(|c| c.payout_key.clone());
    let broker_key = random_key()?;
    let trusted = BrokerKey::Configured(broker_key.verifying_key());
    let state = broker_state(config, broker_key, None, settlement).await?;
    let broker = tokio::spawn(args.tls.serve(listener, state, wait(shutdown.clone())));
    let capacity = args.capacity_check.then(|| {
        let url = broker_url.clone();
        tokio::spawn(async move {
            let level = capacity::ServiceLevel::default();
            if let Err(e) = capacity::serve(&url, &checker_key, level, false).await {
                tracing::error!("capacity checker: {e:#}");
            }
        })
    });
    let mut host_config = HostConfig::local(
        &broker_url,
        args.bind,
        args.host_port.unwrap_or(0),
        args.slots,
        random_key()?,
    );
    host_config.listen = args.host_port.map(|port| SocketAddr::new(args.bind, port));
    host_config.broker_key = trusted;
    host_config.broker_ca = args.ca_file;
    host_config.catalogue = catalogue;
    host_config.worker = Some(worker_command()?);
    host_config.sound_frame = args.sound.sound_frame_ms;
    if let Some(payout_key) = payout_key {
        let host_id = gridplay_protocol::token::encode_public_key(&host_config.key.verifying_key());
        let (address, proof) = gridplay_protocol::prove_payout(&host_id, &payout_key);
        host_config.payouts = Some(payouts::ChainPayouts::shared(
            gridplay_host::https_trusting(host_config.broker_ca.as_deref())?.build()?,
            &broker_url,
            None,
            address.parse().context("the payout address")?,
            Some(PrivateKeySigner::from_signing_key(payout_key)),
        ));
        host_config.payout_address = Some(address);
        host_config.payout_proof = Some(proof);
        host_config.price_per_block = demo_chain::DEMO_PRICE_PER_BLOCK;
    }
    host_config.dashboard = dashboard;
    let url = broker_url.clone();
    run_host(
        host_config,
        move |_| println!("Gridplay is up: open {url}  (Ctrl-C to stop)"),
        wait(shutdown),
    )
    .await
    .context("host")?;
    if let Some(capacity) = capacity {
        capacity.abort();
    }
    broker.await?.context("broker")?;
    Ok(())
}

async fn broker(args: BrokerArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let key = match &args.key_file {
        Some(path) => load_or_create_key(path)?,
        None => random_key()?,
    };
    let public_url = args.public_url.clone().or_else(|| {
        let listen = args.listen;
        (!listen.ip().is_unspecified()).then(|| format!("{}://{listen}", args.tls.scheme()))
    });
    match &public_url {
        Some(url) => tracing::info!(url, "hosts without an inbound port are relayed"),
        None => tracing::info!("no --public-url: hosts must serve WHEP themselves"),
    }
    let config = BrokerConfig {
        public_url,
        ice: args.ice.config()?,
        web_dir: args.web_dir,
        token_ttl: std::time::Duration::from_millis(args.token_ttl_ms),
        allocations_per_ip: std::num::NonZeroU32::new(args.allocations_per_ip),
        checkers: args.checkers,
        admitted_hosts: args.admit_hosts.as_deref().map(load_admitted_hosts).transpose()?,
        capacity_check: args.capacity_check,
        min_bond: args.min_bond,
        surge: args.pricing.rule(),
        cloud_price_per_hour: args.pricing.cloud_price_per_hour,
        ..BrokerConfig::default()
    };
    if config.capacity_check && config.checkers.is_empty() {
        anyhow::bail!("--capacity-check needs at least one --checker to check the hosts");
    }
    let settlement = match (&args.rpc_url, args.contract, &args.operator_key_file) {
        (Some(rpc_url), Some(contract), Some(key_file)) => {
            let text = std::fs::read_to_string(key_file)
                .with_context(|| format!("reading {}", key_file.display()))?;
            let operator: alloy::signers::local::PrivateKeySigner =
                text.trim().parse().context("the operator key must be a hex secp256k1 key")?;
            let client = SettlementClient::connect(rpc_url, operator, contract).await?;
            Some(SettlementConfig {
                client,
                epoch: epoch_period(args.epoch_seconds)?,
                rpc_url: Some(args.public_rpc_url.clone().unwrap_or_else(|| rpc_url.clone())),
                demo_player_key: None,
                service_level: ServiceLevel::standard(9_000),
                state_dir: args.settlement_state.clone(),
                allow_private_hosts: args.allow_private_hosts,
            })
        }
        (None, None, None) => None,
        _ => anyhow::bail!("settling needs --rpc-url, --contract and --operator-key-file together"),
    };
    let public_key = gridplay_protocol::token::encode_public_key(&key.verifying_key());
    let state = broker_state(config, key, args.redis_url.as_deref(), settlement).await?;
    println!("broker listening on {}://{}", args.tls.scheme(), listener.local_addr()?);
    println!("broker token key (for `gridplay host --broker-key`): {public_key}");
    args.tls.serve(listener, state, wait(shutdown)).await?;
    Ok(())
}

async fn host(args: HostArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let catalogue = load_catalogue(args.apps.as_deref(), &args.app_limits)?;
    let mut offers = vec![SlotOffer {
        profile: Profile::Game,
        slots: args.game_slots,
        max_width: 1920,
        max_height: 1080,
        max_fps: 60,
    }];
    if args.phone_slots > 0 {
        offers.push(SlotOffer {
            profile: Profile::Phone,
            slots: args.phone_slots,
            max_width: 720,
            max_height: 1280,
            max_fps: 60,
        });
    }
    let broker_key = match args.broker_key {
        Some(key) => BrokerKey::Configured(key),
        None => BrokerKey::PinnedOnFirstUse(Some(broker_pin_file(&args.key_file))),
    };
    let key = load_or_create_key(&args.key_file)?;
    let mut payout_signer = None;
    let (payout_address, payout_proof) = match &args.payout_key_file {
        Some(path) => {
            let payout_key = read_secp256k1_key(path)?;
            payout_signer = Some(PrivateKeySigner::from_signing_key(payout_key.clone()));
            let host_id = gridplay_protocol::token::encode_public_key(&key.verifying_key());
            let (address, proof) = gridplay_protocol::prove_payout(&host_id, &payout_key);
            if args.payout_address.as_ref().is_some_and(|a| a.to_lowercase() != address) {
                anyhow::bail!(
                    "--payout-address is not the address of --payout-key-file ({address})"
                );
            }
            (Some(address), Some(proof))
        }
        None => (args.payout_address, None),
    };
    let payouts = match &payout_address {
        Some(address) => Some(payouts::ChainPayouts::shared(
            gridplay_host::https_trusting(args.ca_file.as_deref())?.build()?,
            &args.broker_url,
            args.rpc_url.clone(),
            address.parse().context("the payout address")?,
            payout_signer,
        )),
        None => None,
    };
    let config = HostConfig {
        broker_url: args.broker_url,
        broker_key,
        broker_ca: args.ca_file,
        key,
        listen: args.listen,
        public_url: args.public_url,
        media_ip: args.media_ip,
        media_public_ip: args.media_public_ip,
        media_ports: args.media_ports,
        quic_listen: (!args.no_quic).then(|| SocketAddr::new(args.media_ip, args.quic_port)),
        offers,
        region: args.region,
        location: GeoPoint { lat: args.lat, lon: args.lon },
        price_per_block: args.price_per_block,
        payout_address,
        payout_proof,
        catalogue,
        worker: Some(worker_command()?),
        max_watchers: args.max_watchers,
        clock: Clock::default(),
        sound_frame: args.sound.sound_frame_ms,
        dashboard: args.dashboard.config(args.web_dir)?,
        payouts,
    };
    let ready = |addr: Option<SocketAddr>| match addr {
        Some(addr) => println!("host serving WHEP on http://{addr}/whep"),
        None => println!("host serving WHEP through its link to the broker"),
    };
    run_host(config, ready, wait(shutdown)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_config_file_sets_flags_and_the_command_line_wins_over_it() {
        let file = std::env::temp_dir().join(format!("gridplay-host-{}.toml", std::process::id()));
        // A value that looks like a flag stays a value.
        std::fs::write(&file, "region = \"--no-quic\"\ngame-slots = 2\nno-quic = true\n").unwrap();
        let path = file.to_str().unwrap();
        let parse = |more: &[&str]| {
            let base = ["gridplay", "host", "--config", path];
            let args = base.iter().chain(more).map(OsString::from).collect();
            let Command::Host(host) = parse_cli(args).unwrap().command else {
                panic!("not the host command")
            };
            host
        };
        let from_file = parse(&[]);
        assert_eq!((from_file.region.as_str(), from_file.game_slots), ("--no-quic", 2));
        let overridden = parse(&["--region", "us-east"]);
        std::fs::remove_file(&file).unwrap();
        assert_eq!((overridden.region.as_str(), overridden.game_slots), ("us-east", 2));
        assert!(overridden.no_quic);
    }
}
