//! An epoch's billed blocks: vouchers, the sections and tree committed for them, the claim a
//! host makes from it, and the evidence a dispute of one block needs.

use std::collections::{BTreeMap, HashMap};

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};

use super::GridplaySettlement::{BlockAt, HostClaim};
use super::GridplayTypes;
use super::sections::Sections;
use crate::{Error, Leaf, ProbeSummary};

/// A player's authorisation of a session, as the contract reads it.
pub type Voucher = GridplayTypes::Voucher;

/// The contract's EIP-712 domain.
fn domain(chain_id: u64, contract: Address) -> Eip712Domain {
    eip712_domain! {
        name: "Gridplay",
        version: "1",
        chain_id: chain_id,
        verifying_contract: contract,
    }
}

/// The on-chain session id: the voucher's EIP-712 digest.
pub fn voucher_session_id(voucher: &Voucher, chain_id: u64, contract: Address) -> B256 {
    voucher.eip712_signing_hash(&domain(chain_id, contract))
}

/// The player signs a voucher (no transaction at session start).
pub fn sign_voucher(
    player: &PrivateKeySigner,
    voucher: &Voucher,
    chain_id: u64,
    contract: Address,
) -> Result<Bytes, alloy::signers::Error> {
    let signature = player.sign_hash_sync(&voucher_session_id(voucher, chain_id, contract))?;
    Ok(Bytes::from(signature.as_bytes().to_vec()))
}

/// The EIP-712 digest an observer (the session key or a checker) signs for `summary`; the
/// contract's `probeSummaryDigest`.
pub fn probe_summary_digest(summary: &ProbeSummary, chain_id: u64, contract: Address) -> B256 {
    GridplayTypes::ProbeSummary::from(summary).eip712_signing_hash(&domain(chain_id, contract))
}

/// An observer signs its summary of a block; the signature backs
/// [`SettlementClient::dispute_probe_summary`](super::SettlementClient::dispute_probe_summary).
pub fn sign_probe_summary(
    observer: &PrivateKeySigner,
    summary: &ProbeSummary,
    chain_id: u64,
    contract: Address,
) -> Result<Bytes, alloy::signers::Error> {
    let signature = observer.sign_hash_sync(&probe_summary_digest(summary, chain_id, contract))?;
    Ok(Bytes::from(signature.as_bytes().to_vec()))
}

impl From<&ProbeSummary> for GridplayTypes::ProbeSummary {
    fn from(summary: &ProbeSummary) -> Self {
        Self {
            sessionId: B256::from(summary.session_id),
            blockIndex: summary.block_index,
            secondsCovered: summary.seconds_covered,
            secondsMet: summary.seconds_met,
            amount: U256::from(summary.amount),
        }
    }
}

/// What a dispute of one committed block carries: the block at its position with its proof,
/// and the voucher (with the player's signature) whose digest is the leaf's session.
#[derive(Debug, Clone)]
pub struct DisputeEvidence {
    /// The disputed block, at its position, with its proof.
    pub at: BlockAt,
    /// The session's voucher.
    pub voucher: Voucher,
    /// The player's signature over the voucher.
    pub voucher_signature: Bytes,
}

/// One billed block with the voucher that authorises it.
#[derive(Debug, Clone)]
pub struct BilledBlock {
    /// The session's voucher.
    pub voucher: Voucher,
    /// The player's signature of it.
    pub voucher_signature: Bytes,
    /// The block billed.
    pub leaf: Leaf,
}

/// An epoch's billed blocks with their vouchers, and the sections committed for them.
#[derive(Debug, Clone)]
pub struct Epoch {
    vouchers: HashMap<B256, (Voucher, Bytes)>,
    sections: Sections,
}

impl Epoch {
    /// Builds the epoch from its blocks and each player's cumulative spend before it (the
    /// previous epoch's [`Epoch::cumulative`]; empty for the first).
    pub fn new(blocks: Vec<BilledBlock>, prior: &BTreeMap<Address, u128>) -> Result<Self, Error> {
        let leaves: Vec<Leaf> = blocks.iter().map(|b| b.leaf).collect();
        let sections = Sections::build(&leaves, prior)?;
        let vouchers = blocks
            .into_iter()
            .map(|b| (B256::from(b.leaf.session_id), (b.voucher, b.voucher_signature)))
            .collect();
        Ok(Self { vouchers, sections })
    }

    /// The sections and tree.
    pub fn sections(&self) -> &Sections {
        &self.sections
    }

    /// The root to commit.
    pub fn root(&self) -> B256 {
        self.sections.root()
    }

    /// Sum of all blocks' amounts.
    pub fn total(&self) -> u128 {
        self.sections.total()
    }

    /// Each player's cumulative spend after this epoch: the next epoch's `prior`.
    pub fn cumulative(&self) -> BTreeMap<Address, u128> {
        self.sections.cumulative()
    }

    /// The voucher (and its signature) of a session billed in this epoch.
    pub fn voucher(&self, session_id: B256) -> Option<&(Voucher, Bytes)> {
        self.vouchers.get(&session_id)
    }

    /// Position of a session's block in the blocks section.
    fn position(&self, session_id: B256, block_index: u32) -> Option<usize> {
        self.sections
            .blocks()
            .iter()
            .position(|b| b.sessionId == session_id && b.blockIndex == block_index)
    }

    /// The evidence for disputing a session's block.
    pub fn evidence(&self, session_id: B256, block_index: u32) -> Result<DisputeEvidence, Error> {
        let missing = || Error::SessionNotInEpoch(format!("{session_id} block {block_index}"));
        let position = self.position(session_id, block_index).ok_or_else(missing)?;
        let (voucher, voucher_signature) = self.voucher(session_id).ok_or_else(missing)?.clone();
        Ok(DisputeEvidence { at: self.sections.block_at(position), voucher, voucher_signature })
    }

    /// `host`'s claim on this epoch (committed as `epoch_id`), if it earned anything in it.
    pub fn host_claim(&self, epoch_id: u64, host: Address) -> Option<HostClaim> {
        self.sections.host_claim(epoch_id, host)
    }
}
