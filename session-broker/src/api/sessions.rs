//! Player-facing routes: catalogue, candidates, allocation, session state.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use gridplay_protocol::ApiError;
use gridplay_protocol::{
    AllocateRequest, AllocateResponse, App, CandidateHost, GeoPoint, HostRegistration, Profile,
    SessionClaims, SessionRecord, SessionState, SessionToken,
};
use serde::Deserialize;

use super::extract::{ApiJson, header_text};
use super::{Shared, unix_ms};
use crate::BrokerError;
use crate::placement::rank;
use crate::pricing::surged;
use crate::store::{HostView, Want};

/// Hosts considered per allocation.
const CANDIDATES: usize = 16;
/// Claims tried per allocation before answering "no capacity".
const CLAIM_ATTEMPTS: usize = 8;

/// The catalogue.
#[utoipa::path(get, path = "/v1/apps", responses((status = 200, body = [App])))]
pub(super) async fn list_apps(State(state): State<Shared>) -> Result<Json<Vec<App>>, BrokerError> {
    let offered = state.store.offered_apps(unix_ms()).await?;
    Ok(Json(App::builtin().into_iter().chain(offered.into_values()).collect()))
}

/// `GET /v1/candidates` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct CandidatesQuery {
    /// Client latitude.
    lat: f64,
    /// Client longitude.
    lon: f64,
    /// Profile the client wants.
    profile: Profile,
    /// App the client wants, when it knows.
    #[serde(default)]
    app: Option<String>,
}

/// Nearby live hosts offering a profile, nearest first, for RTT probing.
#[utoipa::path(get, path = "/v1/candidates", params(CandidatesQuery),
    responses((status = 200, body = [CandidateHost]), (status = 400, body = ApiError)))]
pub(super) async fn candidates(
    State(state): State<Shared>,
    query: Result<Query<CandidatesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<CandidateHost>>, BrokerError> {
    let Query(query) = query.map_err(|e| BrokerError::BadRequest(e.body_text()))?;
    let near = GeoPoint { lat: query.lat, lon: query.lon };
    near.validate().map_err(|e| BrokerError::BadRequest(e.to_string()))?;
    let want = Want { profile: query.profile, app: query.app.as_deref() };
    let now = unix_ms();
    let hosts = state.store.nearby_hosts(near, want, 8, now).await?;
    Ok(Json(
        hosts
            .into_iter()
            .map(|h| {
                let surge = state.prices.surge(&h.registration.region, now);
                CandidateHost {
                    host_id: h.registration.host_id.clone(),
                    region: h.registration.region.clone(),
                    ping_url: h.registration.ping_url.clone(),
                    distance_km: h.distance_km,
                    price_per_block: surged(h.registration.price_per_block, surge).to_string(),
                    surge_milli: surge,
                }
            })
            .collect(),
    ))
}

/// Places the player on the best free slot and returns a signed session token.
#[utoipa::path(post, path = "/v1/sessions", request_body = AllocateRequest, responses(
    (status = 201, body = AllocateResponse),
    (status = 400, body = ApiError),
    (status = 413, body = ApiError),
    (status = 429, body = ApiError, description = "rate limited; see Retry-After"),
    (status = 503, body = ApiError, description = "no capacity; see Retry-After"),
))]
pub(super) async fn allocate(
    State(state): State<Shared>,
    request: Result<ApiJson<AllocateRequest>, BrokerError>,
) -> Result<impl IntoResponse, BrokerError> {
    let started = Instant::now();
    let result = try_allocate(&state, request.map(|r| r.0)).await;
    state.metrics.record_allocation(&result, started.elapsed());
    let response = result?;
    Ok((StatusCode::CREATED, Json(response)))
}

