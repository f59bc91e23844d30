//! The settlement client against the real contract on a real anvil: deploy,
//! bond, deposit, sign vouchers, commit an epoch through the ledger exactly
//! once, wait out the challenge window, claim the host's total, refuse a double
//! claim, record the player's spend; refund blocks (beyond their voucher, by a
//! signed probe summary) so that the host is slashed and the player credited,
//! and refuse false disputes.

use std::collections::BTreeMap;
use std::path::Path;

use alloy::primitives::{Address, B256, U256, utils::parse_ether};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use gridplay_chain::settlement::{
    BUNDLED_ANVIL, BilledBlock, DeployParams, Epoch, EpochState, Ledger, LedgerEpoch, LocalChain,
    Sections, SettlementClient, Voucher, block_hash, probe_summary_digest, settle,
    sign_probe_summary, sign_voucher, voucher_session_id,
};
use gridplay_chain::{Error, Leaf, ProbeSummary, keccak256};

const CHALLENGE_WINDOW: u64 = 60;

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
    let params = DeployParams { challenge_window: CHALLENGE_WINDOW, ..DeployParams::local() };
    let chain =
        LocalChain::start(Path::new(BUNDLED_ANVIL), params, MIN_BOND, 10 * DEPOSIT).await.unwrap();
    let url = chain.rpc_url();
    let (operator, player, host) =
        (chain.operator_key.clone(), chain.player.clone(), chain.host.clone());
    let operator_client = chain.operator.clone();
    let host_client = operator_client.with_signer(&url, host.clone()).await.unwrap();
    let player_client = operator_client.with_signer(&url, player.clone()).await.unwrap();

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
    let epoch = Epoch::new(blocks, &BTreeMap::new()).unwrap();
    let leaf = epoch.sections().blocks()[0].clone();
    let on_chain: B256 =
        operator_client.contract().blockLeafHash(leaf.clone()).call().await.unwrap();
    assert_eq!(on_chain, B256::from(block_hash(&leaf)), "leaf hashes agree");

    // Through the ledger, exactly once.
    let dir = std::env::temp_dir().join(format!("gridplay-settle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ledger = Ledger::new(dir.join("ledger.jsonl"));
    let signed = LedgerEpoch::sign(&operator, epoch.sections()).unwrap();
    assert_eq!(signed.signer().unwrap(), operator.address());
    ledger.append_epoch(signed).unwrap();
    let submitted = settle(&ledger, &operator_client).await.unwrap();
    assert_eq!(submitted.len(), 1);
    let epoch_id = submitted[0].epoch_id;
    assert_eq!(operator_client.epoch(epoch_id).await.unwrap(), (epoch.root(), EpochState::Pending));
    assert!(settle(&ledger, &operator_client).await.unwrap().is_empty(), "nothing left to submit");
    // A root committed but never recorded (a crash after sending) is recorded, not sent again.
    let next = Sections::build(&[], &epoch.cumulative()).unwrap();
    let other = LedgerEpoch::sign(&operator, &next).unwrap();
    ledger.append_epoch(other.clone()).unwrap();
    operator_client.commit_epoch(&next).await.unwrap();
    let count = operator_client.epoch_count().await.unwrap();
    let recovered = settle(&ledger, &operator_client).await.unwrap();
    assert_eq!((recovered.len(), recovered[0].tx), (1, None));
    assert_eq!(operator_client.epoch_count().await.unwrap(), count, "no second commit");

    // Claims wait for the challenge window, then pay the host its total from the pool.
    let claim = epoch.host_claim(epoch_id, host.address()).unwrap();
    assert!(
        host_client.claim(host.address(), vec![claim.clone()]).await.is_err(),
        "window still open"
    );
    advance(&operator_client, CHALLENGE_WINDOW + 1).await;
    let provider = operator_client.contract().provider();
    let before = provider.get_balance(host.address()).await.unwrap();
    operator_client.claim(host.address(), vec![claim.clone()]).await.unwrap();
    let after = provider.get_balance(host.address()).await.unwrap();
    assert_eq!(after - before, U256::from(epoch.total()));
    assert_eq!(operator_client.epoch(epoch_id).await.unwrap().1, EpochState::Final);
    assert!(operator_client.is_paid(host.address(), epoch_id).await.unwrap());
    assert!(
        operator_client.claim(host.address(), vec![claim]).await.is_err(),
        "a double claim fails"
    );

    // The player's deposit is debited when its spend is recorded.
    let deposit = player_client.available(player.address()).await.unwrap();
    let at = epoch.sections().player_lookup(player.address()).remove(0);
    operator_client.record_spend(player.address(), epoch_id, at).await.unwrap();
    let left = player_client.available(player.address()).await.unwrap();
    assert_eq!(deposit - left, epoch.total());
    let _ = std::fs::remove_dir_all(dir);
}

const PRICE: u128 = 1_000_000_000_000_000; // 0.001 ether
const MIN_BOND: u128 = 1_000_000_000_000_000_000; // 1 ether
const SLASH: u128 = 100_000_000_000_000_000; // 0.1 ether
const DEPOSIT: u128 = 1_000_000_000_000_000_000; // 1 ether

/// A deployed contract with a bonded host and a player with escrow.
struct Setup {
    _chain: LocalChain,
    url: String,
    operator: SettlementClient,
    host: PrivateKeySigner,
    player: PrivateKeySigner,
}

async fn setup() -> Setup {
    let params = DeployParams { challenge_window: CHALLENGE_WINDOW, ..DeployParams::local() };
    let chain =
        LocalChain::start(Path::new(BUNDLED_ANVIL), params, MIN_BOND, DEPOSIT).await.unwrap();
    Setup {
        url: chain.rpc_url(),
        operator: chain.operator.clone(),
        host: chain.host.clone(),
        player: chain.player.clone(),
        _chain: chain,
    }
}

impl Setup {
    /// A voucher for one session of `max_blocks` blocks, signed by the player.
    fn voucher(
        &self,
        session_key: Address,
        max_blocks: u32,
    ) -> (Voucher, alloy::primitives::Bytes, B256) {
        let voucher = Voucher {
            host: self.host.address(),
            sessionKey: session_key,
            pricePerBlock: U256::from(PRICE),
            maxBlocks: max_blocks,
            expiry: u64::MAX / 2,
            nonce: B256::from(keccak256(b"dispute")),
        };
        let (chain_id, contract) = (self.operator.chain_id(), self.operator.address());
        let signature = sign_voucher(&self.player, &voucher, chain_id, contract).unwrap();
        let session_id = voucher_session_id(&voucher, chain_id, contract);
        (voucher, signature, session_id)
    }

    /// Commits `epoch` and returns its id.
    async fn commit(&self, epoch: &Epoch) -> u64 {
        self.operator.commit_epoch(epoch.sections()).await.unwrap().0
    }

    /// What disputes can change: the host's bond, the burned total (host and operator bonds),
    /// what the player could withdraw.
    async fn money(&self) -> (u128, U256, u128) {
        (
            self.operator.host_bond(self.host.address()).await.unwrap(),
            self.operator.slashed_total().await.unwrap(),
            self.operator.available(self.player.address()).await.unwrap(),
        )
    }

    /// Claims, after the challenge window, the host's total in `epoch`; returns what the
    /// host's balance gained.
    async fn claim(&self, id: u64, epoch: &Epoch) -> Result<U256, Error> {
        let claim = epoch.host_claim(id, self.host.address()).unwrap();
        let provider = self.operator.contract().provider();
        let before = provider.get_balance(self.host.address()).await.unwrap();
        // The operator sends the claim, so the host's balance moves by the payment alone.
        self.operator.claim(self.host.address(), vec![claim]).await?;
        Ok(provider.get_balance(self.host.address()).await.unwrap() - before)
    }
}

/// Asserts that `result` is the contract refusing `call` with the custom error `name`.
fn assert_refused<T: std::fmt::Debug>(result: Result<T, Error>, call: &str, name: &str) {
    match result {
        Err(Error::Reverted { call: c, reason }) => {
            assert_eq!(c, call);
            assert!(reason.starts_with(name), "expected {name}, got {reason}");
        }
        other => panic!("expected {call} refused with {name}, got {other:?}"),
    }
}

fn billed(
    voucher: &Voucher,
    signature: &alloy::primitives::Bytes,
    session_id: B256,
    index: u32,
    player: Address,
    amount: u128,
) -> BilledBlock {
    let mut b = block(voucher, signature, session_id, index, player);
    b.leaf.amount = amount;
    b
}

#[tokio::test]
async fn a_block_beyond_its_voucher_is_refunded_the_host_slashed_and_the_player_credited() {
    let s = setup().await;
    let (voucher, signature, session_id) = s.voucher(PrivateKeySigner::random().address(), 2);
    let player = s.player.address();
    // Blocks 0 and 1 are within the voucher; block 2 is past `maxBlocks`, block 1 is honest.
    let epoch = Epoch::new(
        vec![
            billed(&voucher, &signature, session_id, 0, player, PRICE),
            billed(&voucher, &signature, session_id, 1, player, PRICE),
            billed(&voucher, &signature, session_id, 2, player, PRICE),
        ],
        &BTreeMap::new(),
    )
    .unwrap();
    let id = s.commit(&epoch).await;
    let start = s.money().await;
    assert_eq!(start, (MIN_BOND, U256::ZERO, DEPOSIT));

    // A false dispute: block 0 is within its voucher. Refused, nothing changes.
    let honest = epoch.evidence(session_id, 0).unwrap();
    assert_refused(
        s.operator.dispute_beyond_voucher(id, &honest).await,
        "disputeBeyondVoucher",
        "LeafWithinVoucher",
    );
    // Evidence whose proof does not lead to the root is refused too.
    let mut forged = epoch.evidence(session_id, 2).unwrap();
    forged.at.proof[0] = B256::repeat_byte(7);
    assert_refused(
        s.operator.dispute_beyond_voucher(id, &forged).await,
        "disputeBeyondVoucher",
        "InvalidProof",
    );
    assert_eq!(s.money().await, start, "a refused dispute changes nothing");

    // The real dispute, sent by the player: the host is slashed, the player credited.
    let player_client = s.operator.with_signer(&s.url, s.player.clone()).await.unwrap();
    let beyond = epoch.evidence(session_id, 2).unwrap();
    player_client.dispute_beyond_voucher(id, &beyond).await.unwrap();
    assert_eq!(s.money().await, (MIN_BOND - SLASH, U256::from(SLASH), DEPOSIT + PRICE));
    assert_eq!(s.operator.refunded_from_host(id, s.host.address()).await.unwrap(), PRICE);
    assert_refused(
        player_client.dispute_beyond_voucher(id, &beyond).await,
        "disputeBeyondVoucher",
        "AlreadyRefunded",
    );

    // After the window: the host is paid its total less the refunded block.
    assert_refused(s.claim(id, &epoch).await, "claim", "NotFinal");
    advance(&s.operator, CHALLENGE_WINDOW + 1).await;
    assert_refused(
        s.operator.dispute_beyond_voucher(id, &beyond).await,
        "disputeBeyondVoucher",
        "NotChallengeable",
    );
    assert_eq!(s.claim(id, &epoch).await.unwrap(), U256::from(2 * PRICE));
    // The player's spend counts all three blocks; the refund gives the third back.
    let at = epoch.sections().player_lookup(s.player.address()).remove(0);
    s.operator.record_spend(s.player.address(), id, at).await.unwrap();
    assert_eq!(s.money().await, (MIN_BOND - SLASH, U256::from(SLASH), DEPOSIT - 2 * PRICE));
}

#[tokio::test]
async fn an_expired_voucher_or_a_replayed_one_bills_nothing() {
    let s = setup().await;
    let player = s.player.address();
    let (voucher, signature, _) = s.voucher(PrivateKeySigner::random().address(), 4);
    // A voucher that expired before the epoch was committed.
    let expired = Voucher { expiry: 1, ..voucher.clone() };
    let (chain_id, contract) = (s.operator.chain_id(), s.operator.address());
    let expired_signature = sign_voucher(&s.player, &expired, chain_id, contract).unwrap();
    let expired_id = voucher_session_id(&expired, chain_id, contract);
    let session_id = voucher_session_id(&voucher, chain_id, contract);
    let first = Epoch::new(
        vec![
            billed(&expired, &expired_signature, expired_id, 0, player, PRICE),
            billed(&voucher, &signature, session_id, 0, player, PRICE),
        ],
        &BTreeMap::new(),
    )
    .unwrap();
    let id = s.commit(&first).await;
    s.operator.dispute_beyond_voucher(id, &first.evidence(expired_id, 0).unwrap()).await.unwrap();
    // The same voucher's block 0 billed again in the next epoch (a replay) is refunded there.
    let replay = Epoch::new(
        vec![billed(&voucher, &signature, session_id, 0, player, PRICE)],
        &first.cumulative(),
    )
    .unwrap();
    let replay_id = s.commit(&replay).await;
    let original = first.evidence(session_id, 0).unwrap().at;
    let again = replay.evidence(session_id, 0).unwrap().at;
    let call = s.operator.contract().disputeDuplicate(
        U256::from(id),
        original,
        U256::from(replay_id),
        again,
    );
    assert!(call.send().await.unwrap().get_receipt().await.unwrap().status());
    assert_eq!(s.operator.refunded_from_host(replay_id, s.host.address()).await.unwrap(), PRICE);
    advance(&s.operator, CHALLENGE_WINDOW + 1).await;
    assert_eq!(s.claim(id, &first).await.unwrap(), U256::from(PRICE), "only the valid block");
    assert_eq!(s.claim(replay_id, &replay).await.unwrap(), U256::ZERO, "the replay pays nothing");
}

#[tokio::test]
async fn a_probe_summary_from_the_session_key_or_a_checker_refunds_a_block_and_others_are_refused()
{
    let s = setup().await;
    let session_key = PrivateKeySigner::random();
    let (checker, stranger) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let (voucher, signature, session_id) = s.voucher(session_key.address(), 4);
    let player = s.player.address();
    let blocks: Vec<BilledBlock> =
        (0..4).map(|i| billed(&voucher, &signature, session_id, i, player, PRICE)).collect();
    let epoch = Epoch::new(blocks, &BTreeMap::new()).unwrap();
    let id = s.commit(&epoch).await;
    let (chain_id, contract) = (s.operator.chain_id(), s.operator.address());
    let sign = |who: &PrivateKeySigner, summary: &ProbeSummary| {
        sign_probe_summary(who, summary, chain_id, contract).unwrap()
    };
    // What the observers saw: the block was barely delivered, worth nothing.
    let bad = |index: u32| ProbeSummary {
        session_id: session_id.0,
        block_index: index,
        seconds_covered: 900,
        seconds_met: 12,
        amount: 0,
    };
    let on_chain: B256 =
        s.operator.contract().probeSummaryDigest((&bad(0)).into()).call().await.unwrap();
    assert_eq!(probe_summary_digest(&bad(0), chain_id, contract), on_chain, "digests agree");

    // False disputes, each refused with nothing changed.
    let start = s.money().await;
    let evidence = epoch.evidence(session_id, 0).unwrap();
    let dispute = |summary: ProbeSummary, by: &PrivateKeySigner| {
        let signature = sign(by, &summary);
        let evidence = epoch.evidence(session_id, summary.block_index).unwrap();
        let client = s.operator.clone();
        async move { client.dispute_probe_summary(id, &evidence, &summary, signature).await }
    };
    assert_refused(dispute(bad(0), &stranger).await, "disputeProbeSummary", "UnauthorisedObserver");
    assert_refused(dispute(bad(0), &checker).await, "disputeProbeSummary", "UnauthorisedObserver");
    let agreeing = ProbeSummary { seconds_met: 890, amount: PRICE, ..bad(0) };
    assert_refused(
        dispute(agreeing, &session_key).await,
        "disputeProbeSummary",
        "SummaryAgreesWithLeaf",
    );
    let other_block = bad(1);
    assert_refused(
        s.operator
            .dispute_probe_summary(id, &evidence, &other_block, sign(&session_key, &other_block))
            .await,
        "disputeProbeSummary",
        "SummaryMismatch",
    );
    assert_eq!(s.money().await, start, "refused disputes change nothing");

    // The session key's summary wins.
    dispute(bad(0), &session_key).await.unwrap();
    assert_eq!(s.money().await, (MIN_BOND - SLASH, U256::from(SLASH), DEPOSIT + PRICE));

    // Only the operator names checkers; a named checker's summary wins.
    let host_client = s.operator.with_signer(&s.url, s.host.clone()).await.unwrap();
    assert_refused(
        host_client.set_checker(checker.address(), true).await,
        "setChecker",
        "NotOperator",
    );
    assert!(!s.operator.is_checker(checker.address()).await.unwrap());
    s.operator.set_checker(checker.address(), true).await.unwrap();
    assert!(s.operator.is_checker(checker.address()).await.unwrap());
    dispute(bad(1), &checker).await.unwrap();
    assert_eq!(s.money().await, (MIN_BOND - 2 * SLASH, U256::from(2 * SLASH), DEPOSIT + 2 * PRICE));
    // A removed checker no longer counts.
    s.operator.set_checker(checker.address(), false).await.unwrap();
    assert_refused(dispute(bad(2), &checker).await, "disputeProbeSummary", "UnauthorisedObserver");

    // After the window the host is paid for the two undisputed blocks.
    advance(&s.operator, CHALLENGE_WINDOW + 1).await;
    assert_eq!(s.claim(id, &epoch).await.unwrap(), U256::from(2 * PRICE));
}
