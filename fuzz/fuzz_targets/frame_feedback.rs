//! Fuzzes FrameFeedback::decode (QUIC feedback datagrams).
//! The body is `gridplay_protocol::fuzzing::frame_feedback`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::frame_feedback(data));
