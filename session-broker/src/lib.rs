//! The session broker: hosts register their slots, players ask for a
//! session, the broker places them on the best slot and signs a short-lived
//! token the host checks offline.
//!
//! State lives behind [`SessionStore`] ([`MemoryStore`] in one process,
//! [`RedisStore`] for many replicas); placement is a pure function
//! ([`placement::rank`]); the HTTP API is an axum router built by [`app`].

pub mod admission;
mod api;
mod error;
pub mod ice;
pub mod link;
mod metrics;
pub mod placement;
pub mod pricing;
pub mod settlement;
pub mod store;
pub mod testing;

pub use api::{BrokerConfig, BrokerState, MAX_BODY, app, serve, tls, unix_ms};
pub use error::BrokerError;
pub use store::{MemoryStore, RedisStore, SessionStore, StoreTiming};
