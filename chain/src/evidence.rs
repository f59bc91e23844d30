//! Evidence: what a host's signed record of a session proves, second by second, to someone
//! who trusts the host for nothing. The host signs its record, so what it says is its own
//! word; only the client's signed reports inside it are evidence of service, and only those
//! that pass every check of [`verify_record`]. The settler bills from this, and the checker
//! reads hosts through it, so both apply one rule.

use std::collections::BTreeMap;
use std::ops::Range;

use gridplay_protocol::probe::{BlockSummary, ClientKey, ProbeReport, SessionProbes};

use crate::{BLOCK_SECONDS, Error, ProbeRecord};

/// Most per-second records a host's record may hold (a host keeps one block and a few
/// seconds of grace): a longer record is refused whole.
pub const MAX_RECORDS: usize = 2 * BLOCK_SECONDS as usize;

impl From<&ProbeReport> for ProbeRecord {
    /// The billing rule's view of a client report: `fps = fps_centi / 100`,
    /// `rtt_ms = rtt_us / 1000` (NaN, failing the bar, when not measured),
    /// `loss = loss_ppm / 1e6` (0 when not measured) and
    /// `click_to_photon_p95_ms = click_to_photon_p95_us / 1000`.
    fn from(r: &ProbeReport) -> Self {
        Self {
            fps: r.fps_centi as f32 / 100.0,
            rtt_ms: r.rtt_us.map_or(f32::NAN, |us| us as f32 / 1000.0),
            loss: r.loss_ppm.map_or(0.0, |ppm| ppm as f32 / 1e6),
            click_to_photon_p95_ms: r.click_to_photon_p95_us.map(|us| us as f32 / 1000.0),
        }
    }
}

/// What the reader knows of a session without asking its host.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The broker's session id.
    pub session_id: &'a str,
    /// The host the session was allocated on (its ed25519 id).
    pub host_id: &'a str,
    /// The key the player named at allocation; without one no report counts.
    pub client_key: Option<&'a ClientKey>,
    /// When the session was allocated, Unix ms: no host second can start before it.
    pub allocated_ms: u64,
    /// The reader's clock, Unix ms: a second counts only once it has begun by then.
    pub now_ms: u64,
}

/// Why a client report in a host's record does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// Unsigned, forged, not signed by the session's client key, or with impossible values.
    Forged,
    /// Signed by the session's key, but naming another session.
    OtherSession,
    /// Its second or its `seq` is not above those of the report counted before it: a second
    /// claimed twice, a report used twice, or reports out of order.
    Repeated,
    /// Filed under a second that had not begun by the reader's clock, counting from the
    /// allocation: more seconds than have passed.
    Future,
}

/// Discarded client reports, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Discarded {
    /// See [`Discard::Forged`].
    pub forged: u32,
    /// See [`Discard::OtherSession`].
    pub other_session: u32,
    /// See [`Discard::Repeated`].
    pub repeated: u32,
    /// See [`Discard::Future`].
    pub future: u32,
}

impl Discarded {
    /// Counts one discarded report.
    pub fn count(&mut self, why: Discard) {
        let counter = match why {
            Discard::Forged => &mut self.forged,
            Discard::OtherSession => &mut self.other_session,
            Discard::Repeated => &mut self.repeated,
            Discard::Future => &mut self.future,
        };
        *counter = counter.saturating_add(1);
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Discarded) {
        self.forged = self.forged.saturating_add(other.forged);
        self.other_session = self.other_session.saturating_add(other.other_session);
        self.repeated = self.repeated.saturating_add(other.repeated);
        self.future = self.future.saturating_add(other.future);
    }

    /// All of them.
    pub fn total(&self) -> u32 {
        [self.forged, self.other_session, self.repeated, self.future]
            .into_iter()
            .fold(0, u32::saturating_add)
    }
}

/// A host's record of a session with its client reports checked.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The record as the host signed it: its word, not evidence (its `blocks` say which
    /// blocks the host holds complete; its `records` include reports that do not count).
    pub probes: SessionProbes,
    /// Seconds begun from the allocation to the reader's clock (one in progress counts).
    elapsed: u64,
    /// The client reports that count, by second.
    seconds: BTreeMap<u32, ProbeRecord>,
    /// The reports that do not, with the second each was filed under.
    discarded: Vec<(u32, Discard)>,
}

