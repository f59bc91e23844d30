//! Fuzzes Receipt::from_json and the offline checks of verify_receipt.
//! The body is `gridplay_chain::fuzzing::receipt`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_chain::fuzzing::receipt(data));
