//! The delay-based congestion signal: arrival groups → trendline → overuse detector.
//!
//! A queue building at the bottleneck shows up as packets arriving further apart than they were
//! sent. This module turns per-packet (departure, arrival) pairs into one of three verdicts,
//! following Google Congestion Control (draft-ietf-rmcat-gcc-02 and libwebrtc's
//! `TrendlineEstimator`):
//!
//! 1. **Groups.** Packets sent within [`GROUP_SPAN`] of the first in a group form one group;
//!    comparing whole groups rather than single packets ignores the spacing a pacer or an
//!    encoder burst imposes inside a frame.
//! 2. **Delay gradient.** For consecutive groups, `(arrival delta) − (send delta)` is how much
//!    longer the second group took than the first: positive while a queue grows.
//! 3. **Trendline.** The deltas are accumulated, smoothed, and a least-squares line is fitted
//!    over the last [`TRENDLINE_WINDOW`] points; its slope is the trend of the queueing delay.
//! 4. **Detector.** The scaled trend is compared with an adaptive threshold: above it for long
//!    enough is *overuse*, below its negative is *underuse*, otherwise *normal*. The threshold
//!    follows the trend's own magnitude, slowly upwards and faster downwards, so that noise on a
//!    jittery path does not read as congestion, and so that a competing loss-based flow is not
//!    starved (the paper's argument for adapting it).
//!
//! Clocks: departures are sender [`Instant`]s, arrivals are [`Duration`]s on the receiver's clock
//! since whatever epoch the feedback format uses. Only differences within each clock are used.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Packets that left within this span of the first packet of a group belong to that group
/// (libwebrtc's `kTimestampGroupLengthUs`).
const GROUP_SPAN: Duration = Duration::from_millis(5);
/// Points in the trendline's least-squares fit (libwebrtc's default window of 20).
const TRENDLINE_WINDOW: usize = 20;
/// Exponential smoothing of the accumulated delay before fitting.
const SMOOTHING: f64 = 0.9;
/// Gain applied to the slope before comparing it with the threshold.
const THRESHOLD_GAIN: f64 = 4.0;
/// The slope is also scaled by the number of deltas seen, up to this many, so the detector is
/// cautious while it knows little.
const MAX_DELTAS_SCALE: f64 = 60.0;
/// Starting threshold, in the scaled-trend units the detector compares (milliseconds).
const INITIAL_THRESHOLD: f64 = 12.5;
/// The threshold never leaves this range.
const THRESHOLD_MIN: f64 = 6.0;
const THRESHOLD_MAX: f64 = 600.0;
/// Per-millisecond adaptation rates: up when the trend exceeds the threshold, down otherwise.
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// A trend this far past the threshold is an outlier (a route change, a clock step) and does
/// not move it.
const MAX_ADAPT_OFFSET: f64 = 15.0;
/// Longest gap the threshold adaptation integrates over.
const MAX_ADAPT_STEP_MS: f64 = 100.0;
/// The trend must exceed the threshold for this long (and twice in a row) before it is overuse.
const OVERUSE_TIME_MS: f64 = 10.0;

/// What the delay detector concludes about the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandwidthUsage {
    /// Delay is steady: the sender may probe upwards.
    #[default]
    Normal,
    /// Delay is rising: a queue is building and the sender must back off.
    Overusing,
    /// Delay is falling: a queue is draining and the sender should hold until it has.
    Underusing,
}

/// Send and arrival extent of one group of packets.
#[derive(Debug, Clone, Copy)]
struct Group {
    first_departure: Instant,
    last_departure: Instant,
    last_arrival: Duration,
}

/// Arrival grouping, trendline filter and overuse detector in one.
#[derive(Debug, Clone)]
pub(crate) struct DelayDetector {
    current: Option<Group>,
    previous: Option<Group>,
    first_arrival_ms: Option<f64>,
    deltas: u32,
    accumulated_ms: f64,
    smoothed_ms: f64,
    /// (arrival time since the first arrival, smoothed accumulated delay), both in ms.
    history: VecDeque<(f64, f64)>,
    trend: f64,
    modified_trend: f64,
    threshold: f64,
    last_threshold_update_ms: Option<f64>,
    time_over_using_ms: Option<f64>,
    overuse_count: u32,
    usage: BandwidthUsage,
}

