//! [`RateController`]: receiver feedback in, a target bitrate (and a quality suggestion) out.

use super::degrade::{DegradationPolicy, QualityChange, QualityLevel};
use super::delay::{BandwidthUsage, DelayDetector};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Multiplicative decrease on overuse, applied to the acknowledged rate (GCC's β).
pub const BETA: f64 = 0.85;
/// Multiplicative increase per second while the link capacity is unknown (GCC's 8 %/s).
pub const INCREASE_PER_SECOND: f64 = 1.08;
/// Growth per second until the first decrease: doubling finds a 5 Mbit/s link from 1 Mbit/s in
/// about 2.3 s, where 8 %/s would take 21 s.
pub const STARTUP_GROWTH_PER_SECOND: f64 = 2.0;
/// Loss fraction above which the loss-based rate is cut.
pub const LOSS_HIGH: f64 = 0.10;
/// Loss fraction below which the loss-based rate may grow.
pub const LOSS_LOW: f64 = 0.02;
/// Shortest span of feedback a loss fraction is computed over.
pub const LOSS_WINDOW: Duration = Duration::from_millis(250);
/// Fewest packets a loss fraction is computed over.
pub const LOSS_MIN_PACKETS: u32 = 20;
/// Receiver-report loss is ignored while per-packet feedback has arrived within this long:
/// both describe the same packets, and counting them twice would double the reaction.
pub const PACKET_FEEDBACK_PRECEDENCE: Duration = Duration::from_secs(1);
/// Window over which the acknowledged (received) rate is measured, on the receiver's clock.
const ACKED_WINDOW: Duration = Duration::from_millis(500);
/// The acknowledged rate is not trusted over less than this span.
const ACKED_MIN_SPAN: Duration = Duration::from_millis(250);
/// Bits in a typical full video packet, for the additive increase step.
const PACKET_BITS: f64 = 1200.0 * 8.0;
/// Slowest additive increase, in bits per second per second.
const MIN_ADDITIVE_BPS_PER_S: f64 = 4000.0;
/// Longest gap any rate change integrates over, so a pause in feedback is not a leap.
const MAX_STEP: Duration = Duration::from_secs(1);
/// Assumed round trip before any has been measured (libwebrtc's default).
const DEFAULT_RTT: Duration = Duration::from_millis(200);

/// Bounds and starting point of a [`RateController`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateConfig {
    /// The target never goes below this, in bits per second.
    pub min_bps: u64,
    /// The target never goes above this, in bits per second.
    pub max_bps: u64,
    /// The target before any feedback has arrived, in bits per second.
    pub start_bps: u64,
}

impl Default for RateConfig {
    /// 150 kbit/s to 20 Mbit/s, starting at 1 Mbit/s.
    fn default() -> Self {
        Self { min_bps: 150_000, max_bps: 20_000_000, start_bps: 1_000_000 }
    }
}

/// What the receiver said about one packet this endpoint sent — one entry of a TWCC or
/// RFC 8888 feedback report, joined with the sender's own record of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketFeedback {
    /// Monotonic (unwrapped) send-order number. A packet at or below the highest number already
    /// fed is ignored, so a packet reported twice (lost, then late) counts once.
    pub sequence: u64,
    /// When the packet left this endpoint: the pacer's release instant, not the instant the
    /// encoder produced it, or pacing delay would read as network delay.
    pub departure: Instant,
    /// When it arrived, on the receiver's clock (any epoch, but one epoch throughout);
    /// `None` if the receiver reported it lost.
    pub arrival: Option<Duration>,
    /// Size on the wire, in bytes.
    pub size: usize,
}

