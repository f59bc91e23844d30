//! Host request signing: every request a host makes to a broker carries an
//! ed25519 signature by the host's key (its id) over the method, path,
//! timestamp and body, in the `x-gridplay-host-auth` header.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier};

use crate::ProtocolError;
use crate::token::decode_public_key;

/// The header carrying `<unix ms>.<base64url signature>`.
pub const HOST_AUTH_HEADER: &str = "x-gridplay-host-auth";

/// How far a signed request's timestamp may be from the broker's clock.
pub const MAX_SKEW_MS: u64 = 30_000;

fn message(method: &str, path: &str, at_ms: u64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("gridplay-host-request\n{method}\n{path}\n{at_ms}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

/// Signing times for one host key: the wall clock, but strictly after the
/// last time handed out, so that two identical requests never share a
/// signature (a broker refuses a signature it has seen as a replay).
#[derive(Debug, Default)]
pub struct SigningClock {
    last_ms: std::sync::atomic::AtomicU64,
}

impl SigningClock {
    /// The time to sign the next request with, given the wall clock `now_ms` (Unix ms).
    pub fn next(&self, now_ms: u64) -> u64 {
        use std::sync::atomic::Ordering;
        let mut last = self.last_ms.load(Ordering::Relaxed);
        loop {
            let next = now_ms.max(last + 1);
            match self.last_ms.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

/// The header value signing a request made at `at_ms` (Unix milliseconds).
pub fn sign_request(key: &SigningKey, method: &str, path: &str, at_ms: u64, body: &[u8]) -> String {
    let signature = key.sign(&message(method, path, at_ms, body));
    format!("{at_ms}.{}", B64.encode(signature.to_bytes()))
}

/// Checks that `header` is `host_id`'s signature of this request and was
/// made within [`MAX_SKEW_MS`] of `now_ms`.
pub fn verify_request(
    host_id: &str,
    header: &str,
    method: &str,
    path: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<(), ProtocolError> {
    let key = decode_public_key(host_id)?;
    let (at, sig) = header.split_once('.').ok_or(ProtocolError::MalformedToken)?;
    let at_ms: u64 = at.parse().map_err(|_| ProtocolError::MalformedToken)?;
    let sig: [u8; 64] = B64
        .decode(sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(ProtocolError::MalformedToken)?;
    key.verify(&message(method, path, at_ms, body), &Signature::from_bytes(&sig))
        .map_err(|_| ProtocolError::BadSignature)?;
    if at_ms.abs_diff(now_ms) > MAX_SKEW_MS {
        return Err(ProtocolError::TokenExpired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::encode_public_key;

    #[test]
    fn signing_times_follow_the_clock_but_never_repeat() {
        let clock = SigningClock::default();
        assert_eq!(clock.next(1_000), 1_000);
        assert_eq!(clock.next(1_000), 1_001, "the same millisecond twice");
        assert_eq!(clock.next(999), 1_002, "a clock stepping back");
        assert_eq!(clock.next(5_000), 5_000);
    }

    #[test]
    fn verifies_the_signed_request_only() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let id = encode_public_key(&key.verifying_key());
        let header = sign_request(&key, "POST", "/v1/hosts", 1_000, b"{}");
        assert_eq!(verify_request(&id, &header, "POST", "/v1/hosts", b"{}", 1_000), Ok(()));
        let wrong = [
            ("GET", "/v1/hosts", &b"{}"[..], 1_000),
            ("POST", "/v1/other", b"{}", 1_000),
            ("POST", "/v1/hosts", b"{ }", 1_000),
        ];
        for (method, path, body, now) in wrong {
            assert_eq!(
                verify_request(&id, &header, method, path, body, now),
                Err(ProtocolError::BadSignature)
            );
        }
        assert_eq!(
            verify_request(&id, &header, "POST", "/v1/hosts", b"{}", 1_000 + MAX_SKEW_MS + 1),
            Err(ProtocolError::TokenExpired)
        );
        let other = encode_public_key(&SigningKey::from_bytes(&[6; 32]).verifying_key());
        assert_eq!(
            verify_request(&other, &header, "POST", "/v1/hosts", b"{}", 1_000),
            Err(ProtocolError::BadSignature)
        );
        for junk in ["", "1000", "x.y", "1000.!!"] {
            assert!(verify_request(&id, junk, "POST", "/v1/hosts", b"{}", 1_000).is_err());
        }
    }
}
