//! The broker's HTTP API (axum): catalogue, sessions, hosts, and the web
//! client's static files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use ed25519_dalek::SigningKey;
use gridplay_protocol::token::encode_public_key;
use gridplay_protocol::{
    AllocateRequest, AllocateResponse, App, HostRegistered, HostRegistration, SessionClaims,
    SessionRecord, SessionUpdate,
};
use tower_http::services::{ServeDir, ServeFile};

use crate::{BrokerError, MemoryStore, builtin_apps};

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
    /// Directory of the built web client, served at `/`.
    pub web_dir: Option<PathBuf>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(6),
            heartbeat: Duration::from_secs(2),
            token_ttl: Duration::from_secs(30),
            web_dir: None,
        }
    }
}

/// Everything the handlers share.
pub struct BrokerState {
    /// Hosts and sessions.
    pub store: MemoryStore,
    /// Signs session tokens.
    pub key: SigningKey,
    /// Settings.
    pub config: BrokerConfig,
    /// The catalogue.
    pub apps: Vec<App>,
}

impl BrokerState {
    /// A broker with an empty store.
    pub fn new(key: SigningKey, config: BrokerConfig) -> Self {
        Self {
            store: MemoryStore::new(config.lease, config.token_ttl),
            key,
            config,
            apps: builtin_apps(),
        }
    }
}

type Shared = Arc<BrokerState>;

/// The broker's router.
pub fn app(state: Shared) -> Router {
    let api = Router::new()
        .route("/v1/apps", get(list_apps))
        .route("/v1/sessions", post(allocate))
        .route("/v1/sessions/{id}", get(get_session).delete(end_session))
        .route("/v1/hosts", post(register_host))
        .route("/v1/hosts/{id}/heartbeat", post(heartbeat))
        .route("/v1/hosts/{id}/sessions/{session_id}", post(host_update))
        .layer(DefaultBodyLimit::max(MAX_BODY));
    let router = match &state.config.web_dir {
        Some(dir) => api.fallback_service(
            ServeDir::new(dir).not_found_service(ServeFile::new(dir.join("index.html"))),
        ),
        None => api,
    };
    router.with_state(state)
}

/// Serves the broker on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Shared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}

/// A JSON body whose rejections answer in the API's error format.
struct ApiJson<T>(T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = BrokerError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(BrokerError::TooLarge)
            }
            Err(rejection) => Err(BrokerError::BadRequest(rejection.body_text())),
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

async fn list_apps(State(state): State<Shared>) -> Json<Vec<App>> {
    Json(state.apps.clone())
}

async fn allocate(
    State(state): State<Shared>,
    ApiJson(request): ApiJson<AllocateRequest>,
) -> Result<impl IntoResponse, BrokerError> {
    request.validate().map_err(|e| BrokerError::BadRequest(e.to_string()))?;
    let app = state
        .apps
        .iter()
        .find(|a| a.id == request.app)
        .ok_or_else(|| BrokerError::UnknownApp(request.app.clone()))?;
    if app.profile != request.profile {
        return Err(BrokerError::BadRequest(format!(
            "app `{}` runs under another profile",
            app.id
        )));
    }
    let session_id = uuid::Uuid::new_v4().to_string();
    let (record, host) = state.store.allocate(session_id, &request, Instant::now())?;
    let expires_at_ms = unix_ms() + state.config.token_ttl.as_millis() as u64;
    let claims = SessionClaims {
        session_id: record.session_id.clone(),
        host_id: host.host_id.clone(),
        app: request.app.clone(),
        profile: request.profile,
        width: request.width,
        height: request.height,
        fps: request.fps,
        expires_at_ms,
    };
    let token = claims.sign(&state.key);
    tracing::info!(session = %record.session_id, host = %host.host_id, "allocated");
    let response = AllocateResponse {
        session_id: record.session_id,
        host_id: host.host_id,
        whep_url: host.whep_url,
        token,
        expires_at_ms,
    };
    Ok((StatusCode::CREATED, Json(response)))
}

