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
