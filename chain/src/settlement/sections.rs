//! An epoch's three sections, built from its billed blocks and the players' cumulative spend
//! before it, the positional tree over them, and the leaves (with proofs) that claims, spend
//! records and fault proofs carry.

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolValue;

use super::GridplaySettlement::{
    BlockAt, BlockLeaf, HostAt, HostClaim, HostLeaf, PlayerAt, PlayerLeaf,
};
use super::tree::PositionalTree;
use crate::keccak::{Hash, keccak256};
use crate::{Error, Leaf};

/// Leaf kinds, as `GridplaySettlement` hashes them (a `uint8`, one ABI word).
const BLOCK_LEAF: u8 = 1;
const HOST_LEAF: u8 = 2;
const PLAYER_LEAF: u8 = 3;

/// `keccak256(keccak256(abi.encode(...)))`, as every leaf is hashed.
fn double_hash(encoded: &[u8]) -> Hash {
    keccak256(&keccak256(encoded))
}

/// A block leaf's hash (`GridplaySettlement.blockLeafHash`).
pub fn block_hash(l: &BlockLeaf) -> Hash {
    double_hash(
        &(
            U256::from(BLOCK_LEAF),
            l.sessionId,
            l.blockIndex,
            l.player,
            l.host,
            l.amount,
            l.probeSummaryHash,
            l.playerRunning,
            l.epochRunning,
        )
            .abi_encode_params(),
    )
}

/// A host leaf's hash (`GridplaySettlement.hostLeafHash`).
pub fn host_hash(l: &HostLeaf) -> Hash {
    double_hash(&(U256::from(HOST_LEAF), l.host, l.amount, l.running).abi_encode_params())
}

/// A player leaf's hash (`GridplaySettlement.playerLeafHash`).
pub fn player_hash(l: &PlayerLeaf) -> Hash {
    double_hash(&(U256::from(PLAYER_LEAF), l.player, l.cumulative).abi_encode_params())
}

/// An epoch's sections and the tree over them, as the contract commits them.
#[derive(Debug, Clone)]
pub struct Sections {
    blocks: Vec<BlockLeaf>,
    hosts: Vec<HostLeaf>,
    players: Vec<PlayerLeaf>,
    tree: PositionalTree,
}

impl Sections {
    /// Builds the epoch from its billed blocks and each player's cumulative spend before it
    /// (the previous epoch's [`Sections::cumulative`]; empty for the first). A (session,
    /// block) billed twice is refused.
    pub fn build(billed: &[Leaf], prior: &BTreeMap<Address, u128>) -> Result<Self, Error> {
        let overflow = || Error::InvalidEpoch("amounts overflow 128 bits".into());
        let mut sorted: Vec<&Leaf> = billed.iter().collect();
        sorted.sort_by_key(|l| (l.player, l.session_id, l.block_index));
        let mut blocks: Vec<BlockLeaf> = Vec::with_capacity(sorted.len());
        let mut spend: BTreeMap<Address, u128> = BTreeMap::new();
        let mut hosts: BTreeMap<Address, u128> = BTreeMap::new();
        let mut total: u128 = 0;
        let mut player_running: u128 = 0;
        for leaf in sorted {
            let player = Address::from(leaf.player);
            if let Some(prev) = blocks.last() {
                if prev.player == player
                    && prev.sessionId == B256::from(leaf.session_id)
                    && prev.blockIndex == leaf.block_index
                {
                    return Err(Error::InvalidEpoch(format!(
                        "block {} of session {} billed twice",
                        leaf.block_index,
                        B256::from(leaf.session_id)
                    )));
                }
                if prev.player != player {
                    player_running = 0;
                }
            }
            player_running = player_running.checked_add(leaf.amount).ok_or_else(overflow)?;
            total = total.checked_add(leaf.amount).ok_or_else(overflow)?;
            spend.insert(player, player_running);
            let host = hosts.entry(Address::from(leaf.host)).or_default();
            *host = host.checked_add(leaf.amount).ok_or_else(overflow)?;
            blocks.push(BlockLeaf {
                sessionId: B256::from(leaf.session_id),
                blockIndex: leaf.block_index,
                player,
                host: Address::from(leaf.host),
                amount: U256::from(leaf.amount),
                probeSummaryHash: B256::from(leaf.probe_summary_hash),
                playerRunning: U256::from(player_running),
                epochRunning: U256::from(total),
            });
        }
        let mut running: u128 = 0;
        let hosts = hosts
            .into_iter()
            .map(|(host, amount)| {
                running += amount;
                HostLeaf { host, amount: U256::from(amount), running: U256::from(running) }
            })
            .collect();
        let mut cumulative = prior.clone();
        for (player, spent) in spend {
            let c = cumulative.entry(player).or_default();
            *c = c.checked_add(spent).ok_or_else(overflow)?;
        }
        let players = cumulative
            .into_iter()
            .map(|(player, c)| PlayerLeaf { player, cumulative: U256::from(c) })
            .collect();
        Self::from_sections(blocks, hosts, players)
    }

