//! The WHEP endpoint (IETF WISH egress): the player POSTs an SDP offer with
//! the broker's bearer token and gets the answer; DELETE on the returned
//! resource ends the session.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use ed25519_dalek::VerifyingKey;
use gridplay_protocol::{ApiError, ProtocolError, SessionClaims, StreamStats};
use gridplay_streaming::StreamingError;
use gridplay_streaming::webrtc::{MAX_SDP_LEN, StreamPeer};
use tokio::sync::oneshot;
use tower_http::cors::{Any, CorsLayer};

use crate::broker_link::BrokerLink;
use crate::pipeline::{PipelineControl, StreamSpec};
use crate::session::{SessionCounters, SessionParts, run_session};

/// A running session as the WHEP endpoint tracks it.
struct Running {
    cancel: oneshot::Sender<()>,
    port: u16,
    control: Arc<PipelineControl>,
    counters: Arc<SessionCounters>,
}

/// Everything the WHEP handlers share.
pub struct HostState {
    /// This host's id (its public key).
    pub host_id: String,
    /// The broker's key, for verifying session tokens offline.
    pub broker_key: VerifyingKey,
    /// Address the WebRTC sockets bind to.
    pub media_ip: IpAddr,
    /// UDP ports sessions bind, one each; `None` lets the system pick.
    pub media_ports: Option<RangeInclusive<u16>>,
    /// Concurrent sessions allowed.
    pub slots: u32,
    /// Where to report session states, if anywhere.
    pub broker: Option<Arc<BrokerLink>>,
    sessions: Mutex<HashMap<String, Running>>,
}

impl HostState {
    /// Host state with no sessions.
    pub fn new(
        host_id: String,
        broker_key: VerifyingKey,
        media_ip: IpAddr,
        slots: u32,
        broker: Option<Arc<BrokerLink>>,
    ) -> Self {
        let sessions = Mutex::new(HashMap::new());
        Self { host_id, broker_key, media_ip, media_ports: None, slots, broker, sessions }
    }

    /// Binds each session's media socket to its own port of `ports`.
    pub fn with_media_ports(mut self, ports: Option<RangeInclusive<u16>>) -> Self {
        self.media_ports = ports;
        self
    }

    /// A free media port (0 when the system picks), or `None` when the range is used up.
    fn free_port(&self, sessions: &HashMap<String, Running>) -> Option<u16> {
        match &self.media_ports {
            None => Some(0),
            Some(range) => range.clone().find(|p| sessions.values().all(|s| s.port != *p)),
        }
    }

    /// Number of sessions running now.
    pub fn active_sessions(&self) -> usize {
        self.sessions.lock().expect("sessions lock").len()
    }

    /// Ids of the sessions running now.
    pub fn session_ids(&self) -> Vec<String> {
        self.sessions.lock().expect("sessions lock").keys().cloned().collect()
    }

    /// Ends the named sessions (the broker says they are over).
    pub fn end_sessions(&self, ids: &[String]) {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        for id in ids {
            if let Some(running) = sessions.remove(id) {
                tracing::info!(session = %id, "ended by the broker");
                let _ = running.cancel.send(());
            }
        }
    }

    /// Ends every session (host shutdown).
    pub fn end_all(&self) {
        self.sessions.lock().expect("sessions lock").drain().for_each(|(_, running)| {
            let _ = running.cancel.send(());
        });
    }
}

/// The host's HTTP router: `POST /whep`, `DELETE /whep/sessions/{id}`, and
/// `GET /ping` for clients measuring RTT.
pub fn whep_router(state: Arc<HostState>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::LOCATION]);
    Router::new()
        .route("/ping", get(|| async { StatusCode::NO_CONTENT }))
        .route("/whep", post(offer))
        .route("/whep/sessions/{id}", delete(end).get(stats))
        .layer(DefaultBodyLimit::max(4 * MAX_SDP_LEN))
        .layer(cors)
        .with_state(state)
}

/// Why a WHEP request was refused.
#[derive(Debug)]
enum WhepError {
    Unauthorized(String),
    BadSdp(String),
    UnsupportedMedia,
    Busy,
    Conflict,
    NotFound,
    Internal(String),
}

