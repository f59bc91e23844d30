//! Session receipts against the real contract on a real anvil: a receipt built from a
//! committed epoch verifies against the chain alone; each kind of tampering fails the check
//! it should; a session spanning two epochs verifies, and shows where each epoch stands.

use std::collections::BTreeMap;
use std::path::Path;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use gridplay_chain::settlement::{
    BUNDLED_ANVIL, BilledBlock, DeployParams, Epoch, EpochState, Failure, LocalChain, Receipt,
    ReceiptCheck, SettlementClient, Voucher, sign_voucher, verify_receipt, voucher_session_id,
};
use gridplay_chain::{Leaf, ProbeSummary, keccak256};

const CHALLENGE_WINDOW: u64 = 60;
const PRICE: u128 = 1_000_000_000_000_000; // 0.001 ether
const ETHER: u128 = 1_000_000_000_000_000_000;

/// A deployed contract with a bonded host and a player with escrow, on a fresh anvil.
struct Chain {
    _chain: LocalChain,
    url: String,
    operator: SettlementClient,
    host: PrivateKeySigner,
    player: PrivateKeySigner,
}

/// Deploys on a fresh anvil.
async fn chain() -> Chain {
    let params = DeployParams { challenge_window: CHALLENGE_WINDOW, ..DeployParams::local() };
    let local = LocalChain::start(Path::new(BUNDLED_ANVIL), params, ETHER, ETHER).await.unwrap();
    Chain {
        url: local.rpc_url(),
        operator: local.operator.clone(),
        host: local.host.clone(),
        player: local.player.clone(),
        _chain: local,
    }
}

/// One session: its voucher (signed by the player) and id.
struct Session {
    voucher: Voucher,
    signature: Bytes,
    id: B256,
}

impl Chain {
    fn session(&self, nonce: &[u8]) -> Session {
        let voucher = Voucher {
            host: self.host.address(),
            sessionKey: PrivateKeySigner::random().address(),
            pricePerBlock: U256::from(PRICE),
            maxBlocks: 8,
            expiry: u64::MAX / 2,
            nonce: B256::from(keccak256(nonce)),
        };
        let (chain_id, contract) = (self.operator.chain_id(), self.operator.address());
        let signature = sign_voucher(&self.player, &voucher, chain_id, contract).unwrap();
        let id = voucher_session_id(&voucher, chain_id, contract);
        Session { voucher, signature, id }
    }

    /// Commits `epoch`; returns its id and the commit transaction.
    async fn commit(&self, epoch: &Epoch) -> (u64, B256) {
        self.operator.commit_epoch(epoch.sections()).await.unwrap()
    }

    async fn verify(&self, receipt: &Receipt) -> ReceiptCheck {
        verify_receipt(receipt, &self.url).await.unwrap()
    }
}

impl Session {
    /// Billed block `index` and the probe summary it was billed on.
    fn block(&self, index: u32, player: Address) -> (BilledBlock, ProbeSummary) {
        let summary = ProbeSummary {
            session_id: self.id.0,
            block_index: index,
            seconds_covered: 900,
            seconds_met: 880 + index,
            amount: PRICE,
        };
        let leaf = Leaf {
            session_id: self.id.0,
            block_index: index,
            player: player.0.0,
            host: self.voucher.host.0.0,
            amount: PRICE,
            probe_summary_hash: summary.struct_hash(),
        };
        let block = BilledBlock {
            voucher: self.voucher.clone(),
            voucher_signature: self.signature.clone(),
            leaf,
        };
        (block, summary)
    }
}

/// Blocks `indices` of each session, interleaved, and all their summaries.
fn blocks(
    sessions: &[(&Session, &[u32])],
    player: Address,
) -> (Vec<BilledBlock>, Vec<ProbeSummary>) {
    sessions
        .iter()
        .flat_map(|(session, indices)| indices.iter().map(|&i| session.block(i, player)))
        .unzip()
}

/// The session-level failures and each block's failures.
fn failures(check: &ReceiptCheck) -> (Vec<Failure>, Vec<Vec<Failure>>) {
    (check.failures.clone(), check.blocks.iter().map(|b| b.failures.clone()).collect())
}

