//! Feeds arbitrary bytes to the input codec's decoders: they must never
//! panic, and whatever they accept must encode back to the very same bytes
//! (one wire form per event, so nothing can smuggle a second meaning).

#![no_main]

use gridplay_protocol::input::{InputApplied, InputEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = InputEvent::decode(data) {
        let encoded = event.encode().expect("a decoded event encodes");
        assert_eq!(encoded, data, "{event:?}");
    }
    if let Ok(applied) = InputApplied::decode(data) {
        assert_eq!(applied.encode()[..], *data, "{applied:?}");
    }
});
