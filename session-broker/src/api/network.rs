//! The network's public figures: `GET /v1/network` for the network page, and the
//! same figures on `/metrics`.

use axum::Json;
use axum::extract::State;
use gridplay_protocol::network::{NetworkView, RegionFigures};

use super::{Shared, unix_ms};
use crate::BrokerError;

/// Hosts and sessions by region now, and what was delivered where this broker settles.
#[utoipa::path(get, path = "/v1/network",
    responses((status = 200, body = NetworkView), (status = 503, body = gridplay_protocol::ApiError)))]
pub(super) async fn view(State(state): State<Shared>) -> Result<Json<NetworkView>, BrokerError> {
    Ok(Json(network_view(&state, unix_ms()).await?))
}

/// The figures as of `now_ms`.
pub(super) async fn network_view(state: &Shared, now_ms: u64) -> Result<NetworkView, BrokerError> {
    let loads = state.store.load_by_region(now_ms).await?;
    let regions = loads
        .into_iter()
        .map(|(region, load)| RegionFigures {
            surge_milli: state.prices.surge(&region, now_ms),
            region,
            hosts: load.hosts,
            slots: load.slots,
            sessions: load.used,
        })
        .collect();
    Ok(NetworkView {
        now_ms,
        regions,
        checks: state.store.checks().await?,
        delivered: state.settlement.as_ref().map(|s| s.network(now_ms)),
        cloud_price_per_hour: state.config.cloud_price_per_hour.map(|p| p.to_string()),
    })
}
