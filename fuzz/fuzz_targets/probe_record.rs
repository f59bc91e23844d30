//! Fuzzes SessionProbes::from_signed (a host's signed record).
//! The body is `gridplay_protocol::fuzzing::probe_record`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::probe_record(data));
