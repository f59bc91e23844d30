//! The settler's book, sans I/O: every session it settles, what it carries from one commit
//! to the next, and the epoch on its way to the chain. It changes only through journal
//! records ([`Entry`]) applied with [`Book::apply`], the same way live and when replayed
//! after a restart; everything else reads it or decides from it (which records to read,
//! what a round bills, which epoch to commit, what a voucher may spend), taking `now` as
//! an argument.
//!
//! An epoch is kept in the journal as an intent — its bills and the signed transaction —
//! before the transaction is sent, and its outcome after; until the outcome is known no
//! other epoch is built, and the intent's blocks are neither billed again nor lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use alloy::primitives::{Address, B256, Bytes, Signature, U256};
use gridplay_chain::evidence::{Discarded, Evidence};
use gridplay_chain::settlement::{
    BilledBlock, BlockLeaf, Epoch, Receipt, SignedCommit, Voucher, block_hash, voucher_session_id,
};
use gridplay_chain::{Leaf, ProbeRecord, ProbeSummary, Sla, bill_block, keccak256};
use gridplay_protocol::network::Delivered;
use gridplay_protocol::settlement::{
    HostClaims, ReceiptLine, ServiceLevel, SessionReceipt, VoucherSubmission,
};
use gridplay_protocol::{HostRegistration, SessionClaims};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Error;
use crate::fetch::Job;
use crate::ledger::Ledger;

/// Most blocks a voucher may cover: a day of 15-minute blocks.
pub const MAX_VOUCHER_BLOCKS: u32 = 96;

/// How long an allocation waits for its voucher before it is forgotten.
pub const VOUCHER_WAIT_MS: u64 = 5 * 60 * 1000;

/// Settled sessions whose receipts are kept, newest first.
pub const RECEIPTS_KEPT: usize = 10_000;

/// The contract a book settles on: part of every voucher's on-chain session id.
#[derive(Debug, Clone, Copy)]
pub struct Contract {
    /// The chain's id.
    pub chain_id: u64,
    /// The settlement contract's address.
    pub address: Address,
}

/// One journal record: a change to the book.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A session was allocated on a host that settles.
    Allocated {
        /// The broker's session id.
        session: String,
        /// What settling it needs.
        allocation: Allocation,
        /// When, Unix ms.
        since_ms: u64,
    },
    /// Its voucher was accepted.
    Voucher {
        /// The broker's session id.
        session: String,
        /// The voucher, as the player submitted it.
        submission: VoucherSubmission,
    },
    /// A session's billed lines and receipt as they stand (lines billed with nothing to
    /// commit, and what the journal keeps when it is compacted).
    Billed {
        /// The broker's session id.
        session: String,
        /// Every block billed so far.
        lines: Vec<ReceiptLine>,
        /// Its receipt, once any block is committed.
        receipt: Option<Box<Receipt>>,
        /// Whether the host's record has ended and every block of it is billed.
        finished: bool,
        /// When it finished, Unix ms (its allocation time while it has not).
        since_ms: u64,
    },
    /// An epoch about to be committed: kept before its transaction is sent.
    Committing(Box<Intent>),
    /// The intent's epoch is on chain.
    Committed {
        /// The intent's transaction.
        tx: B256,
        /// The epoch's id.
        epoch_id: u64,
    },
    /// The intent's transaction will never be mined: its blocks are to be billed again.
    Abandoned {
        /// The intent's transaction.
        tx: B256,
    },
    /// What the network delivered, as of the journal's last compaction (written after the
    /// sessions' records, whose lines it already counts).
    Ledger {
        /// The totals.
        ledger: Ledger,
    },
    /// What is carried from commit to commit, as of the journal's last compaction.
    Carried {
        /// Every player's cumulative spend, decimal wei.
        cumulative: BTreeMap<Address, String>,
        /// The last epoch committed: (id, root).
        last_epoch: Option<(u64, B256)>,
    },
}

/// An epoch on its way to the chain.
#[derive(Clone, Serialize, Deserialize)]
pub struct Intent {
    /// Its signed transaction.
    pub commit: SignedCommit,
    /// Its root.
    pub root: B256,
    /// When it was built, Unix ms.
    pub at_ms: u64,
    /// What it bills, by session: every line billed in its round (also those of no amount,
    /// which the epoch does not hold).
    pub bills: Vec<RoundLines>,
}

/// The lines one round bills for a session.
#[derive(Clone, Serialize, Deserialize)]
pub struct RoundLines {
    /// The broker's session id.
    pub session: String,
    /// One line per block billed.
    pub lines: Vec<ReceiptLine>,
    /// Whether the session is finished with them.
    pub finished: bool,
}

/// What the broker knows of an allocated session, for settling it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Allocation {
    /// What the session's token grants, never the token itself: the journal holds no
    /// capability. To read the host's record the settler signs itself a short-lived token
    /// with these claims. Journals from before kept the token, whose claims are read from it.
    #[serde(alias = "token", deserialize_with = "claims_or_token")]
    claims: SessionClaims,
    whep_url: String,
    payout_address: Option<String>,
    price_per_block: u64,
}

/// Reads an allocation's claims, or the claims of the token an older journal kept there.
fn claims_or_token<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SessionClaims, D::Error> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde::de::Error;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Claims(SessionClaims),
        Token(String),
    }
    match Stored::deserialize(deserializer)? {
        Stored::Claims(claims) => Ok(claims),
        Stored::Token(token) => {
            let claims = token.split_once('.').map_or(token.as_str(), |(claims, _)| claims);
            let json = B64.decode(claims).map_err(D::Error::custom)?;
            serde_json::from_slice(&json).map_err(D::Error::custom)
        }
    }
}

/// A voucher accepted for a session.
struct Terms {
    /// As the player submitted it (what the journal keeps).
    submission: VoucherSubmission,
    voucher: Voucher,
    signature: Bytes,
    player: Address,
    onchain_id: B256,
}

