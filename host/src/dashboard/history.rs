//! The host's last day, in fifteen-minute buckets: session-seconds served,
//! how many of them the player confirmed with a signed report, and the
//! players' frame rate and click-to-photon in each.
//!
//! Sans-I/O: seconds come in as the probe logs close them for good, the view
//! is asked for at a given `now`. Memory is bounded: a day of buckets, each
//! a fixed histogram.

use std::collections::VecDeque;

use gridplay_protocol::owner::HistoryBucket;
use gridplay_protocol::probe::SecondRecord;

/// Length of one bucket (15 minutes).
pub const BUCKET_MS: u64 = 15 * 60_000;
/// Buckets in the view: one day.
pub const BUCKETS: usize = 96;
/// Click-to-photon histogram bins, one per millisecond; the last holds everything above.
const C2P_BINS: usize = 256;

/// What one bucket gathered.
#[derive(Debug, Clone)]
struct Bucket {
    start_ms: u64,
    served: u32,
    confirmed: u32,
    fps_sum: f64,
    /// Per-second click-to-photon medians, milliseconds, binned.
    click_to_photon: Box<[u32; C2P_BINS]>,
}

impl Bucket {
    fn new(start_ms: u64) -> Self {
        Self {
            start_ms,
            served: 0,
            confirmed: 0,
            fps_sum: 0.0,
            click_to_photon: Box::new([0; C2P_BINS]),
        }
    }

    fn view(&self) -> HistoryBucket {
        let samples: u32 = self.click_to_photon.iter().sum();
        let median = (samples > 0).then(|| {
            let half = samples.div_ceil(2);
            let mut seen = 0;
            let bin = self.click_to_photon.iter().position(|n| {
                seen += n;
                seen >= half
            });
            bin.unwrap_or(C2P_BINS - 1) as f64
        });
        HistoryBucket {
            start_ms: self.start_ms,
            served_seconds: self.served,
            confirmed_seconds: self.confirmed,
            fps: (self.confirmed > 0).then(|| self.fps_sum / f64::from(self.confirmed)),
            click_to_photon_ms: median,
        }
    }
}

/// The last day of every session's seconds.
#[derive(Debug, Default)]
pub struct History {
    /// Buckets that saw a second, oldest first, at most a day apart.
    buckets: VecDeque<Bucket>,
}

impl History {
    /// Counts one second of a session, closed for good.
    pub fn record(&mut self, second: &SecondRecord) {
        let start = second.start_ms - second.start_ms % BUCKET_MS;
        let newest = self.buckets.back().map_or(0, |b| b.start_ms);
        if start + BUCKET_MS * BUCKETS as u64 <= newest {
            return; // older than the day shown
        }
        let at = self.buckets.iter().position(|b| b.start_ms >= start);
        let bucket = match at {
            Some(i) if self.buckets[i].start_ms == start => &mut self.buckets[i],
            Some(i) => {
                self.buckets.insert(i, Bucket::new(start));
                &mut self.buckets[i]
            }
            None => {
                self.buckets.push_back(Bucket::new(start));
                let newest = start;
                while self
                    .buckets
                    .front()
                    .is_some_and(|b| b.start_ms + BUCKET_MS * BUCKETS as u64 <= newest)
                {
                    self.buckets.pop_front();
                }
                self.buckets.back_mut().expect("just pushed")
            }
        };
        bucket.served += 1;
        if let Some(signed) = &second.client {
            let report = &signed.report;
            bucket.confirmed += 1;
            bucket.fps_sum += f64::from(report.fps_centi) / 100.0;
            if let Some(us) = report.click_to_photon_p50_us {
                bucket.click_to_photon[(us as usize / 1000).min(C2P_BINS - 1)] += 1;
            }
        }
    }

