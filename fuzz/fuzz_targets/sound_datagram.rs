//! Fuzzes SoundDatagram::decode (QUIC sound datagrams).
//! The body is `gridplay_protocol::fuzzing::sound_datagram`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_protocol::fuzzing::sound_datagram(data));