/// One session on its way to the chain.
struct Settling {
    allocation: Allocation,
    terms: Option<Terms>,
    lines: BTreeMap<u32, ReceiptLine>,
    receipt: Option<Receipt>,
    /// The host's record is final and every block of it is billed.
    finished: bool,
    /// When it was allocated, Unix ms.
    allocated_ms: u64,
    /// When it finished, Unix ms (0 until it has).
    finished_ms: u64,
    /// Client reports its host's records held that did not count, in the blocks billed.
    discarded: Discarded,
    /// Whether the ledger counts it as a finished session.
    counted: bool,
}

impl Settling {
    /// Counts the session in `ledger` at `at_ms`, once, when it is finished.
    fn count_if_finished(&mut self, ledger: &mut Ledger, at_ms: u64) {
        if self.finished && !self.counted {
            let seconds = self.lines.values().map(|l| u64::from(l.seconds_covered)).sum();
            ledger.session(seconds, at_ms);
            self.counted = true;
        }
    }
}

impl Settling {
    /// When it was last worth keeping from: its finish, or else its allocation.
    fn since_ms(&self) -> u64 {
        if self.finished { self.finished_ms } else { self.allocated_ms }
    }
}

/// An epoch whose commit is under way.
struct Open {
    intent: Intent,
    /// The epoch, rebuilt from the intent's bills (`None` if it no longer can be).
    epoch: Option<Epoch>,
}

/// A player's account as the contract reads it, in wei.
#[derive(Debug, Clone, Copy, Default)]
pub struct Account {
    /// Deposits and refunds.
    pub credit: u128,
    /// Withdrawals made and asked for, and recorded spend.
    pub debit: u128,
    /// Recorded spend alone.
    pub spent: u128,
}

/// A voucher that fits its session: what it lets its player be billed.
pub struct VoucherCheck {
    /// The player whose signature it carries.
    pub player: Address,
    /// Most it may bill, in wei.
    pub covered: u128,
}

/// What a round decided.
#[derive(Default)]
pub struct Round {
    /// Records for sessions billed with nothing to commit.
    pub settled: Vec<Entry>,
    /// The lines of the sessions with blocks to commit, and the epoch that commits them.
    pub commit: Option<(Vec<RoundLines>, Epoch)>,
}

/// The settler's book.
pub struct Book {
    contract: Contract,
    sessions: HashMap<String, Settling>,
    /// Every player's cumulative spend as of the last commit.
    cumulative: BTreeMap<Address, u128>,
    /// The last epoch committed: (id, root).
    last_epoch: Option<(u64, B256)>,
    open: Option<Open>,
    /// What the network delivered.
    ledger: Ledger,
}

fn bad(message: impl Into<String>) -> Error {
    Error::BadVoucher(message.into())
}

fn amount(line: &ReceiptLine) -> u128 {
    line.amount.parse().unwrap_or(0)
}

impl Book {
    /// An empty book for `contract`.
    pub fn new(contract: Contract) -> Self {
        Self {
            contract,
            sessions: HashMap::new(),
            cumulative: BTreeMap::new(),
            last_epoch: None,
            open: None,
            ledger: Ledger::default(),
        }
    }

