//! Gridplay's settler: bills the blocks hosts delivered and commits them on chain.
//!
//! A player authorises a session with a signed voucher (no transaction); every epoch the
//! settler reads each voucher's session from its host (the host's signed probe record),
//! bills the blocks that are complete with the billing rule, commits one root for all of
//! them (with each host's total and every player's cumulative spend), keeps each session's
//! receipt, and answers voucher challenges against its epochs.
//!
//! Billing takes nothing from a host on trust: a host's record is evidence only through the
//! client's own signed reports in it that pass [`gridplay_chain::evidence`]'s checks. Records
//! are read all at once, each bounded in time and size; a bad one costs only its own session
//! that round.
//!
//! The core is a sans-I/O book (allocations, vouchers, host records and chain outcomes in;
//! bills, epochs and answers out); [`Settler`] is the thin service around it that the broker
//! drives through its [`Settlement`](gridplay_session_broker::settlement::Settlement) trait.

mod book;
mod error;
mod fetch;
mod journal;
mod ledger;
mod service;

pub use book::{MAX_VOUCHER_BLOCKS, RECEIPTS_KEPT, VOUCHER_WAIT_MS};
pub use error::Error;
pub use fetch::allowed_address;
pub use service::{SettlementConfig, Settler};
