//! Settlement routes: where sessions settle, a session's voucher, its receipt.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use gridplay_protocol::ApiError;
use gridplay_protocol::settlement::{
    HostClaims, SessionReceipt, SettlementInfo, VoucherSubmission,
};

use super::extract::ApiJson;
use super::{Shared, unix_ms};
use crate::BrokerError;
use crate::settlement::Settlement;

fn settler(state: &Shared) -> Result<&dyn Settlement, BrokerError> {
    state.settlement.as_deref().ok_or(BrokerError::NotSettling)
}

/// The chain and contract this broker settles on.
#[utoipa::path(get, path = "/v1/settlement",
    responses((status = 200, body = SettlementInfo), (status = 404, body = ApiError)))]
pub(super) async fn info(State(state): State<Shared>) -> Result<Json<SettlementInfo>, BrokerError> {
    Ok(Json(settler(&state)?.info()))
}

/// The player's signed voucher for a session (no transaction).
#[utoipa::path(post, path = "/v1/sessions/{id}/voucher", request_body = VoucherSubmission,
    params(("id" = String, Path)),
    responses((status = 204), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 402, body = ApiError), (status = 404, body = ApiError)))]
pub(super) async fn voucher(
    State(state): State<Shared>,
    Path(id): Path<String>,
    ApiJson(submission): ApiJson<VoucherSubmission>,
) -> Result<StatusCode, BrokerError> {
    settler(&state)?.submit_voucher(&id, &submission, unix_ms() / 1000).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a host can claim with: its total in each epoch of the receipts kept.
#[utoipa::path(get, path = "/v1/settlement/claims/{host}", params(("host" = String, Path)),
    responses((status = 200, body = HostClaims), (status = 400, body = ApiError),
        (status = 404, body = ApiError)))]
pub(super) async fn host_claims(
    State(state): State<Shared>,
    Path(host): Path<String>,
) -> Result<Json<HostClaims>, BrokerError> {
    settler(&state)?.host_claims(&host).map(Json)
}

/// The session's billed blocks and, once committed, its verifiable receipt.
#[utoipa::path(get, path = "/v1/sessions/{id}/receipt", params(("id" = String, Path)),
    responses((status = 200, body = SessionReceipt), (status = 404, body = ApiError)))]
pub(super) async fn receipt(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<SessionReceipt>, BrokerError> {
    settler(&state)?.receipt(&id).map(Json)
}
