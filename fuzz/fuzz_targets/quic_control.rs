//! Fuzzes ControlMessage::body_len and ControlMessage::decode (QUIC control stream).
//! The body is `gridplay_protocol::fuzzing::quic_control`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::quic_control(data));