/// One block as the evidence shows it, ready for [`crate::bill_block`].
#[derive(Debug, Clone, PartialEq)]
pub struct BlockEvidence {
    /// Seconds the block covered (see [`Evidence::block`]).
    pub covered: u32,
    /// The counted client reports among them, at most one a second.
    pub records: Vec<ProbeRecord>,
    /// Reports filed under any second of the block that do not count.
    pub discarded: Discarded,
    /// The host claims seconds of the block that have not begun by the reader's clock:
    /// `covered` stops at what has, and the block is best read again later.
    pub early: bool,
}

/// Reads a host's signed record of a session (`body` as fetched and `signature`, the
/// `gridplay-signature` header) as evidence. The whole record is refused
/// ([`Error::BadRecord`]) when the signature is missing or not `expected.host_id`'s, or the
/// body does not parse, names another host or session, or holds more than [`MAX_RECORDS`]
/// seconds. Otherwise a client report counts for its second only when all hold:
/// - it verifies against `expected.client_key` (values possible, signature the key's),
/// - it names `expected.session_id`,
/// - its second had begun by `expected.now_ms`, counting from `expected.allocated_ms` (so
///   never more seconds than have passed, a second in progress counting as one: a host
///   finishing a session covers the second it ends in),
/// - its second and its `seq` are both above those of the report counted before it.
///
/// Every other report is discarded and counted by reason ([`Discard`]); it is never billed.
pub fn verify_record(
    body: &[u8],
    signature: Option<&str>,
    expected: &Expected<'_>,
) -> Result<Evidence, Error> {
    let probes = SessionProbes::from_signed(body, signature, expected.host_id)
        .map_err(|e| Error::BadRecord(e.to_string()))?;
    if probes.session_id != expected.session_id {
        return Err(Error::BadRecord("the record is of another session".into()));
    }
    if probes.records.len() > MAX_RECORDS {
        return Err(Error::BadRecord(format!("more than {MAX_RECORDS} seconds")));
    }
    let elapsed = expected.now_ms.saturating_sub(expected.allocated_ms).div_ceil(1000);
    let mut seconds = BTreeMap::new();
    let mut discarded = Vec::new();
    let mut last: Option<(u32, u32)> = None;
    for record in &probes.records {
        let Some(signed) = &record.client else { continue };
        let report = &signed.report;
        let why = if expected.client_key.is_none_or(|key| signed.verify(key).is_err()) {
            Discard::Forged
        } else if report.session_id != expected.session_id {
            Discard::OtherSession
        } else if u64::from(record.second) >= elapsed {
            Discard::Future
        } else if last.is_some_and(|(second, seq)| record.second <= second || report.seq <= seq) {
            Discard::Repeated
        } else {
            last = Some((record.second, report.seq));
            seconds.insert(record.second, ProbeRecord::from(report));
            continue;
        };
        discarded.push((record.second, why));
    }
    Ok(Evidence { probes, elapsed, seconds, discarded })
}

impl Evidence {
    /// The block's seconds as billing takes them. `covered` is the seconds the session
    /// covered: the whole block unless it is the last block the record holds, the host's
    /// `seconds_covered` for the last one but never fewer than its counted reports reach;
    /// in either case never past the seconds that have begun by the reader's clock (then
    /// [`BlockEvidence::early`]).
    pub fn block(&self, block: &BlockSummary) -> BlockEvidence {
        let first = block.block.saturating_mul(BLOCK_SECONDS);
        let whole = first..first.saturating_add(BLOCK_SECONDS);
        let last = self.probes.blocks.iter().map(|b| b.block).max();
        let claimed = if last == Some(block.block) {
            let reached = self
                .seconds
                .range(whole.clone())
                .next_back()
                .map(|(s, _)| s.saturating_add(1) - first);
            block.seconds_covered.max(reached.unwrap_or(0))
        } else {
            BLOCK_SECONDS
        };
        let passed = self.elapsed.saturating_sub(u64::from(first)).min(u64::from(BLOCK_SECONDS));
        let claimed = claimed.min(BLOCK_SECONDS);
        let covered = claimed.min(passed as u32);
        let counted: Range<u32> = first..first.saturating_add(covered);
        let mut discarded = Discarded::default();
        for (_, why) in self.discarded.iter().filter(|(second, _)| whole.contains(second)) {
            discarded.count(*why);
        }
        BlockEvidence {
            covered,
            records: self.seconds.range(counted).map(|(_, r)| *r).collect(),
            discarded,
            early: covered < claimed,
        }
    }

