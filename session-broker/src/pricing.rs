//! Demand pricing: a host sets its base price per block; the broker multiplies
//! it by a surge factor from how busy the host's region has been.
//!
//! The factor is a pure function of the region's utilisation history and the
//! time ([`RegionHistory`]), so every replica that saw the same samples quotes
//! the same price, and tests run hours of demand in microseconds:
//!
//! - Each sample is judged on the mean utilisation over the [`SurgeRule::window_ms`]
//!   before it, so a burst shorter than the window moves the price little.
//! - That mean maps to a level: ×1 up to `threshold`, rising linearly to the cap at
//!   `full_at`, in steps of `step_milli` (so the price moves in a few clear steps).
//! - The level rises as soon as the mean asks for more, and falls only once the mean
//!   is `margin` below what the current level needs (hysteresis: no flapping at a step).
//! - A region no sample came from for two windows is back at ×1.
//!
//! The player's voucher fixes the price a session is allocated at; later surges
//! do not change it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use gridplay_protocol::HostRegistration;

use crate::store::Load;

/// Factor ×1, in thousandths.
pub const NO_SURGE: u32 = 1000;

/// How utilisation turns into a surge factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurgeRule {
    /// How long a span of samples is averaged, ms.
    pub window_ms: u64,
    /// Mean utilisation (0..=1) at or below which there is no surge.
    pub threshold: f64,
    /// Mean utilisation at which the cap is reached.
    pub full_at: f64,
    /// The highest factor, thousandths (3000: ×3).
    pub cap_milli: u32,
    /// The factor moves in steps of this many thousandths.
    pub step_milli: u32,
    /// How far below a level's need the mean must fall before the level drops.
    pub margin: f64,
}

impl Default for SurgeRule {
    /// Five-minute means; from ×1 at 60 % busy to ×2 at 100 %, in steps of ×0.25, a
    /// 5-point margin.
    fn default() -> Self {
        Self {
            window_ms: 5 * 60_000,
            threshold: 0.6,
            full_at: 1.0,
            cap_milli: 2000,
            step_milli: 250,
            margin: 0.05,
        }
    }
}

impl SurgeRule {
    /// The level a mean utilisation asks for, thousandths.
    fn level_for(&self, mean: f64) -> u32 {
        let span = (self.full_at - self.threshold).max(f64::EPSILON);
        let share = ((mean - self.threshold) / span).clamp(0.0, 1.0);
        let raw = share * f64::from(self.cap_milli.saturating_sub(NO_SURGE));
        let step = self.step_milli.max(1);
        NO_SURGE + (raw as u32 / step) * step
    }
}

/// One reading of a region's utilisation: slots in use ÷ slots offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When it was read, Unix ms.
    pub at_ms: u64,
    /// Slots in use ÷ slots offered, 0..=1.
    pub utilisation: f64,
}

/// `base` wei at factor `surge` (thousandths), rounded down; never below `base`.
pub fn surged(base: u64, surge: u32) -> u64 {
    let price = u128::from(base) * u128::from(surge.max(NO_SURGE)) / u128::from(NO_SURGE);
    u64::try_from(price).unwrap_or(u64::MAX)
}

/// A region's surge: its utilisation samples over the last window, and the level
/// they have led to. The factor is a function of the samples pushed, in order, and of
/// the time it is asked at.
#[derive(Debug)]
pub struct RegionHistory {
    /// The last window's samples, oldest first.
    samples: VecDeque<Sample>,
    /// The factor the samples so far have led to, thousandths.
    level: u32,
}

impl Default for RegionHistory {
    fn default() -> Self {
        Self { samples: VecDeque::new(), level: NO_SURGE }
    }
}