    /// Applies one journal record.
    pub fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Allocated { session, allocation, since_ms } => {
                let settling = Settling {
                    allocation,
                    terms: None,
                    lines: BTreeMap::new(),
                    receipt: None,
                    finished: false,
                    allocated_ms: since_ms,
                    finished_ms: 0,
                    discarded: Discarded::default(),
                    counted: false,
                };
                self.sessions.insert(session, settling);
            }
            Entry::Voucher { session, submission } => {
                let terms = self.parse_terms(&submission);
                let Some(settling) = self.sessions.get_mut(&session) else { return };
                match terms {
                    Ok(terms) => settling.terms = Some(terms),
                    Err(e) => tracing::warn!(%session, "journal: voucher no longer reads: {e}"),
                }
            }
            Entry::Billed { session, lines, receipt, finished, since_ms } => {
                let Some(settling) = self.sessions.get_mut(&session) else { return };
                // Lines new to the session here have nothing to commit: they are final now.
                for line in lines.iter().filter(|l| !settling.lines.contains_key(&l.block_index)) {
                    self.ledger.line(line, since_ms);
                }
                settling.lines = lines.into_iter().map(|l| (l.block_index, l)).collect();
                settling.receipt = receipt.map(|r| *r);
                settling.finished = finished;
                if finished {
                    settling.finished_ms = since_ms;
                }
                settling.count_if_finished(&mut self.ledger, since_ms);
            }
            Entry::Ledger { ledger } => self.ledger = ledger,
            Entry::Committing(intent) => self.open(*intent),
            Entry::Committed { tx, epoch_id } => self.committed(tx, epoch_id),
            Entry::Abandoned { tx } => self.abandoned(tx),
            Entry::Carried { cumulative, last_epoch } => {
                self.cumulative = cumulative
                    .into_iter()
                    .filter_map(|(player, wei)| Some((player, wei.parse().ok()?)))
                    .collect();
                self.last_epoch = last_epoch;
            }
        }
    }

    /// The intent's lines count as billed from now on, and its epoch is rebuilt.
    fn open(&mut self, intent: Intent) {
        for bill in &intent.bills {
            let Some(settling) = self.sessions.get_mut(&bill.session) else { continue };
            for line in &bill.lines {
                settling.lines.insert(line.block_index, line.clone());
            }
            if bill.finished {
                settling.finished = true;
                settling.finished_ms = intent.at_ms;
            }
        }
        let epoch = match self.epoch_of(&intent.bills) {
            Ok(epoch) if epoch.root() == intent.root => Some(epoch),
            Ok(epoch) => {
                tracing::error!(tx = %intent.commit.tx, root = %intent.root, rebuilt = %epoch.root(), "an epoch under way rebuilds to another root; its receipts will be missing");
                None
            }
            Err(e) => {
                tracing::error!(tx = %intent.commit.tx, "an epoch under way no longer rebuilds: {e}");
                None
            }
        };
        self.open = Some(Open { intent, epoch });
    }

    /// The open intent's epoch is committed as `epoch_id`: its lines are marked, its
    /// sessions' receipts extended, and its players' cumulative spend carried.
    fn committed(&mut self, tx: B256, epoch_id: u64) {
        let Some(Open { intent, epoch }) = self.open.take_if(|o| o.intent.commit.tx == tx) else {
            tracing::warn!(%tx, "journal: a commit of no epoch under way");
            return;
        };
        self.last_epoch = Some((epoch_id, intent.root));
        for bill in &intent.bills {
            for line in &bill.lines {
                self.ledger.line(line, intent.at_ms);
            }
            if let Some(settling) = self.sessions.get_mut(&bill.session) {
                settling.count_if_finished(&mut self.ledger, intent.at_ms);
            }
        }
        let Some(epoch) = epoch else { return };
        self.cumulative = epoch.cumulative();
        for bill in &intent.bills {
            let Some(settling) = self.sessions.get_mut(&bill.session) else { continue };
            let Some(terms) = &settling.terms else { continue };
            let mut summaries = Vec::new();
            for line in bill.lines.iter().filter(|l| amount(l) > 0) {
                summaries.push(summary(terms.onchain_id, line));
                if let Some(line) = settling.lines.get_mut(&line.block_index) {
                    line.epoch_id = Some(epoch_id.to_string());
                    line.commit_tx = Some(format!("{tx:#x}"));
                }
            }
            if summaries.is_empty() {
                continue;
            }
            let built = match settling.receipt.as_mut() {
                Some(receipt) => receipt.extend(&epoch, epoch_id, tx, &summaries),
                None => Receipt::for_session(
                    &epoch,
                    epoch_id,
                    tx,
                    terms.onchain_id,
                    &summaries,
                    self.contract.chain_id,
                    self.contract.address,
                )
                .map(|receipt| settling.receipt = Some(receipt)),
            };
            if let Err(e) = built {
                tracing::warn!(session = %bill.session, "receipt not updated: {e}");
            }
        }
    }

    /// The open intent will never be committed: its lines are billed again from the hosts'
    /// records.
    fn abandoned(&mut self, tx: B256) {
        let Some(Open { intent, .. }) = self.open.take_if(|o| o.intent.commit.tx == tx) else {
            tracing::warn!(%tx, "journal: an abandoned commit of no epoch under way");
            return;
        };
        for bill in &intent.bills {
            let Some(settling) = self.sessions.get_mut(&bill.session) else { continue };
            for line in &bill.lines {
                settling.lines.remove(&line.block_index);
            }
            settling.finished = false;
        }
    }

    /// The epoch that commits `bills`' blocks of any amount, on top of the cumulative spend
    /// carried.
    fn epoch_of(&self, bills: &[RoundLines]) -> Result<Epoch, Error> {
        let mut blocks = Vec::new();
        for bill in bills {
            let terms =
                self.sessions.get(&bill.session).and_then(|s| s.terms.as_ref()).ok_or_else(
                    || Error::State(format!("session {} has no voucher", bill.session)),
                )?;
            for line in bill.lines.iter().filter(|l| amount(l) > 0) {
                let summary = summary(terms.onchain_id, line);
                let leaf = Leaf {
                    session_id: terms.onchain_id.0,
                    block_index: line.block_index,
                    player: terms.player.0.0,
                    host: terms.voucher.host.0.0,
                    amount: summary.amount,
                    probe_summary_hash: summary.struct_hash(),
                };
                blocks.push(BilledBlock {
                    voucher: terms.voucher.clone(),
                    voucher_signature: terms.signature.clone(),
                    leaf,
                });
            }
        }
        Ok(Epoch::new(blocks, &self.cumulative)?)
    }

    /// The epoch under way, if any.
    pub fn intent(&self) -> Option<&Intent> {
        self.open.as_ref().map(|o| &o.intent)
    }

    /// The last epoch committed: (id, root).
    pub fn last_epoch(&self) -> Option<(u64, B256)> {
        self.last_epoch
    }

    /// The record of an allocation at `now_ms` on `host` with `claims` at `price_per_block`
    /// wei, when the host settles (has a payout address): its token's claims, never the token.
    pub fn allocation(
        claims: &SessionClaims,
        host: &HostRegistration,
        price_per_block: u64,
        now_ms: u64,
    ) -> Option<Entry> {
        host.payout_address.as_ref()?;
        Some(Entry::Allocated {
            session: claims.session_id.clone(),
            allocation: Allocation {
                claims: claims.clone(),
                whep_url: host.whep_url.clone(),
                payout_address: host.payout_address.clone(),
                price_per_block,
            },
            since_ms: now_ms,
        })
    }

    /// Checks a voucher for `session_id` at `now_s` (Unix seconds), as far as it can be
    /// without the chain: it reads, its signature recovers its player (low-s only, as the
    /// contract requires), and it fits the session (host payout address, session key, price,
    /// nonce, size, expiry).
    pub fn check_voucher(
        &self,
        session_id: &str,
        submission: &VoucherSubmission,
        now_s: u64,
    ) -> Result<VoucherCheck, Error> {
        submission.voucher.validate().map_err(|e| bad(e.to_string()))?;
        let terms = self.parse_terms(submission)?;
        let settling = self.sessions.get(session_id).ok_or(Error::SessionNotFound)?;
        if settling.terms.is_some() {
            return Err(bad("the session already has a voucher"));
        }
        let allocation = &settling.allocation;
        let payout =
            allocation.payout_address.as_deref().ok_or_else(|| bad("the host settles nothing"))?;
        let parse = |text: &str| text.parse::<Address>().map_err(|e| bad(e.to_string()));
        let voucher = &terms.voucher;
        if voucher.host != parse(payout)? {
            return Err(bad("the voucher names another host"));
        }
        let client_key = allocation.claims.client_key.as_deref().map(parse).transpose()?;
        if client_key != Some(voucher.sessionKey) {
            return Err(bad("the voucher's session key is not the session's client_key"));
        }
        if voucher.pricePerBlock != U256::from(allocation.price_per_block) {
            return Err(bad("the voucher's price is not the one the session was allocated at"));
        }
        if voucher.nonce != B256::from(keccak256(session_id.as_bytes())) {
            return Err(bad("the voucher's nonce is not keccak-256 of the session id"));
        }
        if voucher.maxBlocks > MAX_VOUCHER_BLOCKS || voucher.expiry <= now_s {
            return Err(bad(format!(
                "a voucher covers 1..={MAX_VOUCHER_BLOCKS} blocks and has not expired"
            )));
        }
        let covered = voucher.pricePerBlock.saturating_mul(U256::from(voucher.maxBlocks));
        Ok(VoucherCheck { player: terms.player, covered: covered.saturating_to() })
    }

    /// Reads a submitted voucher: its fields, its on-chain session id, and the player its
    /// signature recovers (low-s only, as the contract requires).
    fn parse_terms(&self, submission: &VoucherSubmission) -> Result<Terms, Error> {
        let terms = &submission.voucher;
        let parse = |text: &str| text.parse::<Address>().map_err(|e| bad(e.to_string()));
        let voucher = Voucher {
            host: parse(&terms.host)?,
            sessionKey: parse(&terms.session_key)?,
            pricePerBlock: terms.price_per_block.parse().map_err(|_| bad("bad price_per_block"))?,
            maxBlocks: terms.max_blocks,
            expiry: terms.expiry,
            nonce: terms.nonce.parse().map_err(|_| bad("bad nonce"))?,
        };
        let onchain_id =
            voucher_session_id(&voucher, self.contract.chain_id, self.contract.address);
        let bytes: Bytes = submission.signature.parse().map_err(|_| bad("bad signature hex"))?;
        let signature = Signature::try_from(bytes.as_ref())
            .map_err(|_| Error::Unauthorized("malformed voucher signature".into()))?;
        if signature.normalize_s().is_some() {
            return Err(Error::Unauthorized("high-s voucher signature".into()));
        }
        let player = signature
            .recover_address_from_prehash(&onchain_id)
            .map_err(|_| Error::Unauthorized("voucher signature does not recover".into()))?;
        Ok(Terms { submission: submission.clone(), voucher, signature: bytes, player, onchain_id })
    }

    /// What `player` can still be billed, given its `account` on chain: less spend committed
    /// but not yet recorded there, less what its open sessions' vouchers may still bill
    /// (blocks billed but not committed count in full: never too little).
    pub fn free_deposit(&self, player: Address, account: Account) -> u128 {
        let committed = self.cumulative.get(&player).copied().unwrap_or(0);
        let unrecorded = committed.saturating_sub(account.spent);
        let open: u128 = self
            .sessions
            .values()
            .filter(|s| {
                !s.finished || s.lines.values().any(|l| l.epoch_id.is_none() && amount(l) > 0)
            })
            .filter_map(|s| s.terms.as_ref().filter(|t| t.player == player).map(|t| (s, t)))
            .map(|(s, t)| {
                let most = t.voucher.pricePerBlock.saturating_mul(U256::from(t.voucher.maxBlocks));
                let billed: u128 =
                    s.lines.values().filter(|l| l.epoch_id.is_some()).map(amount).sum();
                most.saturating_to::<u128>().saturating_sub(billed)
            })
            .sum();
        account.credit.saturating_sub(account.debit).saturating_sub(unrecorded).saturating_sub(open)
    }

    /// Drops what is no longer worth keeping at `now_ms`: an allocation whose voucher never
    /// came within [`VOUCHER_WAIT_MS`], and all but the newest [`RECEIPTS_KEPT`] finished
    /// sessions. Sessions of an epoch under way stay.
    pub fn prune(&mut self, now_ms: u64) {
        let busy: BTreeSet<&str> = self
            .open
            .iter()
            .flat_map(|o| o.intent.bills.iter().map(|b| b.session.as_str()))
            .collect();
        let mut finished: Vec<(u64, String)> = Vec::new();
        let mut stale = Vec::new();
        for (id, s) in &self.sessions {
            if busy.contains(id.as_str()) {
                continue;
            }
            if s.terms.is_none() && now_ms.saturating_sub(s.allocated_ms) >= VOUCHER_WAIT_MS {
                stale.push(id.clone());
            } else if s.finished {
                finished.push((s.finished_ms, id.clone()));
            }
        }
        if finished.len() > RECEIPTS_KEPT {
            finished.sort_unstable();
            stale.extend(finished.drain(..finished.len() - RECEIPTS_KEPT).map(|(_, id)| id));
        }
        for id in stale {
            self.sessions.remove(&id);
        }
    }

    /// The records that rebuild the book as it stands (to compact the journal with), or
    /// `None` while an epoch is under way.
    pub fn snapshot(&self) -> Option<Vec<Entry>> {
        if self.open.is_some() {
            return None;
        }
        let cumulative = self.cumulative.iter().map(|(p, wei)| (*p, wei.to_string())).collect();
        let mut records = vec![Entry::Carried { cumulative, last_epoch: self.last_epoch }];
        for (session, s) in &self.sessions {
            records.push(Entry::Allocated {
                session: session.clone(),
                allocation: s.allocation.clone(),
                since_ms: s.allocated_ms,
            });
            if let Some(terms) = &s.terms {
                records.push(Entry::Voucher {
                    session: session.clone(),
                    submission: terms.submission.clone(),
                });
            }
            if !s.lines.is_empty() || s.receipt.is_some() || s.finished {
                records.push(Self::billed(session, s));
            }
        }
        records.push(Entry::Ledger { ledger: self.ledger.clone() });
        Some(records)
    }

    /// What the network delivered, as of `now_ms`.
    pub fn network(&self, now_ms: u64) -> Delivered {
        self.ledger.view(now_ms)
    }

    /// Sessions in the book.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    fn billed(session: &str, s: &Settling) -> Entry {
        Entry::Billed {
            session: session.to_owned(),
            lines: s.lines.values().cloned().collect(),
            receipt: s.receipt.clone().map(Box::new),
            finished: s.finished,
            since_ms: s.since_ms(),
        }
    }

    /// The reads a round at `now_ms` makes: one per unfinished session with a voucher, with
    /// a token signed by `token_key` living `token_ms`. None while an epoch is under way.
    pub fn jobs(
        &self,
        token_key: &ed25519_dalek::SigningKey,
        token_ms: u64,
        now_ms: u64,
    ) -> Vec<Job> {
        if self.open.is_some() {
            return Vec::new();
        }
        self.sessions
            .iter()
            .filter(|(_, s)| !s.finished && s.terms.is_some())
            .map(|(id, s)| {
                let a = &s.allocation;
                let read = SessionClaims { expires_at_ms: now_ms + token_ms, ..a.claims.clone() };
                Job {
                    session_id: id.clone(),
                    host_id: a.claims.host_id.clone(),
                    whep_url: a.whep_url.clone(),
                    token: read.sign(token_key),
                    client_key: a.claims.client_key.clone(),
                    allocated_ms: s.allocated_ms,
                }
            })
            .collect()
    }

    /// What the hosts' `records` (by session) bill under `level` at `now_ms`: every complete
    /// block not billed yet. Sessions with blocks of some amount go into one epoch; the
    /// others are settled at once. A refused record costs only its own session. The book
    /// itself changes only by the records applied after.
    pub fn plan(
        &mut self,
        records: HashMap<String, Result<Evidence, Error>>,
        level: &ServiceLevel,
        now_ms: u64,
    ) -> Result<Round, Error> {
        let mut round = Round::default();
        let mut commit = Vec::new();
        for (session_id, record) in records {
            let Some(settling) = self.sessions.get_mut(&session_id) else { continue };
            let Some(terms) = &settling.terms else { continue };
            let evidence = match record {
                Ok(evidence) => evidence,
                Err(e) => {
                    tracing::warn!(session = %session_id, host = %settling.allocation.claims.host_id, "{e}");
                    continue;
                }
            };
            let price = terms.voucher.pricePerBlock.saturating_to::<u128>();
            let sla = Sla::for_level(level, settling.allocation.claims.fps, price);
            let billed = settling.lines.keys().copied().collect();
            let bill = match bill_session(&evidence, &billed, &sla) {
                Ok(bill) => bill,
                Err(e) => {
                    tracing::warn!(session = %session_id, "not billed: {e}");
                    continue;
                }
            };
            if bill.discarded.total() > 0 {
                settling.discarded.add(&bill.discarded);
                let (this, all) = (bill.discarded, settling.discarded);
                tracing::warn!(
                    session = %session_id,
                    host = %settling.allocation.claims.host_id,
                    forged = this.forged,
                    other_session = this.other_session,
                    repeated = this.repeated,
                    future = this.future,
                    session_total = all.total(),
                    "client reports discarded, not billed"
                );
            }
            if bill.lines.iter().any(|l| amount(l) > 0) {
                commit.push(RoundLines {
                    session: session_id,
                    lines: bill.lines,
                    finished: bill.finished,
                });
            } else if !bill.lines.is_empty() || bill.finished != settling.finished {
                let mut lines = settling.lines.clone();
                lines.extend(bill.lines.into_iter().map(|l| (l.block_index, l)));
                round.settled.push(Entry::Billed {
                    session: session_id,
                    lines: lines.into_values().collect(),
                    receipt: settling.receipt.clone().map(Box::new),
                    finished: bill.finished,
                    since_ms: if bill.finished { now_ms } else { settling.allocated_ms },
                });
            }
        }
        if !commit.is_empty() {
            // Sessions in a stable order: the same bills always make the same epoch.
            commit.sort_by(|a, b| a.session.cmp(&b.session));
            let epoch = self.epoch_of(&commit)?;
            round.commit = Some((commit, epoch));
        }
        Ok(round)
    }

    /// `GET /v1/settlement/claims/{host}`: the host's total in each epoch of the receipts
    /// kept, by epoch.
    pub fn host_claims(&self, host: &str) -> Result<HostClaims, Error> {
        let host: Address = host.parse().map_err(|_| bad("the host must be a 0x address"))?;
        let mut totals: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
        for s in self.sessions.values() {
            let Some(receipt) = s.receipt.as_ref().filter(|r| r.voucher.host == host) else {
                continue;
            };
            for total in &receipt.host_totals {
                if let Ok(json) = serde_json::to_value(total) {
                    totals.entry(total.epoch_id).or_insert(json);
                }
            }
        }
        Ok(HostClaims {
            host: format!("{host:#x}"),
            contract: format!("{:#x}", self.contract.address),
            totals: totals.into_values().collect(),
        })
    }

    /// `GET /v1/sessions/{id}/receipt`.
    pub fn receipt(&self, session_id: &str) -> Result<SessionReceipt, Error> {
        let settling = self.sessions.get(session_id).ok_or(Error::SessionNotFound)?;
        if settling.terms.is_none() {
            return Err(Error::SessionNotFound);
        }
        let lines: Vec<ReceiptLine> = settling.lines.values().cloned().collect();
        let total: u128 = lines.iter().map(amount).sum();
        let receipt = settling.receipt.as_ref().and_then(|r| serde_json::to_value(r).ok());
        Ok(SessionReceipt {
            session_id: session_id.to_owned(),
            lines,
            total: total.to_string(),
            receipt,
        })
    }

    /// The leaf with hash `leaf_hash` among the receipts kept, with its session's voucher.
    pub fn challenged(&self, leaf_hash: B256) -> Option<(BlockLeaf, Voucher, Bytes)> {
        self.sessions.values().find_map(|s| {
            let receipt = s.receipt.as_ref()?;
            let block = receipt
                .blocks
                .iter()
                .find(|b| B256::from(block_hash(&b.block_leaf())) == leaf_hash)?;
            Some((block.block_leaf(), receipt.voucher.clone(), receipt.voucher_signature.clone()))
        })
    }
}