async fn get_session(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<SessionRecord>, BrokerError> {
    state.store.session(&id, Instant::now()).map(Json)
}

async fn end_session(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, BrokerError> {
    state.store.end_session(&id)?;
    tracing::info!(session = %id, "ended by client");
    Ok(StatusCode::NO_CONTENT)
}

async fn register_host(
    State(state): State<Shared>,
    ApiJson(registration): ApiJson<HostRegistration>,
) -> Result<Json<HostRegistered>, BrokerError> {
    if registration.host_id.is_empty() || registration.host_id.len() > 128 {
        return Err(BrokerError::BadRequest("host_id must be 1..=128 bytes".into()));
    }
    if registration.slots == 0 || registration.slots > 1024 {
        return Err(BrokerError::BadRequest("slots must be within 1..=1024".into()));
    }
    if !registration.whep_url.starts_with("http://")
        && !registration.whep_url.starts_with("https://")
    {
        return Err(BrokerError::BadRequest("whep_url must be an http(s) URL".into()));
    }
    tracing::info!(host = %registration.host_id, slots = registration.slots, "host registered");
    state.store.register_host(registration, Instant::now());
    Ok(Json(HostRegistered {
        broker_public_key: encode_public_key(&state.key.verifying_key()),
        heartbeat_ms: state.config.heartbeat.as_millis() as u64,
        lease_ms: state.config.lease.as_millis() as u64,
    }))
}

async fn heartbeat(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, BrokerError> {
    state.store.heartbeat(&id, Instant::now())?;
    Ok(StatusCode::NO_CONTENT)
}

async fn host_update(
    State(state): State<Shared>,
    Path((host_id, session_id)): Path<(String, String)>,
    ApiJson(update): ApiJson<SessionUpdate>,
) -> Result<Json<SessionRecord>, BrokerError> {
    let record = state.store.host_update(&host_id, &session_id, update.state, Instant::now())?;
    tracing::info!(session = %session_id, state = ?record.state, "host update");
    Ok(Json(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, header};
    use gridplay_protocol::{ApiError, SessionState};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn broker() -> (Shared, Router) {
        let state =
            Arc::new(BrokerState::new(SigningKey::from_bytes(&[3; 32]), BrokerConfig::default()));
        (state.clone(), app(state))
    }

    async fn call(router: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, Vec<u8>) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        (status, response.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    const HOST: &str =
        r#"{"host_id":"h1","whep_url":"http://127.0.0.1:9/whep","slots":1,"gpu":"llvmpipe"}"#;
    const REQUEST: &str = r#"{"app":"orbit","profile":"game","width":1280,"height":720,"fps":60}"#;

    #[tokio::test]
    async fn allocates_a_signed_session_then_reports_no_capacity() {
        let (state, router) = broker();
        let (status, body) = call(&router, "POST", "/v1/hosts", HOST).await;
        assert_eq!(status, StatusCode::OK);
        let registered: HostRegistered = serde_json::from_slice(&body).unwrap();
        let (status, body) = call(&router, "POST", "/v1/sessions", REQUEST).await;
        assert_eq!(status, StatusCode::CREATED);
        let answer: AllocateResponse = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer.whep_url, "http://127.0.0.1:9/whep");
        let key =
            gridplay_protocol::token::decode_public_key(&registered.broker_public_key).unwrap();
        let claims = SessionClaims::verify(&answer.token, &key, unix_ms()).unwrap();
        assert_eq!((claims.session_id.as_str(), claims.width), (answer.session_id.as_str(), 1280));

        let (status, body) = call(&router, "POST", "/v1/sessions", REQUEST).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(serde_json::from_slice::<ApiError>(&body).unwrap().error, "no_capacity");

        let uri = format!("/v1/sessions/{}", answer.session_id);
        assert_eq!(call(&router, "DELETE", &uri, "").await.0, StatusCode::NO_CONTENT);
        assert_eq!(
            state.store.session(&answer.session_id, Instant::now()).unwrap().state,
            SessionState::Ended
        );
        assert_eq!(call(&router, "POST", "/v1/sessions", REQUEST).await.0, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn bad_input_gets_a_json_4xx_and_stores_nothing() {
        let (state, router) = broker();
        call(&router, "POST", "/v1/hosts", HOST).await;
        let big = format!(r#"{{"app":"{}"}}"#, "a".repeat(MAX_BODY));
        let bad = [
            "{not json",
            r#"{"app":"orbit","profile":"game","width":-1,"height":720,"fps":60}"#,
            r#"{"app":"orbit","profile":"game","width":100000,"height":720,"fps":60}"#,
            r#"{"app":"orbit","profile":"game","width":1280,"height":720,"fps":0}"#,
            r#"{"app":"nope","profile":"game","width":1280,"height":720,"fps":60}"#,
            r#"{"app":"orbit","profile":"phone","width":1280,"height":720,"fps":60}"#,
            big.as_str(),
        ];
        for body in bad {
            let (status, bytes) = call(&router, "POST", "/v1/sessions", body).await;
            assert!(status.is_client_error(), "{status} for {}", &body[..body.len().min(60)]);
            let error: ApiError = serde_json::from_slice(&bytes).expect("json error body");
            assert!(!error.message.is_empty());
        }
        assert_eq!(state.store.free_slots(Instant::now()), 1);
        let bad_host = r#"{"host_id":"h2","whep_url":"ftp://x","slots":1,"gpu":"x"}"#;
        assert_eq!(call(&router, "POST", "/v1/hosts", bad_host).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(call(&router, "GET", "/v1/sessions/missing", "").await.0, StatusCode::NOT_FOUND);
    }
}
