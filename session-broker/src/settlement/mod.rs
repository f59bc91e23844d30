//! Settling sessions on chain. A player authorises a session with a signed
//! voucher (no transaction); every epoch the settler reads each voucher's
//! session from its host (the host's signed probe record), bills the blocks
//! that are complete with the billing rule, commits one root for all of them
//! (with each host's total and every player's cumulative spend), keeps each
//! session's receipt, and answers voucher challenges against its epochs.
//!
//! One broker replica settles (the one given a chain). What it must not lose
//! lives in its state directory: the players' cumulative spend, which every
//! commit must carry forward exactly (rewritten after each commit), and a
//! journal of allocations, vouchers, billed lines and receipts (replayed on
//! start).
//!
//! Billing takes nothing from a host on trust: a host's record is evidence only through
//! the client's own signed reports in it that pass [`gridplay_chain::evidence`]'s checks.
//! Records are read all at once, each bounded in time and size ([`fetch`]); a bad one
//! costs only its own session that round.

mod fetch;
mod journal;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, Signature, U256};
use gridplay_chain::evidence::{Discarded, Evidence};
use gridplay_chain::settlement::{
    BilledBlock, BlockLeaf, Epoch, Receipt, SettlementClient, Voucher, block_hash,
};
use gridplay_chain::{Leaf, ProbeSummary, Sla, bill_block, keccak256};
use gridplay_protocol::settlement::{
    HostClaims, ReceiptLine, ServiceLevel, SessionReceipt, SettlementInfo, VoucherSubmission,
};
use gridplay_protocol::{HostRegistration, SessionClaims};
use serde::{Deserialize, Deserializer, Serialize};

use crate::BrokerError;
use fetch::{Job, Limits, MAX_RECORD_BYTES, RECORD_TIMEOUT};

/// Most sessions a voucher may cover: a day of 15-minute blocks.
pub const MAX_VOUCHER_BLOCKS: u32 = 96;

/// How long an allocation waits for its voucher before it is forgotten.
pub const VOUCHER_WAIT_MS: u64 = 5 * 60 * 1000;

/// Settled sessions whose receipts are kept, newest first.
pub const RECEIPTS_KEPT: usize = 10_000;

/// How long a token the settler signs itself to read a host's record lives, in ms: the
/// read's own time bound and room for the host's clock to differ from the broker's.
const READ_TOKEN_MS: u64 = RECORD_TIMEOUT.as_millis() as u64 + 20_000;

/// How a broker settles.
#[derive(Clone)]
pub struct SettlementConfig {
    /// The operator's handle on the settlement contract (commits epochs).
    pub client: SettlementClient,
    /// Time between epoch commits.
    pub epoch: Duration,
    /// A JSON-RPC endpoint players can check receipts against.
    pub rpc_url: Option<String>,
    /// A funded demo player's private key, published on a local demo chain only.
    pub demo_player_key: Option<String>,
    /// The bar each second is billed against.
    pub service_level: ServiceLevel,
    /// Directory of what the settler keeps across restarts (created if missing).
    pub state_dir: PathBuf,
    /// Whether hosts' records may be read from loopback, private and link-local addresses
    /// (a network on one machine or one LAN); otherwise only public ones are.
    pub allow_private_hosts: bool,
}

/// Journal records appended beyond the live sessions' own before the journal is compacted.
const JOURNAL_SLACK: usize = 10_000;

/// The players' cumulative spend, in the state directory.
const CUMULATIVE_FILE: &str = "cumulative.json";

/// The sessions' journal, in the state directory.
const JOURNAL_FILE: &str = "sessions.jsonl";

/// What the settler carries from one commit to the next.
#[derive(Default)]
struct Carried {
    /// Each player's cumulative spend after the last commit.
    cumulative: BTreeMap<Address, u128>,
    /// Challenges below this id are known to be closed.
    challenges_from: u64,
}

