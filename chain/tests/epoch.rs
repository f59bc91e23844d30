//! From probe records to a committed root: bill each block, summarise it, make its leaf, build
//! the epoch tree, and prove every leaf.

use gridplay_chain::{
    BLOCK_SECONDS, Leaf, MerkleTree, ProbeRecord, ProbeSummary, Sla, bill_block, keccak256, verify,
};

#[test]
fn billed_blocks_become_provable_leaves() {
    let sla = Sla {
        min_fps: 60.0,
        max_rtt_ms: 40.0,
        max_click_to_photon_ms: 80.0,
        max_loss: 0.02,
        min_met_bps: 9_500,
        price_per_block: 10_000_000_000_000_000,
    };
    let good = ProbeRecord { fps: 60.0, rtt_ms: 12.0, loss: 0.0, click_to_photon_p95_ms: None };
    let slow = ProbeRecord { fps: 24.0, ..good };
    // Session a: two full blocks (the second degraded) and a 5-minute last block.
    // Session b: one full block.
    let blocks: Vec<([u8; 32], u32, Vec<ProbeRecord>, u32)> = vec![
        (keccak256(b"a"), 0, vec![good; 900], BLOCK_SECONDS),
        (keccak256(b"a"), 1, [vec![good; 600], vec![slow; 300]].concat(), BLOCK_SECONDS),
        (keccak256(b"a"), 2, vec![good; 300], 300),
        (keccak256(b"b"), 0, vec![good; 890], BLOCK_SECONDS),
    ];
    let leaves: Vec<Leaf> = blocks
        .iter()
        .map(|(session, index, records, covered)| {
            let bill = bill_block(records, *covered, &sla).unwrap();
            let summary = ProbeSummary::from_bill(*session, *index, &bill);
            Leaf {
                session_id: *session,
                block_index: *index,
                player: [1; 20],
                host: [2; 20],
                amount: bill.amount,
                probe_summary_hash: summary.struct_hash(),
            }
        })
        .collect();
    let amounts: Vec<u128> = leaves.iter().map(|l| l.amount).collect();
    let price = sla.price_per_block;
    assert_eq!(amounts, vec![price, 0, price / 3, price]);

    let tree = MerkleTree::new(leaves.iter().map(Leaf::hash).collect()).unwrap();
    for (i, leaf) in leaves.iter().enumerate() {
        assert!(verify(&tree.proof(i).unwrap(), &tree.root(), &leaf.hash()));
        let forged = Leaf { amount: leaf.amount + 1, ..*leaf };
        assert!(!verify(&tree.proof(i).unwrap(), &tree.root(), &forged.hash()));
    }
}
