//! One session's probe log: per-second records (the host's own figures plus
//! the client's verified report) and per-15-minute block summaries.
//!
//! Sans-I/O: every call takes `now` (Unix milliseconds); nothing here reads a
//! clock, so tests run hours of session in microseconds. Seconds are counted
//! on the host's clock from the session's start: second `s` is
//! `[start + 1000 s, start + 1000 (s + 1))` and block `b` holds seconds
//! `900 b .. 900 (b + 1)`.
//!
//! A client report (one a second, see [`gridplay_protocol::probe`]) is
//! accepted when it is valid, signed by the session's client key, names this
//! session and has a higher `seq` than the last accepted one; it fills **the
//! earliest second without a report among the [`REPORT_GRACE_SECONDS`] before
//! the current one and the current one** — so reports that arrive on either
//! side of a second boundary, or up to two seconds late, still land one per
//! second (a client's seconds may then run up to two behind the host's), while
//! a client sending faster than once a second cannot fill more seconds than
//! have passed.
//!
//! Memory is bounded: the log keeps the last 15 minutes of records (plus the
//! grace seconds) and one small summary per block. What a block means for
//! billing is the billing rule's business (`gridplay_chain::bill_block`); this
//! only summarises.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use gridplay_protocol::ProtocolError;
use gridplay_protocol::probe::{
    BlockSummary, ClientKey, HostFigures, RejectedReports, SecondRecord, SessionProbes,
    SignedProbeReport,
};

use crate::dashboard::History;

/// Seconds in one block (15 minutes).
pub const BLOCK_SECONDS: u32 = 900;
/// How many seconds before the current one a late report may still fill.
pub const REPORT_GRACE_SECONDS: u32 = 2;
/// Ended seconds kept: a whole block plus the grace, so that a block is
/// still all in memory when it is summarised.
const KEPT_SECONDS: usize = (BLOCK_SECONDS + REPORT_GRACE_SECONDS + 1) as usize;
/// Seconds a running session's [`PlayerFigures`] span.
const RECENT_SECONDS: usize = 10;

/// What the player saw, from its signed reports: over the last [`RECENT_SECONDS`]
/// while the session runs, over the whole session once it has ended.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PlayerFigures {
    /// Mean frames a second presented.
    pub fps: Option<f64>,
    /// Mean round-trip time, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Median click-to-photon, milliseconds.
    pub click_to_photon_ms: Option<f64>,
    /// Reports accepted over the whole session.
    pub reports: u32,
}

/// What the session loop knows about one frame it handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameFigures {
    /// Whether the encoder produced output for it.
    pub encoded: bool,
    /// Whether it went out on RTP.
    pub sent: bool,
    /// Encoded bytes.
    pub bytes: usize,
    /// From the start of the frame to the end of its encode, microseconds.
    pub render_encode_us: u32,
}

/// Why a client report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The session has no client key to check reports against.
    #[error("the session has no client key")]
    NoClientKey,
    /// The report held impossible values.
    #[error("{0}")]
    Invalid(ProtocolError),
    /// The signature was malformed or not the session key's.
    #[error("the signature is not the session key's")]
    BadSignature,
    /// The report names another session.
    #[error("the report is for another session")]
    WrongSession,
    /// `seq` is not above the last accepted one.
    #[error("seq {seq} is not above {last}")]
    Replayed {
        /// The report's seq.
        seq: u32,
        /// The last accepted seq.
        last: u32,
    },
    /// Every second a report could fill has one already.
    #[error("more than one report a second")]
    TooFrequent,
    /// The session is over; the log no longer changes (not counted).
    #[error("the session has ended")]
    Ended,
}

/// The second being lived now: host figures accumulate, a report may land.
#[derive(Debug, Default)]
struct OpenSecond {
    host: HostFigures,
    bytes: u64,
    render_encode_us: Vec<u32>,
    client: Option<SignedProbeReport>,
}

