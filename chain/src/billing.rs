//! The billing rule: what one 15-minute block of a session is worth, given its probes.

use gridplay_protocol::settlement::ServiceLevel;

use crate::Error;

/// Seconds in one billing block (15 minutes).
pub const BLOCK_SECONDS: u32 = 900;

/// Basis points in one whole (100 %).
const BPS: u64 = 10_000;

/// One second of a session as the client's probes saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeRecord {
    /// Frames presented in the second.
    pub fps: f32,
    /// Round-trip time to the host, in milliseconds.
    pub rtt_ms: f32,
    /// Fraction of packets lost in the second, from 0.0 to 1.0.
    pub loss: f32,
    /// 95th-percentile click-to-photon latency of the second's inputs, in milliseconds;
    /// `None` when the second had no input to measure.
    pub click_to_photon_p95_ms: Option<f32>,
}

/// The service a session promised, and its price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sla {
    /// Lowest acceptable frame rate in a second.
    pub min_fps: f32,
    /// Highest acceptable round-trip time, in milliseconds.
    pub max_rtt_ms: f32,
    /// Highest acceptable click-to-photon p95, in milliseconds (checked in seconds that have one).
    pub max_click_to_photon_ms: f32,
    /// Highest acceptable packet loss fraction.
    pub max_loss: f32,
    /// Share of the covered seconds that must meet the bar, in basis points
    /// (9 500 = 95 %); from 1 to 10 000.
    pub min_met_bps: u16,
    /// Wei for one full delivered block.
    pub price_per_block: u128,
}

impl Sla {
    /// The terms for a session at `fps` under the broker's service `level`, at
    /// `price_per_block`.
    pub fn for_level(level: &ServiceLevel, fps: u32, price_per_block: u128) -> Self {
        Self {
            min_fps: fps as f32 * level.min_fps_percent as f32 / 100.0,
            max_rtt_ms: level.max_rtt_ms as f32,
            max_click_to_photon_ms: level.max_click_to_photon_ms as f32,
            max_loss: level.max_loss_ppm as f32 / 1e6,
            min_met_bps: level.min_met_bps,
            price_per_block,
        }
    }

    /// Whether one second meets the bar: `fps >= min_fps`, `rtt_ms <= max_rtt_ms`,
    /// `loss <= max_loss`, and, when the second has a click-to-photon sample,
    /// `click_to_photon_p95_ms <= max_click_to_photon_ms`. A NaN anywhere fails.
    pub fn meets(&self, r: &ProbeRecord) -> bool {
        r.fps >= self.min_fps
            && r.rtt_ms <= self.max_rtt_ms
            && r.loss <= self.max_loss
            && r.click_to_photon_p95_ms.is_none_or(|c| c <= self.max_click_to_photon_ms)
    }
}

/// What the billing rule made of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockBill {
    /// Seconds of the block the session covered.
    pub covered_seconds: u32,
    /// Covered seconds whose record met the bar.
    pub met_seconds: u32,
    /// Whether the block counts as delivered.
    pub delivered: bool,
    /// Billable wei: 0 unless delivered.
    pub amount: u128,
}

