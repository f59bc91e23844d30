//! Transactions and reads against a deployed `GridplaySettlement`.

use alloy::eips::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

use super::GridplaySettlement::{
    self, BlockLeaf, GridplaySettlementErrors, GridplaySettlementInstance, HostClaim, PlayerAt,
};
use super::GridplayTypes;
use super::epoch::{DisputeEvidence, Voucher};
use super::sections::Sections;
use crate::{Error, ProbeSummary};

/// How long to wait for a transaction to be mined.
const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Constructor arguments of the settlement contract (seconds and wei).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployParams {
    /// Seconds after a commit during which faults and disputes can be proven.
    pub challenge_window: u64,
    /// Seconds a host waits between asking to unbond and withdrawing; at least the window.
    pub unbonding_period: u64,
    /// Seconds a player waits between asking to withdraw and withdrawing; at least twice the
    /// window.
    pub withdrawal_delay: u64,
    /// Smallest host (and operator) bond.
    pub min_bond: u128,
    /// Bond slashed from a host per refunded block.
    pub slash_amount: u128,
    /// Wei a voucher challenge carries.
    pub challenge_bond: u128,
}

/// A signer's handle on the settlement contract.
#[derive(Clone)]
pub struct SettlementClient {
    contract: GridplaySettlementInstance<DynProvider>,
    chain_id: u64,
    /// Signs the transactions this client builds itself ([`SettlementClient::sign_commit`]).
    wallet: EthereumWallet,
    /// The signer's address.
    sender: Address,
}

/// A signed `commitEpoch` transaction, not yet sent: what a settler keeps before sending it,
/// so that after a crash it can tell whether it was mined (one nonce, one transaction).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedCommit {
    /// The transaction's hash.
    pub tx: B256,
    /// The sender's nonce it uses.
    pub nonce: u64,
    /// The signed transaction, EIP-2718 encoded.
    pub raw: Bytes,
}

/// What became of a [`SignedCommit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Mined: the epoch's id.
    Committed(u64),
    /// It never will be: reverted, or its nonce went to another transaction.
    Failed(String),
    /// Not mined yet.
    Pending,
}

fn chain_error(e: impl std::fmt::Display) -> Error {
    Error::Chain(e.to_string())
}

/// Names the contract's custom error in a failed call, `Error::Reverted`; any other failure
/// (transport, node) is `Error::Chain`.
fn call_error(what: &str, e: alloy::contract::Error) -> Error {
    if let Some(decoded) = e.as_decoded_interface_error::<GridplaySettlementErrors>() {
        return Error::Reverted { call: what.into(), reason: revert_reason(&decoded) };
    }
    match e.as_revert_data() {
        Some(data) => Error::Reverted { call: what.into(), reason: format!("revert data {data}") },
        None => chain_error(e),
    }
}

/// `Name { field: value, .. }` for a decoded custom error: its `Debug` form without the
/// enum's wrapper variant.
fn revert_reason(decoded: &GridplaySettlementErrors) -> String {
    let text = format!("{decoded:?}");
    match (text.find('('), text.rfind(')')) {
        (Some(open), Some(close)) if open < close => text[open + 1..close].to_string(),
        _ => text,
    }
}

/// Sends a contract call and waits for it to be mined successfully.
async fn mined<C: alloy::sol_types::SolCall>(
    what: &str,
    call: alloy::contract::SolCallBuilder<&DynProvider, C>,
) -> Result<alloy::rpc::types::TransactionReceipt, Error> {
    let receipt = call
        .send()
        .await
        .map_err(|e| call_error(what, e))?
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await
        .map_err(chain_error)?;
    if !receipt.status() {
        return Err(Error::Reverted { call: what.into(), reason: "mined with status 0".into() });
    }
    Ok(receipt)
}

/// An HTTP provider that signs with `wallet`.
pub(crate) fn provider(rpc_url: &str, wallet: EthereumWallet) -> Result<DynProvider, Error> {
    let url = rpc_url.parse().map_err(|e| Error::Chain(format!("bad RPC URL `{rpc_url}`: {e}")))?;
    // Simple nonce management asks the node each time, so a transaction that
    // failed before it was sent does not leave a gap that stalls the next one.
    Ok(ProviderBuilder::new()
        .with_simple_nonce_management()
        .wallet(wallet)
        .connect_http(url)
        .erased())
}

