//! Fuzzes HostRegistration JSON and validate (POST /v1/hosts).
//! The body is `gridplay_protocol::fuzzing::host_registration`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::host_registration(data));
