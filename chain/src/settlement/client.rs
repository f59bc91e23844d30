//! Transactions and reads against a deployed `GridplaySettlement`.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

use super::GridplaySettlement::{
    self, GridplaySettlementErrors, GridplaySettlementInstance, SessionClaim,
};
use super::GridplayTypes;
use super::epoch::DisputeEvidence;
use crate::{Error, ProbeSummary};

/// How long to wait for a transaction to be mined.
const RECEIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Constructor arguments of the settlement contract (seconds and wei).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployParams {
    /// Seconds after a commit during which blocks can be disputed.
    pub challenge_window: u64,
    /// Seconds a host waits between asking to unbond and withdrawing.
    pub unbonding_period: u64,
    /// Seconds a player waits between asking to withdraw and withdrawing.
    pub withdrawal_delay: u64,
    /// Smallest host bond.
    pub min_bond: u128,
    /// Bond slashed per proven undelivered block.
    pub slash_amount: u128,
}

/// A signer's handle on the settlement contract.
#[derive(Clone)]
pub struct SettlementClient {
    contract: GridplaySettlementInstance<DynProvider>,
    chain_id: u64,
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

/// An HTTP provider that signs with `signer`.
pub(crate) async fn provider(
    rpc_url: &str,
    signer: PrivateKeySigner,
) -> Result<DynProvider, Error> {
    let url = rpc_url.parse().map_err(|e| Error::Chain(format!("bad RPC URL `{rpc_url}`: {e}")))?;
    // Simple nonce management asks the node each time, so a transaction that
    // failed before it was sent does not leave a gap that stalls the next one.
    Ok(ProviderBuilder::new()
        .with_simple_nonce_management()
        .wallet(EthereumWallet::from(signer))
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
        let provider = provider(rpc_url, signer).await?;
        let contract = GridplaySettlement::deploy(
            provider.clone(),
            operator,
            params.challenge_window,
            params.unbonding_period,
            params.withdrawal_delay,
            params.min_bond,
            params.slash_amount,
        )
        .await
        .map_err(chain_error)?;
        let chain_id = provider.get_chain_id().await.map_err(chain_error)?;
        Ok(Self { contract, chain_id })
    }

    /// A handle on the contract at `address`, sending as `signer`.
    pub async fn connect(
        rpc_url: &str,
        signer: PrivateKeySigner,
        address: Address,
    ) -> Result<Self, Error> {
        let provider = provider(rpc_url, signer).await?;
        let chain_id = provider.get_chain_id().await.map_err(chain_error)?;
        Ok(Self { contract: GridplaySettlement::new(address, provider), chain_id })
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

    /// Deposits `wei` into the signer's player escrow.
    pub async fn deposit(&self, wei: U256) -> Result<B256, Error> {
        Ok(mined("deposit", self.contract.deposit().value(wei)).await?.transaction_hash)
    }

    /// Commits an epoch's root (operator only); returns its id and the transaction.
    pub async fn commit_epoch(
        &self,
        root: B256,
        leaf_count: u32,
        total: u128,
    ) -> Result<(u64, B256), Error> {
        let receipt =
            mined("commitEpoch", self.contract.commitEpoch(root, leaf_count, total)).await?;
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

    /// Disputes a committed block that its own voucher does not allow (another host, a block
    /// index past `maxBlocks`, an amount over `pricePerBlock`, or an epoch committed after the
    /// voucher's expiry) within the epoch's challenge window. On success the block is never
    /// paid and the leaf's host is slashed; a block within its voucher is refused with
    /// `Error::Reverted` naming `LeafWithinVoucher`.
    pub async fn dispute_beyond_voucher(
        &self,
        epoch_id: u64,
        evidence: &DisputeEvidence,
    ) -> Result<B256, Error> {
        let call = self.contract.disputeBeyondVoucher(
            U256::from(epoch_id),
            GridplayTypes::Leaf::from(&evidence.leaf),
            evidence.proof.clone(),
            evidence.voucher.clone(),
            evidence.voucher_signature.clone(),
        );
        Ok(mined("disputeBeyondVoucher", call).await?.transaction_hash)
    }

    /// Disputes a committed block with an observer's probe summary of it that bills less than
    /// the leaf, signed (see [`sign_probe_summary`](super::sign_probe_summary)) by the
    /// voucher's session key or a registered checker, within the epoch's challenge window.
    /// On success the block is never paid and the leaf's host is slashed; a summary that
    /// agrees with the leaf, is for another block or is signed by anyone else is refused with
    /// `Error::Reverted` (`SummaryAgreesWithLeaf`, `SummaryMismatch`, `UnauthorisedObserver`).
    pub async fn dispute_probe_summary(
        &self,
        epoch_id: u64,
        evidence: &DisputeEvidence,
        summary: &ProbeSummary,
        summary_signature: Bytes,
    ) -> Result<B256, Error> {
        let call = self.contract.disputeProbeSummary(
            U256::from(epoch_id),
            GridplayTypes::Leaf::from(&evidence.leaf),
            evidence.proof.clone(),
            evidence.voucher.clone(),
            evidence.voucher_signature.clone(),
            GridplayTypes::ProbeSummary::from(summary),
            summary_signature,
        );
        Ok(mined("disputeProbeSummary", call).await?.transaction_hash)
    }

    /// A host's bond in wei (0 when not bonded).
    pub async fn host_bond(&self, host: Address) -> Result<u128, Error> {
        Ok(self.contract.hosts(host).call().await.map_err(chain_error)?.bond)
    }

    /// A player's escrow in wei.
    pub async fn escrow(&self, player: Address) -> Result<u128, Error> {
        Ok(self.contract.players(player).call().await.map_err(chain_error)?.balance)
    }

    /// Whether a session's block was already claimed or disputed.
    pub async fn is_settled(&self, session_id: B256, block_index: u32) -> Result<bool, Error> {
        self.contract.isSettled(session_id, block_index).call().await.map_err(chain_error)
    }

    /// Wei slashed from host bonds so far.
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

    /// The root committed as epoch `id`.
    pub async fn epoch_root(&self, id: u64) -> Result<B256, Error> {
        Ok(self.contract.epochs(U256::from(id)).call().await.map_err(chain_error)?.root)
    }

    /// Claims a host's blocks of epoch `id` (after the challenge window); returns the transaction.
    pub async fn claim(
        &self,
        id: u64,
        host: Address,
        sessions: Vec<SessionClaim>,
    ) -> Result<B256, Error> {
        let receipt = mined("claim", self.contract.claim(U256::from(id), host, sessions)).await?;
        Ok(receipt.transaction_hash)
    }
}
