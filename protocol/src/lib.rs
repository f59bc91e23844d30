//! The wire contract every Gridplay party shares: API records, session
//! tokens, the binary input codec and signed probe reports.
//!
//! This crate does no I/O. TypeScript types for the web client are generated
//! from it (`cargo test -p gridplay-protocol` writes them to
//! `client-web/src/generated/`).

mod api;
pub mod capacity;
pub mod check;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod host_auth;
pub mod input;
pub mod link;
pub mod network;
pub mod owner;
pub mod probe;
pub mod quic;
pub mod sdp;
pub mod settlement;
pub mod token;

pub use api::*;
pub use error::ProtocolError;
pub use token::SessionClaims;
