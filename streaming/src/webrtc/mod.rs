//! The WebRTC transport (webrtc-rs): the host's sending peer and a receiving
//! viewer peer used by checkers and tests.
//!
//! Both sides negotiate one H.264 video track (constrained baseline,
//! packetization-mode 1), an unordered "input" data channel and, from
//! clients that report probes, a reliable "probes" channel.

mod capture_clock;
mod chain;
mod feedback;
mod framer;
mod pacing;
mod peer;
mod sdp;
mod sender;
mod viewer;
mod whep_client;

pub use feedback::SharedRate;
pub use peer::IceSettings;
pub use sdp::{CandidateCounts, candidate_counts, route_candidates_via, without_candidates};
pub use sender::{PeerEvent, StreamPeer};
pub use viewer::{Viewer, ViewerEvent, ViewerOptions};
pub use whep_client::WhepSession;

/// Largest SDP accepted from a remote peer, in bytes.
pub use gridplay_protocol::sdp::MAX_SDP_LEN;

/// Label of the data channel that carries input events and their acknowledgements.
pub const INPUT_CHANNEL: &str = "input";

/// Label of the reliable data channel that carries probe reports and pings.
pub use gridplay_protocol::probe::PROBES_CHANNEL;
