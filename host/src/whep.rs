//! The WHEP endpoint (IETF WISH egress): the player POSTs an SDP offer with
//! the broker's bearer token and gets the answer; DELETE on the returned
//! resource ends the session. `GET` on the resource gives the host's send
//! counters, and `GET` on its `/probes` the session's signed probe log.
//!
//! A token is a short-lived capability: every use refuses it once expired,
//! except `DELETE`, since a player may always end its own session.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use gridplay_protocol::probe::{ClientKey, PROBES_SIGNATURE_HEADER};
use gridplay_protocol::token::encode_public_key;
use gridplay_protocol::{ApiError, App, ProtocolError, SessionClaims, StreamStats};
use gridplay_streaming::StreamingError;
use gridplay_streaming::audio::AudioFrame;
use gridplay_streaming::webrtc::PeerEvent;
use gridplay_streaming::webrtc::{MAX_SDP_LEN, StreamPeer, candidate_counts};
use tokio::sync::{broadcast, mpsc, oneshot};
use tower_http::cors::{Any, CorsLayer};

use crate::broker_link::BrokerLink;
use crate::catalogue::Catalogue;
use crate::dashboard::History;
use crate::pipeline::{PipelineControl, StreamSpec};
use crate::probes::{Clock, SessionLog};
use crate::session::{
    PlayerPeer, SessionCounters, SessionParts, WATCHED, Watched, run_session, unix_ms,
};
use crate::worker::WorkerCommand;
use crate::workloads::Launch;

/// Probe logs of ended sessions kept for billing to fetch, newest last.
const FINISHED_KEPT: usize = 64;

/// Watchers one session may have at once, unless the host says otherwise.
pub const DEFAULT_MAX_WATCHERS: usize = 4;

/// A session as its owner's dashboard lists it.
#[derive(Clone)]
pub(crate) struct SessionBrief {
    /// The broker's session id.
    pub(crate) id: String,
    /// The app it runs.
    pub(crate) app: String,
    /// The stream asked for, `WIDTHxHEIGHT@FPS`.
    pub(crate) stream: String,
    /// Its probe log.
    pub(crate) probes: Arc<SessionLog>,
    /// When it ended, Unix ms (the host's clock); `None` while it runs.
    pub(crate) ended_at_ms: Option<u64>,
}

/// A running session as the host tracks it.
struct Running {
    brief: SessionBrief,
    cancel: oneshot::Sender<()>,
    port: u16,
    control: Arc<PipelineControl>,
    counters: Arc<SessionCounters>,
    watchers: broadcast::Sender<Watched>,
}

/// A session whose slot is held, waiting for its player's peer.
pub(crate) struct NewSession {
    session_id: String,
    /// Its rate controller, keyframe requests and stop flag.
    pub(crate) control: Arc<PipelineControl>,
    port: u16,
    parts: SessionParts,
    cancel: oneshot::Receiver<()>,
}

/// What a watcher of a running session needs.
pub(crate) struct Watch {
    /// For keyframe requests.
    pub(crate) control: Arc<PipelineControl>,
    /// The session's encoded frames and sound.
    pub(crate) media: broadcast::Receiver<Watched>,
}

/// Everything the WHEP handlers share.
pub struct HostState {
    /// This host's id (its public key).
    pub host_id: String,
    /// This host's key: signs the probe logs it serves.
    key: SigningKey,
    /// The broker's key, for verifying session tokens offline.
    pub broker_key: VerifyingKey,
    /// Address the WebRTC sockets bind to.
    pub media_ip: IpAddr,
    /// Address players send media to, when not `media_ip` (a 1:1 NAT or a relay in front).
    pub media_public_ip: Option<IpAddr>,
    /// UDP ports sessions bind, one each; `None` lets the system pick.
    pub media_ports: Option<RangeInclusive<u16>>,
    /// Concurrent sessions allowed.
    pub slots: u32,
    /// Watchers one session may have at once.
    pub max_watchers: usize,
    /// Where to report session states, if anywhere.
    pub broker: Option<Arc<BrokerLink>>,
    /// The apps it offers besides Orbit.
    catalogue: Catalogue,
    /// Starts each session's worker process; frame loops run in this process when `None`.
    worker: Option<WorkerCommand>,
    sessions: Mutex<HashMap<String, Running>>,
    /// The last [`FINISHED_KEPT`] sessions that ended, with their probe logs.
    finished: Mutex<VecDeque<SessionBrief>>,
    /// Where every session's seconds are counted for the owner's dashboard.
    history: Arc<Mutex<History>>,
    /// The time probe logs are kept on.
    clock: Clock,
    /// How long each frame of a session's sound lasts.
    sound_frame: AudioFrame,
}