async fn try_allocate(
    state: &Shared,
    request: Result<AllocateRequest, BrokerError>,
) -> Result<AllocateResponse, BrokerError> {
    let request = request?;
    request.validate().map_err(|e| BrokerError::BadRequest(e.to_string()))?;
    let now = unix_ms();
    let near = request.location.unwrap_or(state.config.default_location);
    let want = Want { profile: request.profile, app: Some(&request.app) };
    // The replica's cached view first (no store round trip); when nothing
    // there can be claimed, the store's own view decides "no capacity".
    let store = &state.store;
    if let Some(hosts) = store.cached_candidates(near, want, CANDIDATES, now).await?
        && let Some(response) = claim_best(state, &request, &hosts, now).await?
    {
        return Ok(response);
    }
    let hosts = store.nearby_hosts(near, want, CANDIDATES, now).await?;
    if let Some(response) = claim_best(state, &request, &hosts, now).await? {
        return Ok(response);
    }
    // Nothing placed: say why, an app nobody runs under that profile or no capacity.
    let profile = match App::builtin_profile(&request.app) {
        Some(profile) => Some(profile),
        None => store.offered_apps(now).await?.get(&request.app).map(|a| a.profile),
    };
    match profile {
        None => Err(BrokerError::UnknownApp(request.app.clone())),
        Some(profile) if profile != request.profile => Err(BrokerError::BadRequest(format!(
            "app `{}` runs under the {profile:?} profile",
            request.app
        ))),
        Some(_) if request.max_price().is_some() && priced_out(state, &request, &hosts, now) => {
            Err(BrokerError::PriceAboveLimit)
        }
        Some(_) => Err(BrokerError::NoCapacity),
    }
}

/// Whether some of `hosts` would serve `request` but for its price limit.
fn priced_out(state: &Shared, request: &AllocateRequest, hosts: &[HostView], now: u64) -> bool {
    let unlimited = AllocateRequest { max_price_per_block: None, ..request.clone() };
    !rank(hosts, &unlimited, |host| state.prices.price(&host.registration, now)).is_empty()
}

/// Claims a slot on the best-ranked of `hosts` that still has one.
async fn claim_best(
    state: &Shared,
    request: &AllocateRequest,
    hosts: &[HostView],
    now: u64,
) -> Result<Option<AllocateResponse>, BrokerError> {
    let placement = Placement {
        app: &request.app,
        profile: request.profile,
        width: request.width,
        height: request.height,
        fps: request.fps,
        client_key: request.client_key.clone(),
        settled: true,
    };
    let price_of = |host: &HostView| state.prices.price(&host.registration, now);
    for choice in rank(hosts, request, price_of).into_iter().take(CLAIM_ATTEMPTS) {
        let host = &choice.host.registration;
        let (rtt, price) = (Some(choice.predicted_rtt_ms), choice.price_per_block);
        if let Some(response) = claim_on(state, host, price, &placement, rtt, now).await? {
            return Ok(Some(response));
        }
    }
    Ok(None)
}

/// What a new session is: its app, profile and stream, its client's key, and whether
/// it settles (a player's does; a capacity check's does not).
pub(super) struct Placement<'a> {
    pub app: &'a str,
    pub profile: gridplay_protocol::Profile,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub client_key: Option<String>,
    pub settled: bool,
}