impl OpenSecond {
    fn close(mut self, second: u32, start_ms: u64) -> SecondRecord {
        self.host.bitrate_bps = self.bytes * 8;
        self.host.render_encode_p50_us = percentile(&mut self.render_encode_us, 50);
        SecondRecord { second, start_ms, host: self.host, client: self.client }
    }
}

/// The probe log of one session.
#[derive(Debug)]
pub struct ProbeLog {
    session_id: String,
    host_id: String,
    client_key: Option<ClientKey>,
    start_ms: u64,
    /// The second being lived (index), and its contents.
    now_second: u32,
    open: OpenSecond,
    /// Ended seconds, consecutive, the latest last.
    records: VecDeque<SecondRecord>,
    /// Summaries of complete blocks.
    blocks: Vec<BlockSummary>,
    last_seq: u32,
    valid: u32,
    rejected: RejectedReports,
    ended: bool,
    /// Seconds before this one went to [`ProbeLog::take_final`] already.
    final_from: u32,
}

impl ProbeLog {
    /// A log for a session starting at `now_ms`, whose reports `client_key` must sign.
    pub fn new(
        session_id: String,
        host_id: String,
        client_key: Option<ClientKey>,
        now_ms: u64,
    ) -> Self {
        Self {
            session_id,
            host_id,
            client_key,
            start_ms: now_ms,
            now_second: 0,
            open: OpenSecond::default(),
            records: VecDeque::with_capacity(KEPT_SECONDS),
            blocks: Vec::new(),
            last_seq: 0,
            valid: 0,
            rejected: RejectedReports::default(),
            ended: false,
            final_from: 0,
        }
    }

    /// Counts one frame the session loop handled at `now_ms`.
    pub fn frame(&mut self, now_ms: u64, frame: FrameFigures) {
        if self.ended {
            return;
        }
        self.advance(now_ms);
        let host = &mut self.open.host;
        host.frames_rendered += 1;
        host.frames_encoded += u32::from(frame.encoded);
        host.frames_sent += u32::from(frame.sent);
        if frame.sent {
            self.open.bytes += frame.bytes as u64;
        }
        self.open.render_encode_us.push(frame.render_encode_us);
    }

    /// Checks a client report that arrived at `now_ms` and files it under a
    /// second (returned); a refused one is counted by reason.
    pub fn client_report(
        &mut self,
        now_ms: u64,
        report: SignedProbeReport,
    ) -> Result<u32, Rejection> {
        self.advance(now_ms);
        let result = self.check(&report);
        let result = result.and_then(|()| self.file(report));
        match &result {
            Ok(_) => self.valid += 1,
            Err(Rejection::Ended) => {}
            Err(rejection) => {
                let r = &mut self.rejected;
                let counter = match rejection {
                    Rejection::NoClientKey => &mut r.no_client_key,
                    Rejection::Invalid(_) => &mut r.invalid,
                    Rejection::BadSignature => &mut r.bad_signature,
                    Rejection::WrongSession => &mut r.wrong_session,
                    Rejection::Replayed { .. } => &mut r.replayed,
                    Rejection::TooFrequent | Rejection::Ended => &mut r.too_frequent,
                };
                *counter += 1;
            }
        }
        result
    }

    /// Counts a message on the probes channel that was not even a report.
    pub fn malformed_message(&mut self) {
        self.rejected.invalid += 1;
    }

    fn check(&self, signed: &SignedProbeReport) -> Result<(), Rejection> {
        if self.ended {
            return Err(Rejection::Ended);
        }
        let key = self.client_key.as_ref().ok_or(Rejection::NoClientKey)?;
        signed.report.validate().map_err(Rejection::Invalid)?;
        signed.verify(key).map_err(|_| Rejection::BadSignature)?;
        if signed.report.session_id != self.session_id {
            return Err(Rejection::WrongSession);
        }
        if signed.report.seq <= self.last_seq {
            return Err(Rejection::Replayed { seq: signed.report.seq, last: self.last_seq });
        }
        Ok(())
    }