impl HostState {
    /// Host state with no sessions, for the host whose identity key is `key`.
    pub fn new(
        key: SigningKey,
        broker_key: VerifyingKey,
        media_ip: IpAddr,
        slots: u32,
        broker: Option<Arc<BrokerLink>>,
    ) -> Self {
        Self {
            host_id: encode_public_key(&key.verifying_key()),
            key,
            broker_key,
            media_ip,
            media_public_ip: None,
            media_ports: None,
            slots,
            max_watchers: DEFAULT_MAX_WATCHERS,
            broker,
            catalogue: Catalogue::default(),
            worker: None,
            sessions: Mutex::new(HashMap::new()),
            finished: Mutex::new(VecDeque::new()),
            history: Arc::default(),
            clock: Clock::default(),
            sound_frame: AudioFrame::default(),
        }
    }

    /// Keeps probe logs on `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A session's probe log: running, or among the recently ended.
    fn probe_log(&self, id: &str) -> Option<Arc<SessionLog>> {
        if let Some(running) = self.sessions.lock().expect("sessions lock").get(id) {
            return Some(Arc::clone(&running.brief.probes));
        }
        let finished = self.finished.lock().expect("finished lock");
        finished.iter().rev().find(|s| s.id == id).map(|s| Arc::clone(&s.probes))
    }

    /// Running sessions, then the recently ended, each newest first.
    pub(crate) fn briefs(&self) -> Vec<SessionBrief> {
        let mut running: Vec<SessionBrief> = self
            .sessions
            .lock()
            .expect("sessions lock")
            .values()
            .map(|r| r.brief.clone())
            .collect();
        running.sort_by_key(|b| std::cmp::Reverse(b.probes.started_at_ms()));
        let finished = self.finished.lock().expect("finished lock");
        running.extend(finished.iter().rev().cloned());
        running
    }

    /// Every session's seconds of the last day.
    pub(crate) fn history(&self) -> &Arc<Mutex<History>> {
        &self.history
    }

    /// Removes a session from the running ones, keeping its probe log among
    /// the recently ended (forgetting the oldest beyond [`FINISHED_KEPT`]).
    fn retire(&self, id: &str) -> Option<Running> {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        let running = sessions.remove(id)?;
        let mut finished = self.finished.lock().expect("finished lock");
        finished.push_back(SessionBrief {
            ended_at_ms: Some(self.clock.now_ms()),
            ..running.brief.clone()
        });
        while finished.len() > FINISHED_KEPT {
            finished.pop_front();
        }
        Some(running)
    }

    /// Sends each session's sound in `frame`-long frames.
    pub fn with_sound_frame(mut self, frame: AudioFrame) -> Self {
        self.sound_frame = frame;
        self
    }

    /// Runs each session's frame loop in a worker process started with `command`.
    pub fn with_worker(mut self, command: Option<WorkerCommand>) -> Self {
        self.worker = command;
        self
    }

    /// Offers the apps of `catalogue` besides Orbit.
    pub fn with_catalogue(mut self, catalogue: Catalogue) -> Self {
        self.catalogue = catalogue;
        self
    }

