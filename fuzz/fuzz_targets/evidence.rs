//! Fuzzes evidence::verify_record and Evidence::block, then bill_block.
//! The body is `gridplay_chain::fuzzing::evidence`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_chain::fuzzing::evidence(data));
