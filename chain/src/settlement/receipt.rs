//! A session's receipt: everything a player needs to check, against the chain alone, what
//! they were billed: the voucher they signed, and for each billed block its amount, probe
//! summary, leaf (with its running sums), position and proof, epoch root and commit
//! transaction; and what the host claims with: its total in each epoch.
//!
//! A receipt is JSON (camelCase keys): bytes, hashes and addresses are `0x` hex strings,
//! `u32` values are numbers, and `u64` and wei values are decimal strings (so that no
//! JavaScript client rounds them). [`verify_receipt`] trusts nothing in it but what the
//! chain confirms.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, Bytes, Signature, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use serde::{Deserialize, Serialize};

use super::GridplaySettlement::{
    self, BlockAt, BlockLeaf, GridplaySettlementInstance, HostAt, HostClaim, HostLeaf,
};
use super::client::EpochState;
use super::epoch::{Epoch, Voucher, voucher_session_id};
use super::sections::block_hash;
use super::tree::verify_at;
use crate::{Error, Hash, Leaf, ProbeSummary};

/// One session's billed blocks, with what each needs to be checked on-chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The chain the settlement contract lives on (part of the voucher's EIP-712 domain).
    #[serde(with = "decimal")]
    pub chain_id: u64,
    /// The settlement contract.
    pub contract: Address,
    /// The on-chain session id: the voucher's EIP-712 digest.
    pub session_id: B256,
    /// The voucher the player signed for the session.
    #[serde(with = "VoucherJson")]
    pub voucher: Voucher,
    /// The player's 65-byte signature of the voucher.
    pub voucher_signature: Bytes,
    /// The billed blocks, by block index.
    pub blocks: Vec<ReceiptBlock>,
    /// The session's host's total in each epoch holding one of its blocks: what the host
    /// claims with.
    pub host_totals: Vec<ReceiptHostTotal>,
}

/// One billed block of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptBlock {
    /// Index of the block within the session, from 0.
    pub block_index: u32,
    /// Wei billed for the block.
    #[serde(with = "decimal")]
    pub amount: u128,
    /// The probe summary the block was billed on.
    #[serde(with = "ProbeSummaryJson")]
    pub probe_summary: ProbeSummary,
    /// The block as billed.
    #[serde(with = "LeafJson")]
    pub leaf: Leaf,
    /// The player's spend in the epoch up to and including this block.
    #[serde(with = "decimal")]
    pub player_running: u128,
    /// The epoch's total up to and including this block.
    #[serde(with = "decimal")]
    pub epoch_running: u128,
    /// The epoch whose root commits the leaf.
    #[serde(with = "decimal")]
    pub epoch_id: u64,
    /// That epoch's root.
    pub epoch_root: B256,
    /// The leaf's position in the tree.
    pub position: u32,
    /// The leaf's proof under the epoch root at that position.
    pub proof: Vec<B256>,
    /// The transaction that committed the epoch.
    pub commit_tx: B256,
}

/// A host's total in one epoch, with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptHostTotal {
    /// The epoch.
    #[serde(with = "decimal")]
    pub epoch_id: u64,
    /// The host's leaf's position in the tree.
    pub position: u32,
    /// Wei the host earned in the epoch.
    #[serde(with = "decimal")]
    pub amount: u128,
    /// The hosts section's running total up to and including this leaf.
    #[serde(with = "decimal")]
    pub running: u128,
    /// The leaf's proof under the epoch root.
    pub proof: Vec<B256>,
}

impl ReceiptBlock {
    /// The block's leaf as the contract hashes it.
    pub fn block_leaf(&self) -> BlockLeaf {
        BlockLeaf {
            sessionId: B256::from(self.leaf.session_id),
            blockIndex: self.leaf.block_index,
            player: Address::from(self.leaf.player),
            host: Address::from(self.leaf.host),
            amount: U256::from(self.leaf.amount),
            probeSummaryHash: B256::from(self.leaf.probe_summary_hash),
            playerRunning: U256::from(self.player_running),
            epochRunning: U256::from(self.epoch_running),
        }
    }