impl SettlementClient {
    /// Deploys a new contract with `signer` as its operator.
    pub async fn deploy(
        rpc_url: &str,
        signer: PrivateKeySigner,
        params: DeployParams,
    ) -> Result<Self, Error> {
        let operator = signer.address();
        let wallet = EthereumWallet::from(signer);
        let provider = provider(rpc_url, wallet.clone())?;
        let contract = GridplaySettlement::deploy(
            provider.clone(),
            operator,
            params.challenge_window,
            params.unbonding_period,
            params.withdrawal_delay,
            params.min_bond,
            params.slash_amount,
            params.challenge_bond,
        )
        .await
        .map_err(chain_error)?;
        let chain_id = provider.get_chain_id().await.map_err(chain_error)?;
        Ok(Self { contract, chain_id, wallet, sender: operator })
    }

    /// A handle on the contract at `address`, sending as `signer`.
    pub async fn connect(
        rpc_url: &str,
        signer: PrivateKeySigner,
        address: Address,
    ) -> Result<Self, Error> {
        let sender = signer.address();
        let wallet = EthereumWallet::from(signer);
        let provider = provider(rpc_url, wallet.clone())?;
        let chain_id = provider.get_chain_id().await.map_err(chain_error)?;
        Ok(Self { contract: GridplaySettlement::new(address, provider), chain_id, wallet, sender })
    }

    /// The same contract, sending as another signer.
    pub async fn with_signer(
        &self,
        rpc_url: &str,
        signer: PrivateKeySigner,
    ) -> Result<Self, Error> {
        Self::connect(rpc_url, signer, self.address()).await
    }

    /// The contract's address.
    pub fn address(&self) -> Address {
        *self.contract.address()
    }

    /// The chain's id (part of every voucher's EIP-712 domain).
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The contract binding, for calls this client does not wrap.
    pub fn contract(&self) -> &GridplaySettlementInstance<DynProvider> {
        &self.contract
    }

    /// Registers the signer as a host with `wei` of bond (or tops the bond up).
    pub async fn bond(&self, wei: U256) -> Result<B256, Error> {
        Ok(mined("registerHost", self.contract.registerHost().value(wei)).await?.transaction_hash)
    }

    /// Adds `wei` to the operator's bond (operator only); commits need at least `minBond`.
    pub async fn bond_operator(&self, wei: U256) -> Result<B256, Error> {
        Ok(mined("bondOperator", self.contract.bondOperator().value(wei)).await?.transaction_hash)
    }

    /// Deposits `wei` into the signer's player account.
    pub async fn deposit(&self, wei: U256) -> Result<B256, Error> {
        Ok(mined("deposit", self.contract.deposit().value(wei)).await?.transaction_hash)
    }

    /// Commits an epoch (operator only); returns its id and the transaction.
    pub async fn commit_epoch(&self, epoch: &Sections) -> Result<(u64, B256), Error> {
        let (root, blocks, hosts, players, total) = epoch.commit_args();
        self.commit_raw(root, blocks, hosts, players, total).await
    }

    /// Signs a commit of `epoch` (operator only) without sending it; fails, sending
    /// nothing, if the commit would revert now.
    pub async fn sign_commit(&self, epoch: &Sections) -> Result<SignedCommit, Error> {
        let (root, blocks, hosts, players, total) = epoch.commit_args();
        let call = self.contract.commitEpoch(root, blocks, hosts, players, total).from(self.sender);
        call.call().await.map_err(|e| call_error("commitEpoch", e))?;
        let provider = self.contract.provider();
        let request = call.into_transaction_request();
        let gas = provider.estimate_gas(request.clone()).await.map_err(chain_error)?;
        let nonce =
            provider.get_transaction_count(self.sender).pending().await.map_err(chain_error)?;
        let fees = provider.estimate_eip1559_fees().await.map_err(chain_error)?;
        let request = request
            .with_nonce(nonce)
            // Room for the estimate to be a little short.
            .with_gas_limit(gas.saturating_add(gas / 4))
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
            .with_chain_id(self.chain_id);
        let envelope = request.build(&self.wallet).await.map_err(chain_error)?;
        Ok(SignedCommit {
            tx: *envelope.tx_hash(),
            nonce,
            raw: Bytes::from(envelope.encoded_2718()),
        })
    }