    /// What a session of app `id` runs, if this host offers it.
    fn launch_of(&self, id: &str) -> Result<Launch, WhepError> {
        if App::builtin_profile(id).is_some() {
            return Ok(Launch::Orbit);
        }
        let entry = self.catalogue.get(id);
        let limits = self.catalogue.limits;
        entry
            .map(|entry| Launch::App { entry, limits, name: crate::workloads::app::session_name() })
            .ok_or_else(|| WhepError::UnknownApp(format!("this host does not offer `{id}`")))
    }

    /// Lets each session have at most `max` watchers at once.
    pub fn with_max_watchers(mut self, max: usize) -> Self {
        self.max_watchers = max;
        self
    }

    /// Names `ip` in media candidates instead of the bound address.
    pub fn with_media_public_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.media_public_ip = ip;
        self
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

    /// Checks a session token: signed by our broker, for this host, and
    /// (unless `expiry` is [`Expiry::Ignored`]) not expired.
    pub(crate) fn verify_token(
        &self,
        token: &str,
        expiry: Expiry,
    ) -> Result<SessionClaims, WhepError> {
        // `SessionClaims::verify` skips the expiry check at time 0.
        let now = match expiry {
            Expiry::Enforced => unix_ms(),
            Expiry::Ignored => 0,
        };
        let claims = SessionClaims::verify(token, &self.broker_key, now).map_err(|e| match e {
            ProtocolError::TokenExpired => WhepError::Unauthorized("token expired".into()),
            other => WhepError::Unauthorized(other.to_string()),
        })?;
        if claims.host_id != self.host_id {
            return Err(WhepError::Unauthorized("token is for another host".into()));
        }
        Ok(claims)
    }

    /// Holds a slot (and a media port) for the session `claims` name.
    pub(crate) fn reserve(&self, claims: &SessionClaims) -> Result<NewSession, WhepError> {
        let client_key = match claims.client_key.as_deref().map(str::parse::<ClientKey>) {
            None => None,
            Some(Ok(key)) => Some(key),
            Some(Err(e)) => return Err(WhepError::Unauthorized(format!("token: {e}"))),
        };
        let launch = self.launch_of(&claims.app)?;
        let spec = StreamSpec { width: claims.width, height: claims.height, fps: claims.fps };
        let control = Arc::new(PipelineControl::new(spec, launch.resizable()));
        let counters = Arc::new(SessionCounters::default());
        let probes = SessionLog::new(
            claims.session_id.clone(),
            self.host_id.clone(),
            client_key,
            self.clock.clone(),
        );
        let probes = Arc::new(probes.with_history(Arc::clone(&self.history)));
        let (watchers, _) = broadcast::channel(WATCHED);
        let (cancel_tx, cancel) = oneshot::channel();
        let mut sessions = self.sessions.lock().expect("sessions lock");
        if sessions.contains_key(&claims.session_id) {
            return Err(WhepError::Conflict);
        }
        let port = self.free_port(&sessions).filter(|_| sessions.len() < self.slots as usize);
        let port = port.ok_or(WhepError::Busy)?;
        let brief = SessionBrief {
            id: claims.session_id.clone(),
            app: claims.app.clone(),
            stream: format!("{}x{}@{}", claims.width, claims.height, claims.fps),
            probes: Arc::clone(&probes),
            ended_at_ms: None,
        };
        let running = Running {
            brief,
            cancel: cancel_tx,
            port,
            control: Arc::clone(&control),
            counters: Arc::clone(&counters),
            watchers: watchers.clone(),
        };
        sessions.insert(claims.session_id.clone(), running);
        let broker = self.broker.clone();
        let parts = SessionParts {
            spec,
            control: Arc::clone(&control),
            counters,
            probes,
            broker,
            watchers,
            launch,
            worker: self.worker.clone(),
            sound_frame: self.sound_frame,
        };
        Ok(NewSession { session_id: claims.session_id.clone(), control, port, parts, cancel })
    }