    /// The block at its position with its proof, as disputes and challenges take it.
    pub fn block_at(&self) -> BlockAt {
        BlockAt { index: self.position, leaf: self.block_leaf(), proof: self.proof.clone() }
    }
}

impl Receipt {
    /// What the host claims with this receipt: its total in each epoch.
    pub fn claims(&self) -> Vec<HostClaim> {
        self.host_totals
            .iter()
            .filter_map(|t| {
                let leaf = HostLeaf {
                    host: self.voucher.host,
                    amount: U256::from(t.amount),
                    running: U256::from(t.running),
                };
                let at = HostAt { index: t.position, leaf, proof: t.proof.clone() };
                Some(HostClaim { epochId: u32::try_from(t.epoch_id).ok()?, at })
            })
            .collect()
    }

    /// The receipt of `session_id`'s blocks in `epoch`, committed as `epoch_id` by
    /// `commit_tx` on the contract at `contract` on chain `chain_id`. `summaries` holds the
    /// session's probe summaries (at least one per billed block, found by block index); the
    /// epoch holds only their hashes.
    pub fn for_session(
        epoch: &Epoch,
        epoch_id: u64,
        commit_tx: B256,
        session_id: B256,
        summaries: &[ProbeSummary],
        chain_id: u64,
        contract: Address,
    ) -> Result<Self, Error> {
        let (voucher, voucher_signature) = epoch
            .voucher(session_id)
            .cloned()
            .ok_or_else(|| Error::SessionNotInEpoch(session_id.to_string()))?;
        if voucher_session_id(&voucher, chain_id, contract) != session_id {
            return Err(Error::Receipt(format!(
                "session {session_id} carries another session's voucher"
            )));
        }
        let sections = epoch.sections();
        let mut blocks = Vec::new();
        for (position, b) in sections.blocks().iter().enumerate() {
            if b.sessionId != session_id {
                continue;
            }
            let probe_summary = *summaries
                .iter()
                .find(|s| {
                    s.block_index == b.blockIndex
                        && B256::from(s.struct_hash()) == b.probeSummaryHash
                })
                .ok_or_else(|| {
                    Error::Receipt(format!(
                        "no probe summary of block {} of session {session_id} hashes to its leaf's",
                        b.blockIndex
                    ))
                })?;
            let at = sections.block_at(position);
            blocks.push(ReceiptBlock {
                block_index: b.blockIndex,
                amount: b.amount.saturating_to(),
                probe_summary,
                leaf: Leaf {
                    session_id: b.sessionId.0,
                    block_index: b.blockIndex,
                    player: b.player.0.0,
                    host: b.host.0.0,
                    amount: b.amount.saturating_to(),
                    probe_summary_hash: b.probeSummaryHash.0,
                },
                player_running: b.playerRunning.saturating_to(),
                epoch_running: b.epochRunning.saturating_to(),
                epoch_id,
                epoch_root: epoch.root(),
                position: at.index,
                proof: at.proof,
                commit_tx,
            });
        }
        let host_totals = epoch
            .host_claim(epoch_id, voucher.host)
            .map(|c| ReceiptHostTotal {
                epoch_id,
                position: c.at.index,
                amount: c.at.leaf.amount.saturating_to(),
                running: c.at.leaf.running.saturating_to(),
                proof: c.at.proof,
            })
            .into_iter()
            .collect();
        let mut receipt = Self {
            chain_id,
            contract,
            session_id,
            voucher,
            voucher_signature,
            blocks: Vec::new(),
            host_totals,
        };
        receipt.append(blocks)?;
        Ok(receipt)
    }

