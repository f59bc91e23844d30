//! The settler's one error type, and what the broker answers for each.

use gridplay_session_broker::BrokerError;
use thiserror::Error;

/// Why a settler request or round failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// A voucher that does not read or does not fit its session.
    #[error("{0}")]
    BadVoucher(String),
    /// A voucher whose signature is malformed or recovers no player.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The player's deposit cannot cover what the voucher allows.
    #[error("insufficient deposit: {0}")]
    InsufficientDeposit(String),
    /// The settler knows no such session (or it has no voucher).
    #[error("no such session")]
    SessionNotFound,
    /// Another voucher of the same player is being checked.
    #[error("another voucher of this player is being checked; retry shortly")]
    Busy,
    /// A host's record of a session could not be read or was refused.
    #[error("host record: {0}")]
    HostRecord(String),
    /// The chain or its RPC endpoint failed.
    #[error("chain: {0}")]
    Chain(String),
    /// The settler's journal or state directory failed.
    #[error("settlement state: {0}")]
    State(String),
    /// The settler's state and the chain disagree: settling would commit epochs that can be
    /// voided.
    #[error("settlement state disagrees with the chain: {0}")]
    Diverged(String),
}

impl From<gridplay_chain::Error> for Error {
    fn from(e: gridplay_chain::Error) -> Self {
        Self::Chain(e.to_string())
    }
}

impl From<Error> for BrokerError {
    fn from(e: Error) -> Self {
        match e {
            Error::BadVoucher(m) => Self::BadRequest(m),
            Error::Unauthorized(m) => Self::Unauthorized(m),
            Error::InsufficientDeposit(m) => Self::InsufficientDeposit(m),
            Error::SessionNotFound => Self::SessionNotFound,
            Error::Busy => Self::RateLimited,
            e @ (Error::HostRecord(_) | Error::Chain(_) | Error::State(_) | Error::Diverged(_)) => {
                Self::Store(e.to_string())
            }
        }
    }
}