    /// Gives back a slot whose peer could not be set up.
    pub(crate) fn release(&self, new: NewSession) {
        self.sessions.lock().expect("sessions lock").remove(&new.session_id);
    }

    /// Runs a reserved session with its player's peer until it ends.
    pub(crate) fn launch(
        self: &Arc<Self>,
        new: NewSession,
        peer: PlayerPeer,
        events: mpsc::UnboundedReceiver<PeerEvent>,
    ) {
        let state = Arc::clone(self);
        tokio::spawn(async move {
            let id = new.session_id;
            run_session(id.clone(), new.parts, peer, events, new.cancel).await;
            state.retire(&id);
        });
    }

    /// Subscribes to a running session's frames and sound, unless it already has
    /// [`max_watchers`](Self::max_watchers) watchers (each counts until it drops its [`Watch`]).
    pub(crate) fn watch(&self, id: &str) -> Result<Watch, WhepError> {
        let sessions = self.sessions.lock().expect("sessions lock");
        let running = sessions.get(id).ok_or(WhepError::NotFound)?;
        if running.watchers.receiver_count() >= self.max_watchers {
            return Err(WhepError::TooManyWatchers(self.max_watchers));
        }
        Ok(Watch { control: Arc::clone(&running.control), media: running.watchers.subscribe() })
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
        for id in ids {
            if let Some(running) = self.retire(id) {
                tracing::info!(session = %id, "ended by the broker");
                let _ = running.cancel.send(());
            }
        }
    }

    /// Ends every session (host shutdown).
    pub fn end_all(&self) {
        for id in self.session_ids() {
            if let Some(running) = self.retire(&id) {
                let _ = running.cancel.send(());
            }
        }
    }
}

/// The host's HTTP router: `POST /whep`, `GET`/`DELETE /whep/sessions/{id}`,
/// `GET /whep/sessions/{id}/probes`, and `GET /ping` for clients measuring RTT.
pub fn whep_router(state: Arc<HostState>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::LOCATION, HeaderName::from_static(PROBES_SIGNATURE_HEADER)]);
    Router::new()
        .route("/ping", get(|| async { StatusCode::NO_CONTENT }))
        .route("/whep", post(offer))
        .route("/whep/sessions/{id}", delete(end).get(stats))
        .route("/whep/sessions/{id}/probes", get(probes))
        .layer(DefaultBodyLimit::max(4 * MAX_SDP_LEN))
        .layer(cors)
        .with_state(state)
}

/// Whether a session token's expiry counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// An expired token is refused: every use of a token but ending its own session.
    Enforced,
    /// Only the signature counts: ending one's own session, which outlives its short token.
    Ignored,
}

/// Why a WHEP request (or a QUIC join) was refused.
#[derive(Debug)]
pub(crate) enum WhepError {
    Unauthorized(String),
    UnknownApp(String),
    BadSdp(String),
    UnsupportedMedia,
    Busy,
    /// The session already has this many watchers, the most the host allows.
    TooManyWatchers(usize),
    Conflict,
    NotFound,
    Internal(String),
}

impl std::fmt::Display for WhepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unauthorized(m) | Self::UnknownApp(m) | Self::BadSdp(m) | Self::Internal(m) => {
                f.write_str(m)
            }
            Self::UnsupportedMedia => f.write_str("Content-Type must be application/sdp"),
            Self::Busy => f.write_str("all slots busy"),
            Self::TooManyWatchers(max) => {
                write!(f, "the session already has {max} watchers, the most this host allows")
            }
            Self::Conflict => f.write_str("session already connected"),
            Self::NotFound => f.write_str("no such session"),
        }
    }
}