/// A snapshot of a [`RateController`]'s reasoning, for logs and overlays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStats {
    /// The current target, in bits per second.
    pub target_bps: u64,
    /// The delay-based (AIMD) half, in bits per second.
    pub delay_based_bps: u64,
    /// The loss-based half, in bits per second.
    pub loss_based_bps: u64,
    /// The rate the receiver is getting, if enough feedback has arrived to say.
    pub acked_bps: Option<u64>,
    /// The delay detector's latest verdict.
    pub usage: BandwidthUsage,
    /// The scaled delay trend the detector last compared with its threshold (ms).
    pub trend: f64,
    /// The detector's adaptive threshold (ms).
    pub threshold: f64,
    /// The loss fraction of the last completed loss window.
    pub loss_fraction: Option<f64>,
    /// Round trip: from receiver reports if any, otherwise from feedback timing (an
    /// overestimate by up to the receiver's feedback interval).
    pub rtt: Option<Duration>,
    /// Whether the controller is still in its startup ramp (no decrease yet).
    pub startup: bool,
}

/// What the AIMD half is doing between verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AimdState {
    /// Keep the rate: just backed off, or the queue is draining.
    Hold,
    /// Delay is steady: raise the rate.
    Increase,
}

/// A sans-I/O congestion controller after Google Congestion Control: delay-based AIMD and
/// loss-based bounds over receiver feedback, combined by `min` and clamped to the configured
/// range.
///
/// Feed it with [`on_packet_feedback`](Self::on_packet_feedback) (TWCC / RFC 8888) and/or
/// [`on_receiver_report`](Self::on_receiver_report) (RTCP RR), then read
/// [`target_bps`](Self::target_bps) and, if a [`DegradationPolicy`] was attached,
/// [`poll_quality_change`](Self::poll_quality_change). It has no timer of its own: it only moves
/// when feedback arrives.
///
/// Whichever estimate is more pessimistic wins, because a deep buffer queues without losing and
/// a shallow or lossy one loses without queueing:
///
/// ```text
/// PacketFeedback ─┬─▶ DelayDetector ─▶ AIMD (delay-based) ──┐
///                 ├─▶ AckedRate ───────▲                     ├─▶ min ─▶ clamp ─▶ target_bps
///                 └─▶ loss window ─▶ loss-based ─────────────┘            │
/// receiver report ───▶ (loss, RTT) ──────▲                     DegradationPolicy ─▶ quality
/// ```
///
/// **Delay-based (AIMD).** On *overuse* the rate drops to [`BETA`] × the rate the receiver
/// actually got (the acknowledged rate), at most once per RTT. On *normal* it rises:
/// multiplicatively by [`INCREASE_PER_SECOND`] while the link capacity is unknown, additively
/// (about one packet per response time) once an overuse has located it, and — until the first
/// decrease of any kind — by [`STARTUP_GROWTH_PER_SECOND`], a simple stand-in for libwebrtc's
/// initial probing. On *underuse* it holds while the queue drains. It never rises above
/// 1.5 × the acknowledged rate, so an application-limited sender does not talk itself into a
/// rate it has never sent.
///
/// **Loss-based.** A ceiling, judged over windows of at least [`LOSS_WINDOW`] and
/// [`LOSS_MIN_PACKETS`]: above [`LOSS_HIGH`] loss it drops to the target less half the loss
/// fraction; between [`LOSS_LOW`] and [`LOSS_HIGH`] it holds at the target, so moderate loss
/// stops any increase; below [`LOSS_LOW`] it rises by [`INCREASE_PER_SECOND`] (by
/// [`STARTUP_GROWTH_PER_SECOND`] in startup). It starts at `max_bps`: no loss seen, no limit.
/// After a cut, losses of packets sent before it are not counted again: when an overflowing
/// queue drops a burst, the reports of that burst keep arriving for a round trip and would
/// otherwise cut the rate once per window for the same congestion.
///
/// No clock, no I/O, no randomness: every instant is a parameter, so one feedback sequence gives
/// one bitrate trajectory.
#[derive(Debug, Clone)]
pub struct RateController {
    config: RateConfig,
    detector: DelayDetector,
    acked: AckedRate,
    capacity: LinkCapacity,
    state: AimdState,
    startup: bool,
    delay_bps: f64,
    loss_bps: f64,
    last_increase: Option<Instant>,
    last_decrease: Option<Instant>,
    loss: LossWindow,
    last_loss_fraction: Option<f64>,
    last_loss_update: Option<Instant>,
    last_loss_cut: Option<Instant>,
    last_sequence: Option<u64>,
    last_packet_feedback: Option<Instant>,
    report_rtt: Option<Duration>,
    feedback_rtt: Option<Duration>,
    degradation: Option<DegradationPolicy>,
    pending_change: Option<QualityChange>,
}

