//! Fuzzes the input codec: InputEvent::decode, InputApplied::decode.
//! The body is `gridplay_protocol::fuzzing::input_decode`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::input_decode(data));
