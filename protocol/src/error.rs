//! The protocol crate's one error type.

use thiserror::Error;

/// Everything that can be wrong with bytes or tokens received from a peer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// A binary message ended before its fields did.
    #[error("message truncated")]
    Truncated,
    /// A binary message carried bytes after its last field.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// A binary message had an unknown type byte.
    #[error("unknown input message type 0x{0:02x}")]
    UnknownInputType(u8),
    /// A key code was empty, longer than 32 bytes or not printable ASCII.
    #[error("key code must be 1..=32 printable ASCII bytes")]
    BadKeyCode,
    /// A gamepad index was not below [`MAX_GAMEPADS`](crate::input::MAX_GAMEPADS).
    #[error("gamepad index {0} is not below 16")]
    BadGamepadIndex(u8),
    /// A touch list was empty, longer than [`MAX_TOUCHES`](crate::input::MAX_TOUCHES),
    /// or named a touch id twice or one not below `MAX_TOUCHES`.
    #[error("touch list must hold 1..=10 distinct touch ids below 10")]
    BadTouchList,
    /// Clipboard text was longer than [`MAX_CLIPBOARD_BYTES`](crate::input::MAX_CLIPBOARD_BYTES)
    /// or not UTF-8.
    #[error("clipboard text must be UTF-8 of at most 65536 bytes")]
    BadClipboard,
    /// A pointer lock flag was neither 0 nor 1.
    #[error("pointer lock flag {0} is neither 0 nor 1")]
    BadPointerLock(u8),
    /// A session token was not of the form `claims.signature` in base64url.
    #[error("malformed session token")]
    MalformedToken,
    /// A session token's signature did not verify against the broker key.
    #[error("session token signature is invalid")]
    BadSignature,
    /// A session token is past its expiry.
    #[error("session token expired")]
    TokenExpired,
    /// A request carried values no host can serve.
    #[error("{0}")]
    Invalid(String),
    /// A public key was not 32 bytes of valid base64url ed25519 key.
    #[error("malformed public key")]
    MalformedKey,
    /// A client key was neither a `0x` address (40 hex digits) nor a `0x`
    /// compressed secp256k1 public key (66 hex digits) on the curve.
    #[error(
        "client_key must be a 0x-prefixed address (20 bytes) or compressed secp256k1 public key (33 bytes)"
    )]
    BadClientKey,
    /// A probe report's signature was malformed or not made by the session's key.
    #[error("probe report signature is invalid")]
    BadProbeSignature,
    /// A host's signed record was unsigned, or its signature was malformed or not the host's.
    #[error("the host record's signature is missing or not the host's")]
    BadHostSignature,
    /// A probe message was not valid JSON of its type or held impossible values.
    #[error("invalid probe message: {0}")]
    InvalidProbe(String),
}
