//! The bodies of the fuzz targets in `fuzz/` (feature `fuzzing`), one function per target:
//! each feeds arbitrary bytes to one decoder of untrusted bytes, checks it never panics,
//! and checks what it accepts (re-encoding must give the same bytes or value back).
//! cargo-fuzz calls them from `fuzz/fuzz_targets/`; this crate's tests replay the
//! committed corpus (`fuzz/corpus/<target>/`) through them on every `cargo test`.
//!
//! Where a decoder checks a signature before it parses, the target signs the fuzzed bytes
//! with a fixed key when the input's first byte is odd, so that the parse behind the
//! signature is fuzzed too; an even first byte feeds the rest to the decoder as it comes.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signer, SigningKey};

use crate::input::{InputApplied, InputEvent};
use crate::probe::{Address, ClientKey, ClientProbeMessage, SessionProbes, SignedProbeReport};
use crate::quic::{
    ControlMessage, FRAME_HEADER_LEN, Fragment, FrameFeedback, FrameHeader, MAX_SOUND_PACKET,
    SoundDatagram,
};
use crate::token::encode_public_key;
use crate::{HostRegistration, ProtocolError, SessionClaims, host_auth, sdp};

/// The broker's or host's ed25519 key in the targets that sign their input (derived once:
/// a key's derivation costs as much as a signature).
fn ed25519_key() -> &'static SigningKey {
    static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_bytes(&[7; 32]));
    &KEY
}

/// The session key (secp256k1 `[0x11; 32]`, as in `probe`'s tests) reports are checked against.
fn session_key() -> &'static ClientKey {
    static KEY: LazyLock<ClientKey> = LazyLock::new(|| {
        let key = k256::ecdsa::SigningKey::from_slice(&[0x11; 32]).expect("a valid scalar");
        ClientKey::Address(Address::of(key.verifying_key()))
    });
    &KEY
}

/// Splits off the mode byte: `Some(rest)` to sign `rest` (odd first byte), `None` to take
/// the input as it comes (even first byte, or no byte).
fn signed_mode(data: &[u8]) -> Option<&[u8]> {
    data.split_first().filter(|(mode, _)| *mode & 1 == 1).map(|(_, rest)| rest)
}

/// The time the targets verify at, Unix ms.
const NOW_MS: u64 = 1_700_000_000_000;

/// `input_decode`: the input codec (`InputEvent`, `InputApplied`). Accepted bytes encode
/// back to the very same bytes (one wire form per event).
pub fn input_decode(data: &[u8]) {
    if let Ok(event) = InputEvent::decode(data) {
        let encoded = event.encode().expect("a decoded event encodes");
        assert_eq!(encoded, data, "{event:?}");
    }
    if let Ok(applied) = InputApplied::decode(data) {
        assert_eq!(applied.encode()[..], *data, "{applied:?}");
    }
}