/// One journal record: a change to a session's settling state.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Entry {
    /// A session was allocated on a host that settles.
    Allocated { session: String, allocation: Allocation, since_ms: u64 },
    /// Its voucher was accepted.
    Voucher { session: String, submission: VoucherSubmission },
    /// Its billed lines and receipt after a settling round.
    Billed {
        session: String,
        lines: Vec<ReceiptLine>,
        receipt: Option<Box<Receipt>>,
        finished: bool,
        since_ms: u64,
    },
}

/// What the broker knows of an allocated session, for settling it.
#[derive(Clone, Serialize, Deserialize)]
struct Allocation {
    /// What the session's token grants, never the token itself: the journal holds no
    /// capability. To read the host's record the settler signs itself a short-lived token
    /// with these claims ([`READ_TOKEN_MS`]). Journals from before kept the token, whose
    /// claims are read from it.
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
    /// When it was allocated, or finished once it is, Unix ms.
    since_ms: u64,
    /// Client reports its host's records held that did not count, in the blocks billed.
    discarded: Discarded,
}

/// The sessions the settler knows, bounded: an allocation whose voucher
/// never comes is forgotten after [`VOUCHER_WAIT_MS`], and only the newest
/// [`RECEIPTS_KEPT`] finished sessions keep their receipts.
#[derive(Default)]
struct SessionBook {
    sessions: HashMap<String, Settling>,
}

impl SessionBook {
    /// Drops what is no longer worth keeping at `now_ms`.
    fn prune(&mut self, now_ms: u64) {
        self.sessions.retain(|_, s| {
            s.terms.is_some() || now_ms.saturating_sub(s.since_ms) < VOUCHER_WAIT_MS
        });
        let mut finished: Vec<(u64, String)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.finished)
            .map(|(id, s)| (s.since_ms, id.clone()))
            .collect();
        if finished.len() > RECEIPTS_KEPT {
            finished.sort_unstable();
            for (_, id) in &finished[..finished.len() - RECEIPTS_KEPT] {
                self.sessions.remove(id);
            }
        }
    }
}

/// The settler's state.
pub struct Settlement {
    config: SettlementConfig,
    book: Mutex<SessionBook>,
    carried: tokio::sync::Mutex<Carried>,
    /// The players' committed cumulative spend as of the last commit, readable at any time.
    spend_view: Mutex<Arc<BTreeMap<Address, u128>>>,
    journal: Mutex<journal::Journal>,
    /// Held while a voucher's credit is checked and accepted.
    credit: tokio::sync::Mutex<()>,
}

/// A block billed in this round, waiting for its commit.
struct NewBlock {
    session_id: String,
    billed: BilledBlock,
    summary: ProbeSummary,
}

fn bad(message: impl Into<String>) -> BrokerError {
    BrokerError::BadRequest(message.into())
}

impl Settlement {
    /// A settler carrying on, at `now_ms`, from its state directory (empty at first).
    pub fn new(config: SettlementConfig, now_ms: u64) -> Result<Self, BrokerError> {
        let dir = &config.state_dir;
        let store =
            |e: &dyn std::fmt::Display| BrokerError::Store(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| store(&e))?;
        let cumulative = match std::fs::read(dir.join(CUMULATIVE_FILE)) {
            Ok(bytes) => serde_json::from_slice::<BTreeMap<Address, String>>(&bytes)
                .map_err(|e| store(&e))?
                .into_iter()
                .map(|(player, wei)| Ok((player, wei.parse::<u128>().map_err(|e| store(&e))?)))
                .collect::<Result<_, BrokerError>>()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(store(&e)),
        };
        let (journal, entries) =
            journal::Journal::open::<Entry>(&dir.join(JOURNAL_FILE)).map_err(|e| store(&e))?;
        let settler = Self {
            config,
            book: Mutex::default(),
            spend_view: Mutex::new(Arc::new(cumulative.clone())),
            carried: tokio::sync::Mutex::new(Carried { cumulative, ..Carried::default() }),
            journal: Mutex::new(journal),
            credit: tokio::sync::Mutex::new(()),
        };
        {
            let mut book = settler.lock();
            for entry in entries {
                settler.replay(&mut book, entry);
            }
            book.prune(now_ms);
        }
        settler.compact()?;
        Ok(settler)
    }