    /// Appends the session's blocks from a later `epoch` (committed as `epoch_id` by
    /// `commit_tx`): a session can span epochs.
    pub fn extend(
        &mut self,
        epoch: &Epoch,
        epoch_id: u64,
        commit_tx: B256,
        summaries: &[ProbeSummary],
    ) -> Result<(), Error> {
        let later = Self::for_session(
            epoch,
            epoch_id,
            commit_tx,
            self.session_id,
            summaries,
            self.chain_id,
            self.contract,
        )?;
        self.merge(later)
    }

    /// Appends the blocks of `other`, a receipt of the same session (same chain, contract
    /// and session id) from other epochs. A block index already in `self` is refused.
    pub fn merge(&mut self, other: Self) -> Result<(), Error> {
        if (other.chain_id, other.contract, other.session_id)
            != (self.chain_id, self.contract, self.session_id)
        {
            return Err(Error::Receipt(format!(
                "cannot merge session {} on chain {} at {} into session {} on chain {} at {}",
                other.session_id,
                other.chain_id,
                other.contract,
                self.session_id,
                self.chain_id,
                self.contract
            )));
        }
        for total in other.host_totals {
            if !self.host_totals.iter().any(|t| t.epoch_id == total.epoch_id) {
                self.host_totals.push(total);
            }
        }
        self.append(other.blocks)
    }

    /// Adds `blocks`, keeping them ordered by block index and each index once.
    fn append(&mut self, blocks: Vec<ReceiptBlock>) -> Result<(), Error> {
        for block in blocks {
            if self.blocks.iter().any(|b| b.block_index == block.block_index) {
                return Err(Error::Receipt(format!(
                    "block {} of session {} is already in the receipt",
                    block.block_index, self.session_id
                )));
            }
            self.blocks.push(block);
        }
        self.blocks.sort_by_key(|b| b.block_index);
        Ok(())
    }

    /// Reads a receipt from its JSON; malformed JSON, hex or lengths are `Error::Receipt`.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(|e| Error::Receipt(e.to_string()))
    }

    /// Sum of the blocks' amounts, in wei; `u128::MAX` if it would not fit (only a forged
    /// receipt can claim that much: its blocks fail verification).
    pub fn total(&self) -> u128 {
        self.blocks.iter().fold(0u128, |sum, b| sum.saturating_add(b.amount))
    }
}

/// A check of a receipt that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The receipt lists no block.
    #[error("the receipt lists no block")]
    NoBlocks,
    /// The RPC endpoint serves another chain than the receipt names.
    #[error("the RPC endpoint is chain {rpc}, the receipt names chain {receipt}")]
    ChainId {
        /// The receipt's chain id.
        receipt: u64,
        /// The endpoint's chain id.
        rpc: u64,
    },
    /// There is no contract at the receipt's contract address.
    #[error("no contract at the receipt's address")]
    NoContract,
    /// The voucher's EIP-712 digest (under the receipt's chain id and contract) is not the
    /// receipt's session id.
    #[error("the voucher's digest is {computed}, not the receipt's session id")]
    SessionId {
        /// The digest recomputed from the voucher.
        computed: B256,
    },
    /// The voucher signature is malformed, malleable or recovers no address.
    #[error("voucher signature: {0}")]
    VoucherSignature(String),
    /// The block's own fields (index, amount, session) disagree with its leaf or summary.
    #[error("block fields: {0}")]
    BlockFields(String),
    /// The leaf's session, player or host is not the voucher's.
    #[error("leaf not covered by the voucher: {0}")]
    LeafNotVoucher(String),
    /// The probe summary does not hash to the leaf's `probeSummaryHash`.
    #[error("the probe summary does not hash to the leaf's probeSummaryHash")]
    ProbeSummaryHash,
    /// The proof does not fold the leaf's hash to the block's epoch root.
    #[error("the Merkle proof does not lead from the leaf to the epoch root")]
    Proof,
    /// The epoch is not committed on-chain (`on_chain` is `None`), or under another root.
    #[error("epoch root on chain is {}, not the receipt's", RootText(on_chain))]
    EpochRoot {
        /// The root the contract holds for the epoch id, if it holds one.
        on_chain: Option<B256>,
    },
    /// A fault was proven against the block's epoch: it pays nothing.
    #[error("the epoch was voided")]
    EpochVoid,
    /// The commit transaction is unknown, failed, went elsewhere or emitted no matching
    /// `EpochCommitted`.
    #[error("commit transaction: {0}")]
    CommitTx(String),
}

