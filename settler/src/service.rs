//! The settler as a service around its [`Book`]: the journal that makes it durable, the
//! hosts' records it reads, the chain it commits to, and the rounds it runs. Every change
//! is written to the journal before the book takes it; an epoch is written as an intent
//! (with its signed transaction) before the transaction is sent. So the process may die at
//! any point: on start it replays the journal and asks the chain what became of an epoch
//! under way, and neither bills a block twice nor loses one the chain has.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use gridplay_chain::settlement::{CommitOutcome, SettlementClient};
use gridplay_protocol::network::Delivered;
use gridplay_protocol::settlement::{
    HostClaims, ServiceLevel, SessionReceipt, SettlementInfo, VoucherSubmission,
};
use gridplay_protocol::{HostRegistration, SessionClaims};
use gridplay_session_broker::BrokerError;
use tokio::sync::watch;

use crate::Error;
use crate::book::{Account, Book, Contract, Entry, Intent};
use crate::fetch::{self, Limits, MAX_RECORD_BYTES, RECORD_TIMEOUT};
use crate::journal::Journal;

/// How a broker settles.
#[derive(Clone)]
pub struct SettlementConfig {
    /// The operator's handle on the settlement contract (commits epochs).
    pub client: SettlementClient,
    /// Time between settling rounds.
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

/// The journal, in the state directory.
const JOURNAL_FILE: &str = "sessions.jsonl";

/// Where settlers kept the players' cumulative spend before the journal carried it.
const OLD_CUMULATIVE_FILE: &str = "cumulative.json";

/// Journal records appended beyond the live sessions' own before the journal is compacted.
const JOURNAL_SLACK: usize = 10_000;

/// How long a token the settler signs itself to read a host's record lives, in ms: the
/// read's own time bound and room for the host's clock to differ from the broker's.
const READ_TOKEN_MS: u64 = RECORD_TIMEOUT.as_millis() as u64 + 20_000;

/// How long a round waits for its commit to be mined before leaving it to the next.
const COMMIT_WAIT: Duration = Duration::from_secs(60);

/// How often a commit's outcome is asked while it is awaited.
const COMMIT_POLL: Duration = Duration::from_millis(100);

/// How long shutdown lets a round under way go on before giving it up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The settler.
pub struct Settler {
    config: SettlementConfig,
    book: Mutex<Book>,
    journal: Mutex<Journal>,
    /// Held through a round; open voucher challenges below this id are known closed.
    round: tokio::sync::Mutex<u64>,
    /// Players one of whose vouchers is being checked against their deposit.
    checking: Mutex<HashSet<Address>>,
}

/// Releases a player's voucher check when dropped.
struct Checking<'a>(&'a Mutex<HashSet<Address>>, Address);

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.1);
    }
}

fn state_error(e: impl std::fmt::Display) -> Error {
    Error::State(e.to_string())
}

impl Settler {
    /// A settler carrying on, at `now_ms`, from its state directory (empty at first): the
    /// journal replayed, an epoch left under way concluded, and the state checked against
    /// the chain (its last epoch's root, and no epoch it does not know of).
    pub async fn start(config: SettlementConfig, now_ms: u64) -> Result<Self, Error> {
        let dir = &config.state_dir;
        let at = |e: &dyn std::fmt::Display| Error::State(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| at(&e))?;
        let (journal, entries) =
            Journal::open::<Entry>(&dir.join(JOURNAL_FILE)).map_err(|e| at(&e))?;
        let contract =
            Contract { chain_id: config.client.chain_id(), address: config.client.address() };
        let mut book = Book::new(contract);
        let carried = entries.iter().any(|e| matches!(e, Entry::Carried { .. }));
        let old = if carried { None } else { read_old_cumulative(&dir.join(OLD_CUMULATIVE_FILE))? };
        let adopted = old.is_some();
        if let Some(cumulative) = old {
            book.apply(Entry::Carried { cumulative, last_epoch: None });
        }
        for entry in entries {
            book.apply(entry);
        }
        book.prune(now_ms);
        let settler = Self {
            config,
            book: Mutex::new(book),
            journal: Mutex::new(journal),
            round: tokio::sync::Mutex::new(0),
            checking: Mutex::new(HashSet::new()),
        };
        settler.reconcile(adopted).await?;
        settler.compact()?;
        Ok(settler)
    }

