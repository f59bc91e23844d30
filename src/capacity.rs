//! `gridplay checker --capacity`: checks the capacity of the hosts a broker
//! has on probation ([`gridplay_protocol::capacity`]). For each profile a
//! host offers, it plays trials of sessions at once at the largest stream the
//! host offers, searching (by halves) for the most that all meet the service
//! level, and reports what it found, signed, to the broker, which then places
//! players on that many slots and no more.

use std::time::Duration;

use anyhow::Context;
use gridplay_protocol::capacity::{
    CapacityMessage, CapacityTrial, CapacityVerdict, MAX_TRIAL_SESSIONS, ProfileCapacity,
    SignedCapacity,
};
use gridplay_protocol::probe::Address;
use gridplay_protocol::{AllocateResponse, SlotOffer};
use gridplay_session_broker::unix_ms;
use k256::ecdsa::SigningKey;

use crate::play::{PlayArgs, play_allocated};

/// How long the checker waits before asking again when no check is due.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// What a trial's sessions must each deliver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceLevel {
    /// Seconds each trial plays.
    pub seconds: u64,
    /// Lowest frame rate, as a share of the stream's.
    pub min_fps_share: f64,
    /// Highest click-to-photon p99, ms.
    pub max_click_to_photon_ms: f64,
}

impl Default for ServiceLevel {
    /// Five seconds a trial, 90 % of the frame rate, click-to-photon p99 within 150 ms
    /// (the checker's defaults but for the length).
    fn default() -> Self {
        Self { seconds: 5, min_fps_share: 0.9, max_click_to_photon_ms: 150.0 }
    }
}

/// Checks every due host of the broker at `broker` with `key`, as they come due;
/// with `once`, returns when none is due.
pub async fn serve(
    broker: &str,
    key: &SigningKey,
    level: ServiceLevel,
    once: bool,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = broker.trim_end_matches('/');
    loop {
        let due: Vec<CapacityVerdict> = http
            .get(format!("{base}/v1/capacity/due"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("asking the broker for due capacity checks")?
            .json()
            .await?;
        if due.is_empty() {
            if once {
                return Ok(());
            }
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        }
        for verdict in due {
            match check(&http, base, key, level, &verdict).await {
                Ok(found) => {
                    let verdict = report(&http, base, key, &verdict, found).await?;
                    tracing::info!(host = %verdict.host_id, state = ?verdict.state, reason = %verdict.reason, "capacity checked");
                }
                Err(e) => tracing::warn!(host = %verdict.host_id, "capacity check failed: {e:#}"),
            }
        }
    }
}

/// Every profile's finding on the host of `verdict`.
async fn check(
    http: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    level: ServiceLevel,
    verdict: &CapacityVerdict,
) -> anyhow::Result<Vec<ProfileCapacity>> {
    let mut found = Vec::new();
    for offer in &verdict.claimed {
        // The most that passed is at least `passed` and at most `most`.
        let (mut passed, mut most) = (0, offer.slots.min(MAX_TRIAL_SESSIONS));
        let mut trials = Vec::new();
        while passed < most {
            let count = (passed + most).div_ceil(2);
            let trial = trial(http, base, key, level, verdict, offer, count).await?;
            if trial.met {
                passed = count;
            } else {
                most = count - 1;
            }
            trials.push(trial);
        }
        found.push(ProfileCapacity {
            profile: offer.profile,
            claimed: offer.slots,
            admitted: passed,
            stream: format!("{}x{}@{}", offer.max_width, offer.max_height, offer.max_fps),
            trials,
        });
    }
    Ok(found)
}

/// Plays `count` sessions at once on the host and says how the worst did.
async fn trial(
    http: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    level: ServiceLevel,
    verdict: &CapacityVerdict,
    offer: &SlotOffer,
    count: u32,
) -> anyhow::Result<CapacityTrial> {
    let ask = CapacityMessage::Sessions {
        checker: Address::of(key.verifying_key()).to_string(),
        host_id: verdict.host_id.clone(),
        offers_key: verdict.offers_key.clone(),
        profile: offer.profile,
        count,
        at_ms: unix_ms(),
    };
    let sessions: Vec<AllocateResponse> =
        post_signed(http, &format!("{base}/v1/capacity/sessions"), &ask, key).await?;
    let stream = (offer.max_width, offer.max_height, offer.max_fps);
    let mut plays = tokio::task::JoinSet::new();
    for session in sessions {
        // Allocated already: the app is the broker's choice.
        let args = PlayArgs::checker(base, "", stream, level.seconds);
        plays.spawn(async move { play_allocated(&args, session, None).await });
    }
    let (mut min_fps, mut max_p99, mut met) = (f64::INFINITY, None::<f64>, true);
    while let Some(played) = plays.join_next().await {
        let summary = match played? {
            Ok(played) => played.summary,
            Err(e) => {
                tracing::warn!(host = %verdict.host_id, "a trial session failed: {e:#}");
                met = false;
                continue;
            }
        };
        min_fps = min_fps.min(summary.mean_fps);
        if summary.click_to_photon_samples > 0 {
            max_p99 = Some(max_p99.unwrap_or(0.0).max(summary.click_to_photon_ms_p99));
        }
        met &= summary.mean_fps >= f64::from(offer.max_fps) * level.min_fps_share
            && summary.click_to_photon_samples > 0
            && summary.click_to_photon_ms_p99 <= level.max_click_to_photon_ms;
    }
    let min_fps = if min_fps.is_finite() { min_fps } else { 0.0 };
    tracing::info!(host = %verdict.host_id, count, min_fps, met, "capacity trial");
    Ok(CapacityTrial {
        sessions: count,
        min_fps_centi: (min_fps * 100.0).round() as u32,
        max_click_to_photon_p99_ms: max_p99.map(|ms| ms.round() as u32),
        met,
    })
}

/// Sends the finding, signed; returns the broker's verdict.
async fn report(
    http: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    verdict: &CapacityVerdict,
    profiles: Vec<ProfileCapacity>,
) -> anyhow::Result<CapacityVerdict> {
    let message = CapacityMessage::Report {
        checker: Address::of(key.verifying_key()).to_string(),
        host_id: verdict.host_id.clone(),
        offers_key: verdict.offers_key.clone(),
        profiles,
        at_ms: unix_ms(),
    };
    post_signed(http, &format!("{base}/v1/capacity"), &message, key).await
}

/// Posts `message`, signed with `key`, to `url`; the broker's answer.
async fn post_signed<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    message: &CapacityMessage,
    key: &SigningKey,
) -> anyhow::Result<T> {
    let response = http.post(url).json(&SignedCapacity::sign(message, key)).send().await?;
    let status = response.status();
    anyhow::ensure!(
        status.is_success(),
        "the broker refused: {status} {}",
        response.text().await.unwrap_or_default()
    );
    Ok(response.json().await?)
}
