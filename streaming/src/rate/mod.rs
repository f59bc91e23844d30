//! Rate control: how many bits per second the stream should use, and at what quality.
//!
//! - [`RateController`] is a sans-I/O congestion controller after Google Congestion Control:
//!   per-packet feedback (TWCC or RFC 8888: departure, arrival or loss) and RTCP receiver reports
//!   (loss fraction, RTT) go in with the instant they arrived; a target bitrate comes out, and,
//!   with a [`DegradationPolicy`] attached, a suggestion to lower or raise resolution or frame
//!   rate when the target stays too low or recovers.
//! - [`SimLink`] is a seeded in-memory link (capacity with a drop-tail queue, delay, jitter,
//!   loss) for testing the controller in simulated time, and for a userspace impairment relay.
//!
//! Nothing here reads a clock, touches a socket or draws unseeded randomness: every instant is a
//! parameter, so a feedback sequence always yields the same trajectory and the tests run thirty
//! simulated seconds in milliseconds. Nothing here talks to the encoder or the WebRTC stack
//! either; a caller reads the target and applies it.

mod controller;
mod degrade;
mod delay;
mod link;
#[cfg(test)]
mod sim_tests;

pub use controller::{
    BETA, INCREASE_PER_SECOND, LOSS_HIGH, LOSS_LOW, LOSS_MIN_PACKETS, LOSS_WINDOW,
    PACKET_FEEDBACK_PRECEDENCE, PacketFeedback, RateConfig, RateController, RateStats,
    STARTUP_GROWTH_PER_SECOND,
};
pub use degrade::{
    DegradationPolicy, LADDER_720P60, QualityChange, QualityLevel, STEP_DOWN_AFTER, STEP_UP_AFTER,
    STEP_UP_HEADROOM,
};
pub use delay::BandwidthUsage;
pub use link::{LinkConfig, LinkStats, SimLink};

/// The one real instant the tests start simulated time from. Everything after it is arithmetic;
/// this is the only clock read in the module, and only in tests.
#[cfg(test)]
pub(crate) fn test_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    *EPOCH.get_or_init(std::time::Instant::now)
}
