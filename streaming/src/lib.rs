//! Gridplay's media path: frames and colour conversion, H.264 encoding and
//! decoding, Opus sound, and the WebRTC transport.
//!
//! The crate knows nothing about games or brokers: it turns RGBA frames into
//! an H.264 stream on a WebRTC peer and, for viewers and tests, back again.

pub mod audio;
mod decoder;
mod encoder;
mod error;
mod frame;
#[cfg(feature = "nvenc")]
pub mod nvenc;
pub mod quic;
pub mod rate;
pub mod relay;
mod repeat;
mod select;
pub mod webrtc;

pub use decoder::{DecodedFrame, H264Decoder};
pub use encoder::{EncodedFrame, EncoderSettings, OpenH264Encoder, VideoEncoder};
pub use error::StreamingError;
pub use frame::{ColourConverter, I420Frame};
pub use repeat::FrameRepeater;
pub use select::{EncoderKind, open_encoder};
