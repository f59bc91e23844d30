//! The binary input codec and signed probe reports against the test vectors
//! shared with the web client (`client-web/test/codec.test.ts` and
//! `client-web/test/probes.test.ts` run the same files).

use std::collections::BTreeSet;

use gridplay_protocol::input::{InputApplied, InputEvent, InputKind};
use gridplay_protocol::probe::{
    Address, ClientKey, PROBE_REPORT_TYPE, ProbeReport, domain_separator, keccak256, to_hex,
};
use k256::ecdsa::SigningKey;
use serde::Deserialize;

#[derive(Deserialize)]
struct Valid {
    name: String,
    event: InputEvent,
    hex: String,
}

#[derive(Deserialize)]
struct Invalid {
    name: String,
    hex: String,
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn load<T: for<'de> Deserialize<'de>>(file: &str) -> Vec<T> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("vector json")
}

#[test]
fn valid_vectors_encode_and_decode_exactly() {
    let vectors: Vec<Valid> = load("input.json");
    let kinds: BTreeSet<String> = vectors.iter().map(|v| kind_name(&v.event.kind)).collect();
    assert_eq!(kinds.len(), 14, "every kind has a vector: {kinds:?}");
    for v in vectors {
        let bytes = unhex(&v.hex);
        assert_eq!(v.event.encode().unwrap(), bytes, "{}", v.name);
        assert_eq!(InputEvent::decode(&bytes).unwrap(), v.event, "{}", v.name);
    }
}

#[test]
fn invalid_vectors_are_rejected() {
    let vectors: Vec<Invalid> = load("input_invalid.json");
    assert!(!vectors.is_empty());
    for v in vectors {
        assert!(InputEvent::decode(&unhex(&v.hex)).is_err(), "{} decoded", v.name);
    }
}

/// The variant's name, as it appears in the vectors' JSON.
fn kind_name(kind: &InputKind) -> String {
    let json = serde_json::to_value(kind).expect("json");
    json.as_object().and_then(|o| o.keys().next().cloned()).expect("externally tagged")
}

#[derive(Deserialize)]
struct AppliedVector {
    name: String,
    applied: InputApplied,
    hex: String,
}

#[test]
fn applied_vectors_encode_and_decode_exactly() {
    let vectors: Vec<AppliedVector> = load("applied.json");
    assert!(vectors.iter().any(|v| v.applied.rtp_timestamp.is_none()));
    assert!(vectors.iter().any(|v| v.applied.rtp_timestamp.is_some()));
    for v in vectors {
        let bytes = unhex(&v.hex);
        assert_eq!(v.applied.encode(), bytes, "{}", v.name);
        assert_eq!(InputApplied::decode(&bytes).unwrap(), v.applied, "{}", v.name);
    }
    let invalid: Vec<Invalid> = load("applied_invalid.json");
    assert!(!invalid.is_empty());
    for v in invalid {
        assert!(InputApplied::decode(&unhex(&v.hex)).is_err(), "{} decoded", v.name);
    }
}

#[derive(Deserialize)]
struct ProbeVectors {
    private_key: String,
    address: String,
    public_key: String,
    domain_separator: String,
    type_hash: String,
    reports: Vec<ProbeVector>,
}

#[derive(Deserialize)]
struct ProbeVector {
    name: String,
    report: ProbeReport,
    struct_hash: String,
    digest: String,
    signature: String,
}

fn hex32(hash: [u8; 32]) -> String {
    format!("0x{}", to_hex(&hash))
}

#[test]
fn probe_report_vectors_hash_sign_and_recover_exactly() {
    let path = format!("{}/tests/vectors/probe_report.json", env!("CARGO_MANIFEST_DIR"));
    let v: ProbeVectors = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let key = SigningKey::from_slice(&unhex(&v.private_key[2..])).unwrap();
    assert_eq!(Address::of(key.verifying_key()).to_string(), v.address);
    let by_key: ClientKey = v.public_key.parse().unwrap();
    let by_address: ClientKey = v.address.parse().unwrap();
    assert_eq!(by_key.address(), by_address.address());
    assert_eq!(by_key.to_string(), v.public_key);
    assert_eq!(hex32(domain_separator()), v.domain_separator);
    assert_eq!(hex32(keccak256(PROBE_REPORT_TYPE.as_bytes())), v.type_hash);
    assert!(v.reports.len() >= 2);
    for r in v.reports {
        assert_eq!(r.report.validate(), Ok(()), "{}", r.name);
        assert_eq!(hex32(r.report.struct_hash()), r.struct_hash, "{}", r.name);
        assert_eq!(hex32(r.report.digest()), r.digest, "{}", r.name);
        let signed = r.report.clone().sign(&key);
        assert_eq!(
            signed.signature, r.signature,
            "{}: RFC 6979 signatures are deterministic",
            r.name
        );
        assert_eq!(signed.verify(&by_address), Ok(()), "{}", r.name);
        assert_eq!(signed.verify(&by_key), Ok(()), "{}", r.name);
    }
}
