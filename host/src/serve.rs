//! The host process: bind, register with the broker, heartbeat, serve WHEP.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use gridplay_protocol::HostRegistration;
use gridplay_protocol::token::encode_public_key;
use tokio::net::TcpListener;

use crate::broker_link::BrokerLink;
use crate::whep::{HostState, whep_router};
use crate::{HostError, gpu};

/// How a host runs.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The broker's base URL.
    pub broker_url: String,
    /// Address of the WHEP HTTP server.
    pub listen: SocketAddr,
    /// WHEP URL to advertise, when it differs from `http://{listen}/whep`.
    pub public_whep_url: Option<String>,
    /// Address the WebRTC media sockets bind to.
    pub media_ip: IpAddr,
    /// Concurrent sessions offered.
    pub slots: u32,
}

/// Describes the GPU sessions will render on, for the broker's records.
fn describe_gpu() -> String {
    match gpu::list_gpus() {
        Ok(gpus) => gpu::pick_best(&gpus).map_or("no Vulkan device".into(), |g| g.name.clone()),
        Err(e) => format!("Vulkan unavailable: {e}"),
    }
}

/// Runs a host until `shutdown` resolves; `on_ready` gets the bound WHEP address.
pub async fn run_host(
    config: HostConfig,
    on_ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), HostError> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| HostError::Broker(e.to_string()))?;
    let host_id = encode_public_key(&SigningKey::from_bytes(&seed).verifying_key());
    let gpu = tokio::task::spawn_blocking(describe_gpu).await.unwrap_or_default();
    tracing::info!(%gpu, "rendering device");
    let registration = HostRegistration {
        host_id: host_id.clone(),
        whep_url: config.public_whep_url.clone().unwrap_or_else(|| format!("http://{addr}/whep")),
        slots: config.slots,
        gpu,
    };
    let link = Arc::new(BrokerLink::new(&config.broker_url, registration));
    let (broker_key, heartbeat) = link.register().await?;
    let heartbeats = {
        let link = Arc::clone(&link);
        tokio::spawn(async move { link.heartbeat_forever(heartbeat).await })
    };
    let state =
        Arc::new(HostState::new(host_id, broker_key, config.media_ip, config.slots, Some(link)));
    on_ready(addr);
    let served = axum::serve(listener, whep_router(Arc::clone(&state)))
        .with_graceful_shutdown(shutdown)
        .await;
    heartbeats.abort();
    state.end_all();
    served.map_err(HostError::from)
}
