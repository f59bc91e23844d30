//! The signalling link of a host with no inbound port: a WebSocket the host opens to its
//! broker and keeps open, reconnecting with backoff, over which it answers the requests the
//! broker relays ([`gridplay_protocol::link`]): players' WHEP offers and DELETEs, the
//! settler's record reads. Each is answered by the host's own WHEP router, so the token
//! rules are those of a direct endpoint; sessions under way do not depend on the link.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use futures_util::{SinkExt, StreamExt};
use gridplay_protocol::link::{MAX_HEADERS, MAX_MESSAGE_LEN, RequestHead, ResponseHead};
use gridplay_protocol::link::{decode, encode};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

use crate::broker_link::{BrokerLink, SignallingSocket};

/// How often the host pings its link: the broker closes one silent for 30 s.
const PING_EVERY: Duration = Duration::from_secs(5);
/// How long the link may carry nothing from the broker (which pings every 10 s).
const LINK_IDLE: Duration = Duration::from_secs(25);
/// Requests answered at once; more wait for their turn.
const IN_FLIGHT: usize = 64;
/// Longest answer body relayed (a session's signed record is the longest).
const MAX_ANSWER_BODY: usize = MAX_MESSAGE_LEN - 64 * 1024;

/// The wait before each attempt to open the link again: doubling from `min` to `max`,
/// spread by a jitter so that hosts cut off together do not return together, and back to
/// `min` once a link has opened.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff from `min` to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max, next: min }
    }

    /// The wait before the next attempt, given `jitter` in `0.0..1.0`: between half and
    /// all of the current step.
    pub fn wait(&mut self, jitter: f64) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        step.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// A link opened: the next failure waits the least again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// A jitter in `0.0..1.0`.
fn jitter() -> f64 {
    let mut byte = [0];
    let _ = getrandom::getrandom(&mut byte);
    f64::from(byte[0]) / 256.0
}

/// Keeps the host's signalling link open for good, from the one `opened` at start,
/// answering relayed requests with `router`.
pub async fn keep_link(link: Arc<BrokerLink>, opened: SignallingSocket, router: Router) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    let mut opened = Ok(opened);
    loop {
        match opened {
            Ok(socket) => {
                backoff.reset();
                tracing::info!("signalling link up");
                let why = carry(socket, router.clone()).await;
                tracing::info!(why, "signalling link down");
            }
            Err(e) => tracing::warn!("signalling link: {e}"),
        }
        tokio::time::sleep(backoff.wait(jitter())).await;
        opened = link.open_signalling().await;
    }
}

/// Answers the requests that arrive on `socket` until it closes or falls silent; why it ended.
async fn carry(socket: SignallingSocket, router: Router) -> &'static str {
    let (mut sink, mut stream) = socket.split();
    let (answered, mut answers) = mpsc::channel::<Vec<u8>>(IN_FLIGHT);
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        let outgoing = tokio::select! {
            incoming = tokio::time::timeout(LINK_IDLE, stream.next()) => match incoming {
                Err(_) => return "the broker fell silent",
                Ok(None | Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return "closed",
                Ok(Some(Ok(Message::Binary(message)))) => {
                    let (router, answered) = (router.clone(), answered.clone());
                    tokio::spawn(async move {
                        if let Some(answer) = answer(router, &message).await {
                            let _ = answered.send(answer).await;
                        }
                    });
                    continue;
                }
                // Pings are answered by the socket; any frame shows the link alive.
                Ok(Some(Ok(_))) => continue,
            },
            Some(message) = answers.recv() => Message::Binary(message.into()),
            _ = ping.tick() => Message::Ping(Default::default()),
        };
        if sink.send(outgoing).await.is_err() {
            return "closed";
        }
    }
}

/// The link message answering the relayed request `message`, as `router` answers it;
/// none for a message without a readable id (the broker's request times out).
async fn answer(router: Router, message: &[u8]) -> Option<Vec<u8>> {
    let (head, body) = decode::<RequestHead>(message)
        .inspect_err(|e| tracing::warn!("malformed relayed request: {e}"))
        .ok()?;
    let response = match request_of(&head, body) {
        Ok(request) => router.oneshot(request).await.into_response(),
        Err(reason) => (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    let (parts, body) = response.into_parts();
    let (status, body) = match to_bytes(body, MAX_ANSWER_BODY).await {
        Ok(body) => (parts.status.as_u16(), body.to_vec()),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR.as_u16(), b"answer too long".to_vec()),
    };
    let headers = parts
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
        .take(MAX_HEADERS)
        .collect();
    Some(encode(&ResponseHead { id: head.id, status, headers }, &body))
}

/// The HTTP request a relayed one stands for.
fn request_of(head: &RequestHead, body: &[u8]) -> Result<Request<Body>, String> {
    if !head.path.starts_with('/') {
        return Err(format!("path {:?} is not absolute", head.path));
    }
    let mut request = Request::builder().method(head.method.as_str()).uri(head.path.as_str());
    for (name, value) in &head.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request.body(Body::from(body.to_vec())).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_to_its_cap_and_starts_over_after_a_link() {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let waits: Vec<_> = (0..10).map(|_| backoff.wait(1.0).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
        assert_eq!(backoff.wait(0.0), Duration::from_secs(15), "jitter takes up to half");
        backoff.reset();
        assert_eq!(backoff.wait(1.0), Duration::from_millis(250));
    }

    #[tokio::test]
    async fn relayed_requests_are_answered_by_the_router_and_bad_ones_refused() {
        let router = Router::new().route(
            "/whep",
            axum::routing::post(|body: String| async move { (StatusCode::CREATED, body) }),
        );
        let head = |path: &str| RequestHead {
            id: 9,
            method: "POST".into(),
            path: path.into(),
            headers: vec![("content-type".into(), "application/sdp".into())],
        };
        let answered = answer(router.clone(), &encode(&head("/whep"), b"v=0")).await.unwrap();
        let (answer_head, body) = decode::<ResponseHead>(&answered).unwrap();
        assert_eq!((answer_head.id, answer_head.status, body), (9, 201, &b"v=0"[..]));
        assert!(answer(router.clone(), b"\0\0\0\x09not json!").await.is_none());
        let relative = answer(router.clone(), &encode(&head("whep"), b"")).await.unwrap();
        assert_eq!(decode::<ResponseHead>(&relative).unwrap().0.status, 400);
        let mut bad_header = head("/whep");
        bad_header.headers.push(("bad header".into(), "x".into()));
        let refused = answer(router, &encode(&bad_header, b"")).await.unwrap();
        assert_eq!(decode::<ResponseHead>(&refused).unwrap().0.status, 400);
    }
}
