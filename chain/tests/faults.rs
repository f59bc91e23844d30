//! The settlement contract's rules on a real anvil, called directly: hosts paid once per
//! epoch from one leaf each, players debited lazily when they withdraw, every fault voiding
//! its epoch (and burning the operator's bond) while the same proof against an honest epoch
//! is refused, voucher challenges answered or left to void, single blocks refunded.

use std::collections::BTreeMap;

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use gridplay_chain::settlement::{
    BUNDLED_ANVIL, BlockAt, DeployParams, GridplaySettlement, GridplaySettlementInstance,
    GridplayTypes, Sections, SettlementClient, Voucher, sign_probe_summary, sign_voucher,
    voucher_session_id,
};
use gridplay_chain::{Leaf, ProbeSummary, keccak256};

const ETHER: u128 = 1_000_000_000_000_000_000;
const PRICE: u128 = ETHER / 100;
const WINDOW: u64 = 60;
const CHALLENGE_BOND: u128 = ETHER / 50;

type Contract = GridplaySettlementInstance<DynProvider>;

/// A fresh anvil with the contract deployed and its operator bonded.
struct Chain {
    anvil: AnvilInstance,
    operator: Contract,
    chain_id: u64,
}

/// A session: its player, voucher and signature.
struct Session {
    player: PrivateKeySigner,
    voucher: Voucher,
    signature: alloy::primitives::Bytes,
    session_key: PrivateKeySigner,
}

impl Chain {
    async fn start() -> Self {
        let anvil = Anvil::new().path(BUNDLED_ANVIL).try_spawn().expect("anvil (make chain-deps)");
        let params = DeployParams {
            challenge_window: WINDOW,
            unbonding_period: WINDOW,
            withdrawal_delay: 2 * WINDOW,
            min_bond: ETHER,
            slash_amount: ETHER / 10,
            challenge_bond: CHALLENGE_BOND,
        };
        let operator = SettlementClient::deploy(&anvil.endpoint(), key(&anvil, 0), params)
            .await
            .unwrap()
            .contract()
            .clone();
        let chain_id = operator.provider().get_chain_id().await.unwrap();
        let pool = Self { anvil, operator, chain_id };
        pool.bond_operator().await;
        for host in [1, 2] {
            send(pool.as_key(host).registerHost().value(U256::from(ETHER))).await;
        }
        pool
    }

    fn as_key(&self, i: usize) -> Contract {
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(key(&self.anvil, i)))
            .connect_http(self.anvil.endpoint().parse().unwrap())
            .erased();
        GridplaySettlement::new(*self.operator.address(), provider)
    }

    fn address(&self, i: usize) -> Address {
        self.anvil.addresses()[i]
    }

    async fn bond_operator(&self) {
        send(self.operator.bondOperator().value(U256::from(ETHER))).await;
    }

    async fn advance(&self, seconds: u64) {
        let provider = self.operator.provider();
        let _: serde_json::Value =
            provider.raw_request("evm_increaseTime".into(), (seconds,)).await.unwrap();
        let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    }

    async fn balance(&self, who: Address) -> U256 {
        self.operator.provider().get_balance(who).await.unwrap()
    }

    /// A session of player `player` (anvil key index) with host `host`, `deposit` escrowed.
    async fn session(&self, player: usize, host: usize, nonce: u8) -> Session {
        let voucher = Voucher {
            host: self.address(host),
            sessionKey: PrivateKeySigner::random().address(),
            pricePerBlock: U256::from(PRICE),
            maxBlocks: 8,
            expiry: u64::MAX / 2,
            nonce: B256::from(keccak256(&[nonce])),
        };
        let session_key = PrivateKeySigner::random();
        let voucher = Voucher { sessionKey: session_key.address(), ..voucher };
        let player = key(&self.anvil, player);
        let signature =
            sign_voucher(&player, &voucher, self.chain_id, *self.operator.address()).unwrap();
        Session { player, voucher, signature, session_key }
    }

    fn session_id(&self, s: &Session) -> B256 {
        voucher_session_id(&s.voucher, self.chain_id, *self.operator.address())
    }

    /// Block `index` of session `s`, billed at `amount`.
    fn leaf(&self, s: &Session, index: u32, amount: u128) -> Leaf {
        Leaf {
            session_id: self.session_id(s).0,
            block_index: index,
            player: s.player.address().0.0,
            host: s.voucher.host.0.0,
            amount,
            probe_summary_hash: summary(self.session_id(s), index, amount).struct_hash(),
        }
    }

    async fn commit(&self, epoch: &Sections) -> u64 {
        let (root, blocks, hosts, players, total) = epoch.commit_args();
        self.commit_raw(root, blocks, hosts, players, total).await
    }

    async fn commit_raw(
        &self,
        root: B256,
        blocks: u32,
        hosts: u32,
        players: u32,
        total: u128,
    ) -> u64 {
        let id = self.operator.epochCount().call().await.unwrap().to::<u64>();
        send(self.operator.commitEpoch(root, blocks, hosts, players, total)).await;
        id
    }

    async fn state(&self, epoch: u64) -> u8 {
        self.operator.epochs(U256::from(epoch)).call().await.unwrap().state
    }
}

