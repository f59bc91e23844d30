//! The network's public figures (`GET /v1/network`, the broker's network page):
//! hosts and sessions by region now, and what the network delivered as its
//! settler billed it from players' own signed probes.

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use utoipa::ToSchema;

/// Everything the network page shows, as of `now_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct NetworkView {
    /// When this view was made, Unix milliseconds.
    #[ts(type = "number")]
    pub now_ms: u64,
    /// Live hosts and their sessions, by region.
    pub regions: Vec<RegionFigures>,
    /// What was delivered, where this broker settles on a chain.
    pub delivered: Option<Delivered>,
    /// What the checkers this broker trusts found of hosts.
    pub checks: Checks,
    /// What an hour of a comparable instance costs on a centralised cloud, wei, decimal,
    /// as the operator configured it.
    pub cloud_price_per_hour: Option<String>,
}

/// One region now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct RegionFigures {
    /// The region's label.
    pub region: String,
    /// Live hosts.
    pub hosts: u32,
    /// Slots they offer.
    pub slots: u32,
    /// Sessions they hold.
    pub sessions: u32,
    /// Its demand factor, thousandths (1000: base prices).
    pub surge_milli: u32,
}

/// What the network delivered: since the settler's journal began, and hour by hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct Delivered {
    /// Everything billed so far.
    pub total: Tally,
    /// The last day, an hour a bucket, oldest first.
    pub hours: Vec<HourTally>,
}

/// One hour of [`Delivered`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct HourTally {
    /// When the hour starts, Unix milliseconds.
    #[ts(type = "number")]
    pub start_ms: u64,
    /// What was billed in it.
    pub tally: Tally,
}

/// Blocks billed, and what they show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct Tally {
    /// 15-minute blocks billed.
    #[ts(type = "number")]
    pub blocks_billed: u64,
    /// Of those, blocks whose players' signed probes met the service level.
    #[ts(type = "number")]
    pub blocks_delivered: u64,
    /// `blocks_delivered ÷ blocks_billed`; none before any block.
    pub success_rate: Option<f64>,
    /// Compute hours delivered: the seconds the delivered blocks covered, in hours.
    pub delivered_hours: f64,
    /// Sessions whose every block is billed.
    #[ts(type = "number")]
    pub sessions: u64,
    /// Their mean length, minutes.
    pub mean_session_minutes: Option<f64>,
    /// Paid to hosts, wei, decimal.
    pub paid_wei: String,
    /// Paid per delivered hour, wei, decimal.
    pub paid_per_hour_wei: Option<String>,
    /// Mean frames a second players presented, over the blocks billed.
    pub fps: Option<f64>,
    /// Median over the blocks of their click-to-photon (each second's p95), milliseconds.
    pub click_to_photon_ms: Option<f64>,
}

/// Checker reports counted towards hosts' reputations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct Checks {
    /// Reports counted.
    #[ts(type = "number")]
    pub reports: u64,
    /// Of those, reports that found the service delivered.
    #[ts(type = "number")]
    pub delivered: u64,
}
