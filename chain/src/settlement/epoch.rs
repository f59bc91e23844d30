//! An epoch's billed blocks: vouchers, leaves, the Merkle tree over them, the
//! claims a host makes from it, and the evidence a dispute of one block needs.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};

use super::GridplaySettlement::{BlockClaim, SessionClaim};
use super::GridplayTypes;
use crate::{Error, Leaf, MerkleTree, ProbeSummary};

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

impl From<&Leaf> for GridplayTypes::Leaf {
    fn from(leaf: &Leaf) -> Self {
        Self {
            sessionId: B256::from(leaf.session_id),
            blockIndex: leaf.block_index,
            player: Address::from(leaf.player),
            host: Address::from(leaf.host),
            amount: U256::from(leaf.amount),
            probeSummaryHash: B256::from(leaf.probe_summary_hash),
        }
    }
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

/// What a dispute of one committed block carries: the leaf, its proof under the epoch
/// root, and the voucher (with the player's signature) whose digest is the leaf's session.
#[derive(Debug, Clone)]
pub struct DisputeEvidence {
    /// The disputed leaf.
    pub leaf: Leaf,
    /// Its Merkle proof under the epoch root.
    pub proof: Vec<B256>,
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
    /// The leaf committed for the block.
    pub leaf: Leaf,
}

/// All billed blocks of an epoch and the tree over their leaves.
#[derive(Debug, Clone)]
pub struct Epoch {
    blocks: Vec<BilledBlock>,
    tree: MerkleTree,
}

impl Epoch {
    /// Builds the tree over the blocks' leaves, in order.
    pub fn new(blocks: Vec<BilledBlock>) -> Result<Self, Error> {
        let tree = MerkleTree::new(blocks.iter().map(|b| b.leaf.hash()).collect())?;
        Ok(Self { blocks, tree })
    }

    /// The blocks, in leaf order.
    pub fn blocks(&self) -> &[BilledBlock] {
        &self.blocks
    }

    /// The root to commit.
    pub fn root(&self) -> B256 {
        B256::from(self.tree.root())
    }

    /// Number of leaves.
    pub fn leaf_count(&self) -> u32 {
        self.blocks.len() as u32
    }

    /// Sum of all blocks' amounts.
    pub fn total(&self) -> u128 {
        self.blocks.iter().map(|b| b.leaf.amount).sum()
    }

    /// A Merkle proof for block `index`.
    pub fn proof(&self, index: usize) -> Result<Vec<B256>, Error> {
        Ok(self.tree.proof(index)?.into_iter().map(B256::from).collect())
    }

    /// The evidence for disputing block `index` (in leaf order).
    pub fn evidence(&self, index: usize) -> Result<DisputeEvidence, Error> {
        let proof = self.proof(index)?;
        let block = self
            .blocks
            .get(index)
            .ok_or(Error::LeafOutOfRange { index, len: self.blocks.len() })?;
        Ok(DisputeEvidence {
            leaf: block.leaf,
            proof,
            voucher: block.voucher.clone(),
            voucher_signature: block.voucher_signature.clone(),
        })
    }

    /// The claims `host` makes: its blocks grouped by session (in order of each session's
    /// first block), with proofs.
    pub fn claims_for(&self, host: Address) -> Result<Vec<SessionClaim>, Error> {
        let mut claims: Vec<SessionClaim> = Vec::new();
        let mut by_nonce: HashMap<B256, usize> = HashMap::new();
        for (index, block) in self.blocks.iter().enumerate() {
            if Address::from(block.leaf.host) != host {
                continue;
            }
            let claim = BlockClaim {
                blockIndex: block.leaf.block_index,
                amount: U256::from(block.leaf.amount),
                probeSummaryHash: B256::from(block.leaf.probe_summary_hash),
                proof: self.proof(index)?,
            };
            match by_nonce.get(&block.voucher.nonce).and_then(|&i| claims.get_mut(i)) {
                Some(existing) if existing.voucher.host == host => existing.blocks.push(claim),
                _ => {
                    by_nonce.insert(block.voucher.nonce, claims.len());
                    claims.push(SessionClaim {
                        voucher: block.voucher.clone(),
                        signature: block.voucher_signature.clone(),
                        blocks: vec![claim],
                    });
                }
            }
        }
        Ok(claims)
    }
}
