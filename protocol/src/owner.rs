//! The owner's dashboard: what a host shows the person who runs it
//! (`GET /api/owner` on the host's dashboard address) and what its Claim
//! button answers (`POST /api/owner/claim`).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::SlotOffer;
use crate::capacity::CapacityVerdict;

/// Everything the owner's page shows, as of `now_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct OwnerView {
    /// The host's id (its ed25519 public key, base64url).
    pub host_id: String,
    /// Its region label.
    pub region: String,
    /// The device sessions render on.
    pub gpu: String,
    /// The broker it serves.
    pub broker_url: String,
    /// When this view was made, Unix milliseconds.
    #[ts(type = "number")]
    pub now_ms: u64,
    /// When the host started, Unix milliseconds.
    #[ts(type = "number")]
    pub up_since_ms: u64,
    /// What it offers.
    pub offers: Vec<SlotOffer>,
    /// Running sessions first (newest first), then recently ended ones (newest first).
    pub sessions: Vec<OwnerSession>,
    /// Where it stands with the broker's capacity check; none when the broker checks none.
    pub capacity: Option<CapacityVerdict>,
    /// What checkers found of it, `0..=1`, as the broker last said.
    pub reputation: Option<f64>,
    /// What it earned, epoch by epoch.
    pub earnings: OwnerEarnings,
    /// The last day in equal buckets, oldest first.
    pub history: Vec<HistoryBucket>,
    /// How long each history bucket is, milliseconds.
    #[ts(type = "number")]
    pub bucket_ms: u64,
}

/// One session as its host saw it, with the player's own figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct OwnerSession {
    /// The broker's session id.
    pub session_id: String,
    /// The app it runs.
    pub app: String,
    /// The stream asked for, `WIDTHxHEIGHT@FPS`.
    pub stream: String,
    /// When it started, Unix milliseconds.
    #[ts(type = "number")]
    pub started_at_ms: u64,
    /// When it ended, Unix milliseconds; none while it runs.
    #[ts(type = "number | null")]
    pub ended_at_ms: Option<u64>,
    /// Frames a second the player presented: over the last seconds while it runs, over
    /// the whole session once ended.
    pub fps: Option<f64>,
    /// Round-trip time the player measured, milliseconds (same span as `fps`).
    pub rtt_ms: Option<f64>,
    /// Median click-to-photon the player measured, milliseconds (same span as `fps`).
    pub click_to_photon_ms: Option<f64>,
    /// Player-signed reports the host accepted.
    pub reports: u32,
    /// How the broker billed it, where the broker settles.
    pub blocks: Option<OwnerBlocks>,
}

/// The 15-minute blocks the broker billed for one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct OwnerBlocks {
    /// Blocks billed so far.
    pub billed: u32,
    /// Of those, blocks whose player-signed probes met the service level.
    pub delivered: u32,
    /// Of those, blocks committed on chain.
    pub committed: u32,
    /// Wei billed, decimal.
    pub amount: String,
}

/// One bucket of the host's last day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct HistoryBucket {
    /// When the bucket starts, Unix milliseconds.
    #[ts(type = "number")]
    pub start_ms: u64,
    /// Session-seconds served in it.
    pub served_seconds: u32,
    /// Of those, seconds the player confirmed with a signed report.
    pub confirmed_seconds: u32,
    /// Mean frames a second the players presented.
    pub fps: Option<f64>,
    /// Median of the players' per-second median click-to-photon, milliseconds.
    pub click_to_photon_ms: Option<f64>,
}

/// What the host earned, where its broker settles on a chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct OwnerEarnings {
    /// Where the host is paid, `0x`; none when it names no payout address.
    pub payout_address: Option<String>,
    /// Whether this host holds its payout key, so that it can claim from the page.
    pub can_claim: bool,
    /// One per epoch that billed one of its sessions, oldest first.
    pub epochs: Vec<EpochEarning>,
    /// Why the list is empty or stale, in words (no settlement, the chain unreachable).
    pub note: Option<String>,
}

/// The host's total in one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct EpochEarning {
    /// The epoch.
    #[ts(type = "number")]
    pub epoch_id: u64,
    /// Wei, decimal.
    pub amount: String,
    /// Where its payment stands.
    pub payout: EpochPayout,
}

/// Where an epoch's payment to the host stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum EpochPayout {
    /// Committed, in its challenge window: claimable once final.
    Pending,
    /// Final and not yet paid.
    Claimable,
    /// Paid to the host.
    Claimed,
    /// Voided by a successful challenge: nothing to claim.
    Void,
}

/// What a claim from the page did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ClaimOutcome {
    /// The epochs claimed.
    #[ts(type = "number[]")]
    pub epochs: Vec<u64>,
    /// The claim transactions, `0x`.
    pub transactions: Vec<String>,
}
