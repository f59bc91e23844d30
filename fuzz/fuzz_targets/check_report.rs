//! Fuzzes SignedCheck JSON and verify (POST /v1/checks).
//! The body is `gridplay_protocol::fuzzing::check_report`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::check_report(data));
