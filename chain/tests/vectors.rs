//! The crate against `tests/vectors/leaves.json`, which `chain/contracts/scripts/vectors.mjs`
//! writes with viem's ABI encoder and whose hashes the contract tests check on anvil.

use gridplay_chain::{Address, Hash, Leaf, MerkleTree, ProbeSummary, verify};
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

fn leaf(v: &Value) -> Leaf {
    Leaf {
        session_id: hash(&v["sessionId"]),
        block_index: number(&v["blockIndex"]),
        player: address(&v["player"]),
        host: address(&v["host"]),
        amount: number(&v["amount"]),
        probe_summary_hash: hash(&v["probeSummaryHash"]),
    }
}

#[test]
fn leaves_encode_and_hash_as_solidity_does() {
    let v = vectors();
    let leaves = v["leaves"].as_array().unwrap();
    assert!(leaves.len() >= 5);
    for l in leaves {
        assert_eq!(leaf(l).encode(), bytes(&l["encoded"]), "{l}");
        assert_eq!(leaf(l).hash(), hash(&l["hash"]), "{l}");
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

#[test]
fn a_tree_over_the_leaves_has_the_vector_root_and_proofs() {
    let v = vectors();
    let hashes: Vec<Hash> =
        v["leaves"].as_array().unwrap().iter().map(|l| leaf(l).hash()).collect();
    let tree = MerkleTree::new(hashes.clone()).unwrap();
    let root = hash(&v["tree"]["root"]);
    assert_eq!(tree.root(), root);
    for (i, (leaf, expected)) in
        hashes.iter().zip(v["tree"]["proofs"].as_array().unwrap()).enumerate()
    {
        let proof = tree.proof(i).unwrap();
        let expected: Vec<Hash> = expected.as_array().unwrap().iter().map(hash).collect();
        assert_eq!(proof, expected, "proof {i}");
        assert!(verify(&proof, &root, leaf), "leaf {i}");
    }
}
