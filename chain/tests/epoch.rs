//! From probe records to a committed root: bill each block, summarise it, make its leaf, and
//! build the epoch's sections.

use std::collections::BTreeMap;

use alloy::primitives::{Address, U256};
use gridplay_chain::settlement::Sections;
use gridplay_chain::{BLOCK_SECONDS, Leaf, ProbeRecord, ProbeSummary, Sla, bill_block, keccak256};

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

    // The epoch: blocks sorted with running sums, the host's total, the player's spend on top
    // of what it had spent before.
    let before = BTreeMap::from([(Address::repeat_byte(1), 5u128)]);
    let epoch = Sections::build(&leaves, &before).unwrap();
    let total: u128 = amounts.iter().sum();
    assert_eq!(epoch.total(), total);
    let last = epoch.blocks().last().unwrap();
    assert_eq!((last.playerRunning, last.epochRunning), (U256::from(total), U256::from(total)));
    assert_eq!(epoch.hosts()[0].amount, U256::from(total));
    assert_eq!(epoch.cumulative()[&Address::repeat_byte(1)], total + 5);
    let forged = Leaf { amount: leaves[0].amount + 1, ..leaves[0] };
    let forged = Sections::build(&[forged, leaves[1], leaves[2], leaves[3]], &before).unwrap();
    assert_ne!(forged.root(), epoch.root(), "any amount changes the root");
}