    /// Applies one journal record to the book.
    fn replay(&self, book: &mut SessionBook, entry: Entry) {
        match entry {
            Entry::Allocated { session, allocation, since_ms } => {
                let settling = Settling {
                    allocation,
                    terms: None,
                    lines: BTreeMap::new(),
                    receipt: None,
                    finished: false,
                    since_ms,
                    discarded: Discarded::default(),
                };
                book.sessions.insert(session, settling);
            }
            Entry::Voucher { session, submission } => {
                let Some(settling) = book.sessions.get_mut(&session) else { return };
                match self.parse_terms(&submission) {
                    Ok(terms) => settling.terms = Some(terms),
                    Err(e) => tracing::warn!(%session, "journal: voucher no longer reads: {e}"),
                }
            }
            Entry::Billed { session, lines, receipt, finished, since_ms } => {
                let Some(settling) = book.sessions.get_mut(&session) else { return };
                settling.lines = lines.into_iter().map(|l| (l.block_index, l)).collect();
                settling.receipt = receipt.map(|r| *r);
                settling.finished = finished;
                settling.since_ms = since_ms;
            }
        }
    }

    /// The records that rebuild a session as it stands.
    fn records_of(session: &str, s: &Settling) -> Vec<Entry> {
        let mut records = vec![Entry::Allocated {
            session: session.to_owned(),
            allocation: s.allocation.clone(),
            since_ms: s.since_ms,
        }];
        if let Some(terms) = &s.terms {
            records.push(Entry::Voucher {
                session: session.to_owned(),
                submission: terms.submission.clone(),
            });
        }
        if !s.lines.is_empty() || s.receipt.is_some() || s.finished {
            records.push(Self::billed(session, s));
        }
        records
    }

    fn billed(session: &str, s: &Settling) -> Entry {
        Entry::Billed {
            session: session.to_owned(),
            lines: s.lines.values().cloned().collect(),
            receipt: s.receipt.clone().map(Box::new),
            finished: s.finished,
            since_ms: s.since_ms,
        }
    }

    /// Appends records to the journal.
    fn journal(&self, records: &[Entry]) -> Result<(), BrokerError> {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        for record in records {
            journal
                .append(record)
                .map_err(|e| BrokerError::Store(format!("settlement journal: {e}")))?;
        }
        Ok(())
    }

