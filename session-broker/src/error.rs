//! The broker's one error type, and its HTTP form.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gridplay_protocol::ApiError;
use thiserror::Error;

/// Why a broker request failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum BrokerError {
    /// The request body or parameters were invalid.
    #[error("{0}")]
    BadRequest(String),
    /// The request body exceeded the limit.
    #[error("request body too large")]
    TooLarge,
    /// The app is not in the catalogue.
    #[error("unknown app `{0}`")]
    UnknownApp(String),
    /// No host has a free slot that fits.
    #[error("no host has a free slot for this request; retry shortly")]
    NoCapacity,
    /// Every host with a free slot costs more now than the player's limit.
    #[error("every host with a free slot costs more than max_price_per_block now; retry later")]
    PriceAboveLimit,
    /// The client address made too many allocations recently.
    #[error("too many allocations from this address; retry shortly")]
    RateLimited,
    /// No such session.
    #[error("no such session")]
    SessionNotFound,
    /// No such host (or it lost its lease).
    #[error("no such host; register first")]
    HostNotFound,
    /// A signature or token was missing, forged or stale.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The state store failed.
    #[error("store unavailable: {0}")]
    Store(String),
    /// The session belongs to another host.
    #[error("session belongs to another host")]
    WrongHost,
    /// This broker settles nothing on chain.
    #[error("this broker does not settle sessions on chain")]
    NotSettling,
    /// The player's deposit cannot cover what the voucher allows.
    #[error("insufficient deposit: {0}")]
    InsufficientDeposit(String),
    /// The host is not on this broker's admission list.
    #[error(
        "host {0} is not admitted by this broker; ask its operator to add the key to --admit-hosts"
    )]
    NotAdmitted(String),
    /// The host is admitted by its bond, and its bond does not do.
    #[error("host not admitted: {0}")]
    NotBonded(String),
    /// This checker's report on this session was counted already; nothing changed.
    #[error("this checker's report on this session was already counted; nothing changed")]
    AlreadyCounted,
    /// A capacity check's message is about offers that are not waiting for a check.
    #[error("the host's offers are not waiting for this capacity check")]
    NotOnProbation,
    /// The host serves players through its link, and the link cannot carry the request.
    #[error("host unreachable: {0}; retry shortly")]
    HostUnreachable(&'static str),
    /// The host did not answer a relayed request in time.
    #[error("the host did not answer in time")]
    HostTimeout,
    /// The host answered a relayed request with something that is not an HTTP answer.
    #[error("the host's answer was malformed: {0}")]
    BadGateway(String),
    /// The broker's certificate or key could not be used (at start).
    #[error("TLS: {0}")]
    Tls(String),
}

impl BrokerError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::UnknownApp(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NoCapacity | Self::PriceAboveLimit => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::SessionNotFound | Self::HostNotFound | Self::NotSettling => StatusCode::NOT_FOUND,
            Self::WrongHost | Self::NotAdmitted(_) | Self::NotBonded(_) => StatusCode::FORBIDDEN,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientDeposit(_) => StatusCode::PAYMENT_REQUIRED,
            Self::AlreadyCounted | Self::NotOnProbation => StatusCode::CONFLICT,
            Self::HostUnreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::HostTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Tls(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code for the error body and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::UnknownApp(_) => "unknown_app",
            Self::TooLarge => "too_large",
            Self::NoCapacity => "no_capacity",
            Self::PriceAboveLimit => "price_above_limit",
            Self::RateLimited => "rate_limited",
            Self::SessionNotFound => "session_not_found",
            Self::HostNotFound => "host_not_found",
            Self::WrongHost => "wrong_host",
            Self::NotAdmitted(_) => "not_admitted",
            Self::NotBonded(_) => "not_bonded",
            Self::NotSettling => "not_settling",
            Self::Unauthorized(_) => "unauthorized",
            Self::Store(_) => "store_unavailable",
            Self::InsufficientDeposit(_) => "insufficient_deposit",
            Self::AlreadyCounted => "already_counted",
            Self::NotOnProbation => "not_on_probation",
            Self::HostUnreachable(_) => "host_unreachable",
            Self::HostTimeout => "host_timeout",
            Self::BadGateway(_) => "bad_gateway",
            Self::Tls(_) => "tls",
        }
    }
}

impl IntoResponse for BrokerError {
    fn into_response(self) -> Response {
        if let Self::Store(e) = &self {
            tracing::error!("store: {e}");
        }
        let body = ApiError { error: self.code().into(), message: self.to_string() };
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(
            self,
            Self::NoCapacity
                | Self::PriceAboveLimit
                | Self::Store(_)
                | Self::RateLimited
                | Self::HostUnreachable(_)
        ) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