    /// The day up to `now_ms`: [`BUCKETS`] buckets, oldest first, the last holding `now_ms`;
    /// buckets nothing was served in are empty.
    pub fn view(&self, now_ms: u64) -> Vec<HistoryBucket> {
        let last = now_ms - now_ms % BUCKET_MS;
        let first = last.saturating_sub(BUCKET_MS * (BUCKETS as u64 - 1));
        (0..BUCKETS as u64)
            .map(|i| first + i * BUCKET_MS)
            .map(|start| match self.buckets.iter().find(|b| b.start_ms == start) {
                Some(bucket) => bucket.view(),
                None => Bucket::new(start).view(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use gridplay_protocol::probe::{HostFigures, ProbeReport, SignedProbeReport};

    use super::*;

    const DAY_MS: u64 = BUCKET_MS * BUCKETS as u64;
    /// A bucket boundary, well after the epoch.
    const T0: u64 = 20_000 * BUCKET_MS;

    fn second(start_ms: u64, report: Option<(u32, Option<u32>)>) -> SecondRecord {
        let client = report.map(|(fps_centi, c2p_us)| SignedProbeReport {
            report: ProbeReport {
                session_id: "s".into(),
                seq: 1,
                interval_ms: 1000,
                frames_presented: fps_centi / 100,
                frames_decoded: fps_centi / 100,
                fps_centi,
                decode_us: None,
                jitter_us: None,
                loss_ppm: None,
                rtt_us: None,
                click_to_photon_p50_us: c2p_us,
                click_to_photon_p95_us: c2p_us,
                click_to_photon_samples: u32::from(c2p_us.is_some()),
                audio_packets_lost: None,
                audio_concealed_samples: None,
            },
            signature: String::new(),
        });
        SecondRecord { second: 0, start_ms, host: HostFigures::default(), client }
    }

    #[test]
    fn seconds_fall_in_their_bucket_with_the_players_figures() {
        let mut history = History::default();
        history.record(&second(T0, Some((6000, Some(12_400)))));
        history.record(&second(T0 + 1000, Some((5800, Some(20_000)))));
        history.record(&second(T0 + 2000, Some((5900, Some(14_900)))));
        history.record(&second(T0 + 3000, None));
        history.record(&second(T0 + BUCKET_MS, Some((3000, None))));
        let view = history.view(T0 + BUCKET_MS + 5);
        assert_eq!(view.len(), BUCKETS);
        let (this, previous) = (&view[BUCKETS - 1], &view[BUCKETS - 2]);
        assert_eq!(this.start_ms, T0 + BUCKET_MS);
        assert_eq!((this.served_seconds, this.confirmed_seconds), (1, 1));
        assert_eq!((this.fps, this.click_to_photon_ms), (Some(30.0), None));
        assert_eq!(previous.start_ms, T0);
        assert_eq!((previous.served_seconds, previous.confirmed_seconds), (4, 3));
        assert_eq!(previous.fps, Some(59.0), "the mean of the confirmed seconds");
        assert_eq!(previous.click_to_photon_ms, Some(14.0), "the median, to the millisecond");
        assert!(view[..BUCKETS - 2].iter().all(|b| b.served_seconds == 0 && b.fps.is_none()));
    }

    #[test]
    fn only_the_last_day_is_kept_and_shown() {
        let mut history = History::default();
        history.record(&second(T0, Some((6000, None))));
        history.record(&second(T0 + DAY_MS, Some((6000, None))));
        assert_eq!(history.buckets.len(), 1, "the day-old bucket is dropped");
        history.record(&second(T0 + 5_000, None));
        assert_eq!(history.buckets.len(), 1, "a second older than the day is not counted");
        // A late second from earlier in the day lands in order.
        history.record(&second(T0 + DAY_MS - BUCKET_MS, None));
        assert_eq!(history.buckets.len(), 2);
        let view = history.view(T0 + DAY_MS + 1);
        assert_eq!(view[0].start_ms, T0 + BUCKET_MS);
        assert_eq!(view[BUCKETS - 2].served_seconds, 1);
        assert_eq!(view[BUCKETS - 1].served_seconds, 1);
        // A view long after shows an empty day.
        assert!(history.view(T0 + 3 * DAY_MS).iter().all(|b| b.served_seconds == 0));
    }

    #[test]
    fn slow_clicks_land_in_the_top_bin() {
        let mut history = History::default();
        history.record(&second(T0, Some((6000, Some(900_000)))));
        assert_eq!(history.view(T0).last().unwrap().click_to_photon_ms, Some(255.0));
    }
}