/// `probe_message`: the probes channel (`ClientProbeMessage::parse`), report signature
/// recovery and `ClientKey` parsing. Nothing random passes for a report of the session
/// key; an accepted message serialises back to a message that parses to the same value;
/// a parsed client key prints back to its canonical form.
pub fn probe_message(data: &[u8]) {
    if let Ok(message) = ClientProbeMessage::parse(data) {
        // Serialised, optional fields are spelled out (`null`): the text may outgrow the
        // length limit, so it is read back without it.
        let text = serde_json::to_vec(&message).expect("probe messages serialise");
        let again: ClientProbeMessage = serde_json::from_slice(&text).expect("it parses again");
        assert_eq!(again, message);
        if let ClientProbeMessage::Report { report, signature } = message {
            let signed = SignedProbeReport { report, signature };
            if let Ok(signer) = signed.signer()
                && signed.verify(session_key()).is_ok()
            {
                assert_eq!(signer, session_key().address());
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(key) = text.parse::<ClientKey>()
    {
        let canonical = key.to_string();
        assert_eq!(canonical.parse::<ClientKey>().as_ref(), Ok(&key));
        assert!(canonical.eq_ignore_ascii_case(text), "{text} printed as {canonical}");
    }
}

/// `session_token`: `SessionClaims::verify`. Odd first byte: the rest is the claims JSON,
/// signed with the broker key, so the claims parser is fuzzed. Verified claims sign and
/// verify back to themselves; a correctly signed token is never refused for its signature.
pub fn session_token(data: &[u8]) {
    let key = ed25519_key();
    let token = match signed_mode(data) {
        Some(claims) => {
            format!("{}.{}", B64.encode(claims), B64.encode(key.sign(claims).to_bytes()))
        }
        None => String::from_utf8_lossy(data.get(1..).unwrap_or_default()).into_owned(),
    };
    match SessionClaims::verify(&token, &key.verifying_key(), NOW_MS) {
        Ok(claims) => {
            assert!(claims.expires_at_ms > NOW_MS);
            let again = SessionClaims::verify(&claims.sign(key), &key.verifying_key(), NOW_MS);
            assert_eq!(again, Ok(claims));
        }
        Err(ProtocolError::BadSignature) => assert!(signed_mode(data).is_none()),
        Err(_) => {}
    }
}

/// `host_auth`: the `x-gridplay-host-auth` header (`host_auth::verify_request`). The input
/// is `header \n method \n path \n body`. Odd first byte: the header's signature is the
/// host key's over the request at the header's own timestamp text, so the timestamp parse
/// and skew check are fuzzed; it passes exactly when that time is within the skew.
pub fn host_auth(data: &[u8]) {
    let key = ed25519_key();
    let id = encode_public_key(&key.verifying_key());
    let sign = signed_mode(data);
    let rest = sign.unwrap_or(data.get(1..).unwrap_or_default());
    let mut parts = rest.splitn(4, |b| *b == b'\n');
    let mut text = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (header, method, path) = (text(), text(), text());
    let body = parts.next().unwrap_or_default();
    if sign.is_none() {
        if host_auth::verify_request(&id, &header, &method, &path, body, NOW_MS).is_ok() {
            // The broker marks a verified header's signature as used (replays are refused):
            // a request has one signature text only, whichever way its time is written.
            let (at, signature) = header.split_once('.').expect("a verified header has a dot");
            let at_ms: u64 = at.parse().expect("a verified header has a time");
            let again = host_auth::sign_request(key, &method, &path, at_ms, body);
            assert_eq!(again.split_once('.').map(|(_, s)| s), Some(signature));
        }
        return;
    }
    let Ok(at_ms) = header.parse::<u64>() else { return };
    let signed = host_auth::sign_request(key, &method, &path, at_ms, body);
    let signature = signed.split_once('.').expect("sign_request writes `at.signature`").1;
    let header = format!("{header}.{signature}");
    let result = host_auth::verify_request(&id, &header, &method, &path, body, NOW_MS);
    if at_ms.abs_diff(NOW_MS) <= host_auth::MAX_SKEW_MS {
        assert_eq!(result, Ok(()));
    } else {
        assert_eq!(result, Err(ProtocolError::TokenExpired));
    }
}

/// `quic_control`: the control stream's length prefix and JSON messages
/// (`ControlMessage::body_len`, `ControlMessage::decode`). An accepted message encodes to a
/// prefix and body that decode to it again; its `Debug` form never shows a hello's token.
pub fn quic_control(data: &[u8]) {
    if let Some(prefix) = data.get(..4) {
        let _ = ControlMessage::body_len(prefix.try_into().expect("4 bytes"));
    }
    if let Ok(message) = ControlMessage::decode(data) {
        let encoded = message.encode();
        let len = ControlMessage::body_len(encoded[..4].try_into().expect("4 bytes"));
        assert_eq!(len, Ok(encoded.len() - 4));
        assert_eq!(ControlMessage::decode(&encoded[4..]).as_ref(), Ok(&message));
        if let ControlMessage::Hello { token, .. } = &message {
            let shown = format!("{message:?}");
            assert!(token.len() < 12 || !shown.contains(token.as_str()), "{shown}");
        }
    }
}

/// `frame_header`: a frame stream's header (`FrameHeader::decode`) on the first 13 bytes.
/// An accepted header encodes back to the same bytes.
pub fn frame_header(data: &[u8]) {
    let Some(bytes) = data.get(..FRAME_HEADER_LEN) else { return };
    let bytes: &[u8; FRAME_HEADER_LEN] = bytes.try_into().expect("13 bytes");
    if let Ok((header, len)) = FrameHeader::decode(bytes) {
        assert_eq!(header.encode(len), *bytes);
    }
}

/// `fragment`: a video datagram (`Fragment::decode`). An accepted fragment encodes back to
/// the same datagram.
pub fn fragment(data: &[u8]) {
    if let Ok(fragment) = Fragment::decode(data) {
        assert!(fragment.index < fragment.count);
        assert_eq!(fragment.encode(), data);
    }
}

/// `sound_datagram`: a QUIC sound datagram (`SoundDatagram::decode`). An accepted one
/// encodes back to the same datagram and holds a packet of Opus's sizes.
pub fn sound_datagram(data: &[u8]) {
    if let Ok(sound) = SoundDatagram::decode(data) {
        assert!(!sound.packet.is_empty() && sound.packet.len() <= MAX_SOUND_PACKET);
        assert_eq!(sound.encode(), data);
    }
}

/// `frame_feedback`: a feedback datagram (`FrameFeedback::decode`). Accepted entries
/// encode back to the same datagram.
pub fn frame_feedback(data: &[u8]) {
    if let Ok(entries) = FrameFeedback::decode(data) {
        assert_eq!(FrameFeedback::encode(&entries), data);
    }
}

/// `sdp_offer`: the host's check of a WHEP offer (`sdp::check_offer`). What it accepts is
/// within the size limit, starts `v=0` and has a video section.
pub fn sdp_offer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if sdp::check_offer(text).is_ok() {
        assert!(text.len() <= sdp::MAX_SDP_LEN && text.starts_with("v=0"));
    }
}

/// `probe_record`: a host's signed record of a session (`SessionProbes::from_signed`).
/// Odd first byte: the rest is the body, signed by the host key, so the record's parser is
/// fuzzed; even: the input is `signature \n body`. An accepted record names the host, and
/// serialises to a body that, signed again, is accepted too.
pub fn probe_record(data: &[u8]) {
    let key = ed25519_key();
    let id = encode_public_key(&key.verifying_key());
    let result = match signed_mode(data) {
        Some(body) => {
            let signature = B64.encode(key.sign(body).to_bytes());
            SessionProbes::from_signed(body, Some(&signature), &id)
        }
        None => {
            let rest = data.get(1..).unwrap_or_default();
            let (signature, body) = match rest.iter().position(|b| *b == b'\n') {
                Some(at) => (String::from_utf8_lossy(&rest[..at]), &rest[at + 1..]),
                None => (String::from_utf8_lossy(rest), &[][..]),
            };
            SessionProbes::from_signed(body, Some(&signature), &id)
        }
    };
    if let Ok(probes) = result {
        assert_eq!(probes.host_id, id);
        let body = serde_json::to_vec(&probes).expect("records serialise");
        let signature = B64.encode(key.sign(&body).to_bytes());
        let again = SessionProbes::from_signed(&body, Some(&signature), &id);
        assert!(again.is_ok(), "{again:?}");
    }
}

/// `link_message`: messages on a host's signalling link, read both ways (the host reads
/// requests, the broker answers). An accepted message encodes back to the same head and body.
pub fn link_message(data: &[u8]) {
    use crate::link::{RequestHead, ResponseHead, decode, encode};
    if let Ok((head, body)) = decode::<RequestHead>(data) {
        let again = encode(&head, body);
        assert_eq!(decode::<RequestHead>(&again).expect("it decodes again"), (head, body));
    }
    if let Ok((head, body)) = decode::<ResponseHead>(data) {
        let again = encode(&head, body);
        assert_eq!(decode::<ResponseHead>(&again).expect("it decodes again"), (head, body));
    }
}

/// `host_registration`: `POST /v1/hosts` bodies (JSON, then `HostRegistration::validate`).
/// A valid registration serialises to one that parses and is valid too.
pub fn host_registration(data: &[u8]) {
    let Ok(registration) = serde_json::from_slice::<HostRegistration>(data) else { return };
    if registration.validate().is_ok() {
        let text = serde_json::to_vec(&registration).expect("registrations serialise");
        let again: HostRegistration = serde_json::from_slice(&text).expect("it parses again");
        assert_eq!(again.validate(), Ok(()));
        assert_eq!(
            (&again.host_id, &again.offers, &again.apps),
            (&registration.host_id, &registration.offers, &registration.apps)
        );
    }
}

/// `check_report`: a checker's signed report (`SignedCheck` JSON, then
/// `SignedCheck::verify`). A verified report names the checker that signed it.
pub fn check_report(data: &[u8]) {
    let Ok(signed) = serde_json::from_slice::<crate::check::SignedCheck>(data) else { return };
    if let Ok((report, checker)) = signed.verify() {
        assert!(checker.to_string().eq_ignore_ascii_case(&report.checker));
    }
}

/// A target's body.
pub type Target = fn(&[u8]);

/// Replays `fuzz/corpus/<name>/` (committed, minimised by `make fuzz`) through each of
/// `targets`; panics on a failure, or on a missing or empty corpus.
pub fn replay_corpus(targets: &[(&str, Target)]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (name, target) in targets {
        let dir = root.join(name);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (run `make fuzz`)", dir.display()));
        let mut replayed = 0;
        for entry in entries {
            let path = entry.expect("a corpus entry").path();
            target(&std::fs::read(&path).expect("a corpus file"));
            replayed += 1;
        }
        assert!(replayed > 0, "{} is empty", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every target of this crate, by its name in `fuzz/`.
    const TARGETS: &[(&str, Target)] = &[
        ("input_decode", input_decode),
        ("probe_message", probe_message),
        ("session_token", session_token),
        ("host_auth", host_auth),
        ("quic_control", quic_control),
        ("frame_header", frame_header),
        ("fragment", fragment),
        ("sound_datagram", sound_datagram),
        ("frame_feedback", frame_feedback),
        ("sdp_offer", sdp_offer),
        ("probe_record", probe_record),
        ("host_registration", host_registration),
        ("link_message", link_message),
        ("check_report", check_report),
    ];

    /// What the fuzzer once found stays fixed.
    #[test]
    fn fuzz_corpus_replays_without_a_failure() {
        replay_corpus(TARGETS);
    }

    #[test]
    fn the_signed_modes_reach_the_parsers() {
        session_token(b"\x01{\"session_id\":\"s\"}");
        probe_record(b"\x01{}");
        host_auth(b"\x011700000000000\nPOST\n/v1/hosts\n{}");
        host_auth(b"\x0199\nPOST\n/v1/hosts\n{}");
    }
}