impl RegionHistory {
    /// Counts a sample (taken after every one before it) into the level.
    pub fn push(&mut self, rule: &SurgeRule, sample: Sample) {
        self.samples.push_back(sample);
        let from = sample.at_ms.saturating_sub(rule.window_ms);
        while self.samples.front().is_some_and(|s| s.at_ms <= from) {
            self.samples.pop_front();
        }
        let readings = self.samples.iter().map(|s| s.utilisation.clamp(0.0, 1.0));
        let mean = readings.sum::<f64>() / self.samples.len() as f64;
        let wanted = rule.level_for(mean);
        self.level = match wanted > self.level {
            true => wanted,
            false => self.level.min(rule.level_for(mean + rule.margin)),
        };
    }

    /// The surge factor at `now_ms`, thousandths: ×1 once no sample came for two windows.
    pub fn surge(&self, rule: &SurgeRule, now_ms: u64) -> u32 {
        match self.samples.back() {
            Some(last) if now_ms.saturating_sub(last.at_ms) <= 2 * rule.window_ms => self.level,
            _ => NO_SURGE,
        }
    }
}

/// How often a broker samples every region's utilisation, ms (on the wall clock's
/// multiples, so that replicas sample together).
pub const SAMPLE_MS: u64 = 10_000;

/// Every region's surge as this replica samples it; fixed prices without a rule.
#[derive(Debug, Default)]
pub struct Prices {
    rule: Option<SurgeRule>,
    regions: Mutex<HashMap<String, RegionHistory>>,
}

impl Prices {
    /// Prices under `rule`; `None` keeps every host at its base price.
    pub fn new(rule: Option<SurgeRule>) -> Self {
        Self { rule, regions: Mutex::default() }
    }

    /// Counts one reading of every region's load, taken at `now_ms`.
    pub fn sample(&self, loads: &BTreeMap<String, Load>, now_ms: u64) {
        let Some(rule) = &self.rule else { return };
        let mut regions = self.regions.lock().unwrap_or_else(|p| p.into_inner());
        for (region, load) in loads {
            let sample = Sample { at_ms: now_ms, utilisation: load.utilisation() };
            regions.entry(region.clone()).or_default().push(rule, sample);
        }
        // A region no host is left in is forgotten once it is back at its base price.
        let fresh = |s: &Sample| now_ms.saturating_sub(s.at_ms) <= 2 * rule.window_ms;
        regions.retain(|_, history| history.samples.back().is_some_and(fresh));
    }

    /// Region `region`'s surge factor at `now_ms`, thousandths.
    pub fn surge(&self, region: &str, now_ms: u64) -> u32 {
        let Some(rule) = &self.rule else { return NO_SURGE };
        let regions = self.regions.lock().unwrap_or_else(|p| p.into_inner());
        regions.get(region).map_or(NO_SURGE, |history| history.surge(rule, now_ms))
    }

