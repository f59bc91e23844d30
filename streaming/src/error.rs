//! The streaming crate's one error type.

use thiserror::Error;

/// What can go wrong on the media path.
#[derive(Debug, Error)]
pub enum StreamingError {
    /// A frame's buffer does not match its stated dimensions.
    #[error("frame buffer is {actual} bytes, expected {expected}")]
    FrameSize {
        /// Bytes the dimensions require.
        expected: usize,
        /// Bytes supplied.
        actual: usize,
    },
    /// Colour conversion failed.
    #[error("colour conversion: {0}")]
    Colour(String),
    /// The H.264 encoder or decoder failed.
    #[error("openh264: {0}")]
    Codec(#[from] openh264::Error),
    /// The Opus encoder or decoder failed, or was given a frame of the wrong size.
    #[error("opus: {0}")]
    Audio(String),
    /// The decoder could not use a unit.
    #[error("decoder: {0}")]
    Decoder(String),
    /// The encoder refused a setting.
    #[error("encoder: {0}")]
    Encoder(String),
    /// The WebRTC stack failed.
    #[error("webrtc: {0}")]
    WebRtc(#[from] ::webrtc::error::Error),
    /// An access unit could not be packetized into RTP.
    #[error("RTP packetization: {0}")]
    Rtp(String),
    /// An SDP offer was refused before reaching the WebRTC stack.
    #[error("bad SDP: {0}")]
    BadSdp(String),
    /// A WHEP exchange failed.
    #[error("WHEP: {0}")]
    Whep(String),
    /// ICE could not gather what it was asked to.
    #[error("ICE: {0}")]
    Ice(String),
    /// The peer connection is gone.
    #[error("peer connection closed")]
    Closed,
    /// The QUIC transport failed (endpoint, handshake, TLS, a stream).
    #[error("QUIC: {0}")]
    Quic(String),
    /// The remote side broke the wire contract.
    #[error("protocol: {0}")]
    Protocol(#[from] gridplay_protocol::ProtocolError),
    /// The host closed the QUIC connection with a reason.
    #[error("host closed the connection: {code:?} {reason}")]
    Refused {
        /// Why, if the code is known.
        code: Option<gridplay_protocol::quic::CloseCode>,
        /// The host's words.
        reason: String,
    },
}
