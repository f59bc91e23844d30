//! A userspace UDP impairment relay: what `netem` would do, for kernels
//! without it. Each port of a range is relayed 1:1 from a client-facing
//! address to the same port on an upstream address, and each direction
//! passes a seeded [`SimLink`] (delay, jitter, random loss; a capacity cap
//! too, though `tc tbf` is the realistic one).
//!
//! A WebRTC client reaches a host through it by replacing the host's
//! candidate addresses with the relay's (see
//! [`route_candidates_via`](crate::webrtc::route_candidates_via)); the host
//! learns the relay as a peer-reflexive candidate, so no TURN is needed.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{Mutex, mpsc};

use crate::rate::{LinkConfig, SimLink};

/// How the relay is laid out and how it impairs traffic.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Address clients send to.
    pub client_side: IpAddr,
    /// Address the traffic is relayed to (the host's media address).
    pub upstream: IpAddr,
    /// Ports relayed, each to the same port upstream.
    pub ports: RangeInclusive<u16>,
    /// Client → host impairment.
    pub to_upstream: LinkConfig,
    /// Host → client impairment.
    pub to_client: LinkConfig,
    /// Seed of both links' random draws.
    pub seed: u64,
}

/// A datagram waiting for its arrival time.
struct Due {
    at: Instant,
    bytes: Vec<u8>,
    to: SocketAddr,
}

/// Sends datagrams at their arrival times, in order (the links never reorder).
fn spawn_sender(socket: Arc<UdpSocket>) -> mpsc::UnboundedSender<Due> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Due>();
    tokio::spawn(async move {
        while let Some(due) = rx.recv().await {
            tokio::time::sleep_until(due.at.into()).await;
            if let Err(e) = socket.send_to(&due.bytes, due.to).await {
                tracing::debug!("relay send to {} failed: {e}", due.to);
            }
        }
    });
    tx
}

/// Relays one port until the task is dropped.
async fn relay_port(config: Arc<RelayConfig>, port: u16, index: u64) -> std::io::Result<()> {
    let client_socket = Arc::new(UdpSocket::bind((config.client_side, port)).await?);
    let unspecified: IpAddr =
        if config.upstream.is_ipv4() { [0, 0, 0, 0].into() } else { [0u16; 8].into() };
    let upstream_socket = Arc::new(UdpSocket::bind((unspecified, 0)).await?);
    let upstream_addr = SocketAddr::new(config.upstream, port);
    let to_upstream =
        Arc::new(Mutex::new(SimLink::new(config.to_upstream, config.seed ^ (index << 1))));
    let to_client =
        Arc::new(Mutex::new(SimLink::new(config.to_client, config.seed ^ (index << 1 | 1))));
    let client_addr: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
    let up_tx = spawn_sender(Arc::clone(&upstream_socket));
    let down_tx = spawn_sender(Arc::clone(&client_socket));

    let downstream = {
        let (upstream_socket, client_addr) =
            (Arc::clone(&upstream_socket), Arc::clone(&client_addr));
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                let Ok((n, from)) = upstream_socket.recv_from(&mut buf).await else { return };
                let Some(to) = *client_addr.lock().await else { continue };
                if from != upstream_addr {
                    continue;
                }
                if let Some(at) = to_client.lock().await.send(Instant::now(), n) {
                    let _ = down_tx.send(Due { at, bytes: buf[..n].to_vec(), to });
                }
            }
        })
    };
    let mut buf = vec![0u8; 65_536];
    let result = loop {
        let (n, from) = match client_socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => break Err(e),
        };
        *client_addr.lock().await = Some(from);
        if let Some(at) = to_upstream.lock().await.send(Instant::now(), n) {
            let _ = up_tx.send(Due { at, bytes: buf[..n].to_vec(), to: upstream_addr });
        }
    };
    downstream.abort();
    result
}

/// Runs the relay on every port of the range until one of them fails.
pub async fn run_relay(config: RelayConfig) -> std::io::Result<()> {
    let config = Arc::new(config);
    let mut tasks = tokio::task::JoinSet::new();
    for (index, port) in config.ports.clone().enumerate() {
        tasks.spawn(relay_port(Arc::clone(&config), port, index as u64));
    }
    match tasks.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(std::io::Error::other(e)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn relays_both_ways_with_the_configured_delay_and_loss() {
        let upstream = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = upstream.local_addr().unwrap().port();
        let delay = Duration::from_millis(30);
        let link = LinkConfig { delay, ..LinkConfig::default() };
        let config = RelayConfig {
            client_side: [127, 0, 0, 2].into(),
            upstream: [127, 0, 0, 1].into(),
            ports: port..=port,
            to_upstream: link,
            to_client: LinkConfig { loss: 1.0, ..link },
            seed: 1,
        };
        tokio::spawn(run_relay(config));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let relay = SocketAddr::from(([127, 0, 0, 2], port));
        let mut buf = [0u8; 16];
        // The relay binds asynchronously: resend until the first datagram comes through.
        let sent = Instant::now();
        let (n, relay_side) = loop {
            client.send_to(b"ping", relay).await.unwrap();
            if let Ok(Ok(got)) =
                tokio::time::timeout(Duration::from_millis(200), upstream.recv_from(&mut buf)).await
            {
                break got;
            }
        };
        assert_eq!(&buf[..n], b"ping");
        assert!(sent.elapsed() >= delay, "delayed by the link");
        // Everything back towards the client is lost (loss = 1.0).
        upstream.send_to(b"pong", relay_side).await.unwrap();
        let back =
            tokio::time::timeout(Duration::from_millis(200), client.recv_from(&mut buf)).await;
        assert!(back.is_err(), "a fully lossy link delivers nothing");
    }
}