fn key(anvil: &AnvilInstance, i: usize) -> PrivateKeySigner {
    PrivateKeySigner::from(anvil.keys()[i].clone())
}

fn summary(session: B256, index: u32, amount: u128) -> ProbeSummary {
    ProbeSummary {
        session_id: session.0,
        block_index: index,
        seconds_covered: 900,
        seconds_met: 890,
        amount,
    }
}

/// Sends a call and asserts it was mined successfully.
async fn send<C: SolCall>(call: alloy::contract::SolCallBuilder<&DynProvider, C>) {
    let receipt = call.send().await.expect("sent").get_receipt().await.expect("mined");
    assert!(receipt.status(), "reverted");
}

/// The contract's error for a call that must be refused.
async fn refused<C: SolCall>(call: alloy::contract::SolCallBuilder<&DynProvider, C>) -> String {
    let Err(error) = call.call().await else { panic!("the contract should refuse this") };
    match error.as_decoded_interface_error::<GridplaySettlement::GridplaySettlementErrors>() {
        Some(decoded) => format!("{decoded:?}"),
        None => error.to_string(),
    }
}

const PENDING: u8 = 0;
const FINAL: u8 = 1;
const VOID: u8 = 2;

#[tokio::test]
async fn hosts_are_paid_once_per_epoch_and_players_debited_when_they_withdraw() {
    let pool = Chain::start().await;
    let (host_a, host_b) = (pool.address(1), pool.address(2));
    for p in [3, 4] {
        send(pool.as_key(p).deposit().value(U256::from(10 * PRICE))).await;
    }
    let (s1, s2, s3) =
        (pool.session(3, 1, 1).await, pool.session(4, 2, 2).await, pool.session(3, 2, 3).await);
    let mut billed = Vec::new();
    billed.extend((0..3).map(|i| pool.leaf(&s1, i, PRICE)));
    billed.extend((0..2).map(|i| pool.leaf(&s2, i, PRICE)));
    billed.push(pool.leaf(&s3, 0, PRICE / 2));
    let epoch0 = Sections::build(&billed, &BTreeMap::new()).unwrap();
    assert_eq!(epoch0.total(), 5 * PRICE + PRICE / 2);
    assert!(
        Sections::build(&[billed[0], billed[0]], &BTreeMap::new()).is_err(),
        "a block billed twice"
    );
    let e0 = pool.commit(&epoch0).await;

    let claim_a = vec![epoch0.host_claim(e0, host_a).unwrap()];
    assert!(refused(pool.operator.claim(host_a, claim_a.clone())).await.contains("NotFinal"));
    pool.advance(WINDOW + 1).await;
    let before = pool.balance(host_a).await;
    send(pool.operator.claim(host_a, claim_a.clone())).await;
    assert_eq!(pool.balance(host_a).await - before, U256::from(3 * PRICE));
    assert_eq!(pool.state(e0).await, FINAL);
    assert!(refused(pool.operator.claim(host_a, claim_a)).await.contains("AlreadyPaid"));
    // A host cannot claim with another host's leaf.
    let claim_b = vec![epoch0.host_claim(e0, host_b).unwrap()];
    assert!(refused(pool.operator.claim(host_a, claim_b.clone())).await.contains("InvalidLookup"));
    send(pool.operator.claim(host_b, claim_b)).await;

    // Player 3 asks for everything back; the operator records its spend meanwhile.
    let p3 = pool.address(3);
    send(pool.as_key(3).requestWithdrawal(U256::from(10 * PRICE))).await;
    let at = epoch0.player_lookup(p3).remove(0);
    send(pool.operator.recordSpend(p3, U256::from(e0), at.clone())).await;
    assert!(
        refused(pool.operator.recordSpend(p3, U256::from(e0), at)).await.contains("StaleSpend")
    );
    assert!(refused(pool.as_key(3).withdraw()).await.contains("WithdrawalLocked"));
    pool.advance(2 * WINDOW).await;
    send(pool.as_key(3).withdraw()).await;
    let account = pool.operator.players(p3).call().await.unwrap();
    assert_eq!(account.withdrawn, 10 * PRICE - (3 * PRICE + PRICE / 2));
    assert_eq!(pool.operator.available(p3).call().await.unwrap(), U256::ZERO);

    // The next epoch carries every player's cumulative spend forward.
    let epoch1 = Sections::build(&[pool.leaf(&s2, 2, PRICE)], &epoch0.cumulative()).unwrap();
    assert_eq!(epoch1.players().len(), 2);
    let e1 = pool.commit(&epoch1).await;
    pool.advance(WINDOW + 1).await;
    let p4 = pool.address(4);
    send(pool.operator.recordSpend(p4, U256::from(e1), epoch1.player_lookup(p4).remove(0))).await;
    assert_eq!(pool.operator.players(p4).call().await.unwrap().spent, 3 * PRICE);
    let stale = epoch0.player_lookup(p4).remove(0);
    assert!(
        refused(pool.operator.recordSpend(p4, U256::from(e0), stale)).await.contains("StaleSpend")
    );
    assert_eq!(pool.operator.available(p4).call().await.unwrap(), U256::from(7 * PRICE));
}