/// Claims one slot for `placement` on `host` at `price_per_block` (wei); `None` when the
/// host has none free.
pub(super) async fn claim_on(
    state: &Shared,
    host: &HostRegistration,
    price_per_block: u64,
    placement: &Placement<'_>,
    predicted_rtt_ms: Option<f64>,
    now: u64,
) -> Result<Option<AllocateResponse>, BrokerError> {
    let record = SessionRecord {
        session_id: uuid::Uuid::new_v4().to_string(),
        host_id: host.host_id.clone(),
        app: placement.app.to_owned(),
        profile: placement.profile,
        allocated_at_ms: now,
        state: SessionState::Allocated,
    };
    if !state.store.claim(&record, now).await? {
        return Ok(None);
    }
    let expires_at_ms = now + state.config.token_ttl.as_millis() as u64;
    let claims = SessionClaims {
        session_id: record.session_id.clone(),
        host_id: host.host_id.clone(),
        app: placement.app.to_owned(),
        profile: placement.profile,
        width: placement.width,
        height: placement.height,
        fps: placement.fps,
        expires_at_ms,
        client_key: placement.client_key.clone(),
    };
    tracing::info!(session = %record.session_id, host = %host.host_id, rtt_ms = predicted_rtt_ms, price_per_block, "allocated");
    if placement.settled
        && let Some(settlement) = &state.settlement
        && let Err(e) = settlement.allocated(&claims, host, price_per_block, now)
    {
        // Unsettleable, so unplayable: the slot goes back.
        tracing::error!(session = %record.session_id, "the settler cannot keep the allocation: {e}");
        state.store.update_session(&record.session_id, None, SessionState::Ended, now).await?;
        return Err(e);
    }
    let token = claims.sign(&state.key);
    let ice_servers = state.ice_servers(&record.session_id, now);
    Ok(Some(AllocateResponse {
        session_id: record.session_id,
        host_id: host.host_id.clone(),
        whep_url: host.whep_url.clone(),
        token,
        expires_at_ms,
        quic: host.quic.clone(),
        payout_address: host.payout_address.clone(),
        price_per_block: price_per_block.to_string(),
        ice_servers,
    }))
}

/// A session's state.
#[utoipa::path(get, path = "/v1/sessions/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SessionRecord), (status = 404, body = ApiError)))]
pub(super) async fn get_session(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<SessionRecord>, BrokerError> {
    state.store.session(&id, unix_ms()).await.map(Json)
}

/// `DELETE /v1/sessions/{id}` with the session's bearer token (its
/// signature is checked, not its expiry: sessions outlive their tokens).
#[utoipa::path(delete, path = "/v1/sessions/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub(super) async fn end_session(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, BrokerError> {
    // Time 0: the signature counts, not the expiry.
    bearer_claims(&state, &headers, &id, 0)?;
    state.store.update_session(&id, None, SessionState::Ended, unix_ms()).await?;
    tracing::info!(session = %id, "ended by client");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sessions/{id}/token` with the session's unexpired bearer token: a fresh
/// token, granting the same, while the session lives. A client that reads its
/// session's records on the host (stats, probes) for longer than a token lives
/// renews before the token expires; an expired token, or one of an ended
/// session, renews nothing.
#[utoipa::path(post, path = "/v1/sessions/{id}/token", params(("id" = String, Path)),
    responses((status = 200, body = SessionToken), (status = 401, body = ApiError),
        (status = 404, body = ApiError)))]
pub(super) async fn renew_token(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SessionToken>, BrokerError> {
    let now = unix_ms();
    let claims = bearer_claims(&state, &headers, &id, now)?;
    if state.store.session(&id, now).await?.state == SessionState::Ended {
        return Err(BrokerError::Unauthorized("the session has ended: nothing to renew".into()));
    }
    let expires_at_ms = now + state.config.token_ttl.as_millis() as u64;
    let token = SessionClaims { expires_at_ms, ..claims }.sign(&state.key);
    Ok(Json(SessionToken { token, expires_at_ms }))
}

/// The claims of the request's bearer token for session `id`, checked against this broker's
/// key at `now_ms` (0: its expiry is not checked).
fn bearer_claims(
    state: &Shared,
    headers: &HeaderMap,
    id: &str,
    now_ms: u64,
) -> Result<SessionClaims, BrokerError> {
    let token = header_text(headers, header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
        .ok_or(BrokerError::Unauthorized("missing bearer token".into()))?;
    let claims = SessionClaims::verify(&token, &state.key.verifying_key(), now_ms)
        .map_err(|e| BrokerError::Unauthorized(e.to_string()))?;
    if claims.session_id != id {
        return Err(BrokerError::Unauthorized("token is for another session".into()));
    }
    Ok(claims)
}