    /// Puts a checked report in the earliest second of the window that has none.
    fn file(&mut self, signed: SignedProbeReport) -> Result<u32, Rejection> {
        let seq = signed.report.seq;
        let recent = self.records.len().saturating_sub(REPORT_GRACE_SECONDS as usize);
        let second =
            if let Some(record) = self.records.range_mut(recent..).find(|r| r.client.is_none()) {
                record.client = Some(signed);
                record.second
            } else if self.open.client.is_none() {
                self.open.client = Some(signed);
                self.now_second
            } else {
                return Err(Rejection::TooFrequent);
            };
        self.last_seq = seq;
        Ok(second)
    }

    /// Closes every second that ended by `now_ms` (a clock that went back is
    /// taken as standing still).
    fn advance(&mut self, now_ms: u64) {
        let target = (now_ms.saturating_sub(self.start_ms) / 1000).min(u64::from(u32::MAX)) as u32;
        while self.now_second < target {
            self.close_second();
        }
    }

    fn close_second(&mut self) {
        let second = self.now_second;
        let record = std::mem::take(&mut self.open).close(second, self.second_start(second));
        self.records.push_back(record);
        self.now_second += 1;
        // A block is complete once no report can land in it any more.
        if self.now_second % BLOCK_SECONDS == REPORT_GRACE_SECONDS
            && self.now_second > BLOCK_SECONDS
        {
            self.complete_block(self.now_second / BLOCK_SECONDS - 1);
        }
        while self.records.len() > KEPT_SECONDS {
            self.records.pop_front();
        }
    }

    fn complete_block(&mut self, block: u32) {
        let summary = self.summarise(block, true);
        self.blocks.push(summary);
    }

    fn second_start(&self, second: u32) -> u64 {
        self.start_ms + u64::from(second) * 1000
    }

    /// Summarises `block` from the records in memory.
    fn summarise(&self, block: u32, complete: bool) -> BlockSummary {
        let first = block * BLOCK_SECONDS;
        let seconds: Vec<&SecondRecord> = self
            .records
            .iter()
            .filter(|r| r.second >= first && r.second < first + BLOCK_SECONDS)
            .collect();
        summarise(block, self.second_start(first), complete, &seconds)
    }

    /// Ends the log at `now_ms`: the second in progress counts as covered,
    /// and every block is complete. Later frames and reports are ignored.
    pub fn finish(&mut self, now_ms: u64) {
        if self.ended {
            return;
        }
        self.advance(now_ms);
        self.close_second();
        let done = self.blocks.len() as u32;
        let last = (self.now_second - 1) / BLOCK_SECONDS;
        for block in done..=last {
            self.complete_block(block);
        }
        self.ended = true;
    }

    /// Hands `each` every second closed for good since the last call: one no
    /// report can land in any more, or any once the log has ended.
    pub fn take_final(&mut self, mut each: impl FnMut(&SecondRecord)) {
        let through = self.final_through();
        if through <= self.final_from {
            return;
        }
        let from = self.final_from;
        self.records.iter().filter(|r| r.second >= from && r.second < through).for_each(&mut each);
        self.final_from = through;
    }

    /// Whether some second closed for good has not gone to [`take_final`](Self::take_final) yet.
    pub fn has_final(&self) -> bool {
        self.final_through() > self.final_from
    }

    /// The seconds before this one are closed for good.
    fn final_through(&self) -> u32 {
        match self.ended {
            true => self.now_second,
            false => self.now_second.saturating_sub(REPORT_GRACE_SECONDS),
        }
    }

    /// What the player saw as of `now_ms` ([`PlayerFigures`]).
    pub fn player_figures(&mut self, now_ms: u64) -> PlayerFigures {
        if self.ended {
            return self.whole_session_figures();
        }
        self.advance(now_ms);
        let mut reports: Vec<&gridplay_protocol::probe::ProbeReport> = self
            .records
            .iter()
            .rev()
            .take(RECENT_SECONDS)
            .filter_map(|r| r.client.as_ref().map(|c| &c.report))
            .collect();
        reports.extend(self.open.client.as_ref().map(|c| &c.report));
        let fps = mean(reports.iter().map(|r| f64::from(r.fps_centi) / 100.0).collect());
        let rtt_ms =
            mean(reports.iter().filter_map(|r| r.rtt_us).map(|us| f64::from(us) / 1e3).collect());
        let mut clicks: Vec<u32> =
            reports.iter().filter_map(|r| r.click_to_photon_p50_us).collect();
        let click_to_photon_ms = percentile(&mut clicks, 50).map(|us| f64::from(us) / 1e3);
        PlayerFigures { fps, rtt_ms, click_to_photon_ms, reports: self.valid }
    }

