//! What players see of settlement: where sessions settle, the voucher a
//! player signs for a session (no transaction at session start), and the
//! session's receipt once its blocks are committed on chain.

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use utoipa::ToSchema;

/// `GET /v1/settlement`: the chain and contract a broker settles sessions on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct SettlementInfo {
    /// EVM chain id, decimal.
    pub chain_id: String,
    /// The settlement contract, `0x` address (the EIP-712 verifying contract).
    pub contract: String,
    /// Seconds between epoch commits.
    #[ts(type = "number")]
    pub epoch_seconds: u64,
    /// A JSON-RPC endpoint of the chain, for checking receipts, if the broker names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub rpc_url: Option<String>,
    /// On a local demo chain only: the private key of a funded demo player,
    /// so a browser can sign vouchers without a wallet. Never set on a real chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub demo_player_key: Option<String>,
    /// The bar the broker bills each second against.
    pub service_level: ServiceLevel,
}

/// The bar a second of a session must meet to count as delivered, and how many of a block's
/// seconds must meet it, as the broker bills sessions (and a checker summarises them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct ServiceLevel {
    /// Lowest frame rate, percent of the session's.
    pub min_fps_percent: u32,
    /// Highest round-trip time, ms.
    pub max_rtt_ms: u32,
    /// Highest click-to-photon p95, ms (in seconds that have one).
    pub max_click_to_photon_ms: u32,
    /// Highest packet loss, parts per million.
    pub max_loss_ppm: u32,
    /// Share of a block's seconds that must meet the bar, basis points (1..=10 000).
    pub min_met_bps: u16,
}

impl ServiceLevel {
    /// 80% of the session's frame rate, RTT and click-to-photon within 250 ms, loss within
    /// 5%, and `min_met_bps` of a block's seconds meeting that.
    pub fn standard(min_met_bps: u16) -> Self {
        Self {
            min_fps_percent: 80,
            max_rtt_ms: 250,
            max_click_to_photon_ms: 250,
            max_loss_ppm: 50_000,
            min_met_bps,
        }
    }
}

/// A player's authorisation of one session, as the contract's `Voucher`
/// (EIP-712, domain `Gridplay`, version `1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct VoucherTerms {
    /// The host's payout address (`0x`), the only one that may bill it.
    pub host: String,
    /// The session key's address (`0x`): it signs the session's probe reports.
    pub session_key: String,
    /// Wei per delivered 15-minute block, decimal.
    pub price_per_block: String,
    /// Blocks `0 .. max_blocks - 1` may be billed.
    pub max_blocks: u32,
    /// Unix seconds after which no epoch holding the session's blocks may be committed.
    #[ts(type = "number")]
    pub expiry: u64,
    /// `0x` and 64 hex digits: keccak-256 of the broker's session id.
    pub nonce: String,
}

/// `POST /v1/sessions/{id}/voucher`: the voucher and the player's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[serde(deny_unknown_fields)]
#[ts(export)]
pub struct VoucherSubmission {
    /// The terms signed.
    pub voucher: VoucherTerms,
    /// `0x` and 130 hex digits: `r ‖ s ‖ v` over the voucher's EIP-712 digest.
    pub signature: String,
}

/// One billed block as a player's receipt shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct ReceiptLine {
    /// Index of the 15-minute block, from 0.
    pub block_index: u32,
    /// Seconds of the block the session covered.
    pub seconds_covered: u32,
    /// Covered seconds whose probes met the service level.
    pub seconds_met: u32,
    /// Whether enough of them met it for the block to count as delivered.
    #[serde(default)]
    pub delivered: bool,
    /// Mean frames a second the player presented over the block's reported seconds,
    /// hundredths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub fps_centi: Option<u32>,
    /// Median over those seconds of each second's click-to-photon p95, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub click_to_photon_us: Option<u32>,
    /// Wei billed, decimal (0 when the block was not delivered).
    pub amount: String,
    /// The epoch that committed it, decimal; absent until committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub epoch_id: Option<String>,
    /// The commit transaction, `0x`; absent until committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub commit_tx: Option<String>,
}

/// `GET /v1/sessions/{id}/receipt`: the session's billed blocks, and once
/// any is committed the verifiable receipt (`gridplay verify-receipt`
/// checks it against the chain alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, ToSchema)]
#[ts(export)]
pub struct SessionReceipt {
    /// The broker's session id.
    pub session_id: String,
    /// The blocks billed so far, in order.
    pub lines: Vec<ReceiptLine>,
    /// Total wei billed, decimal.
    pub total: String,
    /// The chain receipt of the committed blocks (JSON), if any is committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "unknown")]
    #[schema(value_type = Option<Object>)]
    pub receipt: Option<serde_json::Value>,
}

/// `GET /v1/settlement/claims/{host}`: what a host can claim with, from the receipts the
/// broker keeps: its total in each epoch that billed one of its sessions (claimed or not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostClaims {
    /// The host's payout address, `0x`.
    pub host: String,
    /// The settlement contract, `0x`.
    pub contract: String,
    /// One per epoch: the host's leaf with its position and proof, as receipts hold it
    /// (`hostTotals` entries: `epochId`, `position`, `amount`, `running`, `proof`).
    #[schema(value_type = Vec<Object>)]
    pub totals: Vec<serde_json::Value>,
}

/// Checks a `0x` hex string of `bytes` bytes.
pub fn is_hex_of(text: &str, bytes: usize) -> bool {
    text.strip_prefix("0x")
        .is_some_and(|h| h.len() == 2 * bytes && h.chars().all(|c| c.is_ascii_hexdigit()))
}

impl VoucherTerms {
    /// Checks the shapes: addresses, a decimal price, a 32-byte nonce, at
    /// least one block.
    pub fn validate(&self) -> Result<(), crate::ProtocolError> {
        let ok = is_hex_of(&self.host, 20)
            && is_hex_of(&self.session_key, 20)
            && is_hex_of(&self.nonce, 32)
            && !self.price_per_block.is_empty()
            && self.price_per_block.len() <= 78
            && self.price_per_block.chars().all(|c| c.is_ascii_digit())
            && self.max_blocks > 0;
        if ok { Ok(()) } else { Err(crate::ProtocolError::Invalid("malformed voucher".into())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voucher_shapes_are_checked() {
        let good = VoucherTerms {
            host: format!("0x{}", "ab".repeat(20)),
            session_key: format!("0x{}", "cd".repeat(20)),
            price_per_block: "1000".into(),
            max_blocks: 8,
            expiry: 1,
            nonce: format!("0x{}", "00".repeat(32)),
        };
        assert!(good.validate().is_ok());
        for bad in [
            VoucherTerms { host: "0x12".into(), ..good.clone() },
            VoucherTerms { price_per_block: "-1".into(), ..good.clone() },
            VoucherTerms { price_per_block: "0x10".into(), ..good.clone() },
            VoucherTerms { max_blocks: 0, ..good.clone() },
            VoucherTerms { nonce: "0xzz".into(), ..good.clone() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
