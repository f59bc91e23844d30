//! The session broker: hosts register their slots, players ask for a
//! session, the broker places them on a slot and signs a short-lived token
//! the host checks offline.
//!
//! State lives behind [`MemoryStore`]; placement is a pure function of the
//! candidates and the request; the HTTP API is an axum [`Router`](axum::Router)
//! built by [`app`].

mod api;
mod catalogue;
mod error;
mod placement;
mod store;

pub use api::{BrokerConfig, BrokerState, app, serve};
pub use catalogue::builtin_apps;
pub use error::BrokerError;
pub use placement::{Candidate, place};
pub use store::{HostEntry, MemoryStore, SessionEntry};