    /// How many client reports count, over the whole record.
    pub fn seconds_counted(&self) -> usize {
        self.seconds.len()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use ed25519_dalek::Signer;
    use gridplay_protocol::probe::{
        Address, HostFigures, RejectedReports, SecondRecord, SignedProbeReport,
    };
    use k256::ecdsa::SigningKey;

    use super::*;
    use crate::{Sla, bill_block};

    const SESSION: &str = "s1";
    /// Allocated at this time; the host's seconds count from it.
    const ALLOCATED_MS: u64 = 1_000_000;

    fn player() -> SigningKey {
        SigningKey::from_slice(&[0x11; 32]).unwrap()
    }

    fn host_key() -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[0x22; 32])
    }

    fn host_id() -> String {
        B64.encode(host_key().verifying_key().as_bytes())
    }

    fn client_key() -> ClientKey {
        ClientKey::Address(Address::of(player().verifying_key()))
    }

    /// What a client reports for one good second of `session`.
    fn report(session: &str, seq: u32) -> ProbeReport {
        ProbeReport {
            session_id: session.into(),
            seq,
            interval_ms: 1000,
            frames_presented: 60,
            frames_decoded: 60,
            fps_centi: 6000,
            decode_us: Some(2000),
            jitter_us: Some(500),
            loss_ppm: Some(0),
            rtt_us: Some(10_000),
            click_to_photon_p50_us: None,
            click_to_photon_p95_us: None,
            click_to_photon_samples: 0,
            audio_packets_lost: None,
            audio_concealed_samples: None,
        }
    }

    /// The player's genuine report of `second`, as the client signs it.
    fn genuine(session: &str, second: u32) -> SignedProbeReport {
        report(session, second + 1).sign(&player())
    }

    fn second(second: u32, client: Option<SignedProbeReport>) -> SecondRecord {
        let start_ms = ALLOCATED_MS + u64::from(second) * 1000;
        SecondRecord { second, start_ms, host: HostFigures::default(), client }
    }

    /// A record of `seconds`, one ended block whose `seconds_covered` the host states.
    fn record(session: &str, seconds: Vec<SecondRecord>, covered: u32) -> SessionProbes {
        let block = BlockSummary {
            block: 0,
            start_ms: ALLOCATED_MS,
            complete: true,
            seconds_covered: covered,
            seconds_with_client_report: 0,
            ..BlockSummary::default()
        };
        SessionProbes {
            session_id: session.into(),
            host_id: host_id(),
            client_key: Some(client_key().to_string()),
            started_at_ms: ALLOCATED_MS,
            now_ms: ALLOCATED_MS + 900_000,
            ended: true,
            reports_valid: 0,
            reports_rejected: RejectedReports::default(),
            records: seconds,
            blocks: vec![block],
        }
    }

    /// Seconds the sessions of these tests last (one short, last block: signing and
    /// verifying hundreds of reports is slow in a debug build).
    const SECONDS: u32 = 20;

    /// An honest host's record of an ended session, every second with the client's report.
    fn honest(session: &str) -> SessionProbes {
        let seconds = (0..SECONDS).map(|s| second(s, Some(genuine(session, s)))).collect();
        record(session, seconds, SECONDS)
    }

    /// The body and signature a host serves for `probes`.
    fn served(probes: &SessionProbes) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(probes).unwrap();
        let signature = B64.encode(host_key().sign(&body).to_bytes());
        (body, signature)
    }

    /// Reads `probes` as served, at `now_ms`.
    fn read(probes: &SessionProbes, now_ms: u64) -> Result<Evidence, Error> {
        let (body, signature) = served(probes);
        let key = client_key();
        let host = host_id();
        let expected = Expected {
            session_id: SESSION,
            host_id: &host,
            client_key: Some(&key),
            allocated_ms: ALLOCATED_MS,
            now_ms,
        };
        verify_record(&body, Some(&signature), &expected)
    }

    /// Well after the session ended.
    const LATER: u64 = ALLOCATED_MS + 60_000;

    /// What a session of [`SECONDS`] delivered in full bills.
    const FULL: u128 = 20_000;

    /// (covered, counted reports, discarded) of block 0, and what it bills at 900 000 wei.
    fn outcome(probes: &SessionProbes, now_ms: u64) -> (u32, usize, Discarded, u128) {
        let evidence = read(probes, now_ms).unwrap();
        let block = evidence.block(&evidence.probes.blocks[0]);
        let sla = Sla {
            min_fps: 54.0,
            max_rtt_ms: 40.0,
            max_click_to_photon_ms: 80.0,
            max_loss: 0.02,
            min_met_bps: 9_000,
            price_per_block: 900_000,
        };
        let bill = bill_block(&block.records, block.covered, &sla).unwrap();
        (block.covered, block.records.len(), block.discarded, bill.amount)
    }

    #[test]
    fn an_honest_record_is_evidence_of_every_second() {
        let evidence = read(&honest(SESSION), LATER).unwrap();
        assert!(!evidence.block(&evidence.probes.blocks[0]).early);
        assert_eq!(outcome(&honest(SESSION), LATER), (SECONDS, 20, Discarded::default(), FULL));
    }

    #[test]
    fn a_lying_host_is_paid_only_for_what_the_client_signed() {
        let intruder = SigningKey::from_slice(&[0x33; 32]).unwrap();
        /// Replaces the client report of every second from 5 on with `lie(second)`.
        fn lie_from_5(lie: impl Fn(u32) -> Option<SignedProbeReport>) -> SessionProbes {
            let mut probes = honest(SESSION);
            for r in probes.records.iter_mut().skip(5) {
                r.client = lie(r.second);
            }
            probes
        }
        let forged = |n| Discarded { forged: n, ..Discarded::default() };
        let cases: Vec<(&str, SessionProbes, Discarded)> = vec![
            (
                "invents seconds, signed with its own key",
                lie_from_5(|s| Some(report(SESSION, s + 1).sign(&intruder))),
                forged(15),
            ),
            (
                "invents seconds, unsigned",
                lie_from_5(|s| {
                    Some(SignedProbeReport { report: report(SESSION, s + 1), signature: "".into() })
                }),
                forged(15),
            ),
            (
                "improves the client's figures",
                lie_from_5(|s| {
                    let mut signed = genuine(SESSION, s);
                    signed.report.rtt_us = Some(1_000);
                    Some(signed)
                }),
                forged(15),
            ),
            (
                "fills them with the player's reports from another session",
                lie_from_5(|s| Some(genuine("s2", s))),
                Discarded { other_session: 15, ..Discarded::default() },
            ),
            (
                "repeats genuine seconds",
                lie_from_5(|s| Some(genuine(SESSION, s % 5))),
                Discarded { repeated: 15, ..Discarded::default() },
            ),
        ];
        for (case, probes, discarded) in cases {
            let (covered, counted, got, amount) = outcome(&probes, LATER);
            assert_eq!((covered, counted, got, amount), (SECONDS, 5, discarded, 0), "{case}");
        }
    }

    #[test]
    fn a_second_claimed_twice_counts_once_and_spoils_nothing_else() {
        let mut probes = honest(SESSION);
        probes.records.insert(5, second(5, Some(genuine(SESSION, 5))));
        probes.records.insert(7, second(6, Some(genuine(SESSION, 6))));
        let repeated = Discarded { repeated: 2, ..Discarded::default() };
        assert_eq!(outcome(&probes, LATER), (SECONDS, 20, repeated, FULL));
    }

    #[test]
    fn no_more_seconds_count_than_have_passed_since_the_allocation() {
        // 11.5 s after the allocation (12 seconds begun), the host claims a session of 20 s
        // that has ended.
        let now = ALLOCATED_MS + 11_500;
        let evidence = read(&honest(SESSION), now).unwrap();
        assert!(evidence.block(&evidence.probes.blocks[0]).early);
        let (covered, counted, discarded, amount) = outcome(&honest(SESSION), now);
        assert_eq!((covered, counted, discarded.future), (12, 12, 8));
        assert_eq!(amount, 12_000, "pro rata to what passed, never more");
        // A host whose clock runs fast files reports under seconds that have not ended.
        let mut probes = honest(SESSION);
        probes.blocks[0].seconds_covered = 2 * SECONDS;
        for r in &mut probes.records {
            r.second *= 2;
        }
        let (covered, counted, discarded, _) = outcome(&probes, ALLOCATED_MS + 30_000);
        assert_eq!((covered, counted, discarded.future), (30, 15, 5));
    }

    #[test]
    fn a_truncated_last_block_still_covers_the_seconds_the_client_signed() {
        // The last 10 seconds were slow, as the client signed; the host claims the session
        // ended after 10 s.
        let mut truncated = honest(SESSION);
        truncated.blocks[0].seconds_covered = 10;
        for r in truncated.records.iter_mut().skip(10) {
            r.client = Some(
                ProbeReport { fps_centi: 1000, ..report(SESSION, r.second + 1) }.sign(&player()),
            );
        }
        let (covered, counted, _, amount) = outcome(&truncated, LATER);
        assert_eq!((covered, counted, amount), (SECONDS, 20, 0));
        // Not being the last block, a block covers all its seconds whatever the host says.
        let mut early = honest(SESSION);
        early.blocks.push(BlockSummary { block: 1, ..early.blocks[0].clone() });
        let (covered, _, _, amount) = outcome(&early, ALLOCATED_MS + 1_000_000);
        assert_eq!((covered, amount), (900, 0));
    }

    #[test]
    fn records_not_signed_by_the_session_host_or_of_another_session_are_refused_whole() {
        let probes = honest(SESSION);
        let (body, signature) = served(&probes);
        let key = client_key();
        let host = host_id();
        let expected = Expected {
            session_id: SESSION,
            host_id: &host,
            client_key: Some(&key),
            allocated_ms: ALLOCATED_MS,
            now_ms: LATER,
        };
        let refused = |body: &[u8], signature: Option<&str>, expected: &Expected<'_>| {
            matches!(verify_record(body, signature, expected), Err(Error::BadRecord(_)))
        };
        assert!(refused(&body, None, &expected), "unsigned");
        let other = ed25519_dalek::SigningKey::from_bytes(&[0x44; 32]);
        let forged = B64.encode(other.sign(&body).to_bytes());
        assert!(refused(&body, Some(&forged), &expected), "signed by another key");
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        assert!(refused(&tampered, Some(&signature), &expected), "changed after signing");
        let other_id = B64.encode(other.verifying_key().as_bytes());
        let elsewhere = Expected { host_id: &other_id, ..expected };
        assert!(refused(&body, Some(&forged), &elsewhere), "names another host");
        // Another session's genuine record, served for this one.
        let (theirs, their_signature) = served(&honest("s2"));
        assert!(refused(&theirs, Some(&their_signature), &expected), "another session");
        let mut long = honest(SESSION);
        long.records.extend((SECONDS..=MAX_RECORDS as u32).map(|s| second(s, None)));
        let (body, signature) = served(&long);
        assert!(refused(&body, Some(&signature), &expected), "too long");
    }

    #[test]
    fn without_a_client_key_nothing_counts() {
        let (body, signature) = served(&honest(SESSION));
        let host = host_id();
        let expected = Expected {
            session_id: SESSION,
            host_id: &host,
            client_key: None,
            allocated_ms: ALLOCATED_MS,
            now_ms: LATER,
        };
        let evidence = verify_record(&body, Some(&signature), &expected).unwrap();
        assert_eq!(evidence.seconds_counted(), 0);
        assert_eq!(evidence.block(&evidence.probes.blocks[0]).discarded.forged, SECONDS);
    }
}