/// What the chain says of one block of a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockVerdict {
    /// Index of the block within the session.
    pub block_index: u32,
    /// The epoch the receipt says commits it.
    pub epoch_id: u64,
    /// Wei the receipt says it billed.
    pub amount: u128,
    /// Where the block's epoch stands on chain (`None` when the chain does not hold it).
    pub epoch_state: Option<EpochState>,
    /// The block's failed checks; empty when it checks out.
    pub failures: Vec<Failure>,
}

impl BlockVerdict {
    /// Whether every check of the block passed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The outcome of [`verify_receipt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptCheck {
    /// The player the voucher signature recovers to, when it recovers.
    pub player: Option<Address>,
    /// Failed checks of the receipt as a whole (chain, contract, voucher).
    pub failures: Vec<Failure>,
    /// One verdict per block, in the receipt's order.
    pub blocks: Vec<BlockVerdict>,
}

impl ReceiptCheck {
    /// Whether the receipt and every block in it checked out.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.blocks.iter().all(BlockVerdict::ok)
    }
}

/// Checks `receipt` against the chain at `rpc_url` alone: the voucher's digest and signature,
/// each block's fields, summary hash, leaf and proof, the epoch roots the contract holds,
/// and the commit transactions. Failed checks are reported in the [`ReceiptCheck`]; an
/// `Err` means the endpoint could not be asked.
pub async fn verify_receipt(receipt: &Receipt, rpc_url: &str) -> Result<ReceiptCheck, Error> {
    let url = rpc_url.parse().map_err(|e| Error::Chain(format!("bad RPC URL `{rpc_url}`: {e}")))?;
    let provider = ProviderBuilder::new().connect_http(url).erased();
    let chain = |e: alloy::transports::TransportError| Error::Chain(e.to_string());
    let mut failures = Vec::new();
    if receipt.blocks.is_empty() {
        failures.push(Failure::NoBlocks);
    }
    let rpc = provider.get_chain_id().await.map_err(chain)?;
    if rpc != receipt.chain_id {
        failures.push(Failure::ChainId { receipt: receipt.chain_id, rpc });
    }
    let deployed = !provider.get_code_at(receipt.contract).await.map_err(chain)?.is_empty();
    if !deployed {
        failures.push(Failure::NoContract);
    }
    let computed = voucher_session_id(&receipt.voucher, receipt.chain_id, receipt.contract);
    if computed != receipt.session_id {
        failures.push(Failure::SessionId { computed });
    }
    let player = match recover_player(&receipt.voucher_signature, &computed) {
        Ok(player) => Some(player),
        Err(why) => {
            failures.push(Failure::VoucherSignature(why));
            None
        }
    };

    let mut chain_reads = ChainReads {
        contract: GridplaySettlement::new(receipt.contract, provider.clone()),
        provider,
        deployed,
        epochs: HashMap::new(),
        commits: HashMap::new(),
    };
    let mut blocks = Vec::with_capacity(receipt.blocks.len());
    for block in &receipt.blocks {
        let mut failures = offline_checks(receipt, block, computed, player);
        let (failure, epoch_state) = chain_reads.epoch(block.epoch_id, block.epoch_root).await?;
        failures.extend(failure);
        if epoch_state == Some(EpochState::Void) {
            failures.push(Failure::EpochVoid);
        }
        if let Some(failure) =
            chain_reads.commit(block.commit_tx, block.epoch_id, block.epoch_root).await?
        {
            failures.push(failure);
        }
        blocks.push(BlockVerdict {
            block_index: block.block_index,
            epoch_id: block.epoch_id,
            amount: block.amount,
            epoch_state,
            failures,
        });
    }
    Ok(ReceiptCheck { player, failures, blocks })
}