    /// What a block on `host` costs at `now_ms`: its base price at its region's surge.
    pub fn price(&self, host: &HostRegistration, now_ms: u64) -> u64 {
        surged(host.price_per_block, self.surge(&host.region, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;
    /// The broker samples every 10 s.
    const EVERY_MS: u64 = 10_000;

    /// `history` with `minutes` of samples at `utilisation` appended after its last.
    fn run(rule: &SurgeRule, history: &mut RegionHistory, minutes: u64, utilisation: f64) -> u64 {
        let start = history.samples.back().map_or(T0, |s| s.at_ms + EVERY_MS);
        let mut at = start;
        while at < start + minutes * 60_000 {
            history.push(rule, Sample { at_ms: at, utilisation });
            at += EVERY_MS;
        }
        at - EVERY_MS
    }

    #[test]
    fn a_quiet_region_pays_the_base_price() {
        let rule = SurgeRule::default();
        let mut history = RegionHistory::default();
        let now = run(&rule, &mut history, 30, 0.5);
        assert_eq!(history.surge(&rule, now), NO_SURGE);
        assert_eq!(surged(1000, history.surge(&rule, now)), 1000);
        assert_eq!(RegionHistory::default().surge(&rule, now), NO_SURGE, "no samples, no surge");
    }

    #[test]
    fn a_full_region_climbs_to_the_cap_and_no_further() {
        let rule = SurgeRule::default();
        let mut history = RegionHistory::default();
        let now = run(&rule, &mut history, 10, 1.0);
        assert_eq!(history.surge(&rule, now), 2000);
        let now = run(&rule, &mut history, 10, 1.5);
        assert_eq!(history.surge(&rule, now), 2000, "readings above 1 count as full");
        assert_eq!(surged(10_000, 2000), 20_000);
    }

    #[test]
    fn the_factor_moves_in_steps_with_the_windows_mean() {
        let rule = SurgeRule::default();
        let mut history = RegionHistory::default();
        // 80 % busy: halfway from the threshold to full, ×1.5.
        let now = run(&rule, &mut history, 10, 0.8);
        assert_eq!(history.surge(&rule, now), 1500);
        // 86 % asks for ×1.65, which steps down to ×1.5.
        let now = run(&rule, &mut history, 10, 0.86);
        assert_eq!(history.surge(&rule, now), 1500);
    }

    #[test]
    fn a_burst_shorter_than_the_window_moves_the_price_little() {
        let rule = SurgeRule::default();
        let mut history = RegionHistory::default();
        run(&rule, &mut history, 10, 0.5);
        // One minute at 100 % within five-minute means: (4 × 0.5 + 1 × 1.0) / 5 = 0.6.
        let now = run(&rule, &mut history, 1, 1.0);
        assert_eq!(history.surge(&rule, now), NO_SURGE);
    }

    #[test]
    fn any_readings_keep_the_factor_on_its_steps_between_the_base_and_the_cap() {
        let rule = SurgeRule::default();
        let mut history = RegionHistory::default();
        let readings = [0.5, 0.9, 0.95, 0.7, 0.85, 0.4, 1.0, 0.65, -3.0, f64::NAN, 7.0];
        for (i, &utilisation) in readings.iter().cycle().take(300).enumerate() {
            let sample = Sample { at_ms: T0 + i as u64 * EVERY_MS, utilisation };
            history.push(&rule, sample);
            let surge = history.surge(&rule, sample.at_ms);
            assert!((NO_SURGE..=rule.cap_milli).contains(&surge), "{surge} after {utilisation}");
            assert_eq!((surge - NO_SURGE) % rule.step_milli, 0, "{surge} is not on a step");
        }
    }

    #[test]
    fn the_price_falls_only_past_the_margin() {
        let rule = SurgeRule::default();
        let mut history = RegionHistory::default();
        run(&rule, &mut history, 10, 0.8);
        // 78 %: ×1.5 needs 80 %, but 78 % is within the 5-point margin: the level holds.
        let now = run(&rule, &mut history, 10, 0.78);
        assert_eq!(history.surge(&rule, now), 1500);
        // 72 %: past the margin, down a step to ×1.25 (72 % + 5 = 77 % asks for ×1.25).
        let now = run(&rule, &mut history, 10, 0.72);
        assert_eq!(history.surge(&rule, now), 1250);
        // Quiet again: back to the base price.
        let now = run(&rule, &mut history, 15, 0.2);
        assert_eq!(history.surge(&rule, now), NO_SURGE);
    }

    #[test]
    fn a_region_silent_for_two_windows_is_back_at_the_base_price() {
        let rule = SurgeRule::default();
        let mut history = RegionHistory::default();
        let busy_until = run(&rule, &mut history, 10, 1.0);
        // Asked long after, with no new samples: nothing is known of the region any more.
        assert_eq!(history.surge(&rule, busy_until + 2 * rule.window_ms), 2000);
        assert_eq!(history.surge(&rule, busy_until + 2 * rule.window_ms + 1), NO_SURGE);
        assert_eq!(history.samples.len(), 30, "the last window's samples alone are kept");
    }

    #[test]
    fn surged_prices_never_overflow_nor_fall_below_the_base() {
        assert_eq!(surged(u64::MAX, 2000), u64::MAX);
        assert_eq!(surged(7, 0), 7);
        assert_eq!(surged(3, 1500), 4);
    }
}