#[tokio::test]
async fn a_receipt_verifies_against_the_chain_and_each_tampering_fails_its_check() {
    let c = chain().await;
    let (a, b) = (c.session(b"a"), c.session(b"b"));
    let player = c.player.address();
    let (blocks, summaries) = blocks(&[(&a, &[0, 1, 2]), (&b, &[0, 1])], player);
    let epoch = Epoch::new(blocks, &BTreeMap::new()).unwrap();
    let (epoch_id, tx) = c.commit(&epoch).await;
    let (chain_id, contract) = (c.operator.chain_id(), c.operator.address());
    let receipt =
        Receipt::for_session(&epoch, epoch_id, tx, a.id, &summaries, chain_id, contract).unwrap();
    assert_eq!(receipt.blocks.iter().map(|b| b.block_index).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(receipt.total(), 3 * PRICE);

    let path = std::env::temp_dir().join(format!("gridplay-receipt-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string_pretty(&receipt).unwrap()).unwrap();
    let read = Receipt::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);

    let check = c.verify(&read).await;
    assert!(check.ok(), "{check:#?}");
    assert_eq!(check.player, Some(player));
    assert_eq!(check.blocks.len(), 3);
    assert!(check.blocks.iter().all(|b| b.epoch_state == Some(EpochState::Pending)
        && b.epoch_id == epoch_id
        && b.amount == PRICE));

    // The host bills more for block 1, consistently in the block, its summary and its leaf:
    // only the proof gives it away.
    let mut t = receipt.clone();
    let block = &mut t.blocks[1];
    block.amount *= 2;
    block.probe_summary.amount *= 2;
    block.leaf.amount *= 2;
    block.leaf.probe_summary_hash = block.probe_summary.struct_hash();
    let (session, per_block) = failures(&c.verify(&t).await);
    assert_eq!((session, per_block), (vec![], vec![vec![], vec![Failure::Proof], vec![]]));
    // The amount shown alone is changed: it disagrees with the leaf.
    let mut t = receipt.clone();
    t.blocks[0].amount += 1;
    let (_, per_block) = failures(&c.verify(&t).await);
    assert!(matches!(per_block[0][..], [Failure::BlockFields(_)]), "{per_block:?}");
    // The summary is changed: it no longer hashes to the leaf's summary hash.
    let mut t = receipt.clone();
    t.blocks[2].probe_summary.seconds_met = 900;
    let (_, per_block) = failures(&c.verify(&t).await);
    assert_eq!(per_block[2], [Failure::ProbeSummaryHash]);

    // A byte of a proof flipped.
    let mut t = receipt.clone();
    t.blocks[2].proof[0].0[5] ^= 0x40;
    let (session, per_block) = failures(&c.verify(&t).await);
    assert_eq!((session, per_block), (vec![], vec![vec![], vec![], vec![Failure::Proof]]));

    // Another epoch id: one that exists (under another root), and one never committed.
    let other = Epoch::new(blocks_of(&c, &b, &[2]), &epoch.cumulative()).unwrap();
    let (other_id, _) = c.commit(&other).await;
    for (id, on_chain) in [(other_id, Some(other.root())), (other_id + 1, None)] {
        let mut t = receipt.clone();
        t.blocks[0].epoch_id = id;
        let (session, per_block) = failures(&c.verify(&t).await);
        assert!(session.is_empty());
        assert!(
            matches!(&per_block[0][..], [Failure::EpochRoot { on_chain: r }, Failure::CommitTx(_)] if *r == on_chain),
            "{per_block:?}"
        );
        assert!(per_block[1].is_empty() && per_block[2].is_empty());
    }

    // Another transaction: unknown, or a real one to the contract that committed nothing.
    let deposit = c
        .operator
        .with_signer(&c.url, c.player.clone())
        .await
        .unwrap()
        .deposit(U256::from(1))
        .await
        .unwrap();
    for wrong in [B256::repeat_byte(0xab), deposit] {
        let mut t = receipt.clone();
        t.blocks.iter_mut().for_each(|b| b.commit_tx = wrong);
        let (session, per_block) = failures(&c.verify(&t).await);
        assert!(session.is_empty());
        assert!(per_block.iter().all(|f| matches!(f[..], [Failure::CommitTx(_)])), "{per_block:?}");
    }

    // The voucher changed (a larger price): its digest is no longer the session id, and the
    // signature recovers someone other than the leaves' player.
    let mut t = receipt.clone();
    t.voucher.pricePerBlock = U256::from(2 * PRICE);
    let check = c.verify(&t).await;
    assert!(matches!(check.failures[..], [Failure::SessionId { .. }]), "{:?}", check.failures);
    assert_ne!(check.player, Some(player));
    assert!(check.blocks.iter().all(|b| matches!(b.failures[..], [Failure::LeafNotVoucher(_)])));
    // The other session's voucher and signature: valid, but not these leaves' session.
    let mut t = receipt.clone();
    (t.voucher, t.voucher_signature) = (b.voucher.clone(), b.signature.clone());
    let check = c.verify(&t).await;
    assert!(matches!(check.failures[..], [Failure::SessionId { .. }]));
    assert_eq!(check.player, Some(player));
    // A signature cut short recovers nobody.
    let mut t = receipt.clone();
    t.voucher_signature = Bytes::from(receipt.voucher_signature[..64].to_vec());
    let check = c.verify(&t).await;
    assert!(matches!(check.failures[..], [Failure::VoucherSignature(_)]));
    assert!(check.blocks.iter().all(|b| b.ok()), "only the signature is at fault");

    // A receipt claiming another chain: the endpoint is not that chain, and the voucher's
    // digest under that chain is not the session id.
    let mut t = receipt.clone();
    t.chain_id += 1;
    let check = c.verify(&t).await;
    assert!(
        matches!(
            check.failures[..],
            [Failure::ChainId { receipt: r, rpc }, Failure::SessionId { .. }]
                if r == chain_id + 1 && rpc == chain_id
        ),
        "{:?}",
        check.failures
    );
    // A receipt naming an address with no contract.
    let mut t = receipt.clone();
    t.contract = Address::repeat_byte(0x77);
    let check = c.verify(&t).await;
    assert!(matches!(check.failures[..], [Failure::NoContract, Failure::SessionId { .. }]));
    assert!(!check.ok());
    // A receipt with its blocks removed proves nothing.
    let mut t = receipt.clone();
    t.blocks.clear();
    assert_eq!(c.verify(&t).await.failures, [Failure::NoBlocks]);

    // An unreachable endpoint is an error, not a verdict.
    assert!(verify_receipt(&receipt, "http://127.0.0.1:1").await.is_err());
    assert!(verify_receipt(&receipt, "not a url").await.is_err());
}

fn blocks_of(c: &Chain, session: &Session, indices: &[u32]) -> Vec<BilledBlock> {
    blocks(&[(session, indices)], c.player.address()).0
}

#[tokio::test]
async fn a_session_spanning_two_epochs_verifies_and_shows_where_each_epoch_stands() {
    let c = chain().await;
    let (a, b) = (c.session(b"a"), c.session(b"b"));
    let player = c.player.address();
    let (first_blocks, mut summaries) = blocks(&[(&a, &[0, 1]), (&b, &[0])], player);
    let first = Epoch::new(first_blocks, &BTreeMap::new()).unwrap();
    let (first_id, first_tx) = c.commit(&first).await;
    let (second_blocks, more) = blocks(&[(&b, &[1]), (&a, &[2, 3])], player);
    summaries.extend(more);
    let second = Epoch::new(second_blocks, &first.cumulative()).unwrap();
    let (second_id, second_tx) = c.commit(&second).await;

    let (chain_id, contract) = (c.operator.chain_id(), c.operator.address());
    let mut receipt =
        Receipt::for_session(&first, first_id, first_tx, a.id, &summaries, chain_id, contract)
            .unwrap();
    receipt.extend(&second, second_id, second_tx, &summaries).unwrap();
    let epochs: Vec<_> = receipt.blocks.iter().map(|b| (b.block_index, b.epoch_id)).collect();
    assert_eq!(epochs, [(0, first_id), (1, first_id), (2, second_id), (3, second_id)]);
    // The same blocks again are refused.
    assert!(receipt.clone().extend(&second, second_id, second_tx, &summaries).is_err());
    let check = c.verify(&receipt).await;
    assert!(check.ok(), "{check:#?}");

    // The host claims the first epoch with the receipt: it is final, the second still pending.
    let provider = c.operator.contract().provider();
    let _: serde_json::Value =
        provider.raw_request("evm_increaseTime".into(), (CHALLENGE_WINDOW + 1,)).await.unwrap();
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    let claims = receipt.claims();
    assert_eq!(claims.len(), 2, "one host total per epoch");
    let first_claim: Vec<_> =
        claims.into_iter().filter(|c| u64::from(c.epochId) == first_id).collect();
    c.operator.claim(c.host.address(), first_claim).await.unwrap();
    let check = c.verify(&receipt).await;
    assert!(check.ok(), "{check:#?}");
    let states: Vec<_> = check.blocks.iter().map(|b| b.epoch_state).collect();
    let (done, pending) = (Some(EpochState::Final), Some(EpochState::Pending));
    assert_eq!(states, [done, done, pending, pending]);
}
