//! What the network delivered, as the settler bills it: every block once it is
//! final (committed, or billed with nothing to commit), whether its player's
//! probes showed it delivered, what it paid and how the picture was; and
//! sessions with their length as their last block is billed. Kept in total
//! and for each of the last [`HOURS_KEPT`] hours.

use std::collections::BTreeMap;

use gridplay_protocol::network::{Delivered, HourTally, Tally};
use gridplay_protocol::settlement::ReceiptLine;
use serde::{Deserialize, Serialize};

/// One hour, ms.
pub const HOUR_MS: u64 = 3_600_000;
/// Hours kept and shown.
pub const HOURS_KEPT: u64 = 24;

/// The running sums behind a [`Tally`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Sums {
    blocks_billed: u64,
    blocks_delivered: u64,
    delivered_seconds: u64,
    sessions: u64,
    session_seconds: u64,
    /// Decimal wei.
    paid_wei: String,
    fps_centi: u64,
    fps_blocks: u64,
    /// Blocks by their click-to-photon, whole milliseconds.
    #[serde(with = "pairs")]
    click_to_photon_ms: BTreeMap<u32, u64>,
}

impl Sums {
    fn paid(&self) -> u128 {
        self.paid_wei.parse().unwrap_or(0)
    }

    fn line(&mut self, line: &ReceiptLine) {
        self.blocks_billed += 1;
        if line.delivered {
            self.blocks_delivered += 1;
            self.delivered_seconds += u64::from(line.seconds_covered);
        }
        let amount: u128 = line.amount.parse().unwrap_or(0);
        self.paid_wei = self.paid().saturating_add(amount).to_string();
        if let Some(fps) = line.fps_centi {
            self.fps_centi += u64::from(fps);
            self.fps_blocks += 1;
        }
        if let Some(us) = line.click_to_photon_us {
            *self.click_to_photon_ms.entry(us / 1000).or_default() += 1;
        }
    }

    fn session(&mut self, seconds: u64) {
        self.sessions += 1;
        self.session_seconds += seconds;
    }

    fn tally(&self) -> Tally {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let delivered_hours = self.delivered_seconds as f64 / 3600.0;
        let paid_per_hour = (self.delivered_seconds > 0)
            .then(|| self.paid().saturating_mul(3600) / u128::from(self.delivered_seconds));
        let blocks: u64 = self.click_to_photon_ms.values().sum();
        let mut seen = 0;
        let median = self.click_to_photon_ms.iter().find_map(|(ms, n)| {
            seen += n;
            (seen * 2 >= blocks).then_some(f64::from(*ms))
        });
        Tally {
            blocks_billed: self.blocks_billed,
            blocks_delivered: self.blocks_delivered,
            success_rate: ratio(self.blocks_delivered, self.blocks_billed),
            delivered_hours,
            sessions: self.sessions,
            mean_session_minutes: ratio(self.session_seconds, self.sessions).map(|s| s / 60.0),
            paid_wei: self.paid().to_string(),
            paid_per_hour_wei: paid_per_hour.map(|w| w.to_string()),
            fps: ratio(self.fps_centi, self.fps_blocks).map(|c| c / 100.0),
            click_to_photon_ms: median,
        }
    }
}

/// The network's delivered service, in total and by hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    total: Sums,
    /// By the hour's start, Unix ms.
    #[serde(with = "pairs")]
    hours: BTreeMap<u64, Sums>,
}

/// Maps written as lists of pairs: journal records are read through an internally tagged
/// enum, whose buffering cannot read a map's number keys back from JSON's strings.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}

impl Ledger {
    /// The hour holding `at_ms`, made if new; hours older than the day kept are dropped.
    fn hour(&mut self, at_ms: u64) -> &mut Sums {
        let start = at_ms - at_ms % HOUR_MS;
        let oldest = start.saturating_sub((HOURS_KEPT - 1) * HOUR_MS);
        self.hours.retain(|&h, _| h >= oldest);
        self.hours.entry(start).or_default()
    }

    /// Counts a block billed for good at `at_ms`.
    pub fn line(&mut self, line: &ReceiptLine, at_ms: u64) {
        self.total.line(line);
        self.hour(at_ms).line(line);
    }

