//! A seeded, in-memory network link: capacity, drop-tail queue, delay, jitter and loss.

use std::time::{Duration, Instant};

/// How a [`SimLink`] impairs the packets sent over it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// Bottleneck rate in bits per second; `None` for a link with no capacity limit (and so no
    /// queue).
    pub capacity_bps: Option<u64>,
    /// Most bytes the bottleneck queue holds, counting the packet being serialised. A packet
    /// that would overflow it is dropped (drop-tail).
    pub queue_bytes: usize,
    /// Base one-way propagation delay, added after the bottleneck.
    pub delay: Duration,
    /// Each packet's propagation delay is `delay` plus a uniform draw from `-jitter..=jitter`
    /// (never below zero, never reordering).
    pub jitter: Duration,
    /// Probability in `0.0..=1.0` that a packet is lost, independently of every other.
    pub loss: f64,
}

impl Default for LinkConfig {
    /// A perfect link: no capacity limit, no delay, no jitter, no loss.
    fn default() -> Self {
        Self {
            capacity_bps: None,
            queue_bytes: 64 * 1024,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
        }
    }
}

/// Counters of what a [`SimLink`] did with the packets it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets handed to [`SimLink::send`].
    pub sent: u64,
    /// Packets that will arrive.
    pub delivered: u64,
    /// Packets dropped because the queue was full.
    pub dropped_queue: u64,
    /// Packets dropped by random loss.
    pub dropped_random: u64,
}

/// A seeded, deterministic model of one direction of a network path.
///
/// Calls must pass non-decreasing `now` values; an earlier `now` is treated as the latest one
/// seen.
///
/// [`SimLink`] answers one question per packet — *when does this arrive, if at all?* — and keeps
/// no packets itself, so the same object drives a simulated-time test (which schedules the arrival
/// in its own event queue) and a userspace impairment relay (which holds the datagram until the
/// returned instant and then forwards it). Every random draw comes from a generator seeded at
/// construction, so one seed and one sequence of calls give one sequence of answers.
///
/// The model, in the order a packet meets it:
///
/// ```text
/// send(now, size) ─▶ random loss ─▶ drop-tail queue ─▶ bottleneck ─▶ delay ± jitter ─▶ arrival
///                    (loss)         (queue_bytes)      (capacity_bps)  (delay, jitter)
/// ```
///
/// Jitter varies each packet's propagation delay but never reorders: a packet cannot arrive
/// before the one sent ahead of it, as on a single-path link. Loss is independent per packet
/// (no bursts).
#[derive(Debug, Clone)]
pub struct SimLink {
    config: LinkConfig,
    rng: SplitMix64,
    /// The instant the bottleneck finishes serialising everything accepted so far.
    busy_until: Option<Instant>,
    /// Arrival of the last delivered packet, so jitter cannot reorder.
    last_arrival: Option<Instant>,
    /// Latest `now` seen, so time never runs backwards inside the model.
    last_now: Option<Instant>,
    stats: LinkStats,
}

