//! `gridplay`: the one command-line entry to every Gridplay role.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ed25519_dalek::SigningKey;
use gridplay_host::{HostConfig, run_host};
use gridplay_session_broker::{BrokerConfig, BrokerState, serve};
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
    Host(HostArgs),
}

#[derive(Args)]
struct UpArgs {
    /// Port of the broker and web client.
    #[arg(long, env = "GRIDPLAY_PORT", default_value_t = 8080)]
    port: u16,
    /// Port of the host's WHEP endpoint.
    #[arg(long, env = "GRIDPLAY_HOST_PORT", default_value_t = 8081)]
    host_port: u16,
    /// Address everything binds to.
    #[arg(long, env = "GRIDPLAY_BIND", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Directory of the built web client.
    #[arg(long, env = "GRIDPLAY_WEB_DIR", default_value = "client-web/dist")]
    web_dir: PathBuf,
    /// Concurrent sessions the host offers.
    #[arg(long, env = "GRIDPLAY_SLOTS", default_value_t = 4)]
    slots: u32,
}

#[derive(Args)]
struct BrokerArgs {
    /// Address to listen on.
    #[arg(long, env = "GRIDPLAY_BROKER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory of the built web client to serve at `/`.
    #[arg(long, env = "GRIDPLAY_WEB_DIR")]
    web_dir: Option<PathBuf>,
}

#[derive(Args)]
struct HostArgs {
    /// The broker's base URL.
    #[arg(long, env = "GRIDPLAY_BROKER_URL", default_value = "http://127.0.0.1:8080")]
    broker_url: String,
    /// Address of the WHEP HTTP endpoint.
    #[arg(long, env = "GRIDPLAY_HOST_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// WHEP URL to advertise, when players reach this host by another name.
    #[arg(long, env = "GRIDPLAY_PUBLIC_WHEP_URL")]
    public_whep_url: Option<String>,
    /// Address the WebRTC media sockets bind to (the host's reachable address).
    #[arg(long, env = "GRIDPLAY_MEDIA_IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    media_ip: IpAddr,
    /// Concurrent sessions offered.
    #[arg(long, env = "GRIDPLAY_SLOTS", default_value_t = 4)]
    slots: u32,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,webrtc=warn,rtc=warn,rtc_mdns=off,rtc_ice=off".into()),
        )
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal();
        match cli.command {
            Command::Up(args) => up(args, shutdown).await,
            Command::Broker(args) => broker(args, shutdown).await,
            Command::Host(args) => host(args, shutdown).await,
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

fn broker_state(web_dir: Option<PathBuf>) -> anyhow::Result<Arc<BrokerState>> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| anyhow::anyhow!("OS randomness: {e}"))?;
    let config = BrokerConfig { web_dir, ..BrokerConfig::default() };
    Ok(Arc::new(BrokerState::new(SigningKey::from_bytes(&seed), config)))
}

async fn up(args: UpArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
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
    let state = broker_state(Some(args.web_dir))?;
    let broker = tokio::spawn(serve(listener, state, wait(shutdown.clone())));
    let host_config = HostConfig {
        broker_url: format!("http://{broker_addr}"),
        listen: SocketAddr::new(args.bind, args.host_port),
        public_whep_url: None,
        media_ip: args.bind,
        slots: args.slots,
    };
    let url = format!("http://{broker_addr}");
    run_host(
        host_config,
        move |_| println!("Gridplay is up: open {url}  (Ctrl-C to stop)"),
        wait(shutdown),
    )
    .await
    .context("host")?;
    broker.await?.context("broker")?;
    Ok(())
}

async fn broker(args: BrokerArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    println!("broker listening on http://{}", listener.local_addr()?);
    serve(listener, broker_state(args.web_dir)?, wait(shutdown)).await?;
    Ok(())
}

async fn host(args: HostArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let config = HostConfig {
        broker_url: args.broker_url,
        listen: args.listen,
        public_whep_url: args.public_whep_url,
        media_ip: args.media_ip,
        slots: args.slots,
    };
    run_host(config, |addr| println!("host serving WHEP on http://{addr}/whep"), wait(shutdown))
        .await?;
    Ok(())
}
