//! Feeds arbitrary bytes to the probe channel's parser and, for reports, to
//! signature recovery: nothing may panic, and nothing random may pass for a
//! report signed by a fixed session key.

#![no_main]

use gridplay_protocol::probe::{Address, ClientKey, ClientProbeMessage, SignedProbeReport};
use libfuzzer_sys::fuzz_target;

/// The address of the key `[0x11; 32]` (see protocol/src/probe.rs's tests).
fn session_key() -> ClientKey {
    let key = k256::ecdsa::SigningKey::from_slice(&[0x11; 32]).expect("a valid scalar");
    ClientKey::Address(Address::of(key.verifying_key()))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(ClientProbeMessage::Report { report, signature }) = ClientProbeMessage::parse(data) {
        let signed = SignedProbeReport { report, signature };
        let _ = signed.signer();
        assert!(signed.verify(&session_key()).is_err(), "a random report verified: {signed:?}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<ClientKey>();
    }
});