impl Default for DelayDetector {
    fn default() -> Self {
        Self {
            current: None,
            previous: None,
            first_arrival_ms: None,
            deltas: 0,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            history: VecDeque::with_capacity(TRENDLINE_WINDOW + 1),
            trend: 0.0,
            modified_trend: 0.0,
            threshold: INITIAL_THRESHOLD,
            last_threshold_update_ms: None,
            time_over_using_ms: None,
            overuse_count: 0,
            usage: BandwidthUsage::Normal,
        }
    }
}

impl DelayDetector {
    /// Feeds one received packet, in send order. Returns the verdict when the packet closed a
    /// group and so produced a new delay gradient, `None` otherwise.
    pub(crate) fn on_packet(
        &mut self,
        departure: Instant,
        arrival: Duration,
    ) -> Option<BandwidthUsage> {
        let Some(group) = self.current.as_mut() else {
            self.current = Some(Group::starting(departure, arrival));
            return None;
        };
        if departure < group.first_departure {
            // Sent before the current group began: late feedback for an old packet.
            return None;
        }
        if departure - group.first_departure <= GROUP_SPAN {
            group.last_departure = group.last_departure.max(departure);
            group.last_arrival = group.last_arrival.max(arrival);
            return None;
        }

        let completed = self.current.replace(Group::starting(departure, arrival))?;
        let earlier = self.previous.replace(completed)?;
        let send_delta_ms = ms(completed.last_departure - earlier.last_departure);
        let arrival_delta_ms = ms(completed.last_arrival) - ms(earlier.last_arrival);
        Some(self.update(
            arrival_delta_ms - send_delta_ms,
            send_delta_ms,
            ms(completed.last_arrival),
        ))
    }

    /// The latest verdict.
    pub(crate) fn usage(&self) -> BandwidthUsage {
        self.usage
    }

    /// The scaled trend the detector last compared, in ms.
    pub(crate) fn modified_trend(&self) -> f64 {
        self.modified_trend
    }

    /// The adaptive threshold, in the same units as [`modified_trend`](Self::modified_trend).
    pub(crate) fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Trendline update with one delay gradient, then detection.
    fn update(&mut self, delta_ms: f64, send_delta_ms: f64, arrival_ms: f64) -> BandwidthUsage {
        self.deltas = (self.deltas + 1).min(1000);
        let first_arrival_ms = *self.first_arrival_ms.get_or_insert(arrival_ms);
        self.accumulated_ms += delta_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        self.history.push_back((arrival_ms - first_arrival_ms, self.smoothed_ms));
        if self.history.len() > TRENDLINE_WINDOW {
            self.history.pop_front();
        }
        let trend = if self.history.len() == TRENDLINE_WINDOW {
            linear_fit_slope(&self.history).unwrap_or(self.trend)
        } else {
            self.trend
        };
        self.detect(trend, send_delta_ms, arrival_ms);
        self.usage
    }

    fn detect(&mut self, trend: f64, send_delta_ms: f64, now_ms: f64) {
        if self.deltas < 2 {
            self.usage = BandwidthUsage::Normal;
            return;
        }
        let modified = f64::from(self.deltas).min(MAX_DELTAS_SCALE) * trend * THRESHOLD_GAIN;
        self.modified_trend = modified;
        if modified > self.threshold {
            let over = match self.time_over_using_ms {
                None => send_delta_ms / 2.0,
                Some(time) => time + send_delta_ms,
            };
            self.time_over_using_ms = Some(over);
            self.overuse_count += 1;
            if over > OVERUSE_TIME_MS && self.overuse_count > 1 && trend >= self.trend {
                self.time_over_using_ms = Some(0.0);
                self.overuse_count = 0;
                self.usage = BandwidthUsage::Overusing;
            }
        } else if modified < -self.threshold {
            self.time_over_using_ms = None;
            self.overuse_count = 0;
            self.usage = BandwidthUsage::Underusing;
        } else {
            self.time_over_using_ms = None;
            self.overuse_count = 0;
            self.usage = BandwidthUsage::Normal;
        }
        self.trend = trend;
        self.adapt_threshold(modified, now_ms);
    }

