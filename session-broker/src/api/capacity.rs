//! Capacity checks ([`gridplay_protocol::capacity`]), for a broker run with
//! `--capacity-check`: a host whose offers are new or changed is on probation,
//! placed for no player, until a checker this broker trusts has played sessions
//! on it; then players are placed on the slots that met the service level, and
//! on no more. A host none of whose slots passed is told why (with each
//! heartbeat) and checked again after a back-off that doubles.

use axum::Json;
use axum::extract::State;
use gridplay_protocol::capacity::{
    CapacityMessage, CapacityState, CapacityVerdict, MAX_TRIAL_SESSIONS, SignedCapacity, offers_key,
};
use gridplay_protocol::{
    AllocateResponse, ApiError, App, HostRegistration, Profile, ProtocolError, SlotOffer,
};

use super::checks::CHECK_FRESHNESS_MS;
use super::extract::ApiJson;
use super::sessions::{Placement, claim_on};
use super::{Shared, unix_ms};
use crate::BrokerError;

/// The first wait before a host that failed is checked again; it doubles with each failure.
const FIRST_RETRY_MS: u64 = 60_000;
/// The longest such wait.
const LONGEST_RETRY_MS: u64 = 60 * 60_000;
/// How long a check a checker has started stays its own before it is due again.
const CHECK_LEASE_MS: u64 = 120_000;
/// Most due checks listed at once.
const DUE_LISTED: usize = 16;

/// What registration makes of a host's offers: with capacity checks, a host
/// whose offers passed is offered at most what passed; any other is on probation.
pub(super) async fn on_registration(
    state: &Shared,
    registration: &mut HostRegistration,
    now_ms: u64,
) -> Result<(), BrokerError> {
    registration.probation = false;
    if !state.config.capacity_check {
        return Ok(());
    }
    let key = offers_key(registration);
    match state.store.capacity(&registration.host_id).await? {
        Some(verdict) if verdict.offers_key == key && verdict.state == CapacityState::Admitted => {
            registration.offers = capped(&registration.offers, &verdict);
        }
        Some(verdict) if verdict.offers_key == key => registration.probation = true,
        _ => {
            let verdict = CapacityVerdict {
                host_id: registration.host_id.clone(),
                offers_key: key,
                claimed: registration.offers.clone(),
                state: CapacityState::Probation,
                admitted: Default::default(),
                profiles: Vec::new(),
                checker: None,
                reason: "waiting for its capacity check".into(),
                due_ms: Some(now_ms),
                failures: 0,
            };
            state.store.set_capacity(&verdict).await?;
            tracing::info!(host = %registration.host_id, "host on probation until its capacity check");
            registration.probation = true;
        }
    }
    Ok(())
}

/// `offers` cut to what `verdict` admitted (profiles that admitted nothing dropped).
fn capped(offers: &[SlotOffer], verdict: &CapacityVerdict) -> Vec<SlotOffer> {
    offers
        .iter()
        .map(|o| SlotOffer {
            slots: o.slots.min(verdict.admitted.get(&o.profile).copied().unwrap_or(0)),
            ..*o
        })
        .filter(|o| o.slots > 0)
        .collect()
}

/// Hosts whose capacity check is due, the longest due first.
#[utoipa::path(get, path = "/v1/capacity/due",
    responses((status = 200, body = [CapacityVerdict])))]
pub(super) async fn due(
    State(state): State<Shared>,
) -> Result<Json<Vec<CapacityVerdict>>, BrokerError> {
    Ok(Json(state.store.capacity_due(unix_ms(), DUE_LISTED).await?))
}

/// Where a host stands with its capacity check, with the figures it rests on.
#[utoipa::path(get, path = "/v1/hosts/{id}/capacity", params(("id" = String, Path)),
    responses((status = 200, body = CapacityVerdict), (status = 404, body = ApiError)))]
pub(super) async fn of_host(
    State(state): State<Shared>,
    axum::extract::Path(host_id): axum::extract::Path<String>,
) -> Result<Json<CapacityVerdict>, BrokerError> {
    state.store.capacity(&host_id).await?.map(Json).ok_or(BrokerError::HostNotFound)
}

/// The message of a request signed by a checker this broker trusts, made in the last five
/// minutes, and not seen before (a replay is refused).
async fn trusted(state: &Shared, signed: &SignedCapacity) -> Result<CapacityMessage, BrokerError> {
    let (message, checker) = signed.verify().map_err(|e| match e {
        ProtocolError::Invalid(m) => BrokerError::BadRequest(m),
        _ => BrokerError::Unauthorized("the message is not signed by its checker".into()),
    })?;
    if !state.config.checkers.contains(&checker.to_string()) {
        return Err(BrokerError::Unauthorized(format!(
            "{checker} is not a checker of this broker"
        )));
    }
    let now = unix_ms();
    if now.abs_diff(message.at_ms()) > CHECK_FRESHNESS_MS {
        return Err(BrokerError::BadRequest(
            "the message is not from the last five minutes".into(),
        ));
    }
    if !state.store.first_signature_use(&signed.signature, now, 2 * CHECK_FRESHNESS_MS).await? {
        return Err(BrokerError::Unauthorized("this message was sent before".into()));
    }
    Ok(message)
}

/// The verdict a checker's message is about: the host's, for the offers it names, not yet admitted.
async fn pending(state: &Shared, host_id: &str, key: &str) -> Result<CapacityVerdict, BrokerError> {
    match state.store.capacity(host_id).await? {
        Some(v) if v.offers_key == key && v.state != CapacityState::Admitted => Ok(v),
        Some(_) => Err(BrokerError::NotOnProbation),
        None => Err(BrokerError::HostNotFound),
    }
}

