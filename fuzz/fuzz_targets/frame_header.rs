//! Fuzzes FrameHeader::decode (QUIC frame streams).
//! The body is `gridplay_protocol::fuzzing::frame_header`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::frame_header(data));