/// A billed line's probe summary, for the session with on-chain id `onchain_id`.
fn summary(onchain_id: B256, line: &ReceiptLine) -> ProbeSummary {
    ProbeSummary {
        session_id: onchain_id.0,
        block_index: line.block_index,
        seconds_covered: line.seconds_covered,
        seconds_met: line.seconds_met,
        amount: amount(line),
    }
}

/// How the picture was over a block's counted reports: the mean frame rate (hundredths)
/// and the median of each second's click-to-photon p95 (microseconds).
fn picture(records: &[ProbeRecord]) -> (Option<u32>, Option<u32>) {
    let fps = records.iter().map(|r| f64::from(r.fps)).filter(|f| f.is_finite());
    let (sum, count) = fps.fold((0.0, 0u32), |(s, n), f| (s + f, n + 1));
    let fps_centi = (count > 0).then(|| (sum / f64::from(count) * 100.0).round() as u32);
    let mut clicks: Vec<f32> =
        records.iter().filter_map(|r| r.click_to_photon_p95_ms).filter(|c| c.is_finite()).collect();
    clicks.sort_by(f32::total_cmp);
    let median = clicks.get(clicks.len().saturating_sub(1) / 2);
    (fps_centi, median.map(|ms| (f64::from(*ms) * 1000.0).round() as u32))
}