/// Bills one block: its per-second probe records and the session's SLA → the billable amount.
///
/// The rule:
/// - `covered_seconds` is how much of the block the session lasted: [`BLOCK_SECONDS`] for
///   every block but the last, and for the last block the seconds from its start to the
///   session's end (1 to 900), as [`crate::evidence::Evidence::block`] reads it (never more
///   seconds than have begun since the allocation).
/// - `records` holds at most one record per covered second, each from a client report that
///   counts as evidence ([`crate::evidence::verify_record`]): signed by the session's client
///   key, naming the session, filed under a second that had begun by the settler's clock
///   (counting from the allocation), its second and `seq` above those of the report before.
///   **A covered second without such a report counts as not meeting the bar**, whatever the
///   host says of it: a silent client proves nothing, and a report that is unsigned, forged,
///   of another session, repeated or from the future is discarded, never billed.
/// - The block is delivered when `met × 10 000 ≥ min_met_bps × covered_seconds`, that is
///   when at least `min_met_bps` of its covered seconds met the bar ([`Sla::meets`]), and
///   `covered_seconds > 0`.
/// - A delivered block bills `price_per_block × covered_seconds / 900`, rounded down: a full
///   block bills the full price, and a **partial last block bills pro rata to the seconds it
///   covered**, judged by the same share of those seconds. A block that is not delivered,
///   or an empty one (`covered_seconds == 0`), bills 0. No block bills above the price.
///
/// Errors when `covered_seconds` exceeds 900, when there are more records than covered
/// seconds, or when `min_met_bps` is outside 1..=10 000.
pub fn bill_block(
    records: &[ProbeRecord],
    covered_seconds: u32,
    sla: &Sla,
) -> Result<BlockBill, Error> {
    if covered_seconds > BLOCK_SECONDS {
        return Err(Error::BlockTooLong { covered: covered_seconds, max: BLOCK_SECONDS });
    }
    if records.len() > covered_seconds as usize {
        return Err(Error::TooManyRecords { records: records.len(), covered: covered_seconds });
    }
    if sla.min_met_bps == 0 || u64::from(sla.min_met_bps) > BPS {
        return Err(Error::InvalidSla(sla.min_met_bps));
    }
    // At most 900 records, so the count fits in a u32.
    let met_seconds = records.iter().filter(|r| sla.meets(r)).count() as u32;
    let delivered = covered_seconds > 0
        && u64::from(met_seconds) * BPS >= u64::from(sla.min_met_bps) * u64::from(covered_seconds);
    let amount = if delivered { pro_rata(sla.price_per_block, covered_seconds) } else { 0 };
    Ok(BlockBill { covered_seconds, met_seconds, delivered, amount })
}

