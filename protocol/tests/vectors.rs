//! The binary input codec against the test vectors shared with the web client
//! (`client-web/test/codec.test.ts` runs the same files).

use std::collections::BTreeSet;

use gridplay_protocol::input::{InputEvent, InputKind};
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
    assert_eq!(kinds.len(), 12, "every kind has a vector: {kinds:?}");
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