impl RateController {
    /// A controller starting at `config.start_bps`. `min_bps` and `max_bps` are put in order if
    /// swapped, and `start_bps` is clamped between them.
    pub fn new(config: RateConfig) -> Self {
        let (min_bps, max_bps) = if config.min_bps <= config.max_bps {
            (config.min_bps, config.max_bps)
        } else {
            (config.max_bps, config.min_bps)
        };
        let config =
            RateConfig { min_bps, max_bps, start_bps: config.start_bps.clamp(min_bps, max_bps) };
        Self {
            config,
            detector: DelayDetector::default(),
            acked: AckedRate::default(),
            capacity: LinkCapacity::default(),
            state: AimdState::Hold,
            startup: true,
            delay_bps: config.start_bps as f64,
            loss_bps: config.max_bps as f64,
            last_increase: None,
            last_decrease: None,
            loss: LossWindow::default(),
            last_loss_fraction: None,
            last_loss_update: None,
            last_loss_cut: None,
            last_sequence: None,
            last_packet_feedback: None,
            report_rtt: None,
            feedback_rtt: None,
            degradation: None,
            pending_change: None,
        }
    }

    /// Attaches a quality ladder: from then on the controller also suggests when to lower or
    /// raise resolution or frame rate.
    #[must_use]
    pub fn with_degradation(mut self, policy: DegradationPolicy) -> Self {
        self.degradation = Some(policy);
        self
    }

    /// Takes in per-packet feedback that arrived at `now`, in send order.
    ///
    /// Packets already fed (by [`PacketFeedback::sequence`]) are skipped. An empty slice is
    /// no news.
    pub fn on_packet_feedback(&mut self, now: Instant, feedback: &[PacketFeedback]) {
        let mut fresh = 0u32;
        // Loss is counted only over packets sent after the last loss cut: the ones sent before
        // it were lost to the congestion that cut already answered.
        let mut counted = 0u32;
        let mut lost = 0u32;
        let mut newest_departure: Option<Instant> = None;
        let mut verdict: Option<BandwidthUsage> = None;
        for packet in feedback {
            if self.last_sequence.is_some_and(|last| packet.sequence <= last) {
                continue;
            }
            self.last_sequence = Some(packet.sequence);
            fresh += 1;
            newest_departure = newest_departure.max(Some(packet.departure));
            let after_cut = self.last_loss_cut.is_none_or(|cut| packet.departure > cut);
            counted += u32::from(after_cut);
            let Some(arrival) = packet.arrival else {
                lost += u32::from(after_cut);
                continue;
            };
            self.acked.on_arrival(arrival, packet.size);
            if let Some(usage) = self.detector.on_packet(packet.departure, arrival) {
                // An overuse anywhere in the report counts, even if the detector has already
                // moved on by its end: the queue was growing.
                if verdict != Some(BandwidthUsage::Overusing) {
                    verdict = Some(usage);
                }
            }
        }
        if fresh == 0 {
            return;
        }
        self.last_packet_feedback = Some(now);
        if let Some(departure) = newest_departure {
            let sample = now.saturating_duration_since(departure);
            self.feedback_rtt = Some(match self.feedback_rtt {
                None => sample,
                Some(rtt) => (rtt * 7 + sample) / 8,
            });
        }

        if let Some(usage) = verdict {
            self.update_delay_based(now, usage);
        }
        self.loss.add(now, lost, counted);
        if let Some(fraction) = self.loss.take_if_ready(now) {
            self.update_loss_based(now, fraction);
        }
        self.after_update(now);
    }