    /// An epoch of exactly these sections, in this order, checked for nothing: what an honest
    /// [`Sections::build`] makes, or (in tests) a faulty epoch for a fault proof to catch.
    pub fn from_sections(
        blocks: Vec<BlockLeaf>,
        hosts: Vec<HostLeaf>,
        players: Vec<PlayerLeaf>,
    ) -> Result<Self, Error> {
        let leaves = blocks
            .iter()
            .map(block_hash)
            .chain(hosts.iter().map(host_hash))
            .chain(players.iter().map(player_hash))
            .collect();
        let tree = PositionalTree::new(leaves)?;
        if tree.len() > u32::MAX as usize {
            return Err(Error::InvalidEpoch("more than 2^32 leaves".into()));
        }
        Ok(Self { blocks, hosts, players, tree })
    }

    /// The blocks section, sorted by (player, session, block).
    pub fn blocks(&self) -> &[BlockLeaf] {
        &self.blocks
    }

    /// The hosts section, sorted by host.
    pub fn hosts(&self) -> &[HostLeaf] {
        &self.hosts
    }

    /// The players section, sorted by player.
    pub fn players(&self) -> &[PlayerLeaf] {
        &self.players
    }

    /// The root committed on-chain.
    pub fn root(&self) -> B256 {
        B256::from(self.tree.root())
    }

    /// The epoch's total: the last block's running total (0 without blocks).
    pub fn total(&self) -> u128 {
        self.blocks.last().map_or(0, |b| b.epochRunning.saturating_to())
    }

    /// `commitEpoch`'s arguments: root, section sizes and total.
    pub fn commit_args(&self) -> (B256, u32, u32, u32, u128) {
        let n = |len: usize| u32::try_from(len).expect("checked in from_sections");
        (
            self.root(),
            n(self.blocks.len()),
            n(self.hosts.len()),
            n(self.players.len()),
            self.total(),
        )
    }

    /// Each player's cumulative spend after this epoch: the next epoch's `prior`.
    pub fn cumulative(&self) -> BTreeMap<Address, u128> {
        self.players.iter().map(|p| (p.player, p.cumulative.saturating_to())).collect()
    }

    fn proof(&self, index: usize) -> Vec<B256> {
        self.tree.proof(index).expect("index within the tree").into_iter().map(B256::from).collect()
    }

    /// Block `i` of the blocks section with its proof.
    pub fn block_at(&self, i: usize) -> BlockAt {
        BlockAt { index: i as u32, leaf: self.blocks[i].clone(), proof: self.proof(i) }
    }

    /// Host `i` of the hosts section with its proof.
    pub fn host_at(&self, i: usize) -> HostAt {
        let index = self.blocks.len() + i;
        HostAt { index: index as u32, leaf: self.hosts[i].clone(), proof: self.proof(index) }
    }

    /// Player `i` of the players section with its proof.
    pub fn player_at(&self, i: usize) -> PlayerAt {
        let index = self.blocks.len() + self.hosts.len() + i;
        PlayerAt { index: index as u32, leaf: self.players[i].clone(), proof: self.proof(index) }
    }

    /// `host`'s claim on this epoch, if it earned anything in it.
    pub fn host_claim(&self, epoch_id: u64, host: Address) -> Option<HostClaim> {
        let i = self.hosts.binary_search_by_key(&host, |h| h.host).ok()?;
        Some(HostClaim { epochId: u32::try_from(epoch_id).ok()?, at: self.host_at(i) })
    }

    /// The leaves that show `player`'s cumulative spend (`GridplaySettlement._playerValue`).
    pub fn player_lookup(&self, player: Address) -> Vec<PlayerAt> {
        lookup(self.players.partition_point(|p| p.player < player), self.players.len(), |i| {
            (self.players[i].player == player, self.player_at(i))
        })
    }

    /// The leaves that show `host`'s total (`GridplaySettlement._hostValue`).
    pub fn host_lookup(&self, host: Address) -> Vec<HostAt> {
        lookup(self.hosts.partition_point(|h| h.host < host), self.hosts.len(), |i| {
            (self.hosts[i].host == host, self.host_at(i))
        })
    }

    /// The leaves that show `player`'s spend in this epoch (`GridplaySettlement._spendValue`): its
    /// last block and the one after it, or the blocks around where it would be.
    pub fn spend_lookup(&self, player: Address) -> Vec<BlockAt> {
        let len = self.blocks.len();
        let after = self.blocks.partition_point(|b| b.player <= player);
        if after > 0 && self.blocks[after - 1].player == player {
            let last = after - 1;
            return if last + 1 == len {
                vec![self.block_at(last)]
            } else {
                vec![self.block_at(last), self.block_at(last + 1)]
            };
        }
        lookup(after, len, |i| (false, self.block_at(i)))
    }
}

/// The one or two leaves around position `at` of a sorted section of `len` (the key's own
/// leaf when `leaf(at).0` says it is there); none for an empty section.
fn lookup<T>(at: usize, len: usize, leaf: impl Fn(usize) -> (bool, T)) -> Vec<T> {
    if len == 0 {
        return Vec::new();
    }
    if at < len {
        let (found, item) = leaf(at);
        if found || at == 0 {
            return vec![item];
        }
        return vec![leaf(at - 1).1, item];
    }
    vec![leaf(len - 1).1]
}