/// The address that signed `digest`, refusing what OpenZeppelin's `ECDSA.recover` refuses.
pub(crate) fn recover_player(signature: &[u8], digest: &B256) -> Result<Address, String> {
    let signature = Signature::from_raw(signature).map_err(|e| e.to_string())?;
    if signature.normalize_s().is_some() {
        return Err("s is in the upper half (a malleable signature)".into());
    }
    signature.recover_address_from_prehash(digest).map_err(|e| e.to_string())
}

/// The checks of one block that need no chain: its fields against its leaf and summary, the
/// summary's hash, the leaf against the voucher, and the proof against the claimed root.
pub(crate) fn offline_checks(
    receipt: &Receipt,
    block: &ReceiptBlock,
    voucher_digest: B256,
    player: Option<Address>,
) -> Vec<Failure> {
    let (leaf, summary) = (&block.leaf, &block.probe_summary);
    let mut failures = Vec::new();
    let mut fields = Vec::new();
    if leaf.block_index != block.block_index || summary.block_index != block.block_index {
        fields.push(format!(
            "block index {} but leaf {} and summary {}",
            block.block_index, leaf.block_index, summary.block_index
        ));
    }
    if leaf.amount != block.amount || summary.amount != block.amount {
        fields.push(format!(
            "amount {} but leaf {} and summary {}",
            block.amount, leaf.amount, summary.amount
        ));
    }
    if summary.session_id != leaf.session_id {
        fields.push("the summary is of another session than the leaf".into());
    }
    if !fields.is_empty() {
        failures.push(Failure::BlockFields(fields.join("; ")));
    }
    if summary.struct_hash() != leaf.probe_summary_hash {
        failures.push(Failure::ProbeSummaryHash);
    }
    let mut not_voucher = Vec::new();
    if leaf.session_id != voucher_digest.0 || leaf.session_id != receipt.session_id.0 {
        not_voucher.push(format!("session {}", B256::from(leaf.session_id)));
    }
    if Address::from(leaf.host) != receipt.voucher.host {
        not_voucher.push(format!("host {}", Address::from(leaf.host)));
    }
    if player.is_some_and(|p| p != Address::from(leaf.player)) {
        not_voucher.push(format!("player {}", Address::from(leaf.player)));
    }
    if !not_voucher.is_empty() {
        failures.push(Failure::LeafNotVoucher(not_voucher.join(", ")));
    }
    let proof: Vec<Hash> = block.proof.iter().map(|h| h.0).collect();
    let hash = block_hash(&block.block_leaf());
    if !verify_at(&block.epoch_root.0, hash, block.position as usize, &proof) {
        failures.push(Failure::Proof);
    }
    failures
}

/// Reads of the contract and its transactions, each asked once.
struct ChainReads {
    provider: DynProvider,
    contract: GridplaySettlementInstance<DynProvider>,
    /// Whether the contract address holds code.
    deployed: bool,
    /// Committed root and state by epoch id (`None`: not committed).
    epochs: HashMap<u64, Option<(B256, EpochState)>>,
    /// Failure of a commit transaction check, by (transaction, epoch id, root).
    commits: HashMap<(B256, u64, B256), Option<Failure>>,
}

impl ChainReads {
    /// Fails unless the contract holds `root` as epoch `id`; where the epoch stands.
    async fn epoch(
        &mut self,
        id: u64,
        root: B256,
    ) -> Result<(Option<Failure>, Option<EpochState>), Error> {
        let on_chain = match self.epochs.get(&id) {
            Some(known) => *known,
            None => {
                let read = self.read_epoch(id).await?;
                self.epochs.insert(id, read);
                read
            }
        };
        let failure = (on_chain.map(|(r, _)| r) != Some(root))
            .then_some(Failure::EpochRoot { on_chain: on_chain.map(|(r, _)| r) });
        Ok((failure, on_chain.map(|(_, state)| state)))
    }