    /// Concludes an epoch left under way and checks the state against the chain. A state
    /// carried over from a cumulative-spend file has no last epoch to check, and takes the
    /// chain's epochs as its own.
    async fn reconcile(&self, adopted: bool) -> Result<(), Error> {
        let client = &self.config.client;
        if let Some(intent) = self.intent() {
            tracing::info!(tx = %intent.commit.tx, "concluding the epoch left under way");
            self.conclude(&intent, COMMIT_WAIT).await?;
        }
        let count = client.epoch_count().await?;
        let under_way = u64::from(self.intent().is_some());
        let last_epoch = self.lock().last_epoch();
        match last_epoch {
            Some((id, _)) if id >= count => Err(Error::Diverged(format!(
                "epoch {id} committed by this settler is not on chain ({count} epochs)"
            ))),
            Some((id, root)) => {
                let (on_chain, _) = client.epoch(id).await?;
                if on_chain != root {
                    return Err(Error::Diverged(format!(
                        "epoch {id} has root {on_chain} on chain, {root} here"
                    )));
                }
                if count > id + 1 + under_way {
                    return Err(Error::Diverged(format!(
                        "epochs {}..{count} were committed by someone else with this operator key",
                        id + 1
                    )));
                }
                Ok(())
            }
            None if count > under_way && !adopted => Err(Error::Diverged(format!(
                "the contract has {count} epochs this state knows nothing of: is this its \
                 state directory, and does another settler commit with this operator key?"
            ))),
            None => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn intent(&self) -> Option<Intent> {
        self.lock().intent().cloned()
    }

    /// Writes `entries` to the journal, then applies them to the book, in that order and
    /// in one order for every writer.
    fn record(&self, entries: Vec<Entry>) -> Result<(), Error> {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        for entry in &entries {
            journal.append(entry).map_err(|e| state_error(format!("journal: {e}")))?;
        }
        let mut book = self.lock();
        for entry in entries {
            book.apply(entry);
        }
        Ok(())
    }

    /// Rewrites the journal as the book stands (not while an epoch is under way).
    fn compact(&self) -> Result<(), Error> {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let Some(records) = self.lock().snapshot() else { return Ok(()) };
        journal.rewrite(&records).map_err(|e| state_error(format!("journal: {e}")))
    }

    /// Compacts the journal once it has grown well past the sessions it describes.
    fn compact_if_due(&self) -> Result<(), Error> {
        let appended = self.journal.lock().unwrap_or_else(|p| p.into_inner()).appended;
        if appended > JOURNAL_SLACK + 3 * self.lock().len() {
            self.compact()?;
        }
        Ok(())
    }

    /// Sends the intent's transaction (again: the chain may never have seen it) and waits up
    /// to `wait` for its outcome, which is journalled. An outcome still unknown leaves the
    /// intent open for the next round.
    async fn conclude(&self, intent: &Intent, wait: Duration) -> Result<(), Error> {
        let client = &self.config.client;
        let commit = &intent.commit;
        let deadline = tokio::time::Instant::now() + wait;
        let mut sent = false;
        loop {
            match client.commit_outcome(commit).await? {
                CommitOutcome::Committed(epoch_id) => {
                    self.record(vec![Entry::Committed { tx: commit.tx, epoch_id }])?;
                    let blocks: usize = intent.bills.iter().map(|b| b.lines.len()).sum();
                    tracing::info!(epoch = epoch_id, blocks, tx = %commit.tx, "epoch committed");
                    return Ok(());
                }
                CommitOutcome::Failed(why) => {
                    tracing::warn!(tx = %commit.tx, "epoch not committed ({why}); its blocks are billed again");
                    return self.record(vec![Entry::Abandoned { tx: commit.tx }]);
                }
                CommitOutcome::Pending if !sent => {
                    client.broadcast(commit).await?;
                    sent = true;
                }
                CommitOutcome::Pending if tokio::time::Instant::now() >= deadline => {
                    tracing::warn!(tx = %commit.tx, "epoch commit not mined yet; waiting for it next round");
                    return Ok(());
                }
                CommitOutcome::Pending => tokio::time::sleep(COMMIT_POLL).await,
            }
        }
    }

    /// Answers every open voucher challenge against an epoch this settler committed.
    async fn answer_challenges(&self, from: &mut u64) -> Result<(), Error> {
        let client = &self.config.client;
        let (count, open) = client.open_challenges(*from).await?;
        let mut lowest_open = None;
        for (id, epoch_id, leaf_hash) in open {
            let Some((leaf, voucher, signature)) = self.lock().challenged(leaf_hash) else {
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
        *from = lowest_open.unwrap_or(count);
        Ok(())
    }

    /// One round at `now_ms`: concludes an epoch under way, answers voucher challenges, then
    /// bills every complete, unbilled block of every session with a voucher from its host's
    /// record (read with a token signed by `token_key`) and commits them as one epoch.
    /// Returns the epoch id and transaction, when one was committed.
    pub async fn settle_once(
        &self,
        token_key: &ed25519_dalek::SigningKey,
        now_ms: u64,
    ) -> Result<Option<(u64, B256)>, Error> {
        let mut challenges_from = self.round.lock().await;
        if let Some(intent) = self.intent() {
            self.conclude(&intent, COMMIT_WAIT).await?;
            if self.intent().is_some() {
                return Ok(None);
            }
        }
        self.answer_challenges(&mut challenges_from).await?;
        let jobs = {
            let mut book = self.lock();
            book.prune(now_ms);
            book.jobs(token_key, READ_TOKEN_MS, now_ms)
        };
        let limits = Limits {
            timeout: RECORD_TIMEOUT,
            max_bytes: MAX_RECORD_BYTES,
            allow_private: self.config.allow_private_hosts,
        };
        let records = fetch::read_records(jobs, limits, now_ms).await;
        let round = self.lock().plan(records, &self.config.service_level, now_ms)?;
        self.record(round.settled)?;
        let Some((bills, epoch)) = round.commit else {
            self.compact_if_due()?;
            return Ok(None);
        };
        let commit = self.config.client.sign_commit(epoch.sections()).await?;
        let intent = Intent { commit, root: epoch.root(), at_ms: now_ms, bills };
        self.record(vec![Entry::Committing(Box::new(intent.clone()))])?;
        self.conclude(&intent, COMMIT_WAIT).await?;
        let committed = self.lock().last_epoch().filter(|(_, root)| *root == intent.root);
        self.compact_if_due()?;
        Ok(committed.map(|(epoch_id, _)| (epoch_id, intent.commit.tx)))
    }

    /// What the player can still be billed, from its account on chain.
    async fn free_deposit(&self, player: Address) -> Result<u128, Error> {
        let account = self
            .config
            .client
            .contract()
            .players(player)
            .call()
            .await
            .map_err(|e| Error::Chain(format!("reading the player's deposit: {e}")))?;
        let account = Account {
            credit: account.deposited.saturating_add(account.refunded),
            debit: account
                .withdrawn
                .saturating_add(account.spent)
                .saturating_add(account.withdrawing),
            spent: account.spent,
        };
        Ok(self.lock().free_deposit(player, account))
    }

    /// `POST /v1/sessions/{id}/voucher` at `now_s` (Unix seconds): checks the voucher
    /// against its session and its signature, checks that the player's deposit covers it on
    /// top of everything the player may still be billed, and keeps it. One check per player
    /// at a time, so that two vouchers cannot both spend the same deposit.
    pub async fn accept_voucher(
        &self,
        session_id: &str,
        submission: &VoucherSubmission,
        now_s: u64,
    ) -> Result<(), Error> {
        let check = self.lock().check_voucher(session_id, submission, now_s)?;
        if !self.checking.lock().unwrap_or_else(|p| p.into_inner()).insert(check.player) {
            return Err(Error::Busy);
        }
        let _checking = Checking(&self.checking, check.player);
        let free = self.free_deposit(check.player).await?;
        if free < check.covered {
            return Err(Error::InsufficientDeposit(format!(
                "player {} can be billed {free} wei more, the voucher allows {}",
                check.player, check.covered
            )));
        }
        // Checked again as it is kept: another request may have brought a voucher meanwhile.
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let mut book = self.lock();
        book.check_voucher(session_id, submission, now_s)?;
        let entry =
            Entry::Voucher { session: session_id.to_owned(), submission: submission.clone() };
        journal.append(&entry).map_err(|e| state_error(format!("journal: {e}")))?;
        book.apply(entry);
        tracing::info!(session = %session_id, player = %check.player, "voucher accepted");
        Ok(())
    }

    /// Time between settling rounds.
    pub fn epoch(&self) -> Duration {
        self.config.epoch
    }

    /// A session's receipt.
    pub fn session_receipt(&self, session_id: &str) -> Result<SessionReceipt, Error> {
        self.lock().receipt(session_id)
    }

    /// Rounds every epoch until `stop`; a round under way is then given [`SHUTDOWN_GRACE`]
    /// to finish, and given up after it (as a crash would: nothing is lost).
    async fn rounds(&self, token_key: ed25519_dalek::SigningKey, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.config.epoch);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            let round = self.settle_once(&token_key, now_ms());
            tokio::pin!(round);
            let done = tokio::select! {
                done = &mut round => Some(done),
                _ = stop.wait_for(|stop| *stop) => None,
            };
            let done = match done {
                Some(done) => done,
                None => match tokio::time::timeout(SHUTDOWN_GRACE, round).await {
                    Ok(done) => done,
                    Err(_) => {
                        tracing::warn!(
                            "settling round given up at shutdown; it resumes at the next start"
                        );
                        break;
                    }
                },
            };
            if let Err(e) = done {
                tracing::warn!("settling failed: {e}");
            }
            if *stop.borrow() {
                break;
            }
        }
    }
}

/// The cumulative spend a settler of an older version kept in its own file, if any.
fn read_old_cumulative(
    path: &std::path::Path,
) -> Result<Option<std::collections::BTreeMap<Address, String>>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::State(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::State(format!("{}: {e}", path.display()))),
    }
}

