//! Netted settlement on `GridplayPool`: one root per epoch over three sorted sections
//! (blocks with running sums, host totals, players' cumulative spend), one claim per host
//! per epoch, players debited lazily, and faults provable from a few leaves
//! (`chain/contracts/src/GridplayPool.sol` states the rules).

mod client;
mod epoch;
mod tree;

pub use client::{PoolParams, deploy_pool, pool_voucher};
pub use epoch::PoolEpoch;
pub use tree::PositionalTree;

alloy::sol!(
    #[allow(missing_docs, clippy::too_many_arguments)]
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    GridplayPool,
    "contracts/artifacts/GridplayPool.json"
);

pub use GridplayPool::{
    BlockAt, BlockLeaf, GridplayPoolInstance, HostAt, HostClaim, HostLeaf, PlayerAt, PlayerLeaf,
};