    /// The root and state of epoch `id`, if the contract committed one.
    async fn read_epoch(&self, id: u64) -> Result<Option<(B256, EpochState)>, Error> {
        if !self.deployed {
            return Ok(None);
        }
        let count = self.contract.epochCount().call().await.map_err(contract_error)?;
        if U256::from(id) >= count {
            return Ok(None);
        }
        let epoch = self.contract.epochs(U256::from(id)).call().await.map_err(contract_error)?;
        Ok(Some((epoch.root, EpochState::from_code(epoch.state))))
    }

    /// Fails unless `tx` succeeded, was sent to the contract, and emitted
    /// `EpochCommitted(id, root)` from it.
    async fn commit(&mut self, tx: B256, id: u64, root: B256) -> Result<Option<Failure>, Error> {
        if let Some(known) = self.commits.get(&(tx, id, root)) {
            return Ok(known.clone());
        }
        let failure = self.check_commit(tx, id, root).await?.err().map(Failure::CommitTx);
        self.commits.insert((tx, id, root), failure.clone());
        Ok(failure)
    }

    /// The commit check itself: `Ok(Err(why))` when the transaction does not back the block.
    async fn check_commit(
        &self,
        tx: B256,
        id: u64,
        root: B256,
    ) -> Result<Result<(), String>, Error> {
        let contract = *self.contract.address();
        let receipt = self
            .provider
            .get_transaction_receipt(tx)
            .await
            .map_err(|e| Error::Chain(e.to_string()))?;
        let Some(receipt) = receipt else {
            return Ok(Err(format!("{tx} is not a mined transaction")));
        };
        if !receipt.status() {
            return Ok(Err(format!("{tx} failed")));
        }
        if receipt.to != Some(contract) {
            return Ok(Err(format!("{tx} was not sent to the contract")));
        }
        let committed = receipt.logs().iter().any(|log| {
            log.address() == contract
                && log.log_decode::<GridplaySettlement::EpochCommitted>().is_ok_and(|e| {
                    e.inner.data.epochId == U256::from(id) && e.inner.data.root == root
                })
        });
        Ok(if committed {
            Ok(())
        } else {
            Err(format!("{tx} emitted no EpochCommitted for epoch {id} with root {root}"))
        })
    }
}

/// Displays an epoch root the contract may not hold.
struct RootText<'a>(&'a Option<B256>);

impl std::fmt::Display for RootText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(root) => write!(f, "{root}"),
            None => f.write_str("missing (epoch not committed)"),
        }
    }
}

/// A failed contract read (transport or node).
fn contract_error(e: alloy::contract::Error) -> Error {
    Error::Chain(e.to_string())
}

/// JSON of the voucher, field for field.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Voucher", rename_all = "camelCase")]
#[allow(non_snake_case)]
struct VoucherJson {
    host: Address,
    sessionKey: Address,
    #[serde(with = "decimal")]
    pricePerBlock: U256,
    maxBlocks: u32,
    #[serde(with = "decimal")]
    expiry: u64,
    nonce: B256,
}

/// JSON of a probe summary, field for field.
#[derive(Serialize, Deserialize)]
#[serde(remote = "ProbeSummary", rename_all = "camelCase")]
struct ProbeSummaryJson {
    #[serde(with = "hex32")]
    session_id: Hash,
    block_index: u32,
    seconds_covered: u32,
    seconds_met: u32,
    #[serde(with = "decimal")]
    amount: u128,
}

/// JSON of a leaf, field for field.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Leaf", rename_all = "camelCase")]
struct LeafJson {
    #[serde(with = "hex32")]
    session_id: Hash,
    block_index: u32,
    #[serde(with = "hex20")]
    player: crate::Address,
    #[serde(with = "hex20")]
    host: crate::Address,
    #[serde(with = "decimal")]
    amount: u128,
    #[serde(with = "hex32")]
    probe_summary_hash: Hash,
}