/// Blocks of two players with two hosts: (player 3: host 1 × 2, host 2 × 1), (player 4: host 1).
async fn honest_blocks(pool: &Chain, round: u8) -> Vec<Leaf> {
    let a = pool.session(3, 1, 10 * round).await;
    let b = pool.session(3, 2, 10 * round + 1).await;
    let c = pool.session(4, 1, 10 * round + 2).await;
    vec![
        pool.leaf(&a, 0, PRICE),
        pool.leaf(&a, 1, PRICE),
        pool.leaf(&b, 0, PRICE),
        pool.leaf(&c, 0, PRICE),
    ]
}

/// An honest epoch of `honest_blocks` on its own.
async fn fresh(pool: &Chain, round: u8) -> Sections {
    Sections::build(&honest_blocks(pool, round).await, &BTreeMap::new()).unwrap()
}

/// Asserts `epoch` was voided, the operator's bond burned; bonds the operator again.
async fn assert_voided(pool: &Chain, epoch: u64, what: &str) {
    assert_eq!(pool.state(epoch).await, VOID, "{what}");
    assert_eq!(pool.operator.operatorBond().call().await.unwrap(), U256::ZERO, "{what}");
    pool.bond_operator().await;
}

#[tokio::test]
async fn every_fault_voids_its_epoch_and_the_same_proofs_against_an_honest_epoch_are_refused() {
    let pool = Chain::start().await;
    let (p3, host_a) = (pool.address(3), pool.address(1));
    let honest = Sections::build(&honest_blocks(&pool, 1).await, &BTreeMap::new()).unwrap();
    let e0 = pool.commit(&honest).await;
    let no_fault = |s: String| assert!(s.contains("NoFault"), "{s}");
    let id = |e: u64| U256::from(e);
    no_fault(
        refused(pool.operator.proveBlocksFault(id(e0), honest.block_at(0), honest.block_at(1)))
            .await,
    );
    no_fault(refused(pool.operator.proveBlocksEdgeFault(id(e0), honest.block_at(3))).await);
    no_fault(
        refused(pool.operator.proveHostsFault(id(e0), honest.host_at(0), honest.host_at(1))).await,
    );
    no_fault(refused(pool.operator.proveHostsEdgeFault(id(e0), honest.host_at(0))).await);
    no_fault(
        refused(pool.operator.provePlayersFault(id(e0), honest.player_at(0), honest.player_at(1)))
            .await,
    );
    let spend = pool.operator.provePlayerSpendFault(
        id(e0),
        p3,
        Vec::new(),
        honest.spend_lookup(p3),
        honest.player_lookup(p3),
    );
    no_fault(refused(spend).await);
    let a_blocks: Vec<BlockAt> =
        (0..4).filter(|&i| honest.blocks()[i].host == host_a).map(|i| honest.block_at(i)).collect();
    no_fault(
        refused(pool.operator.proveHostShortFault(
            id(e0),
            host_a,
            honest.host_lookup(host_a),
            a_blocks,
        ))
        .await,
    );
    // Keys with no leaf read as 0 from the leaves around where they would be: below every
    // player, between the two, above every one (and likewise for hosts).
    let (low, high) = {
        let (a, b) = (honest.players()[0].player, honest.players()[1].player);
        let mid = (U256::from_be_slice(a.as_slice()) + U256::from_be_slice(b.as_slice())) >> 1;
        (Address::from_word(B256::from(mid)), Address::repeat_byte(0xff))
    };
    for stranger in [Address::ZERO, low, high] {
        let spend = pool.operator.provePlayerSpendFault(
            id(e0),
            stranger,
            Vec::new(),
            honest.spend_lookup(stranger),
            honest.player_lookup(stranger),
        );
        no_fault(refused(spend).await);
        let short = pool.operator.proveHostShortFault(
            id(e0),
            stranger,
            honest.host_lookup(stranger),
            Vec::new(),
        );
        no_fault(refused(short).await);
    }
    // A bracket that is not two neighbours shows nothing.
    let lie = vec![honest.player_at(0), honest.player_at(0)];
    let spend =
        pool.operator.provePlayerSpendFault(id(e0), low, Vec::new(), honest.spend_lookup(low), lie);
    assert!(refused(spend).await.contains("InvalidLookup"));
    // A proof for a leaf at the wrong position is not a proof.
    let mut moved = honest.block_at(1);
    moved.index = 2;
    let wrong = refused(pool.operator.proveBlocksEdgeFault(id(e0), moved)).await;
    assert!(wrong.contains("InvalidProof"), "{wrong}");

    let sections = |e: &Sections| (e.blocks().to_vec(), e.hosts().to_vec(), e.players().to_vec());

    // A player's cumulative spend inflated.
    let good = Sections::build(&honest_blocks(&pool, 2).await, &honest.cumulative()).unwrap();
    let (b, h, mut p) = sections(&good);
    p[0].cumulative += U256::from(1);
    let bad = Sections::from_sections(b, h, p).unwrap();
    let e = pool.commit(&bad).await;
    let victim = bad.players()[0].player;
    send(pool.operator.provePlayerSpendFault(
        id(e),
        victim,
        honest.player_lookup(victim),
        bad.spend_lookup(victim),
        bad.player_lookup(victim),
    ))
    .await;
    assert_voided(&pool, e, "inflated cumulative spend").await;

    // The epoch after a voided one.
    let e = pool.commit(&fresh(&pool, 3).await).await;
    send(pool.operator.voidAfterVoid(id(e))).await;
    assert_voided(&pool, e, "after a void").await;

    // Neighbouring blocks whose player running sums do not add up.
    let (mut b, h, p) = sections(&fresh(&pool, 4).await);
    b[1].playerRunning += U256::from(1);
    let bad = Sections::from_sections(b, h, p).unwrap();
    let e = pool.commit(&bad).await;
    send(pool.operator.proveBlocksFault(id(e), bad.block_at(0), bad.block_at(1))).await;
    assert_voided(&pool, e, "block running sums").await;

    // A committed total the blocks do not reach.
    let good = fresh(&pool, 5).await;
    let (root, nb, nh, np, total) = good.commit_args();
    let e = pool.commit_raw(root, nb, nh, np, total + 1).await;
    send(pool.operator.proveBlocksEdgeFault(id(e), good.block_at(3))).await;
    assert_voided(&pool, e, "total").await;

    // A host running total that does not add up, and a first host's that is not its amount.
    let (b, mut h, p) = sections(&fresh(&pool, 6).await);
    h[1].running += U256::from(1);
    let bad = Sections::from_sections(b.clone(), h.clone(), p.clone()).unwrap();
    let e = pool.commit(&bad).await;
    send(pool.operator.proveHostsFault(id(e), bad.host_at(0), bad.host_at(1))).await;
    assert_voided(&pool, e, "host running total").await;
    h[0].running += U256::from(1);
    let bad = Sections::from_sections(b, h, p).unwrap();
    let e = pool.commit(&bad).await;
    send(pool.operator.proveHostsEdgeFault(id(e), bad.host_at(0))).await;
    assert_voided(&pool, e, "first host").await;

    // Players out of order.
    let (b, h, mut p) = sections(&fresh(&pool, 7).await);
    p.swap(0, 1);
    let bad = Sections::from_sections(b, h, p).unwrap();
    let e = pool.commit(&bad).await;
    send(pool.operator.provePlayersFault(id(e), bad.player_at(0), bad.player_at(1))).await;
    assert_voided(&pool, e, "players order").await;

    // One host's total moved to another (running sums still add up): the short host proves it
    // with its own blocks.
    let (b, mut h, p) = sections(&fresh(&pool, 8).await);
    let moved = U256::from(PRICE);
    let short = h.iter().position(|x| x.host == host_a).unwrap();
    h[short].amount -= moved;
    h[1 - short].amount += moved;
    let mut running = U256::ZERO;
    for x in &mut h {
        running += x.amount;
        x.running = running;
    }
    let bad = Sections::from_sections(b, h, p).unwrap();
    let e = pool.commit(&bad).await;
    let mine: Vec<BlockAt> =
        (0..4).filter(|&i| bad.blocks()[i].host == host_a).map(|i| bad.block_at(i)).collect();
    send(pool.operator.proveHostShortFault(id(e), host_a, bad.host_lookup(host_a), mine)).await;
    assert_voided(&pool, e, "short host").await;

    // A block its player never signed a voucher for: challenged, unanswerable, voided.
    let forged_session = pool.session(5, 1, 99).await;
    let mut forged = pool.leaf(&forged_session, 0, PRICE);
    forged.player = p3.0.0; // billed to player 3, who never signed it
    let bad = Sections::build(&[forged], &BTreeMap::new()).unwrap();
    let e = pool.commit(&bad).await;
    let challenger = pool.as_key(6);
    assert!(
        refused(challenger.challengeVoucher(id(e), bad.block_at(0)))
            .await
            .contains("WrongChallengeBond")
    );
    send(challenger.challengeVoucher(id(e), bad.block_at(0)).value(U256::from(CHALLENGE_BOND)))
        .await;
    let answer = pool.operator.answerChallenge(
        U256::ZERO,
        bad.blocks()[0].clone(),
        forged_session.voucher.clone(),
        forged_session.signature.clone(),
    );
    assert!(refused(answer).await.contains("VoucherMismatch"));
    assert!(refused(pool.operator.voidUnanswered(U256::ZERO)).await.contains("ChallengeClosed"));
    pool.advance(WINDOW + 1).await;
    assert!(
        refused(pool.operator.finalize(id(e))).await.contains("NotFinal"),
        "an open challenge holds it"
    );
    let before = pool.balance(pool.address(6)).await;
    send(pool.operator.voidUnanswered(U256::ZERO)).await;
    assert_eq!(pool.balance(pool.address(6)).await - before, U256::from(CHALLENGE_BOND));
    assert_voided(&pool, e, "unanswered challenge").await;

    // The honest epoch is final and pays; the windows of the others have closed.
    send(pool.operator.finalize(id(e0))).await;
    assert_eq!(pool.state(e0).await, FINAL);
    assert_eq!(pool.state(e0 + 1).await, VOID);
}

