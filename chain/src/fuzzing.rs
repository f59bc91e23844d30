//! The bodies of this crate's fuzz targets in `fuzz/` (feature `fuzzing`): receipts, hosts'
//! records read as evidence, and vouchers as the contract reads them. Each feeds arbitrary
//! bytes to a decoder of untrusted bytes and checks it never panics and what it accepts.
//! This crate's tests replay the committed corpus (`fuzz/corpus/<target>/`) through them.

use std::sync::LazyLock;

use alloy::primitives::{Address, B256, Bytes, Signature, U256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer, SigningKey};
use gridplay_protocol::probe::ClientKey;
use gridplay_protocol::settlement::VoucherSubmission;

use crate::evidence::{Expected, verify_record};
use crate::settlement::{Receipt, Voucher, offline_checks, recover_player, voucher_session_id};
use crate::{BLOCK_SECONDS, Sla, bill_block};

/// `receipt`: a receipt as `gridplay verify-receipt` reads it (`Receipt::from_json`), then
/// everything that needs no chain: its total, its claims, each block's leaf and the
/// offline checks of `verify_receipt`. A receipt serialises to JSON that reads back to the
/// same JSON.
pub fn receipt(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(receipt) = Receipt::from_json(text) else { return };
    let _ = receipt.total();
    let _ = receipt.claims();
    let digest = voucher_session_id(&receipt.voucher, receipt.chain_id, receipt.contract);
    let player = recover_player(&receipt.voucher_signature, &digest).ok();
    for block in &receipt.blocks {
        let _ = block.block_at();
        let _ = offline_checks(&receipt, block, digest, player);
    }
    let json = serde_json::to_string(&receipt).expect("receipts serialise");
    let again = Receipt::from_json(&json).expect("a written receipt reads back");
    assert_eq!(serde_json::to_string(&again).expect("receipts serialise"), json);
}

/// `evidence`: a host's signed record read as evidence (`evidence::verify_record`), then
/// billed block by block. The body is the input after its first byte, signed by the host's
/// key when that byte is odd (so the record's parser and checks are fuzzed) and given an
/// arbitrary signature otherwise. Evidence never counts more reports than seconds covered,
/// nor covers more than a block or than has passed, and always bills.
pub fn evidence(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else { return };
    // Keys are derived once: a derivation costs as much as a signature.
    static KEYS: LazyLock<(SigningKey, String, ClientKey)> = LazyLock::new(|| {
        let host = SigningKey::from_bytes(&[7; 32]);
        let host_id = B64.encode(host.verifying_key().as_bytes());
        let client = k256::ecdsa::SigningKey::from_slice(&[0x11; 32]).expect("a valid scalar");
        let client_key =
            ClientKey::Address(gridplay_protocol::probe::Address::of(client.verifying_key()));
        (host, host_id, client_key)
    });
    let (host, host_id, client_key) = &*KEYS;
    let signature =
        if mode & 1 == 1 { B64.encode(host.sign(body).to_bytes()) } else { B64.encode([mode; 64]) };
    let allocated_ms = 1_000_000;
    let expected = Expected {
        session_id: "s1",
        host_id,
        client_key: Some(client_key),
        allocated_ms,
        now_ms: allocated_ms + 1000 * u64::from(mode >> 1) * 30,
    };
    let Ok(evidence) = verify_record(body, Some(&signature), &expected) else { return };
    let elapsed = (expected.now_ms - allocated_ms).div_ceil(1000);
    assert!(evidence.seconds_counted() as u64 <= elapsed);
    let sla = Sla {
        min_fps: 48.0,
        max_rtt_ms: 250.0,
        max_click_to_photon_ms: 250.0,
        max_loss: 0.05,
        min_met_bps: 9_000,
        price_per_block: u128::MAX,
    };
    for block in &evidence.probes.blocks {
        let seen = evidence.block(block);
        assert!(seen.covered <= BLOCK_SECONDS);
        assert!(seen.records.len() <= seen.covered as usize, "{seen:?}");
        let bill = bill_block(&seen.records, seen.covered, &sla);
        assert!(bill.is_ok(), "{bill:?}");
    }
}

/// `voucher`: a player's voucher submission (`POST /v1/sessions/{id}/voucher`) read as
/// the broker and the contract read it: JSON and `VoucherTerms::validate`, then the
/// contract's `Voucher`, its on-chain session id and the player its signature recovers.
/// Valid terms serialise back to themselves and always convert.
pub fn voucher(data: &[u8]) {
    let Ok(submission) = serde_json::from_slice::<VoucherSubmission>(data) else { return };
    let terms = &submission.voucher;
    let valid = terms.validate().is_ok();
    if valid {
        let text = serde_json::to_vec(&submission).expect("vouchers serialise");
        let again: VoucherSubmission = serde_json::from_slice(&text).expect("it parses again");
        assert_eq!(again, submission);
    }
    let host = terms.host.parse::<Address>();
    let session_key = terms.session_key.parse::<Address>();
    let nonce = terms.nonce.parse::<B256>();
    if valid {
        assert!(host.is_ok() && session_key.is_ok() && nonce.is_ok(), "{terms:?}");
    }
    let (Ok(host), Ok(session_key), Ok(nonce), Ok(price_per_block)) =
        (host, session_key, nonce, terms.price_per_block.parse::<U256>())
    else {
        return;
    };
    let voucher = Voucher {
        host,
        sessionKey: session_key,
        pricePerBlock: price_per_block,
        maxBlocks: terms.max_blocks,
        expiry: terms.expiry,
        nonce,
    };
    let digest = voucher_session_id(&voucher, 31_337, Address::repeat_byte(0x42));
    if let Ok(bytes) = submission.signature.parse::<Bytes>()
        && let Ok(player) = recover_player(&bytes, &digest)
    {
        let signature = Signature::from_raw(&bytes).expect("it recovered");
        assert_eq!(signature.recover_address_from_prehash(&digest).ok(), Some(player));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use gridplay_protocol::fuzzing::{Target, replay_corpus};

    /// Every target of this crate, by its name in `fuzz/`.
    const TARGETS: &[(&str, Target)] =
        &[("receipt", receipt), ("evidence", evidence), ("voucher", voucher)];

    /// What the fuzzer once found stays fixed.
    #[test]
    fn fuzz_corpus_replays_without_a_failure() {
        replay_corpus(TARGETS);
    }
}