/// Unix time in milliseconds.
fn now_ms() -> u64 {
    gridplay_session_broker::unix_ms()
}

#[async_trait::async_trait]
impl gridplay_session_broker::settlement::Settlement for Settler {
    fn info(&self) -> SettlementInfo {
        SettlementInfo {
            chain_id: self.config.client.chain_id().to_string(),
            contract: format!("{:#x}", self.config.client.address()),
            epoch_seconds: self.config.epoch.as_secs(),
            rpc_url: self.config.rpc_url.clone(),
            demo_player_key: self.config.demo_player_key.clone(),
            service_level: self.config.service_level,
        }
    }

    fn allocated(
        &self,
        claims: &SessionClaims,
        host: &HostRegistration,
        price_per_block: u64,
        now_ms: u64,
    ) -> Result<(), BrokerError> {
        let Some(entry) = Book::allocation(claims, host, price_per_block, now_ms) else {
            return Ok(());
        };
        Ok(self.record(vec![entry])?)
    }

    async fn submit_voucher(
        &self,
        session_id: &str,
        submission: &VoucherSubmission,
        now_s: u64,
    ) -> Result<(), BrokerError> {
        Ok(self.accept_voucher(session_id, submission, now_s).await?)
    }

    async fn host_bond(&self, payout_address: &str) -> Result<u128, BrokerError> {
        let address = payout_address
            .parse()
            .map_err(|_| BrokerError::BadRequest(format!("{payout_address} is not an address")))?;
        self.config
            .client
            .active_bond(address)
            .await
            .map_err(|e| BrokerError::Store(format!("reading the host's bond: {e}")))
    }

    fn host_claims(&self, host: &str) -> Result<HostClaims, BrokerError> {
        Ok(self.lock().host_claims(host)?)
    }

    fn receipt(&self, session_id: &str) -> Result<SessionReceipt, BrokerError> {
        Ok(self.session_receipt(session_id)?)
    }

    fn network(&self, now_ms: u64) -> Delivered {
        self.lock().network(now_ms)
    }

    async fn run(&self, token_key: ed25519_dalek::SigningKey, stop: watch::Receiver<bool>) {
        self.rounds(token_key, stop).await;
    }
}