    /// Takes in an RTCP receiver report that arrived at `now`: its loss fraction in `0.0..=1.0`
    /// (the RTCP field counts 256ths, so pass `f64::from(fraction_lost) / 256.0`) and the round
    /// trip computed from it, if any.
    ///
    /// The round trip is always used. The loss fraction is used only when no per-packet feedback
    /// has arrived within [`PACKET_FEEDBACK_PRECEDENCE`], so the same losses are not counted
    /// twice.
    pub fn on_receiver_report(&mut self, now: Instant, fraction_lost: f64, rtt: Option<Duration>) {
        if rtt.is_some() {
            self.report_rtt = rtt;
        }
        let recent_packet_feedback = self
            .last_packet_feedback
            .is_some_and(|at| now.saturating_duration_since(at) < PACKET_FEEDBACK_PRECEDENCE);
        if !recent_packet_feedback && fraction_lost.is_finite() {
            self.update_loss_based(now, fraction_lost.clamp(0.0, 1.0));
        }
        self.after_update(now);
    }

    /// The bitrate the encoder (and pacer) should aim for, in bits per second.
    pub fn target_bps(&self) -> u64 {
        self.delay_bps
            .min(self.loss_bps)
            .clamp(self.config.min_bps as f64, self.config.max_bps as f64) as u64
    }

    /// The quality level the attached [`DegradationPolicy`] currently suggests, or `None`
    /// without one.
    pub fn suggested_quality(&self) -> Option<&QualityLevel> {
        self.degradation.as_ref().and_then(DegradationPolicy::current)
    }

    /// The latest change of suggested quality not yet taken, if any. Call after feeding
    /// feedback; when it returns a change, reconfigure the encoder to
    /// [`QualityChange::quality`].
    #[must_use]
    pub fn poll_quality_change(&mut self) -> Option<QualityChange> {
        self.pending_change.take()
    }

    /// The bounds in force.
    pub fn config(&self) -> RateConfig {
        self.config
    }

    /// The controller's current reasoning.
    pub fn stats(&self) -> RateStats {
        RateStats {
            target_bps: self.target_bps(),
            delay_based_bps: self.delay_bps as u64,
            loss_based_bps: self.loss_bps as u64,
            acked_bps: self.acked.rate_bps().map(|rate| rate as u64),
            usage: self.detector.usage(),
            trend: self.detector.modified_trend(),
            threshold: self.detector.threshold(),
            loss_fraction: self.last_loss_fraction,
            rtt: self.rtt(),
            startup: self.startup,
        }
    }

    fn rtt(&self) -> Option<Duration> {
        self.report_rtt.or(self.feedback_rtt)
    }

    fn update_delay_based(&mut self, now: Instant, usage: BandwidthUsage) {
        let acked = self.acked.rate_bps();
        match usage {
            BandwidthUsage::Overusing => {
                if self.may_decrease(now, acked) {
                    if let Some(acked) = acked {
                        if acked < self.capacity.lower_bound_bps() {
                            // Far below where the link was: it has changed, start over.
                            self.capacity.reset();
                        }
                        self.capacity.update(acked);
                    }
                    let decreased = BETA * acked.unwrap_or(self.delay_bps);
                    self.delay_bps = self.delay_bps.min(decreased);
                    self.last_decrease = Some(now);
                    self.startup = false;
                }
                self.state = AimdState::Hold;
            }
            BandwidthUsage::Underusing => self.state = AimdState::Hold,
            BandwidthUsage::Normal => match self.state {
                AimdState::Hold => {
                    self.state = AimdState::Increase;
                    self.last_increase = Some(now);
                }
                AimdState::Increase => self.increase(now, acked),
            },
        }
        self.delay_bps = self.clamp(self.delay_bps);
    }

