//! Session tokens: short-lived grants, signed by the broker (ed25519), that a
//! host verifies offline before it starts streaming.
//!
//! Wire form: `base64url(claims JSON) "." base64url(signature)`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{Profile, ProtocolError};

/// Longest token accepted before any decoding is attempted.
pub const MAX_TOKEN_LEN: usize = 2048;

/// What a session token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The session this token opens.
    pub session_id: String,
    /// The host that must serve it.
    pub host_id: String,
    /// The app to run.
    pub app: String,
    /// Game or phone.
    pub profile: Profile,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Target frame rate.
    pub fps: u32,
    /// Unix time in milliseconds after which the token is refused.
    pub expires_at_ms: u64,
    /// The player's per-session key (canonical lowercase `0x` hex, an address
    /// or a compressed public key; see [`crate::probe::ClientKey`]): only
    /// probe reports it signed count. Absent when the player named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

impl SessionClaims {
    /// Signs the claims with the broker's key, giving the bearer token.
    pub fn sign(&self, key: &SigningKey) -> String {
        let claims = serde_json::to_vec(self).expect("claims serialise");
        let signature = key.sign(&claims);
        format!("{}.{}", B64.encode(&claims), B64.encode(signature.to_bytes()))
    }

    /// Verifies a bearer token against the broker's public key at `now_ms`
    /// (Unix milliseconds) and returns its claims.
    pub fn verify(token: &str, key: &VerifyingKey, now_ms: u64) -> Result<Self, ProtocolError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(ProtocolError::MalformedToken);
        }
        let (claims_b64, sig_b64) = token.split_once('.').ok_or(ProtocolError::MalformedToken)?;
        let claims_bytes = B64.decode(claims_b64).map_err(|_| ProtocolError::MalformedToken)?;
        let sig_bytes: [u8; 64] = B64
            .decode(sig_b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(ProtocolError::MalformedToken)?;
        key.verify(&claims_bytes, &Signature::from_bytes(&sig_bytes))
            .map_err(|_| ProtocolError::BadSignature)?;
        let claims: Self =
            serde_json::from_slice(&claims_bytes).map_err(|_| ProtocolError::MalformedToken)?;
        if now_ms >= claims.expires_at_ms {
            return Err(ProtocolError::TokenExpired);
        }
        Ok(claims)
    }
}

/// Encodes a public key as base64url, the form used in JSON records.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

/// Decodes a base64url public key.
pub fn decode_public_key(text: &str) -> Result<VerifyingKey, ProtocolError> {
    let bytes: [u8; 32] =
        B64.decode(text).ok().and_then(|b| b.try_into().ok()).ok_or(ProtocolError::MalformedKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| ProtocolError::MalformedKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> SessionClaims {
        SessionClaims {
            session_id: "s1".into(),
            host_id: "h1".into(),
            app: "orbit".into(),
            profile: Profile::Game,
            width: 1280,
            height: 720,
            fps: 60,
            expires_at_ms: 10_000,
            client_key: None,
        }
    }

    #[test]
    fn verifies_its_own_signature_until_expiry() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let token = claims().sign(&key);
        assert_eq!(SessionClaims::verify(&token, &key.verifying_key(), 9_999), Ok(claims()));
        assert_eq!(
            SessionClaims::verify(&token, &key.verifying_key(), 10_000),
            Err(ProtocolError::TokenExpired)
        );
    }

    #[test]
    fn rejects_forged_and_malformed_tokens() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let forged = claims().sign(&other);
        let vk = key.verifying_key();
        assert_eq!(SessionClaims::verify(&forged, &vk, 0), Err(ProtocolError::BadSignature));
        // Tampered claims with the original signature.
        let token = claims().sign(&key);
        let (_, sig) = token.split_once('.').unwrap();
        let mut tampered = claims();
        tampered.fps = 120;
        let tampered = format!("{}.{sig}", B64.encode(serde_json::to_vec(&tampered).unwrap()));
        assert_eq!(SessionClaims::verify(&tampered, &vk, 0), Err(ProtocolError::BadSignature));
        for bad in ["", "abc", "a.b", "!!.??", &"x".repeat(MAX_TOKEN_LEN + 1)] {
            assert_eq!(SessionClaims::verify(bad, &vk, 0), Err(ProtocolError::MalformedToken));
        }
    }

    #[test]
    fn the_client_key_travels_in_the_token_and_old_tokens_still_verify() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let with_key =
            SessionClaims { client_key: Some(format!("0x{}", "ab".repeat(20))), ..claims() };
        let token = with_key.sign(&key);
        assert_eq!(SessionClaims::verify(&token, &key.verifying_key(), 0), Ok(with_key));
        // A token signed before the field existed has no `client_key` key at all.
        let json = serde_json::to_value(claims()).unwrap();
        assert!(json.get("client_key").is_none());
    }

    #[test]
    fn public_keys_round_trip() {
        let vk = SigningKey::from_bytes(&[1; 32]).verifying_key();
        assert_eq!(decode_public_key(&encode_public_key(&vk)), Ok(vk));
        assert_eq!(decode_public_key("short"), Err(ProtocolError::MalformedKey));
    }
}
