//! Fuzzes the messages of a host's signalling link (a relayed request or its answer).
//! The body is `gridplay_protocol::fuzzing::link_message`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::link_message(data));