    /// A decrease at most once per round trip (10–200 ms), unless what arrives is already less
    /// than half the estimate.
    fn may_decrease(&self, now: Instant, acked: Option<f64>) -> bool {
        let interval = self
            .rtt()
            .unwrap_or(DEFAULT_RTT)
            .clamp(Duration::from_millis(10), Duration::from_millis(200));
        let waited =
            self.last_decrease.is_none_or(|at| now.saturating_duration_since(at) >= interval);
        waited || acked.is_some_and(|acked| acked < 0.5 * self.delay_bps)
    }

    fn increase(&mut self, now: Instant, acked: Option<f64>) {
        let dt = self.last_increase.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        let dt = dt.min(MAX_STEP).as_secs_f64();
        self.last_increase = Some(now);
        if acked.is_some_and(|acked| acked > self.capacity.upper_bound_bps()) {
            // Getting more through than the link was thought to carry: it has grown.
            self.capacity.reset();
        }
        let increased = if self.startup {
            self.delay_bps * STARTUP_GROWTH_PER_SECOND.powf(dt)
        } else if self.capacity.is_known() {
            let response =
                (self.rtt().unwrap_or(DEFAULT_RTT) + Duration::from_millis(100)).as_secs_f64();
            self.delay_bps + (PACKET_BITS / response).max(MIN_ADDITIVE_BPS_PER_S) * dt
        } else {
            let step = self.delay_bps * (INCREASE_PER_SECOND.powf(dt) - 1.0);
            self.delay_bps + step.max(1000.0 * dt)
        };
        self.delay_bps = match acked {
            // Never past what is demonstrably getting through, but never lower either.
            Some(acked) => increased.min((1.5 * acked + 10_000.0).max(self.delay_bps)),
            None => increased,
        };
    }

    fn update_loss_based(&mut self, now: Instant, fraction: f64) {
        let dt = self
            .last_loss_update
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at))
            .min(MAX_STEP)
            .as_secs_f64();
        self.last_loss_update = Some(now);
        self.last_loss_fraction = Some(fraction);
        // Cut and hold act from where the target is, since a loss-based ceiling far above it
        // says nothing.
        let from = self.loss_bps.min(self.target_bps() as f64);
        if fraction > LOSS_HIGH {
            self.loss_bps = from * (1.0 - 0.5 * fraction);
            self.last_loss_cut = Some(now);
            self.startup = false;
        } else if fraction >= LOSS_LOW {
            self.loss_bps = from;
        } else {
            let growth = if self.startup { STARTUP_GROWTH_PER_SECOND } else { INCREASE_PER_SECOND };
            self.loss_bps = self.loss_bps * growth.powf(dt) + 1000.0 * dt;
        }
        self.loss_bps = self.clamp(self.loss_bps);
    }

    fn after_update(&mut self, now: Instant) {
        let target = self.target_bps();
        if let Some(change) =
            self.degradation.as_mut().and_then(|policy| policy.update(now, target))
        {
            self.pending_change = Some(change);
        }
    }

    fn clamp(&self, bps: f64) -> f64 {
        bps.clamp(self.config.min_bps as f64, self.config.max_bps as f64)
    }
}

/// The rate the receiver reports getting, over [`ACKED_WINDOW`] of its own clock.
#[derive(Debug, Clone, Default)]
struct AckedRate {
    window: VecDeque<(Duration, usize)>,
    bytes: usize,
    latest: Duration,
}

impl AckedRate {
    fn on_arrival(&mut self, arrival: Duration, size: usize) {
        self.latest = self.latest.max(arrival);
        self.window.push_back((arrival, size));
        self.bytes += size;
        while let Some(&(oldest, size)) = self.window.front() {
            if oldest + ACKED_WINDOW >= self.latest {
                break;
            }
            self.window.pop_front();
            self.bytes -= size;
        }
    }