    /// Sends a signed commit; sending one the node already has, or has mined, is not an
    /// error.
    pub async fn broadcast(&self, commit: &SignedCommit) -> Result<(), Error> {
        match self.contract.provider().send_raw_transaction(&commit.raw).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = e.to_string().to_lowercase();
                let known = ["already known", "already imported", "nonce too low"];
                if known.iter().any(|k| text.contains(k)) { Ok(()) } else { Err(chain_error(e)) }
            }
        }
    }

    /// What became of a signed commit, as the chain says now.
    pub async fn commit_outcome(&self, commit: &SignedCommit) -> Result<CommitOutcome, Error> {
        let provider = self.contract.provider();
        let receipt =
            || async { provider.get_transaction_receipt(commit.tx).await.map_err(chain_error) };
        let outcome = |receipt: alloy::rpc::types::TransactionReceipt| {
            if !receipt.status() {
                return CommitOutcome::Failed("reverted".into());
            }
            match receipt.decoded_log::<GridplaySettlement::EpochCommitted>() {
                Some(committed) => CommitOutcome::Committed(committed.epochId.to::<u64>()),
                None => CommitOutcome::Failed("mined without an EpochCommitted event".into()),
            }
        };
        if let Some(mined) = receipt().await? {
            return Ok(outcome(mined));
        }
        let used =
            provider.get_transaction_count(self.sender).latest().await.map_err(chain_error)?;
        if used <= commit.nonce {
            return Ok(CommitOutcome::Pending);
        }
        // Its nonce is used: by it (mined since the first look) or by another transaction.
        Ok(match receipt().await? {
            Some(mined) => outcome(mined),
            None => CommitOutcome::Failed("another transaction took its nonce".into()),
        })
    }

    /// Commits exactly these arguments (operator only): what a ledger recorded.
    pub async fn commit_raw(
        &self,
        root: B256,
        blocks: u32,
        hosts: u32,
        players: u32,
        total: u128,
    ) -> Result<(u64, B256), Error> {
        let call = self.contract.commitEpoch(root, blocks, hosts, players, total);
        let receipt = mined("commitEpoch", call).await?;
        let committed = receipt
            .decoded_log::<GridplaySettlement::EpochCommitted>()
            .ok_or_else(|| Error::Chain("no EpochCommitted event".into()))?;
        Ok((committed.epochId.to::<u64>(), receipt.transaction_hash))
    }

    /// Adds (`enabled`) or removes a checker key whose signed probe summaries can back
    /// disputes (operator only).
    pub async fn set_checker(&self, checker: Address, enabled: bool) -> Result<B256, Error> {
        let call = self.contract.setChecker(checker, enabled);
        Ok(mined("setChecker", call).await?.transaction_hash)
    }

    /// Refunds a committed block that its own voucher does not allow (another host, a block
    /// index past `maxBlocks`, an amount over `pricePerBlock`, or an epoch committed after the
    /// voucher's expiry) within the epoch's challenge window: the player is credited, the
    /// host's total reduced and its bond slashed. A block within its voucher is refused with
    /// `Error::Reverted` naming `LeafWithinVoucher`.
    pub async fn dispute_beyond_voucher(
        &self,
        epoch_id: u64,
        evidence: &DisputeEvidence,
    ) -> Result<B256, Error> {
        let call = self.contract.disputeBeyondVoucher(
            U256::from(epoch_id),
            evidence.at.clone(),
            evidence.voucher.clone(),
            evidence.voucher_signature.clone(),
        );
        Ok(mined("disputeBeyondVoucher", call).await?.transaction_hash)
    }

    /// Refunds a committed block with an observer's probe summary of it that bills less than
    /// the leaf, signed (see [`sign_probe_summary`](super::sign_probe_summary)) by the
    /// voucher's session key or a registered checker, within the epoch's challenge window.
    /// A summary that agrees with the leaf, is for another block or is signed by anyone else
    /// is refused with `Error::Reverted` (`SummaryAgreesWithLeaf`, `SummaryMismatch`,
    /// `UnauthorisedObserver`).
    pub async fn dispute_probe_summary(
        &self,
        epoch_id: u64,
        evidence: &DisputeEvidence,
        summary: &ProbeSummary,
        summary_signature: Bytes,
    ) -> Result<B256, Error> {
        let call = self.contract.disputeProbeSummary(
            U256::from(epoch_id),
            evidence.at.clone(),
            evidence.voucher.clone(),
            evidence.voucher_signature.clone(),
            GridplayTypes::ProbeSummary::from(summary),
            summary_signature,
        );
        Ok(mined("disputeProbeSummary", call).await?.transaction_hash)
    }

    /// Answers voucher challenge `id` with the challenged block's voucher (the answerer gets
    /// the challenge bond).
    pub async fn answer_challenge(
        &self,
        id: u64,
        leaf: BlockLeaf,
        voucher: Voucher,
        signature: Bytes,
    ) -> Result<B256, Error> {
        let call = self.contract.answerChallenge(U256::from(id), leaf, voucher, signature);
        Ok(mined("answerChallenge", call).await?.transaction_hash)
    }

    /// Challenges raised so far, and the open ones from id `from` on: (id, epoch id,
    /// challenged leaf hash).
    pub async fn open_challenges(&self, from: u64) -> Result<(u64, Vec<(u64, u64, B256)>), Error> {
        let count = self.contract.challengeCount().call().await.map_err(chain_error)?.to::<u64>();
        let mut open = Vec::new();
        for id in from..count {
            let c = self.contract.challenges(U256::from(id)).call().await.map_err(chain_error)?;
            if c.challenger != Address::ZERO {
                open.push((id, u64::from(c.epochId), c.leafHash));
            }
        }
        Ok((count, open))
    }

    /// Records `player`'s cumulative spend from its leaf in final epoch `epoch_id`.
    pub async fn record_spend(
        &self,
        player: Address,
        epoch_id: u64,
        at: PlayerAt,
    ) -> Result<B256, Error> {
        let call = self.contract.recordSpend(player, U256::from(epoch_id), at);
        Ok(mined("recordSpend", call).await?.transaction_hash)
    }

    /// A host's bond in wei (0 when not bonded).
    pub async fn host_bond(&self, host: Address) -> Result<u128, Error> {
        Ok(self.contract.hosts(host).call().await.map_err(chain_error)?.bond)
    }

    /// A host's bond in wei while it stands behind it: 0 once it has asked to unbond.
    pub async fn active_bond(&self, host: Address) -> Result<u128, Error> {
        let bonded = self.contract.hosts(host).call().await.map_err(chain_error)?;
        Ok(if bonded.unbondingAt == 0 { bonded.bond } else { 0 })
    }

    /// Wei a player could withdraw now (deposits and refunds less withdrawals and recorded
    /// spend).
    pub async fn available(&self, player: Address) -> Result<u128, Error> {
        let wei = self.contract.available(player).call().await.map_err(chain_error)?;
        Ok(wei.saturating_to())
    }

    /// Wei refunded from `host`'s total in epoch `epoch_id` by upheld disputes.
    pub async fn refunded_from_host(&self, epoch_id: u64, host: Address) -> Result<u128, Error> {
        let call = self.contract.refundedFromHost(U256::from(epoch_id), host);
        Ok(call.call().await.map_err(chain_error)?.saturating_to())
    }

    /// Whether `host`'s total for epoch `epoch_id` was paid.
    pub async fn is_paid(&self, host: Address, epoch_id: u64) -> Result<bool, Error> {
        self.contract.isPaid(host, U256::from(epoch_id)).call().await.map_err(chain_error)
    }

    /// Wei slashed from bonds so far.
    pub async fn slashed_total(&self) -> Result<U256, Error> {
        self.contract.slashedTotal().call().await.map_err(chain_error)
    }

    /// Whether `checker`'s signed probe summaries can back disputes.
    pub async fn is_checker(&self, checker: Address) -> Result<bool, Error> {
        self.contract.isChecker(checker).call().await.map_err(chain_error)
    }

    /// Number of epochs committed so far.
    pub async fn epoch_count(&self) -> Result<u64, Error> {
        Ok(self.contract.epochCount().call().await.map_err(chain_error)?.to::<u64>())
    }

    /// The root committed as epoch `id` and where the epoch stands.
    pub async fn epoch(&self, id: u64) -> Result<(B256, EpochState), Error> {
        let epoch = self.contract.epochs(U256::from(id)).call().await.map_err(chain_error)?;
        Ok((epoch.root, EpochState::from_code(epoch.state)))
    }

    /// Makes epoch `id` final (its window closed unchallenged, the epoch before it final).
    pub async fn finalize(&self, id: u64) -> Result<B256, Error> {
        Ok(mined("finalize", self.contract.finalize(U256::from(id))).await?.transaction_hash)
    }

    /// Makes every pending epoch up to `last` final, in order, as far as they are ready;
    /// returns how far epochs are final (`None`: not even the first asked for).
    pub async fn finalize_through(&self, last: u64) -> Result<Option<u64>, Error> {
        let mut first = last;
        while first > 0 && self.epoch(first - 1).await?.1 == EpochState::Pending {
            first -= 1;
        }
        for id in first..=last {
            match self.epoch(id).await?.1 {
                EpochState::Final => {}
                EpochState::Pending if self.finalize(id).await.is_ok() => {}
                _ => return Ok(id.checked_sub(1)),
            }
        }
        Ok(Some(last))
    }

    /// Pays `host` its totals for final epochs, one leaf per epoch; returns the transaction.
    pub async fn claim(&self, host: Address, claims: Vec<HostClaim>) -> Result<B256, Error> {
        Ok(mined("claim", self.contract.claim(host, claims)).await?.transaction_hash)
    }
}

/// Where a committed epoch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EpochState {
    /// Within its challenge window (or held by an open challenge): faults may still void it.
    Pending,
    /// Final: its hosts can be paid and its spends recorded.
    Final,
    /// A fault was proven: it pays nothing.
    Void,
}

impl EpochState {
    /// The contract's `EpochState` value.
    pub(crate) fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Pending,
            1 => Self::Final,
            _ => Self::Void,
        }
    }
}

impl std::fmt::Display for EpochState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Final => "final",
            Self::Void => "void",
        })
    }
}