impl IntoResponse for WhepError {
    fn into_response(self) -> Response {
        let (status, code) = match self {
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::UnknownApp(_) => (StatusCode::NOT_FOUND, "unknown_app"),
            Self::BadSdp(_) => (StatusCode::BAD_REQUEST, "bad_sdp"),
            Self::UnsupportedMedia => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Busy => (StatusCode::SERVICE_UNAVAILABLE, "no_capacity"),
            Self::TooManyWatchers(_) => (StatusCode::SERVICE_UNAVAILABLE, "too_many_watchers"),
            Self::Conflict => (StatusCode::CONFLICT, "session_active"),
            Self::NotFound => (StatusCode::NOT_FOUND, "session_not_found"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = self.to_string();
        (status, Json(ApiError { error: code.into(), message })).into_response()
    }
}

/// Checks the bearer token: signed by our broker, for this host, and (unless
/// `expiry` is [`Expiry::Ignored`]) not expired.
fn authorize(
    state: &HostState,
    headers: &HeaderMap,
    expiry: Expiry,
) -> Result<SessionClaims, WhepError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| WhepError::Unauthorized("missing bearer token".into()))?;
    state.verify_token(token, expiry)
}

async fn offer(
    State(state): State<Arc<HostState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WhepError> {
    let claims = authorize(&state, &headers, Expiry::Enforced)?;
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
    let new = state.reserve(&claims)?;
    let bind = SocketAddr::new(state.media_ip, new.port);
    let ice_servers = state.broker.as_ref().map(|b| b.ice_servers()).unwrap_or_default();
    let (peer, answer, events) = match StreamPeer::answer(
        sdp,
        bind,
        state.media_public_ip,
        &ice_servers,
        new.control.rate.clone(),
    )
    .await
    {
        Ok(ok) => ok,
        Err(e) => {
            state.release(new);
            return Err(match e {
                StreamingError::BadSdp(m) => WhepError::BadSdp(m),
                other => WhepError::Internal(other.to_string()),
            });
        }
    };
    let offered = candidate_counts(&answer);
    tracing::info!(
        session = %claims.session_id,
        host = offered.host,
        srflx = offered.srflx,
        relay = offered.relay,
        "answered"
    );
    state.launch(new, PlayerPeer::WebRtc(peer), events);
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
    // The session outlives its short token: ending it needs only the signature.
    let claims = authorize(&state, &headers, Expiry::Ignored)?;
    if claims.session_id != id {
        return Err(WhepError::Unauthorized("token is for another session".into()));
    }
    let running = state.retire(&id).ok_or(WhepError::NotFound)?;
    let _ = running.cancel.send(());
    Ok(StatusCode::OK)
}

/// `GET` on the session resource: what the host has sent so far.
async fn stats(
    State(state): State<Arc<HostState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<StreamStats>, WhepError> {
    let claims = authorize(&state, &headers, Expiry::Enforced)?;
    if claims.session_id != id {
        return Err(WhepError::Unauthorized("token is for another session".into()));
    }
    let sessions = state.sessions.lock().expect("sessions lock");
    let running = sessions.get(&id).ok_or(WhepError::NotFound)?;
    Ok(Json(running.counters.snapshot(running.control.rate.target_bps())))
}

/// `GET /whep/sessions/{id}/probes`: the session's probe log
/// ([`gridplay_protocol::probe::SessionProbes`]), running or recently ended,
/// signed by the host: the [`PROBES_SIGNATURE_HEADER`] header carries the
/// ed25519 signature (base64url) over the exact body bytes.
async fn probes(
    State(state): State<Arc<HostState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WhepError> {
    let claims = authorize(&state, &headers, Expiry::Enforced)?;
    if claims.session_id != id {
        return Err(WhepError::Unauthorized("token is for another session".into()));
    }
    let log = state.probe_log(&id).ok_or(WhepError::NotFound)?;
    let snapshot = log.snapshot();
    let body = serde_json::to_vec(&snapshot).map_err(|e| WhepError::Internal(e.to_string()))?;
    let signature = B64.encode(state.key.sign(&body).to_bytes());
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        HeaderName::from_static(PROBES_SIGNATURE_HEADER),
        HeaderValue::from_str(&signature).map_err(|e| WhepError::Internal(e.to_string()))?,
    );
    Ok(response)
}