/// What one session's record bills in a round.
#[derive(Debug)]
struct SessionBill {
    /// A line for each block billed.
    lines: Vec<ReceiptLine>,
    /// Client reports in the blocks billed that did not count.
    discarded: Discarded,
    /// The record has ended and every block of it is billed.
    finished: bool,
}

/// Bills, from `evidence` alone, each block its host holds complete that is not `billed`
/// already (once, whatever the host lists), as [`Evidence::block`] reads it; a block that
/// claims seconds not yet begun by the settler's clock waits for a later round (so that an
/// honest session read just as it ends is not cut short).
fn bill_session(
    evidence: &Evidence,
    billed: &BTreeSet<u32>,
    sla: &Sla,
) -> Result<SessionBill, gridplay_chain::Error> {
    let probes = &evidence.probes;
    let mut seen = billed.clone();
    let mut bill = SessionBill {
        lines: Vec::new(),
        discarded: Discarded::default(),
        finished: probes.ended && probes.blocks.iter().all(|b| b.complete),
    };
    for block in probes.blocks.iter().filter(|b| b.complete) {
        let read = evidence.block(block);
        if read.early {
            bill.finished = false;
            continue;
        }
        if !seen.insert(block.block) {
            continue;
        }
        let billed = bill_block(&read.records, read.covered, sla)?;
        bill.discarded.add(&read.discarded);
        let (fps_centi, click_to_photon_us) = picture(&read.records);
        bill.lines.push(ReceiptLine {
            block_index: block.block,
            seconds_covered: billed.covered_seconds,
            seconds_met: billed.met_seconds,
            delivered: billed.delivered,
            fps_centi,
            click_to_photon_us,
            amount: billed.amount.to_string(),
            epoch_id: None,
            commit_tx: None,
        });
    }
    Ok(bill)
}

