//! Fuzzes sdp::check_offer (a WHEP offer's SDP).
//! The body is `gridplay_protocol::fuzzing::sdp_offer`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::sdp_offer(data));