    fn rate_bps(&self) -> Option<f64> {
        let &(oldest, first_size) = self.window.front()?;
        let span = self.latest.saturating_sub(oldest);
        // The first packet's bytes arrived at the window's start, not during it.
        (span >= ACKED_MIN_SPAN)
            .then(|| (self.bytes - first_size) as f64 * 8.0 / span.as_secs_f64())
    }
}

/// Where the link's capacity was found: a running average of the acknowledged rate at each
/// overuse, with its spread (libwebrtc's `LinkCapacityEstimator`, in kbit/s as there).
#[derive(Debug, Clone)]
struct LinkCapacity {
    estimate_kbps: Option<f64>,
    deviation_kbps: f64,
}

impl Default for LinkCapacity {
    fn default() -> Self {
        Self { estimate_kbps: None, deviation_kbps: 0.4 }
    }
}

impl LinkCapacity {
    const ALPHA: f64 = 0.05;

    fn update(&mut self, sample_bps: f64) {
        let sample = sample_bps / 1000.0;
        let estimate = match self.estimate_kbps {
            None => sample,
            Some(estimate) => (1.0 - Self::ALPHA) * estimate + Self::ALPHA * sample,
        };
        self.estimate_kbps = Some(estimate);
        let error = estimate - sample;
        self.deviation_kbps = ((1.0 - Self::ALPHA) * self.deviation_kbps
            + Self::ALPHA * error * error / estimate.max(1.0))
        .clamp(0.4, 2.5);
    }

    fn is_known(&self) -> bool {
        self.estimate_kbps.is_some()
    }

    fn reset(&mut self) {
        self.estimate_kbps = None;
    }

    /// Three standard deviations above the estimate; infinite when unknown.
    fn upper_bound_bps(&self) -> f64 {
        self.estimate_kbps
            .map_or(f64::INFINITY, |estimate| (estimate + self.spread_kbps(estimate)) * 1000.0)
    }

    /// Three standard deviations below the estimate; zero when unknown.
    fn lower_bound_bps(&self) -> f64 {
        self.estimate_kbps.map_or(0.0, |estimate| (estimate - self.spread_kbps(estimate)) * 1000.0)
    }

    fn spread_kbps(&self, estimate: f64) -> f64 {
        3.0 * (estimate.max(1.0) * self.deviation_kbps).sqrt()
    }
}

/// Lost and total packet counts since the last loss decision.
#[derive(Debug, Clone, Default)]
struct LossWindow {
    lost: u32,
    total: u32,
    since: Option<Instant>,
}

impl LossWindow {
    fn add(&mut self, now: Instant, lost: u32, total: u32) {
        self.since.get_or_insert(now);
        self.lost += lost;
        self.total += total;
    }