impl IntoResponse for WhepError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m),
            Self::BadSdp(m) => (StatusCode::BAD_REQUEST, "bad_sdp", m),
            Self::UnsupportedMedia => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Content-Type must be application/sdp".into(),
            ),
            Self::Busy => (StatusCode::SERVICE_UNAVAILABLE, "no_capacity", "all slots busy".into()),
            Self::Conflict => {
                (StatusCode::CONFLICT, "session_active", "session already connected".into())
            }
            Self::NotFound => {
                (StatusCode::NOT_FOUND, "session_not_found", "no such session".into())
            }
            Self::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        };
        (status, Json(ApiError { error: code.into(), message })).into_response()
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// Checks the bearer token: signed by our broker, for this host, and (when
/// `check_expiry`) not expired.
fn authorize(
    state: &HostState,
    headers: &HeaderMap,
    check_expiry: bool,
) -> Result<SessionClaims, WhepError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| WhepError::Unauthorized("missing bearer token".into()))?;
    let now = if check_expiry { unix_ms() } else { 0 };
    let claims = SessionClaims::verify(token, &state.broker_key, now).map_err(|e| match e {
        ProtocolError::TokenExpired => WhepError::Unauthorized("token expired".into()),
        other => WhepError::Unauthorized(other.to_string()),
    })?;
    if claims.host_id != state.host_id {
        return Err(WhepError::Unauthorized("token is for another host".into()));
    }
    Ok(claims)
}

async fn offer(
    State(state): State<Arc<HostState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WhepError> {
    let claims = authorize(&state, &headers, true)?;
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/sdp") {
        return Err(WhepError::UnsupportedMedia);
    }
    if body.len() > MAX_SDP_LEN {
        return Err(WhepError::BadSdp(format!("offer longer than {MAX_SDP_LEN} bytes")));
    }
    let sdp =
        std::str::from_utf8(&body).map_err(|_| WhepError::BadSdp("offer is not UTF-8".into()))?;
    let spec = StreamSpec { width: claims.width, height: claims.height, fps: claims.fps };
    let control = Arc::new(PipelineControl::new(spec));
    let counters = Arc::new(SessionCounters::default());
    let (cancel_tx, cancel_rx) = oneshot::channel();
    let port = {
        let mut sessions = state.sessions.lock().expect("sessions lock");
        if sessions.contains_key(&claims.session_id) {
            return Err(WhepError::Conflict);
        }
        let port = state.free_port(&sessions).filter(|_| sessions.len() < state.slots as usize);
        let port = port.ok_or(WhepError::Busy)?;
        let running = Running {
            cancel: cancel_tx,
            port,
            control: Arc::clone(&control),
            counters: Arc::clone(&counters),
        };
        sessions.insert(claims.session_id.clone(), running);
        port
    };
    let bind = SocketAddr::new(state.media_ip, port);
    let (peer, answer, events) = match StreamPeer::answer(sdp, bind, control.rate.clone()).await {
        Ok(ok) => ok,
        Err(e) => {
            state.sessions.lock().expect("sessions lock").remove(&claims.session_id);
            return Err(match e {
                StreamingError::BadSdp(m) => WhepError::BadSdp(m),
                other => WhepError::Internal(other.to_string()),
            });
        }
    };
    let session_id = claims.session_id.clone();
    let task_state = Arc::clone(&state);
    tokio::spawn(async move {
        let broker = task_state.broker.clone();
        let parts = SessionParts { spec, control, counters, broker };
        run_session(session_id.clone(), parts, peer, events, cancel_rx).await;
        task_state.sessions.lock().expect("sessions lock").remove(&session_id);
    });
    let location = format!("/whep/sessions/{}", claims.session_id);
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|e| WhepError::Internal(e.to_string()))?,
    );
    Ok(response)
}

async fn end(
    State(state): State<Arc<HostState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, WhepError> {
    // The session outlives its short token, so only the signature is checked here.
    let claims = authorize(&state, &headers, false)?;
    if claims.session_id != id {
        return Err(WhepError::Unauthorized("token is for another session".into()));
    }
    let running =
        state.sessions.lock().expect("sessions lock").remove(&id).ok_or(WhepError::NotFound)?;
    let _ = running.cancel.send(());
    Ok(StatusCode::OK)
}

/// `GET` on the session resource: what the host has sent so far.
async fn stats(
    State(state): State<Arc<HostState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<StreamStats>, WhepError> {
    let claims = authorize(&state, &headers, false)?;
    if claims.session_id != id {
        return Err(WhepError::Unauthorized("token is for another session".into()));
    }
    let sessions = state.sessions.lock().expect("sessions lock");
    let running = sessions.get(&id).ok_or(WhepError::NotFound)?;
    Ok(Json(running.counters.snapshot(running.control.rate.target_bps())))
}