/// Sessions for a capacity trial on a host on probation, asked for by a checker this broker
/// trusts: `count` sessions of the profile at the largest stream the host offers for it,
/// unpaid. The check is the checker's for the next two minutes.
#[utoipa::path(post, path = "/v1/capacity/sessions", request_body = SignedCapacity,
    responses((status = 201, body = [AllocateResponse]), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError, description = "The host's offers are not waiting for this check"),
        (status = 503, body = ApiError, description = "The host has not that many free slots")))]
pub(super) async fn sessions(
    State(state): State<Shared>,
    ApiJson(signed): ApiJson<SignedCapacity>,
) -> Result<(axum::http::StatusCode, Json<Vec<AllocateResponse>>), BrokerError> {
    let CapacityMessage::Sessions { host_id, offers_key, profile, count, .. } =
        trusted(&state, &signed).await?
    else {
        return Err(BrokerError::BadRequest("not a request for sessions".into()));
    };
    if !(1..=MAX_TRIAL_SESSIONS).contains(&count) {
        return Err(BrokerError::BadRequest(format!(
            "1 to {MAX_TRIAL_SESSIONS} sessions per trial"
        )));
    }
    let now = unix_ms();
    let mut verdict = pending(&state, &host_id, &offers_key).await?;
    let host = state.store.host(&host_id, now).await?;
    let offer = host
        .offer(profile)
        .ok_or_else(|| BrokerError::BadRequest(format!("the host offers no {profile:?} slots")))?;
    let app = App::builtin()
        .into_iter()
        .chain(host.apps.iter().cloned())
        .find(|a| a.profile == profile)
        .map(|a| a.id)
        .ok_or_else(|| BrokerError::BadRequest(format!("no app runs under {profile:?}")))?;
    verdict.due_ms = Some(now + CHECK_LEASE_MS);
    state.store.set_capacity(&verdict).await?;
    let placement = Placement {
        app: &app,
        profile,
        width: offer.max_width,
        height: offer.max_height,
        fps: offer.max_fps,
        client_key: None,
        settled: false,
    };
    let mut sessions = Vec::new();
    for _ in 0..count {
        match claim_on(&state, &host, host.price_per_block, &placement, None, now).await? {
            Some(session) => sessions.push(session),
            None => {
                for session in &sessions {
                    state
                        .store
                        .update_session(
                            &session.session_id,
                            None,
                            gridplay_protocol::SessionState::Ended,
                            now,
                        )
                        .await?;
                }
                return Err(BrokerError::NoCapacity);
            }
        }
    }
    tracing::info!(host = %host_id, ?profile, count, "capacity trial");
    Ok((axum::http::StatusCode::CREATED, Json(sessions)))
}

/// A checker's finding on a host on probation: the host is admitted with the slots that met
/// the service level, or, when none did, fails and is checked again after a back-off.
#[utoipa::path(post, path = "/v1/capacity", request_body = SignedCapacity,
    responses((status = 200, body = CapacityVerdict), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub(super) async fn report(
    State(state): State<Shared>,
    ApiJson(signed): ApiJson<SignedCapacity>,
) -> Result<Json<CapacityVerdict>, BrokerError> {
    let CapacityMessage::Report { checker, host_id, offers_key, profiles, .. } =
        trusted(&state, &signed).await?
    else {
        return Err(BrokerError::BadRequest("not a capacity report".into()));
    };
    let now = unix_ms();
    let mut verdict = pending(&state, &host_id, &offers_key).await?;
    let claimed = |p: Profile| verdict.claimed.iter().find(|o| o.profile == p).map(|o| o.slots);
    if let Some(p) = profiles.iter().find(|p| claimed(p.profile) != Some(p.claimed)) {
        return Err(BrokerError::BadRequest(format!(
            "the report's {:?} slots are not the host's offer",
            p.profile
        )));
    }
    verdict.admitted = profiles.iter().map(|p| (p.profile, p.admitted.min(p.claimed))).collect();
    let admitted: u32 = verdict.admitted.values().sum();
    let summary: Vec<String> = profiles
        .iter()
        .map(|p| {
            format!(
                "{} of {} {:?} slots at {}",
                p.admitted.min(p.claimed),
                p.claimed,
                p.profile,
                p.stream
            )
        })
        .collect();
    if admitted > 0 {
        verdict.state = CapacityState::Admitted;
        verdict.due_ms = None;
        verdict.failures = 0;
        verdict.reason = format!("admitted {}", summary.join(", "));
    } else {
        verdict.state = CapacityState::Failed;
        verdict.failures += 1;
        let wait = (FIRST_RETRY_MS << (verdict.failures - 1).min(16)).min(LONGEST_RETRY_MS);
        verdict.due_ms = Some(now + wait);
        verdict.reason = format!(
            "no slot met the service level ({}); checked again in {} s",
            summary.join(", "),
            wait / 1000
        );
    }
    verdict.profiles = profiles;
    verdict.checker = Some(checker);
    state.store.set_capacity(&verdict).await?;
    // A live host is offered from now on as the verdict says.
    if let Ok(host) = state.store.host(&host_id, now).await {
        let mut registration = (*host).clone();
        on_registration(&state, &mut registration, now).await?;
        state.store.register_host(&registration, now).await?;
    }
    tracing::info!(host = %host_id, state = ?verdict.state, reason = %verdict.reason, "capacity checked");
    Ok(Json(verdict))
}
