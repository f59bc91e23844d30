//! An epoch's billed blocks: vouchers, leaves, the Merkle tree over them, and
//! the claims a host makes from it.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};

use super::GridplaySettlement::{BlockClaim, SessionClaim};
use super::GridplayTypes;
use crate::{Error, Leaf, MerkleTree};

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

    /// The claims `host` makes: its blocks grouped by session, with proofs.
    pub fn claims_for(&self, host: Address) -> Result<Vec<SessionClaim>, Error> {
        let mut claims: Vec<SessionClaim> = Vec::new();
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
            match claims
                .iter_mut()
                .find(|c| c.voucher.nonce == block.voucher.nonce && c.voucher.host == host)
            {
                Some(existing) => existing.blocks.push(claim),
                None => claims.push(SessionClaim {
                    voucher: block.voucher.clone(),
                    signature: block.voucher_signature.clone(),
                    blocks: vec![claim],
                }),
            }
        }
        Ok(claims)
    }
}
