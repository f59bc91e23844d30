//! The crate against `tests/vectors/leaves.json`, which `chain/contracts/scripts/vectors.mjs`
//! writes with viem's ABI encoder (the anvil tests check the same hashes against the contract).

use alloy::primitives::{Address as AlloyAddress, B256, U256};
use gridplay_chain::settlement::{
    BlockLeaf, HostLeaf, PlayerLeaf, block_hash, host_hash, player_hash,
};
use gridplay_chain::{Address, Hash, ProbeSummary};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/leaves.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("vectors file")).expect("JSON")
}

fn bytes(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("a hex string").strip_prefix("0x").expect("0x prefix");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn hash(v: &Value) -> Hash {
    bytes(v).try_into().expect("32 bytes")
}

fn address(v: &Value) -> Address {
    bytes(v).try_into().expect("20 bytes")
}

fn number<T: std::str::FromStr>(v: &Value) -> T {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
    .expect("a number")
}

fn u256(v: &Value) -> U256 {
    v.as_str().expect("a decimal string").parse().expect("a uint256")
}

#[test]
fn the_three_leaf_kinds_encode_and_hash_as_solidity_does() {
    let v = vectors();
    for l in v["blocks"].as_array().unwrap() {
        let leaf = BlockLeaf {
            sessionId: B256::from(hash(&l["sessionId"])),
            blockIndex: number(&l["blockIndex"]),
            player: AlloyAddress::from(address(&l["player"])),
            host: AlloyAddress::from(address(&l["host"])),
            amount: u256(&l["amount"]),
            probeSummaryHash: B256::from(hash(&l["probeSummaryHash"])),
            playerRunning: u256(&l["playerRunning"]),
            epochRunning: u256(&l["epochRunning"]),
        };
        assert_eq!(block_hash(&leaf), hash(&l["hash"]), "{l}");
    }
    for l in v["hosts"].as_array().unwrap() {
        let leaf = HostLeaf {
            host: AlloyAddress::from(address(&l["host"])),
            amount: u256(&l["amount"]),
            running: u256(&l["running"]),
        };
        assert_eq!(host_hash(&leaf), hash(&l["hash"]), "{l}");
    }
    for l in v["players"].as_array().unwrap() {
        let leaf = PlayerLeaf {
            player: AlloyAddress::from(address(&l["player"])),
            cumulative: u256(&l["cumulative"]),
        };
        assert_eq!(player_hash(&leaf), hash(&l["hash"]), "{l}");
    }
}

#[test]
fn probe_summaries_hash_as_eip712_structs() {
    let v = vectors();
    for s in v["summaries"].as_array().unwrap() {
        let summary = ProbeSummary {
            session_id: hash(&s["sessionId"]),
            block_index: number(&s["blockIndex"]),
            seconds_covered: number(&s["secondsCovered"]),
            seconds_met: number(&s["secondsMet"]),
            amount: number(&s["amount"]),
        };
        assert_eq!(summary.struct_hash(), hash(&s["structHash"]), "{s}");
    }
}