    fn adapt_threshold(&mut self, modified: f64, now_ms: f64) {
        let last = *self.last_threshold_update_ms.get_or_insert(now_ms);
        self.last_threshold_update_ms = Some(now_ms);
        if modified.abs() > self.threshold + MAX_ADAPT_OFFSET {
            return;
        }
        let k = if modified.abs() < self.threshold { K_DOWN } else { K_UP };
        let step_ms = (now_ms - last).clamp(0.0, MAX_ADAPT_STEP_MS);
        self.threshold += k * (modified.abs() - self.threshold) * step_ms;
        self.threshold = self.threshold.clamp(THRESHOLD_MIN, THRESHOLD_MAX);
    }
}

impl Group {
    fn starting(departure: Instant, arrival: Duration) -> Self {
        Self { first_departure: departure, last_departure: departure, last_arrival: arrival }
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Least-squares slope of `y` over `x`, or `None` when every `x` is the same.
fn linear_fit_slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sum_x, sum_y) = points.iter().fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mean_x, mean_y) = (sum_x / n, sum_y / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mean_x) * (y - mean_y), den + (x - mean_x) * (x - mean_x))
    });
    (den != 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Feeds a packet every `spacing` for `count` packets, each arriving `extra` later per packet
    /// than the one before (a queue growing by `extra` per packet), and returns every verdict.
    fn feed(
        detector: &mut DelayDetector,
        t0: Instant,
        from: u32,
        count: u32,
        spacing: Duration,
        extra: Duration,
    ) -> Vec<BandwidthUsage> {
        (from..from + count)
            .filter_map(|i| {
                let departure = t0 + spacing * i;
                let growth = extra * (i - from);
                let arrival = Duration::from_secs(100) + spacing * i + 30 * MS + growth;
                detector.on_packet(departure, arrival)
            })
            .collect()
    }

    #[test]
    fn steady_delay_is_normal() {
        let mut detector = DelayDetector::default();
        let verdicts =
            feed(&mut detector, crate::rate::test_epoch(), 0, 500, 2 * MS, Duration::ZERO);
        assert!(!verdicts.is_empty());
        assert!(verdicts.iter().all(|usage| *usage == BandwidthUsage::Normal));
    }

    #[test]
    fn a_growing_queue_is_overuse_and_a_draining_one_underuse() {
        let t0 = crate::rate::test_epoch();
        let mut detector = DelayDetector::default();
        feed(&mut detector, t0, 0, 200, 2 * MS, Duration::ZERO);
        // Each packet 0.5 ms later than the last: the queue grows by 250 ms/s.
        let growing = feed(&mut detector, t0, 200, 100, 2 * MS, MS / 2);
        assert_eq!(growing.last(), Some(&BandwidthUsage::Overusing), "{growing:?}");
        assert_eq!(detector.usage(), BandwidthUsage::Overusing);
        // Now a queue draining: each packet arrives 0.5 ms sooner, relative to the plateau.
        let t1 = t0 + 2 * MS * 300;
        let mut draining = Vec::new();
        for i in 0..100u32 {
            let departure = t1 + 2 * MS * i;
            let arrival =
                Duration::from_secs(100) + 2 * MS * (300 + i) + 30 * MS + 50 * MS - (MS / 2) * i;
            draining.extend(detector.on_packet(departure, arrival));
        }
        assert_eq!(draining.last(), Some(&BandwidthUsage::Underusing), "{draining:?}");
    }

    #[test]
    fn packets_within_the_group_span_form_one_group() {
        let t0 = crate::rate::test_epoch();
        let mut detector = DelayDetector::default();
        let arrival = Duration::from_secs(1);
        assert_eq!(detector.on_packet(t0, arrival), None);
        assert_eq!(detector.on_packet(t0 + 5 * MS, arrival + 5 * MS), None);
        // Opens the second group: the first is complete but has nothing to compare with.
        assert_eq!(detector.on_packet(t0 + 6 * MS, arrival + 6 * MS), None);
        // Opens the third group: now groups one and two give a delta.
        assert!(detector.on_packet(t0 + 12 * MS, arrival + 12 * MS).is_some());
    }

    #[test]
    fn slope_of_a_line() {
        let points: VecDeque<_> =
            (0..10).map(|x| (f64::from(x), 3.0 * f64::from(x) + 1.0)).collect();
        assert!((linear_fit_slope(&points).unwrap() - 3.0).abs() < 1e-9);
        let flat: VecDeque<_> = (0..3).map(|_| (1.0, 2.0)).collect();
        assert_eq!(linear_fit_slope(&flat), None);
    }
}