    /// Counts a session whose last block was billed at `at_ms`, `seconds` long.
    pub fn session(&mut self, seconds: u64, at_ms: u64) {
        self.total.session(seconds);
        self.hour(at_ms).session(seconds);
    }

    /// The figures as of `now_ms`: the total, and the last [`HOURS_KEPT`] hours, oldest
    /// first (empty hours included).
    pub fn view(&self, now_ms: u64) -> Delivered {
        let last = now_ms - now_ms % HOUR_MS;
        let first = last.saturating_sub((HOURS_KEPT - 1) * HOUR_MS);
        let hours = (0..HOURS_KEPT)
            .map(|i| first + i * HOUR_MS)
            .map(|start| HourTally {
                start_ms: start,
                tally: self.hours.get(&start).cloned().unwrap_or_default().tally(),
            })
            .collect();
        Delivered { total: self.total.tally(), hours }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 500_000 * HOUR_MS;

    fn line(
        block: u32,
        delivered: bool,
        amount: u64,
        fps: u32,
        c2p_us: Option<u32>,
    ) -> ReceiptLine {
        ReceiptLine {
            block_index: block,
            seconds_covered: 900,
            seconds_met: if delivered { 890 } else { 10 },
            delivered,
            fps_centi: Some(fps),
            click_to_photon_us: c2p_us,
            amount: amount.to_string(),
            epoch_id: None,
            commit_tx: None,
        }
    }

    #[test]
    fn blocks_and_sessions_add_up_in_total_and_by_hour() {
        let mut ledger = Ledger::default();
        ledger.line(&line(0, true, 100, 6000, Some(15_400)), T0);
        ledger.line(&line(1, true, 100, 5800, Some(18_900)), T0 + 10);
        ledger.line(&line(2, false, 0, 2000, Some(90_000)), T0 + HOUR_MS);
        ledger.session(2700, T0 + HOUR_MS);
        let view = ledger.view(T0 + HOUR_MS + 5);
        let total = &view.total;
        assert_eq!((total.blocks_billed, total.blocks_delivered), (3, 2));
        assert_eq!(total.success_rate, Some(2.0 / 3.0));
        assert_eq!(total.delivered_hours, 0.5);
        assert_eq!(
            (total.paid_wei.as_str(), total.paid_per_hour_wei.as_deref()),
            ("200", Some("400"))
        );
        assert_eq!((total.sessions, total.mean_session_minutes), (1, Some(45.0)));
        assert_eq!(total.fps, Some(46.0));
        assert_eq!(total.click_to_photon_ms, Some(18.0), "the middle block's, to the millisecond");
        assert_eq!(view.hours.len(), HOURS_KEPT as usize);
        let (earlier, latest) = (&view.hours[22], &view.hours[23]);
        assert_eq!((earlier.start_ms, earlier.tally.blocks_billed), (T0, 2));
        assert_eq!((latest.tally.blocks_billed, latest.tally.success_rate), (1, Some(0.0)));
        assert_eq!(view.hours[0].tally.success_rate, None, "an hour with nothing billed");
    }

    #[test]
    fn only_the_last_day_is_kept_by_hour_and_the_total_keeps_everything() {
        let mut ledger = Ledger::default();
        ledger.line(&line(0, true, 1, 6000, None), T0);
        ledger.line(&line(0, true, 1, 6000, None), T0 + HOURS_KEPT * HOUR_MS);
        assert_eq!(ledger.hours.len(), 1);
        let view = ledger.view(T0 + HOURS_KEPT * HOUR_MS);
        assert_eq!(view.total.blocks_billed, 2);
        assert_eq!(view.hours.iter().map(|h| h.tally.blocks_billed).sum::<u64>(), 1);
        assert_eq!(view.total.click_to_photon_ms, None, "no block had a click");
    }

    #[test]
    fn a_ledger_survives_its_journal() {
        let mut ledger = Ledger::default();
        ledger.line(&line(0, true, 7, 6000, Some(12_000)), T0);
        ledger.session(900, T0);
        let json = serde_json::to_string(&ledger).unwrap();
        assert_eq!(serde_json::from_str::<Ledger>(&json).unwrap(), ledger);
    }
}