impl SimLink {
    /// A link impaired as `config` says, drawing its randomness from `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            config,
            rng: SplitMix64::new(seed),
            busy_until: None,
            last_arrival: None,
            last_now: None,
            stats: LinkStats::default(),
        }
    }

    /// Offers a packet of `size` bytes to the link at `now`.
    ///
    /// Returns the instant it arrives at the far end, or `None` if it is lost (randomly, or
    /// because the queue is full).
    #[must_use = "a packet that is not scheduled for its arrival time was not really sent"]
    pub fn send(&mut self, now: Instant, size: usize) -> Option<Instant> {
        let now = self.advance(now);
        self.stats.sent += 1;

        if self.config.loss > 0.0 && self.rng.next_f64() < self.config.loss {
            self.stats.dropped_random += 1;
            return None;
        }

        let leaves_bottleneck = match self.config.capacity_bps {
            None => now,
            Some(capacity) => {
                if self.queued_bytes(now) + size > self.config.queue_bytes {
                    self.stats.dropped_queue += 1;
                    return None;
                }
                let start = self.busy_until.map_or(now, |busy| busy.max(now));
                let done = start + transmission_time(size, capacity);
                self.busy_until = Some(done);
                done
            }
        };

        let arrival = leaves_bottleneck + self.propagation_delay();
        let arrival = self.last_arrival.map_or(arrival, |last| last.max(arrival));
        self.last_arrival = Some(arrival);
        self.stats.delivered += 1;
        Some(arrival)
    }

    /// Changes the bottleneck rate at `now`. Bytes already queued stay queued and drain at the
    /// new rate.
    pub fn set_capacity(&mut self, now: Instant, capacity_bps: Option<u64>) {
        let now = self.advance(now);
        let backlog = self.queued_bytes(now);
        self.config.capacity_bps = capacity_bps;
        self.busy_until = match capacity_bps {
            Some(capacity) if backlog > 0 => Some(now + transmission_time(backlog, capacity)),
            _ => None,
        };
    }

    /// Bytes waiting at the bottleneck at `now`, including the one being serialised.
    pub fn queued_bytes(&self, now: Instant) -> usize {
        let (Some(capacity), Some(busy)) = (self.config.capacity_bps, self.busy_until) else {
            return 0;
        };
        let backlog = busy.saturating_duration_since(now).as_nanos();
        usize::try_from(backlog * u128::from(capacity) / 8_000_000_000).unwrap_or(usize::MAX)
    }

    /// How long a packet sent at `now` would wait before the bottleneck starts on it.
    pub fn queue_delay(&self, now: Instant) -> Duration {
        self.busy_until.map_or(Duration::ZERO, |busy| busy.saturating_duration_since(now))
    }

    /// The impairments in force (capacity reflects [`set_capacity`](Self::set_capacity)).
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// What the link has done with the packets sent so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    fn advance(&mut self, now: Instant) -> Instant {
        let now = self.last_now.map_or(now, |last| last.max(now));
        self.last_now = Some(now);
        now
    }

    fn propagation_delay(&mut self) -> Duration {
        let jitter = u64::try_from(self.config.jitter.as_nanos()).unwrap_or(u64::MAX / 4);
        if jitter == 0 {
            return self.config.delay;
        }
        // Uniform over -jitter..=jitter, floored at zero delay.
        let offset = self.rng.below(2 * jitter + 1);
        (self.config.delay + Duration::from_nanos(offset))
            .saturating_sub(Duration::from_nanos(jitter))
    }
}

/// Time to put `size` bytes on a wire of `capacity_bps`, rounded up to the nanosecond.
fn transmission_time(size: usize, capacity_bps: u64) -> Duration {
    let bits = size as u128 * 8 * 1_000_000_000;
    let capacity = u128::from(capacity_bps.max(1));
    Duration::from_nanos(u64::try_from(bits.div_ceil(capacity)).unwrap_or(u64::MAX))
}

