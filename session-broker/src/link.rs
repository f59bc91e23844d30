//! Hosts' signalling links: the WebSocket each host without an inbound port keeps open to
//! this broker, and the relay that passes players' and the settler's requests for the host
//! over it ([`gridplay_protocol::link`]).
//!
//! A host has at most one link: a new one replaces the old, whose requests under way fail.
//! A link that carries nothing (not even the host's pings) for [`LINK_IDLE`] is closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use gridplay_protocol::link::{RequestHead, ResponseHead, decode, encode};
use tokio::sync::{mpsc, oneshot};

use crate::BrokerError;

/// How long a link may carry nothing before the broker closes it.
pub const LINK_IDLE: Duration = Duration::from_secs(30);
/// How long the broker pings a quiet link after.
const PING_EVERY: Duration = Duration::from_secs(10);
/// How long a relayed request waits for the host's answer.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most requests one link carries at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// An answer the host gave: its head and body.
pub type Answer = (ResponseHead, Vec<u8>);

/// One host's open link.
struct Link {
    outgoing: mpsc::Sender<Vec<u8>>,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
}

/// The links open to this broker, by host id.
#[derive(Default)]
pub struct Links {
    hosts: Mutex<HashMap<String, Arc<Link>>>,
    next_id: AtomicU64,
}

impl Links {
    /// Whether `host_id` has a link open to this broker.
    pub fn is_linked(&self, host_id: &str) -> bool {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner()).contains_key(host_id)
    }

    /// Carries `host_id`'s link on `socket` until either side closes it or it falls idle.
    pub async fn serve(&self, host_id: String, socket: WebSocket) {
        let (outgoing, mut to_send) = mpsc::channel::<Vec<u8>>(MAX_IN_FLIGHT);
        let link = Arc::new(Link { outgoing, waiting: Mutex::default() });
        let replaced = self
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host_id.clone(), Arc::clone(&link));
        tracing::info!(host = %host_id, replaced = replaced.is_some(), "host link up");
        let (mut sink, mut stream) = socket.split();
        let writer = async {
            let mut ping = tokio::time::interval(PING_EVERY);
            loop {
                let message = tokio::select! {
                    next = to_send.recv() => match next {
                        Some(bytes) => Message::Binary(bytes.into()),
                        None => break,
                    },
                    _ = ping.tick() => Message::Ping(Default::default()),
                };
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        };
        let reader = async {
            loop {
                let message = match tokio::time::timeout(LINK_IDLE, stream.next()).await {
                    Err(_) => break "idle",
                    Ok(None | Some(Err(_))) => break "closed",
                    Ok(Some(Ok(message))) => message,
                };
                match message {
                    Message::Binary(bytes) => match decode::<ResponseHead>(&bytes) {
                        Ok((head, body)) => link.answer(head, body.to_vec()),
                        Err(e) => {
                            tracing::warn!(host = %host_id, "malformed link message: {e}");
                            break "malformed message";
                        }
                    },
                    Message::Close(_) => break "closed",
                    // Pings are answered by the socket; any frame shows the link alive.
                    _ => {}
                }
            }
        };
        let why = tokio::select! {
            why = reader => why,
            () = writer => "closed",
        };
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if hosts.get(&host_id).is_some_and(|open| Arc::ptr_eq(open, &link)) {
            hosts.remove(&host_id);
        }
        tracing::info!(host = %host_id, why, "host link down");
    }

    /// Relays a request to `host_id` over its link; the host's answer, or why there is none.
    pub async fn relay(
        &self,
        host_id: &str,
        mut head: RequestHead,
        body: &[u8],
    ) -> Result<Answer, BrokerError> {
        let link = self
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host_id)
            .cloned()
            .ok_or(BrokerError::HostUnreachable("the host has no link open to this broker"))?;
        head.id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answered, answer) = oneshot::channel();
        {
            let mut waiting = link.waiting.lock().unwrap_or_else(|p| p.into_inner());
            if waiting.len() >= MAX_IN_FLIGHT {
                return Err(BrokerError::HostUnreachable("the host's link is busy"));
            }
            waiting.insert(head.id, answered);
        }
        let id = head.id;
        let forget = || link.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        if link.outgoing.try_send(encode(&head, body)).is_err() {
            forget();
            return Err(BrokerError::HostUnreachable("the host's link is busy"));
        }
        match tokio::time::timeout(RELAY_TIMEOUT, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(BrokerError::HostUnreachable("the host's link closed")),
            Err(_) => {
                forget();
                Err(BrokerError::HostTimeout)
            }
        }
    }
}

impl Link {
    /// Hands the host's answer to the request waiting for it; one for no request is dropped.
    fn answer(&self, head: ResponseHead, body: Vec<u8>) {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&head.id);
        if let Some(waiting) = waiting {
            let _ = waiting.send((head, body));
        }
    }
}
