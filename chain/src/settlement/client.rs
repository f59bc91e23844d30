//! Transactions and reads against a deployed `GridplaySettlement`.

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

use super::GridplaySettlement::{self, GridplaySettlementInstance, SessionClaim};
use crate::Error;

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

/// Sends a contract call and waits for it to be mined successfully.
async fn mined<C: alloy::sol_types::SolCall>(
    what: &str,
    call: alloy::contract::SolCallBuilder<&DynProvider, C>,
) -> Result<alloy::rpc::types::TransactionReceipt, Error> {
    let receipt = call
        .send()
        .await
        .map_err(chain_error)?
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await
        .map_err(chain_error)?;
    if !receipt.status() {
        return Err(Error::Chain(format!("{what} reverted")));
    }
    Ok(receipt)
}

async fn provider(rpc_url: &str, signer: PrivateKeySigner) -> Result<DynProvider, Error> {
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