    /// Journals the sessions a settling round changed, and compacts the journal when it has
    /// grown well past the sessions it describes.
    fn record_round(&self, touched: &[String]) -> Result<(), BrokerError> {
        let (records, live): (Vec<Entry>, usize) = {
            let book = self.lock();
            let mut seen = std::collections::HashSet::new();
            let records = touched
                .iter()
                .filter(|id| seen.insert(id.as_str()))
                .filter_map(|id| Some(Self::billed(id, book.sessions.get(id)?)))
                .collect();
            (records, book.sessions.len())
        };
        self.journal(&records)?;
        let appended = self.journal.lock().unwrap_or_else(|p| p.into_inner()).appended;
        if appended > JOURNAL_SLACK + 3 * live {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the journal as the book stands.
    fn compact(&self) -> Result<(), BrokerError> {
        let records: Vec<Entry> = {
            let book = self.lock();
            book.sessions.iter().flat_map(|(id, s)| Self::records_of(id, s)).collect()
        };
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        journal
            .rewrite(&records)
            .map_err(|e| BrokerError::Store(format!("settlement journal: {e}")))
    }

    /// Writes the players' cumulative spend (decimal wei), replacing the file atomically.
    fn save_state(&self, cumulative: &BTreeMap<Address, u128>) -> Result<(), BrokerError> {
        let text: BTreeMap<&Address, String> =
            cumulative.iter().map(|(p, wei)| (p, wei.to_string())).collect();
        let path = self.config.state_dir.join(CUMULATIVE_FILE);
        let temp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            std::fs::write(&temp, serde_json::to_vec(&text)?)?;
            std::fs::rename(&temp, &path)
        };
        write().map_err(|e| BrokerError::Store(format!("{}: {e}", path.display())))
    }

    /// `player`'s cumulative spend as of the last commit.
    fn committed_spend(&self, player: Address) -> u128 {
        let view = self.spend_view.lock().unwrap_or_else(|p| p.into_inner());
        view.get(&player).copied().unwrap_or(0)
    }

    /// The leaf with hash `leaf_hash` among the receipts kept, with its session's voucher.
    fn challenged(&self, leaf_hash: B256) -> Option<(BlockLeaf, Voucher, Bytes)> {
        let book = self.lock();
        book.sessions.values().find_map(|s| {
            let receipt = s.receipt.as_ref()?;
            let block = receipt
                .blocks
                .iter()
                .find(|b| B256::from(block_hash(&b.block_leaf())) == leaf_hash)?;
            Some((block.block_leaf(), receipt.voucher.clone(), receipt.voucher_signature.clone()))
        })
    }

    /// Answers every open voucher challenge against an epoch this settler committed.
    async fn answer_challenges(&self, carried: &mut Carried) -> Result<(), BrokerError> {
        let client = &self.config.client;
        let (count, open) = client
            .open_challenges(carried.challenges_from)
            .await
            .map_err(|e| BrokerError::Store(format!("reading challenges: {e}")))?;
        let mut lowest_open = None;
        for (id, epoch_id, leaf_hash) in open {
            let Some((leaf, voucher, signature)) = self.challenged(leaf_hash) else {
                tracing::warn!(challenge = id, epoch = epoch_id, "challenged leaf unknown here");
                lowest_open.get_or_insert(id);
                continue;
            };
            match client.answer_challenge(id, leaf, voucher, signature).await {
                Ok(tx) => {
                    tracing::info!(challenge = id, epoch = epoch_id, %tx, "voucher challenge answered")
                }
                Err(e) => {
                    tracing::warn!(challenge = id, "answering a voucher challenge: {e}");
                    lowest_open.get_or_insert(id);
                }
            }
        }
        carried.challenges_from = lowest_open.unwrap_or(count);
        Ok(())
    }

    /// Time between epoch commits.
    pub fn epoch(&self) -> Duration {
        self.config.epoch
    }

    /// `GET /v1/settlement`.
    pub fn info(&self) -> SettlementInfo {
        SettlementInfo {
            chain_id: self.config.client.chain_id().to_string(),
            contract: format!("{:#x}", self.config.client.address()),
            epoch_seconds: self.config.epoch.as_secs(),
            rpc_url: self.config.rpc_url.clone(),
            demo_player_key: self.config.demo_player_key.clone(),
            service_level: self.config.service_level,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SessionBook> {
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers an allocation at `now_ms` on a host that settles (one
    /// with a payout address), so that a voucher for it can be checked and
    /// its blocks fetched from its host: the claims of its token (not the token).
    pub fn allocated(&self, claims: &SessionClaims, host: &HostRegistration, now_ms: u64) {
        if host.payout_address.is_none() {
            return;
        }
        let session_id = claims.session_id.as_str();
        let allocation = Allocation {
            claims: claims.clone(),
            whep_url: host.whep_url.clone(),
            payout_address: host.payout_address.clone(),
            price_per_block: host.price_per_block,
        };
        let settling = Settling {
            allocation,
            terms: None,
            lines: BTreeMap::new(),
            receipt: None,
            finished: false,
            since_ms: now_ms,
            discarded: Discarded::default(),
        };
        let record = Entry::Allocated {
            session: session_id.to_owned(),
            allocation: settling.allocation.clone(),
            since_ms: now_ms,
        };
        if let Err(e) = self.journal(&[record]) {
            tracing::error!(session = %session_id, "{e}");
        }
        self.lock().sessions.insert(session_id.to_owned(), settling);
    }

    /// `POST /v1/sessions/{id}/voucher`: checks the voucher against the
    /// session (host payout address, price, session key, nonce) and its
    /// signature, checks that the player's deposit covers it on top of
    /// everything the player may still be billed, and keeps it. `now_s` is
    /// Unix seconds.
    pub async fn submit_voucher(
        &self,
        session_id: &str,
        submission: &VoucherSubmission,
        now_s: u64,
    ) -> Result<(), BrokerError> {
        let terms = self.check_voucher(session_id, submission, now_s)?;
        // One credit check at a time, so that two vouchers cannot both spend the same deposit.
        let _credit = self.credit.lock().await;
        let covered =
            terms.voucher.pricePerBlock.saturating_mul(U256::from(terms.voucher.maxBlocks));
        let free = self.free_deposit(terms.player).await?;
        if U256::from(free) < covered {
            return Err(BrokerError::InsufficientDeposit(format!(
                "player {} can be billed {free} wei more, the voucher allows {covered}",
                terms.player
            )));
        }
        let mut sessions = self.lock();
        let settling = sessions.sessions.get_mut(session_id).ok_or(BrokerError::SessionNotFound)?;
        if settling.terms.is_some() {
            return Err(bad("the session already has a voucher"));
        }
        let record =
            Entry::Voucher { session: session_id.to_owned(), submission: terms.submission.clone() };
        self.journal(&[record])?;
        tracing::info!(session = %session_id, player = %terms.player, "voucher accepted");
        settling.terms = Some(terms);
        Ok(())
    }

    /// What `player` can still be billed: its deposit as the contract reads it (less any
    /// withdrawal it asked for), less spend committed but not yet recorded on chain, less what
    /// its open sessions' vouchers may still bill.
    async fn free_deposit(&self, player: Address) -> Result<u128, BrokerError> {
        let account = self
            .config
            .client
            .contract()
            .players(player)
            .call()
            .await
            .map_err(|e| BrokerError::Store(format!("reading the player's deposit: {e}")))?;
        let credit = account.deposited.saturating_add(account.refunded);
        let debit =
            account.withdrawn.saturating_add(account.spent).saturating_add(account.withdrawing);
        // Read without waiting for a settling round; while a commit is under way its blocks
        // count both here (once committed) and below (until marked committed): never too little.
        let committed = self.committed_spend(player);
        let unrecorded = committed.saturating_sub(account.spent);
        let amount = |l: &ReceiptLine| l.amount.parse::<u128>().unwrap_or(0);
        let open: u128 = self
            .lock()
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
        Ok(credit.saturating_sub(debit).saturating_sub(unrecorded).saturating_sub(open))
    }

    /// The voucher's checks that need no chain: it reads (see [`Settlement::parse_terms`])
    /// and matches the session (host payout address, session key, price, nonce, size,
    /// expiry). The accepted terms.
    fn check_voucher(
        &self,
        session_id: &str,
        submission: &VoucherSubmission,
        now_s: u64,
    ) -> Result<Terms, BrokerError> {
        submission.voucher.validate().map_err(|e| bad(e.to_string()))?;
        let terms = self.parse_terms(submission)?;
        let sessions = self.lock();
        let settling = sessions.sessions.get(session_id).ok_or(BrokerError::SessionNotFound)?;
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
            return Err(bad("the voucher's price is not the host's"));
        }
        if voucher.nonce != B256::from(keccak256(session_id.as_bytes())) {
            return Err(bad("the voucher's nonce is not keccak-256 of the session id"));
        }
        if voucher.maxBlocks > MAX_VOUCHER_BLOCKS || voucher.expiry <= now_s {
            return Err(bad(format!(
                "a voucher covers 1..={MAX_VOUCHER_BLOCKS} blocks and has not expired"
            )));
        }
        Ok(terms)
    }

    /// Reads a submitted voucher: its fields, its on-chain session id, and the player its
    /// signature recovers (low-s only, as the contract requires).
    fn parse_terms(&self, submission: &VoucherSubmission) -> Result<Terms, BrokerError> {
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
        let client = &self.config.client;
        let onchain_id = gridplay_chain::settlement::voucher_session_id(
            &voucher,
            client.chain_id(),
            client.address(),
        );
        let bytes: Bytes = submission.signature.parse().map_err(|_| bad("bad signature hex"))?;
        let signature = Signature::try_from(bytes.as_ref())
            .map_err(|_| BrokerError::Unauthorized("malformed voucher signature".into()))?;
        if signature.normalize_s().is_some() {
            return Err(BrokerError::Unauthorized("high-s voucher signature".into()));
        }
        let player = signature
            .recover_address_from_prehash(&onchain_id)
            .map_err(|_| BrokerError::Unauthorized("voucher signature does not recover".into()))?;
        Ok(Terms { submission: submission.clone(), voucher, signature: bytes, player, onchain_id })
    }

    /// `GET /v1/settlement/claims/{host}`: the host's total in each epoch of the receipts
    /// kept, by epoch.
    pub fn host_claims(&self, host: &str) -> Result<HostClaims, BrokerError> {
        let host: Address = host.parse().map_err(|_| bad("the host must be a 0x address"))?;
        let mut totals: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
        for s in self.lock().sessions.values() {
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
            contract: format!("{:#x}", self.config.client.address()),
            totals: totals.into_values().collect(),
        })
    }

    /// `GET /v1/sessions/{id}/receipt`.
    pub fn receipt(&self, session_id: &str) -> Result<SessionReceipt, BrokerError> {
        let sessions = self.lock();
        let settling = sessions.sessions.get(session_id).ok_or(BrokerError::SessionNotFound)?;
        if settling.terms.is_none() {
            return Err(BrokerError::SessionNotFound);
        }
        let lines: Vec<ReceiptLine> = settling.lines.values().cloned().collect();
        let total: u128 = lines.iter().map(|l| l.amount.parse::<u128>().unwrap_or(0)).sum();
        let receipt = settling.receipt.as_ref().and_then(|r| serde_json::to_value(r).ok());
        Ok(SessionReceipt {
            session_id: session_id.to_owned(),
            lines,
            total: total.to_string(),
            receipt,
        })
    }

    /// One round at `now_ms`: bills every complete, unbilled block of every
    /// session with a voucher, commits them as one epoch and updates the
    /// receipts. Hosts' records are read with tokens signed with `token_key`
    /// (the broker's), each living 30 s. Returns the epoch id and
    /// transaction, when anything was committed.
    pub async fn settle_once(
        &self,
        token_key: &ed25519_dalek::SigningKey,
        now_ms: u64,
    ) -> Result<Option<(u64, B256)>, BrokerError> {
        let mut carried = self.carried.lock().await;
        self.answer_challenges(&mut carried).await?;
        self.lock().prune(now_ms);
        let pending: Vec<(Job, u32, B256, Address, u128, BTreeSet<u32>)> = self
            .lock()
            .sessions
            .iter()
            .filter(|(_, s)| !s.finished)
            .filter_map(|(id, s)| {
                let terms = s.terms.as_ref()?;
                let a = &s.allocation;
                let read =
                    SessionClaims { expires_at_ms: now_ms + READ_TOKEN_MS, ..a.claims.clone() };
                let job = Job {
                    session_id: id.clone(),
                    host_id: a.claims.host_id.clone(),
                    whep_url: a.whep_url.clone(),
                    token: read.sign(token_key),
                    client_key: a.claims.client_key.clone(),
                    // An unfinished session's `since_ms` is its allocation.
                    allocated_ms: s.since_ms,
                };
                let price = terms.voucher.pricePerBlock.to::<u128>();
                let billed = s.lines.keys().copied().collect();
                Some((job, a.claims.fps, terms.onchain_id, terms.player, price, billed))
            })
            .collect();
        let limits = Limits {
            timeout: RECORD_TIMEOUT,
            max_bytes: MAX_RECORD_BYTES,
            allow_private: self.config.allow_private_hosts,
        };
        let jobs = pending.iter().map(|(job, ..)| job.clone()).collect();
        let mut records = fetch::read_records(jobs, limits, now_ms).await;
        let mut new_blocks = Vec::new();
        let mut touched: Vec<String> = Vec::new();
        for (job, fps, onchain_id, player, price, billed) in pending {
            let session_id = job.session_id;
            let evidence = match records.remove(&session_id) {
                Some(Ok(evidence)) => evidence,
                Some(Err(e)) => {
                    tracing::warn!(session = %session_id, host = %job.host_id, "{e}");
                    continue;
                }
                None => continue,
            };
            let bill = match bill_session(&evidence, &billed, &self.sla(fps, price), onchain_id) {
                Ok(bill) => bill,
                Err(e) => {
                    tracing::warn!(session = %session_id, "not billed: {e}");
                    continue;
                }
            };
            new_blocks.extend(bill.summaries.into_iter().map(|s| (session_id.clone(), player, s)));
            let mut sessions = self.lock();
            if let Some(settling) = sessions.sessions.get_mut(&session_id) {
                if bill.discarded.total() > 0 {
                    settling.discarded.add(&bill.discarded);
                    let (this, all) = (bill.discarded, settling.discarded);
                    tracing::warn!(
                        session = %session_id,
                        host = %job.host_id,
                        forged = this.forged,
                        other_session = this.other_session,
                        repeated = this.repeated,
                        future = this.future,
                        session_total = all.total(),
                        "client reports discarded, not billed"
                    );
                }
                if !bill.lines.is_empty() || bill.finished != settling.finished {
                    touched.push(session_id.clone());
                }
                for line in bill.lines {
                    settling.lines.insert(line.block_index, line);
                }
                settling.finished = bill.finished;
                if settling.finished {
                    settling.since_ms = now_ms;
                }
            }
        }
        let blocks: Vec<NewBlock> = {
            let sessions = self.lock();
            new_blocks
                .into_iter()
                .filter_map(|(session_id, player, summary)| {
                    let terms = sessions.sessions.get(&session_id)?.terms.as_ref()?;
                    let leaf = Leaf {
                        session_id: terms.onchain_id.0,
                        block_index: summary.block_index,
                        player: player.0.0,
                        host: terms.voucher.host.0.0,
                        amount: summary.amount,
                        probe_summary_hash: summary.struct_hash(),
                    };
                    let billed = BilledBlock {
                        voucher: terms.voucher.clone(),
                        voucher_signature: terms.signature.clone(),
                        leaf,
                    };
                    Some(NewBlock { session_id, billed, summary })
                })
                .collect()
        };
        if blocks.is_empty() {
            self.record_round(&touched)?;
            return Ok(None);
        }
        let epoch =
            Epoch::new(blocks.iter().map(|b| b.billed.clone()).collect(), &carried.cumulative)
                .map_err(|e| BrokerError::Store(e.to_string()))?;
        let client = &self.config.client;
        let committed = client
            .commit_epoch(epoch.sections())
            .await
            .map_err(|e| BrokerError::Store(format!("committing an epoch: {e}")));
        let (epoch_id, tx) = match committed {
            Ok(done) => done,
            Err(e) => {
                // Not committed: the blocks are billed again next round.
                let mut sessions = self.lock();
                for block in &blocks {
                    if let Some(settling) = sessions.sessions.get_mut(&block.session_id) {
                        settling.lines.remove(&block.summary.block_index);
                        settling.finished = false;
                    }
                }
                return Err(e);
            }
        };
        tracing::info!(epoch = epoch_id, blocks = blocks.len(), %tx, "epoch committed");
        carried.cumulative = epoch.cumulative();
        *self.spend_view.lock().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(carried.cumulative.clone());
        self.save_state(&carried.cumulative)?;
        let mut sessions = self.lock();
        let mut summaries: HashMap<&str, Vec<ProbeSummary>> = HashMap::new();
        for block in &blocks {
            summaries.entry(&block.session_id).or_default().push(block.summary);
        }
        for (session_id, summaries) in summaries {
            let Some(settling) = sessions.sessions.get_mut(session_id) else { continue };
            let Some(terms) = &settling.terms else { continue };
            for summary in &summaries {
                if let Some(line) = settling.lines.get_mut(&summary.block_index) {
                    line.epoch_id = Some(epoch_id.to_string());
                    line.commit_tx = Some(format!("{tx:#x}"));
                }
            }
            let built = match settling.receipt.as_mut() {
                Some(receipt) => receipt.extend(&epoch, epoch_id, tx, &summaries),
                None => Receipt::for_session(
                    &epoch,
                    epoch_id,
                    tx,
                    terms.onchain_id,
                    &summaries,
                    client.chain_id(),
                    client.address(),
                )
                .map(|receipt| settling.receipt = Some(receipt)),
            };
            if let Err(e) = built {
                tracing::warn!(session = %session_id, "receipt not updated: {e}");
            }
        }
        drop(sessions);
        touched.extend(blocks.iter().map(|b| b.session_id.clone()));
        self.record_round(&touched)?;
        Ok(Some((epoch_id, tx)))
    }

    /// The service level a session at `fps` is billed against.
    fn sla(&self, fps: u32, price_per_block: u128) -> Sla {
        sla(&self.config.service_level, fps, price_per_block)
    }
}

/// The billing rule's terms for a session at `fps` under `level`.
pub fn sla(level: &ServiceLevel, fps: u32, price_per_block: u128) -> Sla {
    Sla {
        min_fps: fps as f32 * level.min_fps_percent as f32 / 100.0,
        max_rtt_ms: level.max_rtt_ms as f32,
        max_click_to_photon_ms: level.max_click_to_photon_ms as f32,
        max_loss: level.max_loss_ppm as f32 / 1e6,
        min_met_bps: level.min_met_bps,
        price_per_block,
    }
}

/// What one session's record bills in a round.
#[derive(Debug)]
struct SessionBill {
    /// A line for each block billed.
    lines: Vec<ReceiptLine>,
    /// The summaries of the blocks with an amount, to commit.
    summaries: Vec<ProbeSummary>,
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
    onchain_id: B256,
) -> Result<SessionBill, gridplay_chain::Error> {
    let probes = &evidence.probes;
    let mut seen = billed.clone();
    let mut bill = SessionBill {
        lines: Vec::new(),
        summaries: Vec::new(),
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
        bill.lines.push(ReceiptLine {
            block_index: block.block,
            seconds_covered: billed.covered_seconds,
            seconds_met: billed.met_seconds,
            amount: billed.amount.to_string(),
            epoch_id: None,
            commit_tx: None,
        });
        if billed.amount > 0 {
            bill.summaries.push(ProbeSummary::from_bill(onchain_id.0, block.block, &billed));
        }
    }
    Ok(bill)
}

#[cfg(test)]
pub(super) mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use ed25519_dalek::Signer;
    use gridplay_protocol::probe::{
        BlockSummary, HostFigures, ProbeReport, RejectedReports, SecondRecord, SessionProbes,
        SignedProbeReport,
    };
    use k256::ecdsa::SigningKey;

    use super::fetch::{Job, verify};
    use super::*;

    /// When the sessions of these tests were allocated, Unix ms.
    pub(super) const ALLOCATED_MS: u64 = 1_000_000;
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
        }
    }

    /// The genuine, signed report of a good second of `session`.
    pub(super) fn genuine(session: &str, second: u32) -> Option<SignedProbeReport> {
        Some(good(session, second).sign(&client(session)))
    }

    /// The job of reading `session` from `host_name`.
    pub(super) fn job(session: &str, host_name: &str, whep_url: &str) -> Job {
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
    pub(super) fn record(
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
    ) -> Result<(u32, u32, u128, Discarded), BrokerError> {
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
    ) -> Result<SessionBill, BrokerError> {
        let evidence = verify(job, body, Some(signature), now_ms)?;
        let sla = sla(&ServiceLevel::standard(9_000), 60, PRICE);
        Ok(bill_session(&evidence, &BTreeSet::new(), &sla, B256::ZERO).unwrap())
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
        assert!(early.lines.is_empty() && early.summaries.is_empty() && !early.finished);
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
            assert!(
                matches!(settle(&liar, &served, now), Err(BrokerError::HostRecord(_))),
                "{case}"
            );
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
            since_ms,
            discarded: Discarded::default(),
        }
    }

    #[test]
    fn the_book_forgets_voucherless_allocations_and_keeps_the_newest_receipts() {
        let mut book = SessionBook::default();
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
}