#[cfg(test)]
pub(crate) mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use ed25519_dalek::Signer;
    use gridplay_protocol::probe::{
        BlockSummary, HostFigures, ProbeReport, RejectedReports, SecondRecord, SessionProbes,
        SignedProbeReport,
    };
    use k256::ecdsa::SigningKey;

    use super::*;
    use crate::fetch::{Job, verify};

    /// When the sessions of these tests were allocated, Unix ms.
    pub(crate) const ALLOCATED_MS: u64 = 1_000_000;
    /// How long they lasted, in seconds: one short last block (signing and checking
    /// hundreds of reports is slow in a debug build).
    const SECONDS: u32 = 20;
    /// The price of a full block; a delivered session of [`SECONDS`] bills 20 000.
    const PRICE: u128 = 900_000;

    /// The key a session's client signs with: one per session.
    fn client(session: &str) -> SigningKey {
        SigningKey::from_slice(&keccak256(session.as_bytes())).unwrap()
    }

    /// The key a host signs its records with: one per host.
    fn host(name: &str) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&keccak256(name.as_bytes()))
    }

    /// The client's report of a good second `second` of `session`.
    fn good(session: &str, second: u32) -> ProbeReport {
        ProbeReport {
            session_id: session.into(),
            seq: second + 1,
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

    /// The genuine, signed report of a good second of `session`.
    pub(crate) fn genuine(session: &str, second: u32) -> Option<SignedProbeReport> {
        Some(good(session, second).sign(&client(session)))
    }

    /// The job of reading `session` from `host_name`.
    pub(crate) fn job(session: &str, host_name: &str, whep_url: &str) -> Job {
        Job {
            session_id: session.into(),
            host_id: B64.encode(host(host_name).verifying_key().as_bytes()),
            whep_url: whep_url.into(),
            token: "t".into(),
            client_key: Some(
                gridplay_protocol::probe::Address::of(client(session).verifying_key()).to_string(),
            ),
            allocated_ms: ALLOCATED_MS,
        }
    }

    /// The body and signature `host_name` serves as its record of an ended `session` of
    /// [`SECONDS`], second `s` holding `client(s)`.
    pub(crate) fn record(
        session: &str,
        host_name: &str,
        client: impl Fn(u32) -> Option<SignedProbeReport>,
    ) -> (Vec<u8>, String) {
        let records = (0..SECONDS)
            .map(|second| SecondRecord {
                second,
                start_ms: ALLOCATED_MS + u64::from(second) * 1000,
                host: HostFigures::default(),
                client: client(second),
            })
            .collect();
        let block = BlockSummary {
            block: 0,
            start_ms: ALLOCATED_MS,
            complete: true,
            seconds_covered: SECONDS,
            seconds_with_client_report: SECONDS,
            ..BlockSummary::default()
        };
        let host_key = host(host_name);
        let probes = SessionProbes {
            session_id: session.into(),
            host_id: B64.encode(host_key.verifying_key().as_bytes()),
            client_key: None,
            started_at_ms: ALLOCATED_MS,
            now_ms: ALLOCATED_MS + u64::from(SECONDS) * 1000,
            ended: true,
            reports_valid: SECONDS,
            reports_rejected: RejectedReports::default(),
            records,
            blocks: vec![block],
        };
        let body = serde_json::to_vec(&probes).unwrap();
        let signature = B64.encode(host_key.sign(&body).to_bytes());
        (body, signature)
    }

    /// (seconds covered, seconds met, amount, discarded) of the session's one block, or why
    /// its record was refused.
    fn settle(
        job: &Job,
        (body, signature): &(Vec<u8>, String),
        now_ms: u64,
    ) -> Result<(u32, u32, u128, Discarded), Error> {
        let bill = bill(job, &(body.clone(), signature.clone()), now_ms)?;
        assert!(bill.finished);
        let [line] = &bill.lines[..] else { panic!("one block: {:?}", bill.lines) };
        let amount: u128 = line.amount.parse().unwrap();
        Ok((line.seconds_covered, line.seconds_met, amount, bill.discarded))
    }

    /// What the session's record bills at `now_ms`.
    fn bill(
        job: &Job,
        (body, signature): &(Vec<u8>, String),
        now_ms: u64,
    ) -> Result<SessionBill, Error> {
        let evidence = verify(job, body, Some(signature), now_ms)?;
        let sla = Sla::for_level(&ServiceLevel::standard(9_000), 60, PRICE);
        Ok(bill_session(&evidence, &BTreeSet::new(), &sla).unwrap())
    }

    /// 10 s after the allocation.
    const T10: u64 = ALLOCATED_MS + 10_000;

    #[test]
    fn a_lying_host_is_paid_what_its_client_signed_and_an_honest_one_in_full() {
        let now = ALLOCATED_MS + 60_000;
        let honest = || record("honest", "good host", |s| genuine("honest", s));
        let liar = job("lied", "bad host", "http://h/whep");
        let intruder = SigningKey::from_slice(&[0x33; 32]).unwrap();
        // The client signed 10 good seconds; the host makes up the other 10.
        let half = |lie: &dyn Fn(u32) -> Option<SignedProbeReport>| {
            record("lied", "bad host", |s| if s < 10 { genuine("lied", s) } else { lie(s) })
        };
        let none = Discarded::default();
        type Case<'a> = (&'a str, (Vec<u8>, String), (u32, u32, u128, Discarded));
        let cases: Vec<Case<'_>> = vec![
            (
                "invents seconds with its own key",
                half(&|s| Some(good("lied", s).sign(&intruder))),
                (SECONDS, 10, 0, Discarded { forged: 10, ..none }),
            ),
            (
                "invents unsigned seconds",
                half(&|s| {
                    Some(SignedProbeReport { report: good("lied", s), signature: "".into() })
                }),
                (SECONDS, 10, 0, Discarded { forged: 10, ..none }),
            ),
            (
                "passes off the player's reports of another session",
                half(&|s| Some(good("other", s).sign(&client("lied")))),
                (SECONDS, 10, 0, Discarded { other_session: 10, ..none }),
            ),
            (
                "claims genuine seconds twice",
                half(&|s| genuine("lied", s - 10)),
                (SECONDS, 10, 0, Discarded { repeated: 10, ..none }),
            ),
        ];
        for (case, served, expected) in cases {
            assert_eq!(settle(&liar, &served, now).unwrap(), expected, "{case}");
            let honest_job = job("honest", "good host", "http://g/whep");
            assert_eq!(
                settle(&honest_job, &honest(), now).unwrap(),
                (SECONDS, SECONDS, 20_000, none),
                "the honest host in the same round as one that {case}"
            );
        }
        // A host that claims more seconds than have passed is billed nothing yet: the block
        // waits until they have, and the session is not done with.
        let early = bill(&liar, &record("lied", "bad host", |s| genuine("lied", s)), T10).unwrap();
        assert!(early.lines.is_empty() && !early.finished);
        // Records that are not the session's host's own for this session are refused whole.
        let refused: Vec<(&str, (Vec<u8>, String))> = vec![
            ("another session's genuine record", honest()),
            ("another host's record", record("lied", "good host", |s| genuine("lied", s))),
            ("a forged host signature", {
                let (body, _) = record("lied", "bad host", |s| genuine("lied", s));
                (body, B64.encode([7u8; 64]))
            }),
        ];
        for (case, served) in refused {
            assert!(matches!(settle(&liar, &served, now), Err(Error::HostRecord(_))), "{case}");
        }
    }

    #[test]
    fn a_repeated_second_is_not_billed_and_spoils_nothing() {
        // Once an error that aborted the whole round: more records than covered seconds.
        let (body, _) = record("s", "h", |s| genuine("s", s));
        let mut probes: SessionProbes = serde_json::from_slice(&body).unwrap();
        let again = probes.records[3].clone();
        probes.records.insert(4, again);
        let body = serde_json::to_vec(&probes).unwrap();
        let signature = B64.encode(host("h").sign(&body).to_bytes());
        let got =
            settle(&job("s", "h", "http://h/whep"), &(body, signature), ALLOCATED_MS + 60_000);
        let repeated = Discarded { repeated: 1, ..Discarded::default() };
        assert_eq!(got.unwrap(), (SECONDS, SECONDS, 20_000, repeated));
    }

    fn claims(session: &str) -> SessionClaims {
        SessionClaims {
            session_id: session.into(),
            host_id: "h".into(),
            app: "orbit".into(),
            profile: gridplay_protocol::Profile::Game,
            width: 1280,
            height: 720,
            fps: 60,
            expires_at_ms: 30_000,
            client_key: None,
        }
    }

    fn allocation(session: &str) -> Allocation {
        Allocation {
            claims: claims(session),
            whep_url: "http://h/whep".into(),
            payout_address: Some(format!("0x{}", "11".repeat(20))),
            price_per_block: 1,
        }
    }

    #[test]
    fn the_journal_keeps_a_tokens_claims_never_the_token_and_reads_older_tokens() {
        let token = claims("s").sign(&ed25519_dalek::SigningKey::from_bytes(&[4; 32]));
        let (_, signature) = token.split_once('.').unwrap();
        let entry =
            Entry::Allocated { session: "s".into(), allocation: allocation("s"), since_ms: 1 };
        let line = serde_json::to_string(&entry).unwrap();
        assert!(!line.contains(signature), "{line}");
        let Entry::Allocated { allocation: read, .. } = serde_json::from_str(&line).unwrap() else {
            panic!("an allocation")
        };
        assert_eq!(read.claims, claims("s"));
        // A journal written before kept the token itself: its claims are read from it.
        let older = format!(
            r#"{{"kind":"allocated","session":"s","allocation":{{"host_id":"h","whep_url":"http://h/whep","token":"{token}","payout_address":null,"price_per_block":1,"client_key":null,"fps":60}},"since_ms":1}}"#
        );
        let Entry::Allocated { allocation: read, .. } = serde_json::from_str(&older).unwrap()
        else {
            panic!("an allocation")
        };
        assert_eq!(read.claims, claims("s"));
        // Rewritten (the journal is compacted), it no longer holds the token.
        let rewritten = serde_json::to_string(&Entry::Allocated {
            session: "s".into(),
            allocation: read,
            since_ms: 1,
        })
        .unwrap();
        assert!(!rewritten.contains(signature));
    }

    fn settling(voucher: bool, finished: bool, since_ms: u64) -> Settling {
        let allocation = allocation("s");
        let submission = VoucherSubmission {
            voucher: gridplay_protocol::settlement::VoucherTerms {
                host: format!("{:#x}", Address::ZERO),
                session_key: format!("{:#x}", Address::ZERO),
                price_per_block: "1".into(),
                max_blocks: 1,
                expiry: 1,
                nonce: format!("{:#x}", B256::ZERO),
            },
            signature: String::new(),
        };
        let terms = voucher.then(|| Terms {
            submission,
            voucher: Voucher {
                host: Address::ZERO,
                sessionKey: Address::ZERO,
                pricePerBlock: U256::from(1),
                maxBlocks: 1,
                expiry: 1,
                nonce: B256::ZERO,
            },
            signature: Bytes::new(),
            player: Address::ZERO,
            onchain_id: B256::ZERO,
        });
        Settling {
            allocation,
            terms,
            lines: BTreeMap::new(),
            receipt: None,
            finished,
            allocated_ms: since_ms,
            finished_ms: since_ms,
            discarded: Discarded::default(),
            counted: false,
        }
    }

    fn contract() -> Contract {
        Contract { chain_id: 1, address: Address::ZERO }
    }

    #[test]
    fn the_book_forgets_voucherless_allocations_and_keeps_the_newest_receipts() {
        let mut book = Book::new(contract());
        book.sessions.insert("waiting".into(), settling(false, false, 0));
        book.sessions.insert("stale".into(), settling(false, false, 0));
        book.sessions.insert("fresh".into(), settling(false, false, VOUCHER_WAIT_MS));
        book.sessions.insert("playing".into(), settling(true, false, 0));
        book.prune(VOUCHER_WAIT_MS - 1);
        assert_eq!(book.sessions.len(), 4, "nothing is due yet");
        book.prune(VOUCHER_WAIT_MS);
        let mut left: Vec<&str> = book.sessions.keys().map(String::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["fresh", "playing"], "a voucher keeps a session however old");

        for i in 0..RECEIPTS_KEPT as u64 + 5 {
            book.sessions.insert(format!("done-{i}"), settling(true, true, i));
        }
        book.prune(VOUCHER_WAIT_MS);
        let finished = book.sessions.values().filter(|s| s.finished).count();
        assert_eq!(finished, RECEIPTS_KEPT);
        assert!(!book.sessions.contains_key("done-4") && book.sessions.contains_key("done-5"));
        assert!(book.sessions.contains_key("playing"));
    }

    #[test]
    fn the_ledger_counts_each_block_once_through_rounds_and_compaction() {
        let line = |block: u32, delivered: bool| ReceiptLine {
            block_index: block,
            seconds_covered: 900,
            seconds_met: if delivered { 900 } else { 0 },
            delivered,
            fps_centi: Some(6000),
            click_to_photon_us: Some(15_000),
            amount: if delivered { "100" } else { "0" }.into(),
            epoch_id: None,
            commit_tx: None,
        };
        let billed = |lines: Vec<ReceiptLine>, finished: bool| Entry::Billed {
            session: "s".into(),
            lines,
            receipt: None,
            finished,
            since_ms: ALLOCATED_MS + 3_600_000,
        };
        let mut book = Book::new(contract());
        book.apply(Entry::Allocated {
            session: "s".into(),
            allocation: allocation("s"),
            since_ms: ALLOCATED_MS,
        });
        book.apply(billed(vec![line(0, true)], false));
        // The next round lists every line billed so far, and the session's end.
        book.apply(billed(vec![line(0, true), line(1, false)], true));
        book.apply(billed(vec![line(0, true), line(1, false)], true));
        let now = ALLOCATED_MS + 3_600_000;
        let total = book.network(now).total;
        assert_eq!((total.blocks_billed, total.blocks_delivered, total.sessions), (2, 1, 1));
        assert_eq!((total.delivered_hours, total.mean_session_minutes), (0.25, Some(30.0)));
        assert_eq!(total.paid_wei, "100");
        // A journal compacted, written and read again holds the same figures, not twice them.
        let mut read = Book::new(contract());
        for entry in book.snapshot().unwrap() {
            let line = serde_json::to_string(&entry).unwrap();
            read.apply(serde_json::from_str(&line).unwrap());
        }
        assert_eq!(read.network(now), book.network(now));
    }
}
