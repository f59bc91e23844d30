//! The OpenAPI document, generated from the handlers and the protocol types.

use axum::Json;
use utoipa::OpenApi;

use super::{capacity, checks, hosts, relay, sessions, settle};

/// The broker API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gridplay broker",
        description = "Places players on host slots and signs session tokens."
    ),
    paths(
        sessions::list_apps,
        sessions::candidates,
        sessions::allocate,
        sessions::get_session,
        sessions::end_session,
        sessions::renew_token,
        hosts::register,
        hosts::heartbeat,
        hosts::update_session,
        relay::link,
        checks::submit,
        capacity::due,
        capacity::sessions,
        capacity::report,
        capacity::of_host,
        settle::info,
        settle::voucher,
        settle::receipt,
        settle::host_claims,
    )
)]
pub struct BrokerApi;

/// `GET /v1/openapi.json`.
pub(super) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(BrokerApi::openapi())
}
