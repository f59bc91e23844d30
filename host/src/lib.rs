//! The Gridplay session host: finds the GPU, registers its slots and apps
//! with a broker, and for each player runs the session's workload (the
//! built-in game rendered with Vulkan, or a catalogue app in its own
//! sandbox and display), encodes it to H.264 and streams it over WebRTC
//! (WHEP signalling) to browsers and over QUIC to native clients. Its owner
//! watches it on a dashboard of its own.
//!
//! It does not place players (the broker does) nor settle payments.

mod broker_link;
pub mod catalogue;
pub mod dashboard;
mod error;
pub mod gpu;
pub mod pipeline;
pub mod probes;
mod quic;
mod serve;
mod session;
pub mod signalling;
mod whep;
pub mod worker;
pub mod workloads;

pub use broker_link::{BrokerKey, BrokerLink, https_trusting};
pub use error::HostError;
pub use quic::serve_quic;
pub use serve::{HostConfig, run_host};
pub use session::{
    EndReason, PlayerPeer, SessionCounters, SessionParts, WATCHED, Watched, WatchedFrame,
    run_session,
};
pub use whep::{DEFAULT_MAX_WATCHERS, HostState, whep_router};