    /// The figures of an ended session, from its blocks, each weighed by its samples.
    fn whole_session_figures(&self) -> PlayerFigures {
        let weighed = |value: fn(&BlockSummary) -> Option<f64>,
                       weight: fn(&BlockSummary) -> u32| {
            let (sum, total) = self
                .blocks
                .iter()
                .filter_map(|b| value(b).map(|v| (v * f64::from(weight(b)), weight(b))))
                .fold((0.0, 0), |(s, t), (v, w)| (s + v, t + w));
            (total > 0).then(|| sum / f64::from(total))
        };
        let reported = |b: &BlockSummary| b.seconds_with_client_report;
        PlayerFigures {
            fps: weighed(|b| b.fps_mean, reported),
            rtt_ms: weighed(|b| b.rtt_ms_mean, reported),
            click_to_photon_ms: weighed(
                |b| b.click_to_photon_p50_ms,
                |b| b.click_to_photon_samples,
            ),
            reports: self.valid,
        }
    }

    /// Everything the log holds as of `now_ms`: the kept records, every
    /// complete block and summaries of the blocks still open.
    pub fn snapshot(&mut self, now_ms: u64) -> SessionProbes {
        if !self.ended {
            self.advance(now_ms);
        }
        let mut blocks = self.blocks.clone();
        if !self.ended && self.now_second > 0 {
            let done = self.blocks.len() as u32;
            let last = (self.now_second - 1) / BLOCK_SECONDS;
            blocks.extend((done..=last).map(|b| self.summarise(b, false)));
        }
        SessionProbes {
            session_id: self.session_id.clone(),
            host_id: self.host_id.clone(),
            client_key: self.client_key.as_ref().map(ToString::to_string),
            started_at_ms: self.start_ms,
            now_ms,
            ended: self.ended,
            reports_valid: self.valid,
            reports_rejected: self.rejected,
            records: self.records.iter().cloned().collect(),
            blocks,
        }
    }
}

/// A block's summary from its records.
fn summarise(block: u32, start_ms: u64, complete: bool, seconds: &[&SecondRecord]) -> BlockSummary {
    let reports: Vec<_> =
        seconds.iter().filter_map(|r| r.client.as_ref()).map(|c| &c.report).collect();
    let micros = |f: fn(&gridplay_protocol::probe::ProbeReport) -> Option<u32>| {
        reports.iter().filter_map(|r| f(r)).collect::<Vec<u32>>()
    };
    let ms = |us: Vec<u32>| us.into_iter().map(|v| f64::from(v) / 1000.0).collect::<Vec<_>>();
    let fps: Vec<f64> = reports.iter().map(|r| f64::from(r.fps_centi) / 100.0).collect();
    let to_ms = |v: Option<u32>| v.map(|us| f64::from(us) / 1000.0);
    let bitrates: Vec<f64> = seconds.iter().map(|r| r.host.bitrate_bps as f64).collect();
    BlockSummary {
        block,
        start_ms,
        complete,
        seconds_covered: seconds.len() as u32,
        seconds_with_client_report: reports.len() as u32,
        fps_min: fps.iter().copied().reduce(f64::min),
        fps_mean: mean(fps),
        rtt_ms_mean: mean(ms(micros(|r| r.rtt_us))),
        loss_mean: mean(micros(|r| r.loss_ppm).into_iter().map(|p| f64::from(p) / 1e6).collect()),
        jitter_ms_mean: mean(ms(micros(|r| r.jitter_us))),
        decode_ms_mean: mean(ms(micros(|r| r.decode_us))),
        click_to_photon_p50_ms: to_ms(percentile(&mut micros(|r| r.click_to_photon_p50_us), 50)),
        click_to_photon_p95_ms: to_ms(percentile(&mut micros(|r| r.click_to_photon_p95_us), 95)),
        click_to_photon_samples: reports.iter().map(|r| r.click_to_photon_samples).sum(),
        frames_sent: seconds.iter().map(|r| u64::from(r.host.frames_sent)).sum(),
        bitrate_bps_mean: mean(bitrates),
        render_encode_p50_ms: to_ms(percentile(
            &mut seconds.iter().filter_map(|r| r.host.render_encode_p50_us).collect::<Vec<_>>(),
            50,
        )),
    }
}

