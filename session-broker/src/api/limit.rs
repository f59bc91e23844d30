//! Per-address rate limiting of allocations and vouchers (GCRA, via `governor`).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::Shared;
use crate::BrokerError;

/// Allocations per client address.
pub struct AddressLimiter(DefaultKeyedRateLimiter<IpAddr>);

impl AddressLimiter {
    /// `per_second` allocations a second, in bursts of up to twice that.
    pub fn new(per_second: NonZeroU32) -> Self {
        let burst = per_second.saturating_mul(NonZeroU32::new(2).expect("2 > 0"));
        Self(RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)))
    }

    fn check(&self, address: IpAddr) -> Result<(), BrokerError> {
        self.0.check_key(&address).map_err(|_| BrokerError::RateLimited)?;
        if self.0.len() > 100_000 {
            self.0.retain_recent();
        }
        Ok(())
    }
}

/// Refuses a request (an allocation, a voucher) with 429 when its client address is over
/// the limit; both draw on one budget per address.
pub async fn limit_per_address(
    State(state): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let (Some(limiter), Some(address)) = (&state.limiter, address)
        && let Err(e) = limiter.check(address)
    {
        if request.uri().path() == "/v1/sessions" {
            state.metrics.record_allocation::<()>(&Err(e.clone()), std::time::Duration::ZERO);
        }
        return e.into_response();
    }
    next.run(request).await
}