/// SplitMix64: a tiny, well-studied 64-bit generator (Steele, Lea and Flood, 2014), used here
/// because the model needs a reproducible stream, not cryptographic or statistical perfection.
/// Hand-rolled to keep the crate free of a dependency for ten lines.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0.0..1.0`, from the top 53 bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..bound` (`bound > 0`), by widening multiplication; the bias is below
    /// `bound / 2^64`, which is nothing at the bounds used here.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch() -> Instant {
        crate::rate::test_epoch()
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_perfect_link_adds_only_its_delay() {
        let t0 = epoch();
        let mut link = SimLink::new(LinkConfig { delay: 25 * MS, ..LinkConfig::default() }, 1);
        assert_eq!(Some(t0 + 25 * MS), link.send(t0, 1200));
        assert_eq!(Some(t0 + 26 * MS), link.send(t0 + MS, 1200));
        assert_eq!(link.queue_delay(t0), Duration::ZERO);
    }

    #[test]
    fn capacity_serialises_packets_back_to_back() {
        let t0 = epoch();
        // 1 Mbit/s: 1250 bytes take 10 ms.
        let config = LinkConfig { capacity_bps: Some(1_000_000), ..LinkConfig::default() };
        let mut link = SimLink::new(config, 1);
        assert_eq!(Some(t0 + 10 * MS), link.send(t0, 1250));
        assert_eq!(Some(t0 + 20 * MS), link.send(t0, 1250));
        assert_eq!(Some(t0 + 30 * MS), link.send(t0, 1250));
        assert_eq!(link.queue_delay(t0), 30 * MS);
        assert_eq!(link.queued_bytes(t0), 3750);
        assert_eq!(link.queued_bytes(t0 + 15 * MS), 1875);
        // An idle gap lets the queue empty.
        assert_eq!(Some(t0 + 110 * MS), link.send(t0 + 100 * MS, 1250));
    }

    #[test]
    fn a_full_queue_drops_the_tail() {
        let t0 = epoch();
        let config = LinkConfig {
            capacity_bps: Some(1_000_000),
            queue_bytes: 3000,
            ..LinkConfig::default()
        };
        let mut link = SimLink::new(config, 1);
        assert!(link.send(t0, 1200).is_some());
        assert!(link.send(t0, 1200).is_some());
        assert_eq!(None, link.send(t0, 1200), "2400 + 1200 bytes overflow a 3000-byte queue");
        assert_eq!(link.stats().dropped_queue, 1);
        // Once 1200 bytes have drained (9.6 ms) there is room again.
        assert!(link.send(t0 + 10 * MS, 1200).is_some());
    }

    #[test]
    fn a_capacity_change_drains_the_backlog_at_the_new_rate() {
        let t0 = epoch();
        let config = LinkConfig { capacity_bps: Some(1_000_000), ..LinkConfig::default() };
        let mut link = SimLink::new(config, 1);
        let _ = link.send(t0, 2500); // 20 ms of work at 1 Mbit/s
        link.set_capacity(t0 + 10 * MS, Some(250_000)); // 1250 bytes left: 40 ms at 250 kbit/s
        assert_eq!(link.queue_delay(t0 + 10 * MS), 40 * MS);
        assert_eq!(Some(t0 + 90 * MS), link.send(t0 + 10 * MS, 1250));
    }

    #[test]
    fn jitter_stays_in_range_and_never_reorders() {
        let t0 = epoch();
        let config = LinkConfig { delay: 25 * MS, jitter: 5 * MS, ..LinkConfig::default() };
        // Sparse packets (spacing above the jitter's 10 ms spread) see the whole range; dense
        // ones are held back by their predecessors, but never by more than the spacing.
        for spacing in [Duration::from_millis(11), Duration::from_micros(100)] {
            let mut link = SimLink::new(config, 7);
            let mut last = t0;
            let mut spread = (Duration::MAX, Duration::ZERO);
            for i in 0..10_000u32 {
                let now = t0 + spacing * i;
                let arrival = link.send(now, 100).expect("no loss configured");
                assert!(arrival >= last, "seed 7: packet {i} overtook its predecessor");
                last = arrival;
                let delay = arrival - now;
                spread = (spread.0.min(delay), spread.1.max(delay));
            }
            assert!(spread.0 >= 20 * MS, "seed 7, {spacing:?}: min delay {:?}", spread.0);
            assert!(spread.1 <= 30 * MS + spacing, "seed 7, {spacing:?}: max {:?}", spread.1);
            if spacing > 10 * MS {
                assert!(spread.0 < 21 * MS && spread.1 > 29 * MS, "seed 7: {spread:?}");
            }
        }
    }

    #[test]
    fn random_loss_is_close_to_its_probability() {
        let t0 = epoch();
        for seed in 0..4 {
            let mut link = SimLink::new(LinkConfig { loss: 0.1, ..LinkConfig::default() }, seed);
            for i in 0..20_000u64 {
                let _ = link.send(t0 + Duration::from_micros(i), 100);
            }
            let lost = link.stats().dropped_random as f64 / 20_000.0;
            assert!((0.09..0.11).contains(&lost), "seed {seed}: loss {lost}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_answers() {
        let t0 = epoch();
        let config = LinkConfig {
            capacity_bps: Some(2_000_000),
            queue_bytes: 10_000,
            delay: 10 * MS,
            jitter: 3 * MS,
            loss: 0.05,
        };
        let run = |seed| {
            let mut link = SimLink::new(config, seed);
            (0..2000u64)
                .map(|i| link.send(t0 + Duration::from_micros(i * 700), 1000))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs for seed 0 from the reference implementation.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
