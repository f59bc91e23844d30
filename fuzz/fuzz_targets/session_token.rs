//! Fuzzes SessionClaims::verify (session tokens).
//! The body is `gridplay_protocol::fuzzing::session_token`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::session_token(data));