/// The mean of `values`; `None` for none.
fn mean(values: Vec<f64>) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The `p`th percentile by nearest rank (the smallest value with at least
/// `p` % of the values at or below it); `None` for no values.
fn percentile(values: &mut [u32], p: u32) -> Option<u32> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (values.len() * p as usize).div_ceil(100).max(1);
    Some(values[rank - 1])
}

/// Where the host reads the time for its probe logs: the system clock, or a clock its owner
/// moves, to run a session's seconds without waiting for them.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    /// A clock that stands at `start_ms` (Unix ms) until [moved](Clock::advance).
    pub fn manual(start_ms: u64) -> Self {
        Self(Some(Arc::new(AtomicU64::new(start_ms))))
    }

    /// Moves a manual clock on by `ms`; the system clock moves by itself.
    pub fn advance(&self, ms: u64) {
        if let Some(at) = &self.0 {
            at.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// Now, Unix ms.
    pub fn now_ms(&self) -> u64 {
        match &self.0 {
            Some(at) => at.load(Ordering::SeqCst),
            None => {
                SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
            }
        }
    }
}

/// A running session's probe log on the host's [`Clock`], shared by the session and the
/// probes endpoint.
pub struct SessionLog {
    log: Mutex<ProbeLog>,
    clock: Clock,
    /// Where seconds closed for good are counted, if anywhere.
    history: Option<Arc<Mutex<History>>>,
}

impl SessionLog {
    /// A log for a session starting now on `clock`, whose reports `client_key` must sign.
    pub fn new(
        session_id: String,
        host_id: String,
        client_key: Option<ClientKey>,
        clock: Clock,
    ) -> Self {
        let log = ProbeLog::new(session_id, host_id, client_key, clock.now_ms());
        Self { log: Mutex::new(log), clock, history: None }
    }

    /// Counts each second in `history` once it is closed for good.
    pub fn with_history(mut self, history: Arc<Mutex<History>>) -> Self {
        self.history = Some(history);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProbeLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the seconds closed for good to the history.
    fn feed_history(&self, log: &mut ProbeLog) {
        // Once a second at most: every frame comes through here.
        if let Some(history) = self.history.as_ref().filter(|_| log.has_final()) {
            let mut history = history.lock().unwrap_or_else(|p| p.into_inner());
            log.take_final(|second| history.record(second));
        }
    }

    /// See [`ProbeLog::frame`].
    pub fn frame(&self, frame: FrameFigures) {
        let mut log = self.lock();
        log.frame(self.clock.now_ms(), frame);
        self.feed_history(&mut log);
    }

    /// See [`ProbeLog::client_report`].
    pub fn client_report(&self, signed: SignedProbeReport) -> Result<u32, Rejection> {
        let mut log = self.lock();
        let filed = log.client_report(self.clock.now_ms(), signed);
        self.feed_history(&mut log);
        filed
    }

    /// When the session started, Unix ms.
    pub fn started_at_ms(&self) -> u64 {
        self.lock().start_ms
    }

    /// See [`ProbeLog::player_figures`].
    pub fn player_figures(&self) -> PlayerFigures {
        self.lock().player_figures(self.clock.now_ms())
    }

    /// See [`ProbeLog::malformed_message`].
    pub fn malformed_message(&self) {
        self.lock().malformed_message();
    }

    /// See [`ProbeLog::finish`].
    pub fn finish(&self) {
        let mut log = self.lock();
        log.finish(self.clock.now_ms());
        self.feed_history(&mut log);
    }

    /// See [`ProbeLog::snapshot`].
    pub fn snapshot(&self) -> SessionProbes {
        self.lock().snapshot(self.clock.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use gridplay_protocol::probe::{Address, ProbeReport};
    use k256::ecdsa::SigningKey;

    use super::*;

    const START: u64 = 1_700_000_000_000;

    fn key() -> SigningKey {
        SigningKey::from_slice(&[0x42; 32]).unwrap()
    }

    fn log() -> ProbeLog {
        let client = ClientKey::Address(Address::of(key().verifying_key()));
        ProbeLog::new("s1".into(), "host".into(), Some(client), START)
    }

    fn report(seq: u32) -> ProbeReport {
        ProbeReport {
            session_id: "s1".into(),
            seq,
            interval_ms: 1000,
            frames_presented: 60,
            frames_decoded: 60,
            fps_centi: 6000,
            decode_us: Some(2000),
            jitter_us: Some(1000),
            loss_ppm: Some(0),
            rtt_us: Some(1000),
            click_to_photon_p50_us: Some(15_000),
            click_to_photon_p95_us: Some(20_000),
            click_to_photon_samples: 2,
            audio_packets_lost: Some(0),
            audio_concealed_samples: Some(0),
        }
    }

    fn signed(seq: u32) -> SignedProbeReport {
        report(seq).sign(&key())
    }

    /// `seconds` seconds of a 60 fps session from `from` (ms after START),
    /// a client report arriving `phase_ms` into each second.
    fn run(log: &mut ProbeLog, from: u64, seconds: u32, phase_ms: u64, first_seq: u32) {
        for s in 0..u64::from(seconds) {
            let second = START + from + s * 1000;
            for f in 0..60u32 {
                let frame = FrameFigures {
                    encoded: true,
                    sent: true,
                    bytes: 10_000,
                    render_encode_us: 4000 + f,
                };
                log.frame(second + u64::from(f) * 16, frame);
            }
            log.client_report(second + phase_ms, signed(first_seq + s as u32)).unwrap();
        }
    }

    #[test]
    fn seconds_are_final_once_no_report_can_land_in_them() {
        let mut log = log();
        let mut taken = Vec::new();
        run(&mut log, 0, 5, 500, 1);
        assert!(log.has_final());
        log.take_final(|r| taken.push(r.second));
        assert!(!log.has_final(), "nothing new until a second closes for good");
        // Second 4 is open; of the closed seconds 0..=3, the last two may still get a report.
        assert_eq!(taken, vec![0, 1]);
        log.take_final(|r| taken.push(r.second));
        assert_eq!(taken, vec![0, 1], "each second is handed out once");
        log.finish(START + 5_000);
        log.take_final(|r| taken.push(r.second));
        // Ending counts the second it ends in as covered.
        assert_eq!(taken, vec![0, 1, 2, 3, 4, 5], "an ended log has nothing left open");
    }

    #[test]
    fn player_figures_span_the_last_seconds_then_the_whole_session() {
        let mut log = log();
        assert_eq!(log.player_figures(START).fps, None, "no report yet");
        run(&mut log, 0, 20, 500, 1);
        let now = log.player_figures(START + 20_000);
        assert_eq!(
            (now.fps, now.rtt_ms, now.click_to_photon_ms),
            (Some(60.0), Some(1.0), Some(15.0))
        );
        assert_eq!(now.reports, 20);
        // Ten silent seconds: nothing recent to show while it runs.
        assert_eq!(log.player_figures(START + 31_000).fps, None);
        log.finish(START + 31_000);
        let ended = log.player_figures(START + 40_000);
        assert_eq!(ended.fps, Some(60.0), "over the seconds the player reported");
        assert_eq!(ended.click_to_photon_ms, Some(15.0));
    }

    #[test]
    fn each_second_gets_host_figures_and_the_client_report() {
        let mut log = log();
        run(&mut log, 0, 3, 500, 1);
        let probes = log.snapshot(START + 3_000);
        assert_eq!(probes.records.len(), 3);
        let first = &probes.records[0];
        assert_eq!((first.second, first.start_ms), (0, START));
        assert_eq!(first.host.frames_rendered, 60);
        assert_eq!(first.host.frames_sent, 60);
        assert_eq!(first.host.bitrate_bps, 60 * 10_000 * 8);
        assert_eq!(first.host.render_encode_p50_us, Some(4029));
        assert_eq!(first.client.as_ref().map(|c| c.report.seq), Some(1));
        assert_eq!(probes.records[2].client.as_ref().map(|c| c.report.seq), Some(3));
        assert_eq!(probes.reports_valid, 3);
        assert_eq!(probes.blocks.len(), 1);
        let block = &probes.blocks[0];
        assert!(!block.complete);
        assert_eq!((block.seconds_covered, block.seconds_with_client_report), (3, 3));
        assert_eq!(block.fps_mean, Some(60.0));
        assert_eq!(block.click_to_photon_p95_ms, Some(20.0));
        assert_eq!(block.click_to_photon_samples, 6);
        assert_eq!(block.frames_sent, 180);
    }

    #[test]
    fn reports_on_either_side_of_a_boundary_still_land_one_a_second() {
        let mut log = log();
        // Arrivals jitter around the second boundary: 0.999, 2.001, 2.998, 4.002 s.
        for (seq, at) in [(1, 999), (2, 2_001), (3, 2_998), (4, 4_002)] {
            log.client_report(START + at, signed(seq)).unwrap();
        }
        let probes = log.snapshot(START + 5_000);
        let seqs: Vec<Option<u32>> =
            probes.records.iter().map(|r| r.client.as_ref().map(|c| c.report.seq)).collect();
        assert_eq!(seqs, vec![Some(1), Some(2), Some(3), Some(4), None]);
    }

    #[test]
    fn a_client_faster_than_once_a_second_cannot_fill_more_seconds_than_passed() {
        let mut log = log();
        log.frame(
            START + 5_000,
            FrameFigures { encoded: true, sent: true, bytes: 1, render_encode_us: 1 },
        );
        for seq in 1..=3 {
            assert!(log.client_report(START + 5_100, signed(seq)).is_ok());
        }
        assert_eq!(log.client_report(START + 5_100, signed(4)), Err(Rejection::TooFrequent));
        let probes = log.snapshot(START + 6_000);
        assert_eq!(probes.reports_valid, 3);
        assert_eq!(probes.reports_rejected.too_frequent, 1);
        let filled = probes.records.iter().filter(|r| r.client.is_some()).count();
        assert_eq!(filled, 3, "seconds 3, 4 and 5");
    }

    #[test]
    fn bad_reports_are_refused_and_counted() {
        let mut log = log();
        let other = SigningKey::from_slice(&[0x43; 32]).unwrap();
        let forged = report(1).sign(&other);
        assert_eq!(log.client_report(START, forged), Err(Rejection::BadSignature));
        let mut tampered = signed(1);
        tampered.report.fps_centi = 12_000;
        assert_eq!(log.client_report(START, tampered), Err(Rejection::BadSignature));
        let elsewhere = ProbeReport { session_id: "s2".into(), ..report(1) }.sign(&key());
        assert_eq!(log.client_report(START, elsewhere), Err(Rejection::WrongSession));
        let invalid = ProbeReport { loss_ppm: Some(2_000_000), ..report(1) }.sign(&key());
        assert!(matches!(log.client_report(START, invalid), Err(Rejection::Invalid(_))));
        assert_eq!(log.client_report(START + 100, signed(5)), Ok(0));
        assert_eq!(
            log.client_report(START + 1_100, signed(5)),
            Err(Rejection::Replayed { seq: 5, last: 5 })
        );
        log.malformed_message();
        let probes = log.snapshot(START + 2_000);
        let r = probes.reports_rejected;
        assert_eq!((r.bad_signature, r.wrong_session, r.invalid, r.replayed), (2, 1, 2, 1));
        assert_eq!(probes.reports_valid, 1);

        let mut keyless = ProbeLog::new("s1".into(), "host".into(), None, START);
        assert_eq!(keyless.client_report(START, signed(1)), Err(Rejection::NoClientKey));
        assert_eq!(keyless.snapshot(START).reports_rejected.no_client_key, 1);
    }

    #[test]
    fn an_hour_makes_four_complete_blocks_and_keeps_fifteen_minutes_of_records() {
        let mut log = log();
        // 40 minutes with reports, 2 minutes of silence from the client, 18 more minutes
        // (whose reports fill from the two seconds before they resumed: they run 2 s behind).
        run(&mut log, 0, 2_400, 300, 1);
        for s in 2_400..2_520u64 {
            log.frame(
                START + s * 1000,
                FrameFigures { encoded: true, sent: true, bytes: 100, render_encode_us: 5000 },
            );
        }
        run(&mut log, 2_520_000, 1_080, 300, 3_000);
        let probes = log.snapshot(START + 3_600_000 + REPORT_GRACE_SECONDS as u64 * 1000);
        assert_eq!(probes.records.len(), KEPT_SECONDS);
        assert_eq!(probes.records.last().unwrap().second, 3_601);
        let blocks = &probes.blocks;
        assert_eq!(blocks.len(), 5, "4 complete blocks and the one just begun");
        assert!(blocks[..4].iter().all(|b| b.complete && b.seconds_covered == 900));
        assert_eq!(blocks[0].seconds_with_client_report, 900);
        assert_eq!(blocks[2].seconds_with_client_report, 900 - 118);
        assert_eq!(blocks[2].start_ms, START + 1_800_000);
        assert_eq!(blocks[3].seconds_with_client_report, 898);
        assert!(!blocks[4].complete);
        assert_eq!(blocks[4].seconds_covered, 2);
        assert_eq!(blocks[2].frames_sent, 780 * 60 + 120);
    }

    #[test]
    fn a_late_report_still_lands_in_the_block_it_belongs_to() {
        let mut log = log();
        run(&mut log, 0, 899, 500, 1);
        // Second 899's report arrives 1.2 s late, after the block's last second ended.
        log.client_report(START + 901_200, signed(900)).unwrap();
        let probes = log.snapshot(START + 902_000);
        assert_eq!(probes.blocks.len(), 2);
        assert!(probes.blocks[0].complete);
        assert_eq!(probes.blocks[0].seconds_with_client_report, 900);
    }

    #[test]
    fn finishing_covers_the_partial_last_second_and_completes_every_block() {
        let mut log = log();
        run(&mut log, 0, 10, 500, 1);
        log.finish(START + 10_400);
        let probes = log.snapshot(START + 99_000);
        assert!(probes.ended);
        assert_eq!(probes.records.len(), 11);
        assert_eq!(probes.blocks.len(), 1);
        assert!(probes.blocks[0].complete);
        assert_eq!(probes.blocks[0].seconds_covered, 11);
        assert_eq!(probes.blocks[0].seconds_with_client_report, 10);
        assert_eq!(log.client_report(START + 11_000, signed(11)), Err(Rejection::Ended));
        assert_eq!(log.snapshot(START + 99_000).reports_rejected, RejectedReports::default());
        // A session that ends exactly at a block boundary makes no empty block.
        let mut full = self::log();
        run(&mut full, 0, 900, 500, 1);
        full.finish(START + 899_999);
        assert_eq!(full.snapshot(START + 900_000).blocks.len(), 1);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&mut [], 50), None);
        assert_eq!(percentile(&mut [7], 95), Some(7));
        assert_eq!(percentile(&mut [4, 1, 3, 2], 50), Some(2));
        assert_eq!(percentile(&mut (1..=100).collect::<Vec<_>>(), 95), Some(95));
        assert_eq!(percentile(&mut (1..=20).collect::<Vec<_>>(), 95), Some(19));
    }
}
