//! The settlement client against the real contract on a real anvil: deploy,
//! bond, deposit, sign vouchers, commit an epoch through the ledger exactly
//! once, wait out the challenge window, claim with proofs, refuse a double claim.

use std::path::PathBuf;

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, U256, utils::parse_ether};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use gridplay_chain::settlement::{
    BilledBlock, DeployParams, Epoch, Ledger, LedgerEpoch, SettlementClient, Voucher, settle,
    sign_voucher, voucher_session_id,
};
use gridplay_chain::{Leaf, ProbeSummary, keccak256};

const CHALLENGE_WINDOW: u64 = 60;

fn anvil() -> AnvilInstance {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(path.exists(), "anvil not installed: run `make chain-deps` ({})", path.display());
    Anvil::new().path(path).try_spawn().expect("anvil starts")
}

fn signer(anvil: &AnvilInstance, index: usize) -> PrivateKeySigner {
    PrivateKeySigner::from(anvil.keys()[index].clone())
}

async fn advance(client: &SettlementClient, seconds: u64) {
    let provider = client.contract().provider();
    let _: serde_json::Value =
        provider.raw_request("evm_increaseTime".into(), (seconds,)).await.unwrap();
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
}

fn block(
    voucher: &Voucher,
    signature: &alloy::primitives::Bytes,
    session_id: B256,
    index: u32,
    player: Address,
) -> BilledBlock {
    let amount: u128 = voucher.pricePerBlock.to();
    let summary = ProbeSummary {
        session_id: session_id.0,
        block_index: index,
        seconds_covered: 900,
        seconds_met: 890,
        amount,
    };
    let leaf = Leaf {
        session_id: session_id.0,
        block_index: index,
        player: player.0.0,
        host: voucher.host.0.0,
        amount,
        probe_summary_hash: summary.struct_hash(),
    };
    BilledBlock { voucher: voucher.clone(), voucher_signature: signature.clone(), leaf }
}

#[tokio::test]
async fn an_epoch_is_committed_once_then_claimed_with_proofs() {
    let anvil = anvil();
    let url = anvil.endpoint();
    let (operator, player, host) = (signer(&anvil, 0), signer(&anvil, 1), signer(&anvil, 2));
    let params = DeployParams {
        challenge_window: CHALLENGE_WINDOW,
        unbonding_period: 120,
        withdrawal_delay: 120,
        min_bond: parse_ether("1").unwrap().to(),
        slash_amount: parse_ether("0.1").unwrap().to(),
    };
    let operator_client = SettlementClient::deploy(&url, operator.clone(), params).await.unwrap();
    let host_client = operator_client.with_signer(&url, host.clone()).await.unwrap();
    let player_client = operator_client.with_signer(&url, player.clone()).await.unwrap();
    host_client.bond(parse_ether("1").unwrap()).await.unwrap();
    player_client.deposit(parse_ether("10").unwrap()).await.unwrap();

    // Two sessions' vouchers, signed off-chain by the player.
    let (chain_id, contract) = (operator_client.chain_id(), operator_client.address());
    let mut blocks = Vec::new();
    for (n, count) in [(1u8, 3u32), (2, 1)] {
        let voucher = Voucher {
            host: host.address(),
            sessionKey: PrivateKeySigner::random().address(),
            pricePerBlock: parse_ether("0.001").unwrap(),
            maxBlocks: 4,
            expiry: u64::MAX / 2,
            nonce: B256::from(keccak256(&[n])),
        };
        let signature = sign_voucher(&player, &voucher, chain_id, contract).unwrap();
        let session_id = voucher_session_id(&voucher, chain_id, contract);
        let on_chain: B256 =
            operator_client.contract().sessionIdOf(voucher.clone()).call().await.unwrap();
        assert_eq!(session_id, on_chain, "EIP-712 digests agree");
        for index in 0..count {
            blocks.push(block(&voucher, &signature, session_id, index, player.address()));
        }
    }
    let epoch = Epoch::new(blocks).unwrap();
    let leaf = &epoch_leaf(&epoch);
    let on_chain: B256 = operator_client.contract().leafHash(leaf.clone()).call().await.unwrap();
    assert_eq!(on_chain, B256::from(Leaf::hash(&first_leaf(&epoch))), "leaf hashes agree");

    // Through the ledger, exactly once.
    let dir = std::env::temp_dir().join(format!("gridplay-settle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ledger = Ledger::new(dir.join("ledger.jsonl"));
    let signed =
        LedgerEpoch::sign(&operator, epoch.root(), epoch.leaf_count(), epoch.total()).unwrap();
    assert_eq!(signed.signer().unwrap(), operator.address());
    ledger.append_epoch(signed).unwrap();
    let submitted = settle(&ledger, &operator_client).await.unwrap();
    assert_eq!(submitted.len(), 1);
    let epoch_id = submitted[0].epoch_id;
    assert_eq!(operator_client.epoch_root(epoch_id).await.unwrap(), epoch.root());
    assert!(settle(&ledger, &operator_client).await.unwrap().is_empty(), "nothing left to submit");
    // A root committed but never recorded (a crash after sending) is recorded, not sent again.
    let other = LedgerEpoch::sign(&operator, B256::repeat_byte(9), 1, 1).unwrap();
    ledger.append_epoch(other.clone()).unwrap();
    operator_client.commit_epoch(other.root, 1, 1).await.unwrap();
    let count = operator_client.epoch_count().await.unwrap();
    let recovered = settle(&ledger, &operator_client).await.unwrap();
    assert_eq!((recovered.len(), recovered[0].tx), (1, None));
    assert_eq!(operator_client.epoch_count().await.unwrap(), count, "no second commit");

    // Claims wait for the challenge window, then pay the host from the player's escrow.
    let claims = epoch.claims_for(host.address()).unwrap();
    assert_eq!(claims.len(), 2);
    assert!(
        host_client.claim(epoch_id, host.address(), claims.clone()).await.is_err(),
        "window still open"
    );
    advance(&operator_client, CHALLENGE_WINDOW + 1).await;
    let before = player_client.contract().players(player.address()).call().await.unwrap().balance;
    host_client.claim(epoch_id, host.address(), claims.clone()).await.unwrap();
    let after = player_client.contract().players(player.address()).call().await.unwrap().balance;
    assert_eq!(U256::from(before - after), U256::from(epoch.total()));
    assert!(
        host_client.claim(epoch_id, host.address(), claims).await.is_err(),
        "a double claim fails"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn first_leaf(epoch: &Epoch) -> Leaf {
    epoch.blocks()[0].leaf
}

fn epoch_leaf(epoch: &Epoch) -> gridplay_chain::settlement::GridplayTypes::Leaf {
    let leaf = first_leaf(epoch);
    gridplay_chain::settlement::GridplayTypes::Leaf {
        sessionId: B256::from(leaf.session_id),
        blockIndex: leaf.block_index,
        player: Address::from(leaf.player),
        host: Address::from(leaf.host),
        amount: U256::from(leaf.amount),
        probeSummaryHash: B256::from(leaf.probe_summary_hash),
    }
}
