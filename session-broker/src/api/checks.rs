//! Checker reports: `POST /v1/checks` weighs a checker's signed report of
//! a host into the host's reputation, which placement takes into account.

use axum::Json;
use axum::extract::State;
use gridplay_protocol::check::{CheckAccepted, SignedCheck};
use gridplay_protocol::{ApiError, ProtocolError};

use super::extract::ApiJson;
use super::{Shared, unix_ms};
use crate::BrokerError;

/// How far a report's time may be from the broker's clock: a report is news
/// once, not a lever to pull again and again.
pub const CHECK_FRESHNESS_MS: u64 = 5 * 60 * 1000;

/// Takes one checker report, signed by a checker this broker trusts.
#[utoipa::path(post, path = "/v1/checks", request_body = SignedCheck,
    responses((status = 200, body = CheckAccepted), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub(super) async fn submit(
    State(state): State<Shared>,
    ApiJson(check): ApiJson<SignedCheck>,
) -> Result<Json<CheckAccepted>, BrokerError> {
    let (report, checker) = check.verify().map_err(|e| match e {
        ProtocolError::Invalid(m) => BrokerError::BadRequest(m),
        _ => BrokerError::Unauthorized("the report is not signed by its checker".into()),
    })?;
    let checker = checker.to_string();
    if !state.config.checkers.contains(&checker) {
        return Err(BrokerError::Unauthorized(format!(
            "{checker} is not a checker of this broker"
        )));
    }
    if unix_ms().abs_diff(report.checked_at_ms) > CHECK_FRESHNESS_MS {
        return Err(BrokerError::BadRequest("the report is not from the last five minutes".into()));
    }
    let host_id = report.host_id;
    let reputation = state.store.record_check(&host_id, report.delivered).await?;
    tracing::info!(host = %host_id, %checker, delivered = report.delivered, reputation, "checker report");
    Ok(Json(CheckAccepted { host_id, reputation }))
}