/// A number as a decimal string.
mod decimal {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(D::Error::custom(format!("expected a decimal string, got `{text}`")));
        }
        text.parse().map_err(|e| D::Error::custom(format!("`{text}`: {e}")))
    }
}

/// 32 bytes as `0x` hex.
mod hex32 {
    use alloy::primitives::B256;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        B256::from(*value).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        Ok(B256::deserialize(d)?.0)
    }
}

/// An address as `0x` hex (checksummed when written).
mod hex20 {
    use alloy::primitives::Address;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &[u8; 20], s: S) -> Result<S::Ok, S::Error> {
        Address::from(*value).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 20], D::Error> {
        Ok(Address::deserialize(d)?.0.0)
    }
}

#[cfg(test)]
mod tests {
    use alloy::signers::local::PrivateKeySigner;

    use super::*;
    use crate::settlement::{BilledBlock, sign_voucher};

    const CHAIN: u64 = 31337;

    fn contract() -> Address {
        Address::repeat_byte(0xc0)
    }

    /// An epoch of two sessions (blocks 0..3 of the first, block 0 of the second), the first
    /// session's id and summaries.
    fn epoch() -> (Epoch, B256, Vec<ProbeSummary>) {
        let player = PrivateKeySigner::random();
        let mut blocks = Vec::new();
        let mut first = None;
        for (n, count) in [(1u8, 3u32), (2, 1)] {
            let voucher = Voucher {
                host: Address::repeat_byte(0x11),
                sessionKey: Address::repeat_byte(0x22),
                pricePerBlock: U256::from(1_000u64),
                maxBlocks: 4,
                expiry: u64::MAX / 2,
                nonce: B256::repeat_byte(n),
            };
            let signature = sign_voucher(&player, &voucher, CHAIN, contract()).unwrap();
            let session_id = voucher_session_id(&voucher, CHAIN, contract());
            let summaries: Vec<ProbeSummary> = (0..count)
                .map(|i| ProbeSummary {
                    session_id: session_id.0,
                    block_index: i,
                    seconds_covered: 900,
                    seconds_met: 890,
                    amount: 1_000,
                })
                .collect();
            for s in &summaries {
                let leaf = Leaf {
                    session_id: session_id.0,
                    block_index: s.block_index,
                    player: player.address().0.0,
                    host: voucher.host.0.0,
                    amount: s.amount,
                    probe_summary_hash: s.struct_hash(),
                };
                blocks.push(BilledBlock {
                    voucher: voucher.clone(),
                    voucher_signature: signature.clone(),
                    leaf,
                });
            }
            first.get_or_insert((session_id, summaries));
        }
        let (session_id, summaries) = first.unwrap();
        (Epoch::new(blocks, &std::collections::BTreeMap::new()).unwrap(), session_id, summaries)
    }

    fn receipt() -> Receipt {
        let (epoch, session_id, summaries) = epoch();
        Receipt::for_session(
            &epoch,
            7,
            B256::repeat_byte(0xee),
            session_id,
            &summaries,
            CHAIN,
            contract(),
        )
        .unwrap()
    }

