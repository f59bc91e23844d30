//! Fuzzes the probes channel: ClientProbeMessage::parse, report signer recovery, ClientKey.
//! The body is `gridplay_protocol::fuzzing::probe_message`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::probe_message(data));