    /// The loss fraction, once the window is long and full enough; the window then restarts.
    fn take_if_ready(&mut self, now: Instant) -> Option<f64> {
        let since = self.since?;
        if self.total < LOSS_MIN_PACKETS || now.saturating_duration_since(since) < LOSS_WINDOW {
            return None;
        }
        let fraction = f64::from(self.lost) / f64::from(self.total);
        *self = Self { lost: 0, total: 0, since: Some(now) };
        Some(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Reports `count` packets of 1200 bytes, one every `spacing`, starting at sequence `from`,
    /// all arriving after a constant delay except those `lost` says are lost.
    fn batch(
        t0: Instant,
        from: u64,
        count: u64,
        spacing: Duration,
        lost: impl Fn(u64) -> bool,
    ) -> Vec<PacketFeedback> {
        (from..from + count)
            .map(|sequence| {
                let sent = spacing * u32::try_from(sequence).unwrap();
                PacketFeedback {
                    sequence,
                    departure: t0 + sent,
                    arrival: (!lost(sequence)).then(|| Duration::from_secs(50) + sent + 20 * MS),
                    size: 1200,
                }
            })
            .collect()
    }

    #[test]
    fn starts_at_the_start_rate_and_clamps_it() {
        let controller = RateController::new(RateConfig::default());
        assert_eq!(controller.target_bps(), 1_000_000);
        let controller =
            RateController::new(RateConfig { min_bps: 500, max_bps: 100, start_bps: 1000 });
        assert_eq!(controller.config(), RateConfig { min_bps: 100, max_bps: 500, start_bps: 500 });
        assert_eq!(controller.target_bps(), 500);
    }

    #[test]
    fn steady_delay_without_loss_ramps_up() {
        let t0 = crate::rate::test_epoch();
        let mut controller = RateController::new(RateConfig::default());
        // 2 ms spacing ≈ 4.8 Mbit/s of 1200-byte packets, reported every 50 ms.
        for report in 0..40u64 {
            let now = t0 + 50 * MS * u32::try_from(report + 1).unwrap() + 30 * MS;
            controller.on_packet_feedback(now, &batch(t0, report * 25, 25, 2 * MS, |_| false));
        }
        let stats = controller.stats();
        assert_eq!(stats.usage, BandwidthUsage::Normal);
        assert!(stats.startup);
        assert!(controller.target_bps() > 2_000_000, "{stats:?}");
    }

    #[test]
    fn heavy_loss_cuts_the_rate_and_ends_startup() {
        let t0 = crate::rate::test_epoch();
        let mut controller = RateController::new(RateConfig::default());
        for report in 0..40u64 {
            let now = t0 + 50 * MS * u32::try_from(report + 1).unwrap() + 30 * MS;
            controller
                .on_packet_feedback(now, &batch(t0, report * 25, 25, 2 * MS, |seq| seq % 4 == 0));
        }
        let stats = controller.stats();
        let loss = stats.loss_fraction.unwrap();
        assert!((loss - 0.25).abs() < 0.01, "{loss}");
        assert!(!stats.startup);
        assert!(controller.target_bps() < 1_000_000, "{stats:?}");
    }

    #[test]
    fn receiver_report_loss_applies_only_without_packet_feedback() {
        let t0 = crate::rate::test_epoch();
        let mut controller = RateController::new(RateConfig::default());
        controller.on_receiver_report(t0, 0.5, Some(80 * MS));
        assert_eq!(controller.target_bps(), 750_000, "cut by half the loss fraction");
        assert_eq!(controller.stats().rtt, Some(80 * MS));

        let mut fed = RateController::new(RateConfig::default());
        fed.on_packet_feedback(t0, &batch(t0, 0, 10, 2 * MS, |_| false));
        fed.on_receiver_report(t0 + 500 * MS, 0.5, None);
        assert_eq!(fed.target_bps(), 1_000_000, "TWCC already covers these losses");
    }

    #[test]
    fn duplicate_feedback_is_counted_once() {
        let t0 = crate::rate::test_epoch();
        let mut controller = RateController::new(RateConfig::default());
        let report = batch(t0, 0, 25, 2 * MS, |seq| seq % 2 == 0);
        controller.on_packet_feedback(t0 + 100 * MS, &report);
        let before = controller.stats();
        controller.on_packet_feedback(t0 + 400 * MS, &report);
        assert_eq!(before, controller.stats());
    }

    #[test]
    fn link_capacity_bounds_widen_with_spread() {
        let mut capacity = LinkCapacity::default();
        assert!(!capacity.is_known());
        assert_eq!(capacity.upper_bound_bps(), f64::INFINITY);
        capacity.update(5_000_000.0);
        let tight = capacity.upper_bound_bps() - 5_000_000.0;
        assert!(tight > 100_000.0 && tight < 150_000.0, "{tight}");
        capacity.update(4_000_000.0);
        assert!(capacity.upper_bound_bps() - capacity.lower_bound_bps() > 2.0 * tight);
    }

    #[test]
    fn controller_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RateController>();
    }
}
