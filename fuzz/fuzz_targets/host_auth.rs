//! Fuzzes host_auth::verify_request (the x-gridplay-host-auth header).
//! The body is `gridplay_protocol::fuzzing::host_auth`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::host_auth(data));