#[tokio::test]
async fn challenges_are_answered_and_single_blocks_refunded() {
    let pool = Chain::start().await;
    let host_a = pool.address(1);
    let (s1, s2) = (pool.session(3, 1, 1).await, pool.session(4, 1, 2).await);
    let billed = vec![pool.leaf(&s1, 0, PRICE), pool.leaf(&s1, 1, PRICE), pool.leaf(&s2, 0, PRICE)];
    let epoch0 = Sections::build(&billed, &BTreeMap::new()).unwrap();
    let e0 = pool.commit(&epoch0).await;
    // Fund the pool (the players' deposits).
    for p in [3, 4] {
        send(pool.as_key(p).deposit().value(U256::from(2 * PRICE))).await;
    }

    // A challenge answered with the voucher: the answerer keeps the bond, the epoch goes on.
    let first = epoch0.blocks().iter().position(|b| b.sessionId == pool.session_id(&s1)).unwrap();
    send(
        pool.as_key(6)
            .challengeVoucher(U256::from(e0), epoch0.block_at(first))
            .value(U256::from(CHALLENGE_BOND)),
    )
    .await;
    assert_eq!(pool.operator.epochs(U256::from(e0)).call().await.unwrap().openChallenges, 1);
    send(pool.as_key(5).answerChallenge(
        U256::ZERO,
        epoch0.blocks()[first].clone(),
        s1.voucher.clone(),
        s1.signature.clone(),
    ))
    .await;
    assert_eq!(pool.operator.epochs(U256::from(e0)).call().await.unwrap().openChallenges, 0);
    assert_eq!(pool.state(e0).await, PENDING);

    // The player's session key signs that its block was not delivered: refunded, host slashed.
    let at = epoch0.blocks().iter().position(|b| b.sessionId == pool.session_id(&s2)).unwrap();
    let sid = pool.session_id(&s2);
    let agrees = summary(sid, 0, PRICE);
    let sign = |s: &ProbeSummary| {
        sign_probe_summary(&s2.session_key, s, pool.chain_id, *pool.operator.address()).unwrap()
    };
    let typed = |s: &ProbeSummary| GridplayTypes::ProbeSummary {
        sessionId: B256::from(s.session_id),
        blockIndex: s.block_index,
        secondsCovered: s.seconds_covered,
        secondsMet: s.seconds_met,
        amount: U256::from(s.amount),
    };
    let dispute = |s: &ProbeSummary| {
        pool.operator.disputeProbeSummary(
            U256::from(e0),
            epoch0.block_at(at),
            s2.voucher.clone(),
            s2.signature.clone(),
            typed(s),
            sign(s),
        )
    };
    assert!(refused(dispute(&agrees)).await.contains("SummaryAgreesWithLeaf"));
    let undelivered = ProbeSummary { seconds_met: 0, amount: 0, ..agrees };
    send(dispute(&undelivered)).await;
    assert!(refused(dispute(&undelivered)).await.contains("AlreadyRefunded"));
    assert_eq!(
        pool.operator.refundedFromHost(U256::from(e0), host_a).call().await.unwrap(),
        U256::from(PRICE)
    );
    assert_eq!(pool.operator.players(pool.address(4)).call().await.unwrap().refunded, PRICE);
    assert_eq!(pool.operator.hosts(host_a).call().await.unwrap().bond, ETHER - ETHER / 10);

    // The same session's block billed again in the next epoch is refunded from that epoch.
    let epoch1 = Sections::build(&[pool.leaf(&s1, 0, PRICE)], &epoch0.cumulative()).unwrap();
    let e1 = pool.commit(&epoch1).await;
    let refuse_same = pool.operator.disputeDuplicate(
        U256::from(e0),
        epoch0.block_at(first),
        U256::from(e0),
        epoch0.block_at(first),
    );
    assert!(refused(refuse_same).await.contains("NotDuplicate"));
    send(pool.operator.disputeDuplicate(
        U256::from(e0),
        epoch0.block_at(first),
        U256::from(e1),
        epoch1.block_at(0),
    ))
    .await;
    assert_eq!(
        pool.operator.refundedFromHost(U256::from(e1), host_a).call().await.unwrap(),
        U256::from(PRICE)
    );

    // The host is paid its total less the refund.
    pool.advance(WINDOW + 1).await;
    let before = pool.balance(host_a).await;
    let claims =
        vec![epoch0.host_claim(e0, host_a).unwrap(), epoch1.host_claim(e1, host_a).unwrap()];
    send(pool.operator.claim(host_a, claims)).await;
    assert_eq!(pool.balance(host_a).await - before, U256::from(2 * PRICE));
}
