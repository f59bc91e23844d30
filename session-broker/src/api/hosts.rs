//! Host-facing routes; every request is signed with the host's key, and each
//! signature is accepted once (a replayed request gets 401).

use axum::Json;
use axum::extract::{Path, State};
use gridplay_protocol::ApiError;
use gridplay_protocol::token::encode_public_key;
use gridplay_protocol::{
    Heartbeat, HeartbeatAck, HostRegistered, HostRegistration, IceServer, SessionRecord,
    SessionUpdate,
};

use super::extract::SignedBody;
use super::relay::relay_path;
use super::{Shared, unix_ms};
use crate::BrokerError;

/// Registers (or re-registers) a host; signed with the host's key.
#[utoipa::path(post, path = "/v1/hosts", request_body = HostRegistration,
    params(("x-gridplay-host-auth" = String, Header, description = "<unix ms>.<ed25519 signature>")),
    responses((status = 200, body = HostRegistered), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError, description = "The host is not on the broker's admission list, or its bond is too small")))]
pub(super) async fn register(
    State(state): State<Shared>,
    request: SignedBody<HostRegistration>,
) -> Result<Json<HostRegistered>, BrokerError> {
    let now = unix_ms();
    request.body.validate().map_err(|e| BrokerError::BadRequest(e.to_string()))?;
    request.verify(&request.body.host_id, &*state.store, now).await?;
    state.admit_registration(&request.body).await?;
    let mut registration = request.body;
    if registration.signals_over_link() {
        let Some(public_url) = &state.config.public_url else {
            return Err(BrokerError::BadRequest(
                "this broker relays no host's signalling (it has no public URL): give the host \
                 an inbound WHEP endpoint"
                    .into(),
            ));
        };
        let relay =
            format!("{}{}", public_url.trim_end_matches('/'), relay_path(&registration.host_id));
        registration.whep_url = format!("{relay}/whep");
        registration.ping_url = format!("{relay}/ping");
    }
    super::capacity::on_registration(&state, &mut registration, now).await?;
    state.store.register_host(&registration, now).await?;
    tracing::info!(host = %registration.host_id, region = %registration.region, probation = registration.probation, "host registered");
    Ok(Json(HostRegistered {
        broker_public_key: encode_public_key(&state.key.verifying_key()),
        heartbeat_ms: state.config.heartbeat.as_millis() as u64,
        lease_ms: state.config.lease.as_millis() as u64,
        ice_servers: host_ice_servers(&state, &registration.host_id, now),
    }))
}

/// Renews a host's lease; answers which of its sessions are over.
#[utoipa::path(post, path = "/v1/hosts/{id}/heartbeat", request_body = Heartbeat,
    params(("id" = String, Path), ("x-gridplay-host-auth" = String, Header)),
    responses((status = 200, body = HeartbeatAck), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub(super) async fn heartbeat(
    State(state): State<Shared>,
    Path(host_id): Path<String>,
    request: SignedBody<Heartbeat>,
) -> Result<Json<HeartbeatAck>, BrokerError> {
    let now = unix_ms();
    request.verify(&host_id, &*state.store, now).await?;
    if request.body.sessions.len() > 4096 {
        return Err(BrokerError::BadRequest("at most 4096 sessions per heartbeat".into()));
    }
    let mut ack = state.store.heartbeat(&host_id, &request.body, now).await?;
    ack.ice_servers = host_ice_servers(&state, &host_id, now);
    if state.config.capacity_check {
        ack.capacity = state.store.capacity(&host_id).await?;
    }
    Ok(Json(ack))
}

/// A host reports a session's state.
#[utoipa::path(post, path = "/v1/hosts/{id}/sessions/{session_id}", request_body = SessionUpdate,
    params(("id" = String, Path), ("session_id" = String, Path), ("x-gridplay-host-auth" = String, Header)),
    responses((status = 200, body = SessionRecord), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub(super) async fn update_session(
    State(state): State<Shared>,
    Path((host_id, session_id)): Path<(String, String)>,
    request: SignedBody<SessionUpdate>,
) -> Result<Json<SessionRecord>, BrokerError> {
    let now = unix_ms();
    request.verify(&host_id, &*state.store, now).await?;
    let record =
        state.store.update_session(&session_id, Some(&host_id), request.body.state, now).await?;
    tracing::info!(session = %session_id, state = ?record.state, "host update");
    Ok(Json(record))
}

/// The STUN and TURN servers for host `host_id`'s own ICE, with credentials in its name.
fn host_ice_servers(state: &Shared, host_id: &str, now_ms: u64) -> Vec<IceServer> {
    state.ice_servers(&format!("host-{host_id}"), now_ms)
}