    #[test]
    fn a_receipt_holds_only_its_sessions_blocks_and_round_trips_through_json() {
        let receipt = receipt();
        assert_eq!(receipt.blocks.len(), 3);
        assert_eq!(receipt.total(), 3_000);
        let json = serde_json::to_value(&receipt).unwrap();
        assert_eq!(json["chainId"], "31337");
        assert_eq!(json["voucher"]["expiry"], (u64::MAX / 2).to_string());
        assert_eq!(json["voucher"]["pricePerBlock"], "1000");
        assert_eq!(json["blocks"][0]["epochId"], "7");
        assert_eq!(json["blocks"][1]["probeSummary"]["secondsMet"], 890);
        assert_eq!(json["blocks"][2]["leaf"]["amount"], "1000");
        let back = Receipt::from_json(&json.to_string()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
        assert_eq!(back.blocks, receipt.blocks);
        assert_eq!(back.session_id, voucher_session_id(&back.voucher, CHAIN, contract()));
    }

    /// Found by fuzzing receipts: amounts summing past `u128::MAX` overflowed `total`.
    #[test]
    fn a_forged_receipts_total_saturates_instead_of_overflowing() {
        let mut receipt = receipt();
        for block in &mut receipt.blocks {
            block.amount = u128::MAX / 2;
        }
        assert_eq!(receipt.total(), u128::MAX);
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        let good = serde_json::to_value(receipt()).unwrap();
        let mut cases = Vec::new();
        for (pointer, value) in [
            ("/sessionId", "0xzz"),
            ("/sessionId", "0x1234"),
            ("/contract", "0x12"),
            ("/chainId", "-1"),
            ("/blocks/0/amount", "0x10"),
            ("/blocks/0/leaf/amount", "340282366920938463463374607431768211456"),
            ("/blocks/0/proof/0", "0x00"),
            ("/voucherSignature", "0xg0"),
        ] {
            let mut bad = good.clone();
            *bad.pointer_mut(pointer).unwrap() = value.into();
            cases.push(bad.to_string());
        }
        cases.push("{".into());
        cases.push("[]".into());
        for case in cases {
            assert!(matches!(Receipt::from_json(&case), Err(Error::Receipt(_))), "{case}");
        }
    }

    #[test]
    fn a_short_signature_or_wrong_proof_fails_its_check() {
        let receipt = receipt();
        let digest = receipt.session_id;
        assert!(recover_player(&receipt.voucher_signature, &digest).is_ok());
        assert!(recover_player(&receipt.voucher_signature[..64], &digest).is_err());
        assert!(recover_player(&[], &digest).is_err());
        let player = recover_player(&receipt.voucher_signature, &digest).ok();
        let block = &receipt.blocks[1];
        assert!(offline_checks(&receipt, block, digest, player).is_empty());
        let mut bad = block.clone();
        bad.proof.push(B256::ZERO);
        assert_eq!(offline_checks(&receipt, &bad, digest, player), vec![Failure::Proof]);
        bad.proof.clear();
        assert_eq!(offline_checks(&receipt, &bad, digest, player), vec![Failure::Proof]);
        let mut moved = block.clone();
        moved.position += 1;
        assert_eq!(offline_checks(&receipt, &moved, digest, player), vec![Failure::Proof]);
        let mut resummed = block.clone();
        resummed.player_running += 1;
        assert_eq!(offline_checks(&receipt, &resummed, digest, player), vec![Failure::Proof]);
    }

    #[test]
    fn the_host_claims_its_epoch_total_from_a_receipt() {
        let claims = receipt().claims();
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].epochId, 7);
        assert_eq!(claims[0].at.leaf.host, Address::repeat_byte(0x11));
        assert_eq!(claims[0].at.leaf.amount, U256::from(4_000u64), "both sessions' blocks");
    }

    #[test]
    fn receipts_merge_only_within_a_session_and_each_block_once() {
        let (epoch, session_id, summaries) = epoch();
        let mut receipt = receipt();
        assert!(matches!(
            receipt.extend(&epoch, 8, B256::ZERO, &summaries),
            Err(Error::Receipt(_))
        ));
        let mut other = receipt.clone();
        other.session_id = B256::repeat_byte(1);
        assert!(matches!(receipt.merge(other), Err(Error::Receipt(_))));
        assert_eq!(
            Receipt::for_session(&epoch, 7, B256::ZERO, B256::ZERO, &summaries, CHAIN, contract())
                .unwrap_err(),
            Error::SessionNotInEpoch(B256::ZERO.to_string())
        );
        assert!(matches!(
            Receipt::for_session(
                &epoch,
                7,
                B256::ZERO,
                session_id,
                &summaries[..1],
                CHAIN,
                contract()
            ),
            Err(Error::Receipt(_))
        ));
    }
}