/// `price × covered / 900` rounded down, without overflow for any `u128` price.
fn pro_rata(price: u128, covered: u32) -> u128 {
    let (block, covered) = (u128::from(BLOCK_SECONDS), u128::from(covered));
    price / block * covered + price % block * covered / block
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICE: u128 = 900_000;

    fn sla() -> Sla {
        Sla {
            min_fps: 60.0,
            max_rtt_ms: 40.0,
            max_click_to_photon_ms: 80.0,
            max_loss: 0.02,
            min_met_bps: 9_500,
            price_per_block: PRICE,
        }
    }

    const GOOD: ProbeRecord =
        ProbeRecord { fps: 60.0, rtt_ms: 20.0, loss: 0.0, click_to_photon_p95_ms: Some(50.0) };
    const SLOW: ProbeRecord = ProbeRecord { fps: 30.0, ..GOOD };

    /// `good` good seconds, then `bad` slow ones.
    fn seconds(good: usize, bad: usize) -> Vec<ProbeRecord> {
        let mut v = vec![GOOD; good];
        v.extend(vec![SLOW; bad]);
        v
    }

    #[test]
    fn blocks_bill_by_the_table() {
        /// (case, records, covered seconds, min_met_bps, expected amount, expected met seconds)
        type Row = (&'static str, Vec<ProbeRecord>, u32, u16, u128, u32);
        let cases: &[Row] = &[
            ("delivered full block", seconds(900, 0), 900, 9_500, PRICE, 900),
            ("degraded: half the seconds slow", seconds(450, 450), 900, 9_500, 0, 450),
            ("exactly at the bar (855/900 = 95 %)", seconds(855, 45), 900, 9_500, PRICE, 855),
            ("one second under the bar", seconds(854, 46), 900, 9_500, 0, 854),
            ("missing seconds count as unmet", seconds(855, 0), 900, 9_500, PRICE, 855),
            ("too many missing seconds", seconds(854, 0), 900, 9_500, 0, 854),
            ("empty block: no records", vec![], 900, 9_500, 0, 0),
            ("empty block: nothing covered", vec![], 0, 9_500, 0, 0),
            ("partial last block, delivered", seconds(300, 0), 300, 9_500, PRICE / 3, 300),
            ("partial last block, at the bar", seconds(285, 15), 300, 9_500, PRICE / 3, 285),
            ("partial last block, degraded", seconds(284, 16), 300, 9_500, 0, 284),
            ("partial last block of one second", seconds(1, 0), 1, 9_500, PRICE / 900, 1),
            ("one second of a block, slow", seconds(0, 1), 1, 9_500, 0, 0),
            ("every second required", seconds(899, 1), 900, 10_000, 0, 899),
            ("every second required, all met", seconds(900, 0), 900, 10_000, PRICE, 900),
            ("lowest bar: one second in 900 suffices", seconds(1, 899), 900, 1, PRICE, 1),
        ];
        for (case, records, covered, bps, amount, met) in cases {
            let sla = Sla { min_met_bps: *bps, ..sla() };
            let bill = bill_block(records, *covered, &sla).unwrap();
            assert_eq!(bill.amount, *amount, "{case}");
            assert_eq!(bill.met_seconds, *met, "{case}");
            assert_eq!(bill.covered_seconds, *covered, "{case}");
            assert_eq!(bill.delivered, *amount > 0, "{case}");
        }
    }

    #[test]
    fn each_metric_meets_the_bar_at_its_limit_and_fails_past_it() {
        let sla = sla();
        let cases: &[(&str, ProbeRecord, bool)] = &[
            ("fps at the minimum", ProbeRecord { fps: 60.0, ..GOOD }, true),
            ("fps just under", ProbeRecord { fps: 59.99, ..GOOD }, false),
            ("rtt at the maximum", ProbeRecord { rtt_ms: 40.0, ..GOOD }, true),
            ("rtt just over", ProbeRecord { rtt_ms: 40.01, ..GOOD }, false),
            ("loss at the maximum", ProbeRecord { loss: 0.02, ..GOOD }, true),
            ("loss just over", ProbeRecord { loss: 0.0201, ..GOOD }, false),
            (
                "click-to-photon at the maximum",
                ProbeRecord { click_to_photon_p95_ms: Some(80.0), ..GOOD },
                true,
            ),
            (
                "click-to-photon just over",
                ProbeRecord { click_to_photon_p95_ms: Some(80.5), ..GOOD },
                false,
            ),
            ("no input in the second", ProbeRecord { click_to_photon_p95_ms: None, ..GOOD }, true),
            ("NaN fps", ProbeRecord { fps: f32::NAN, ..GOOD }, false),
            ("NaN rtt", ProbeRecord { rtt_ms: f32::NAN, ..GOOD }, false),
            ("NaN loss", ProbeRecord { loss: f32::NAN, ..GOOD }, false),
            (
                "NaN click-to-photon",
                ProbeRecord { click_to_photon_p95_ms: Some(f32::NAN), ..GOOD },
                false,
            ),
        ];
        for (case, record, meets) in cases {
            assert_eq!(sla.meets(record), *meets, "{case}");
            let bill = bill_block(&[*record], 1, &sla).unwrap();
            assert_eq!(bill.delivered, *meets, "{case}");
        }
    }

    #[test]
    fn pro_rata_rounds_down_and_never_overflows() {
        let price_of = |price: u128, covered: u32| {
            let sla = Sla { price_per_block: price, min_met_bps: 1, ..sla() };
            bill_block(&seconds(covered as usize, 0), covered, &sla).unwrap().amount
        };
        assert_eq!(price_of(1_000, 450), 500);
        assert_eq!(price_of(1_000, 1), 1);
        assert_eq!(price_of(899, 1), 0);
        assert_eq!(price_of(1_000, 899), 998);
        assert_eq!(price_of(u128::MAX, 900), u128::MAX);
        assert_eq!(price_of(u128::MAX, 450), u128::MAX / 2);
        assert_eq!(price_of(0, 900), 0);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            bill_block(&[], 901, &sla()),
            Err(Error::BlockTooLong { covered: 901, max: BLOCK_SECONDS })
        );
        assert_eq!(
            bill_block(&seconds(3, 0), 2, &sla()),
            Err(Error::TooManyRecords { records: 3, covered: 2 })
        );
        for bps in [0, 10_001] {
            let sla = Sla { min_met_bps: bps, ..sla() };
            assert_eq!(bill_block(&[], 900, &sla), Err(Error::InvalidSla(bps)));
        }
    }
}
