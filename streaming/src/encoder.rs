//! H.264 encoders behind one trait: openh264 everywhere (NVENC joins behind
//! the `nvenc` feature).

use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSlices;

use crate::{I420Frame, StreamingError};

/// What an encoder is asked to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSettings {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Target frame rate.
    pub fps: u32,
    /// Target bitrate in bits per second.
    pub bitrate_bps: u32,
    /// Frames between periodic keyframes (a fallback when keyframe requests are lost).
    pub keyframe_interval: u32,
}

impl EncoderSettings {
    /// Defaults for a resolution and frame rate: about 0.1 bit per pixel per frame, with a
    /// keyframe every two seconds.
    pub fn for_stream(width: u32, height: u32, fps: u32) -> Self {
        let bitrate = (u64::from(width) * u64::from(height) * u64::from(fps) / 10)
            .clamp(500_000, 20_000_000) as u32;
        Self { width, height, fps, bitrate_bps: bitrate, keyframe_interval: fps * 2 }
    }
}

/// One encoded access unit in Annex-B form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// Annex-B bytes (start codes included); empty when the encoder skipped the frame.
    pub data: Vec<u8>,
    /// Whether this is an IDR frame.
    pub keyframe: bool,
}

/// An H.264 encoder.
pub trait VideoEncoder: Send {
    /// Encodes one frame; `force_keyframe` asks for an IDR.
    fn encode(
        &mut self,
        frame: &I420Frame,
        force_keyframe: bool,
    ) -> Result<EncodedFrame, StreamingError>;
    /// A short name for logs and metrics, e.g. `openh264`.
    fn name(&self) -> &'static str;
}

/// Software H.264 (Cisco openh264, built from source), constrained baseline.
pub struct OpenH264Encoder {
    encoder: Encoder,
    settings: EncoderSettings,
}

impl OpenH264Encoder {
    /// Creates an encoder for one stream.
    pub fn new(settings: EncoderSettings) -> Result<Self, StreamingError> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(settings.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .complexity(Complexity::Low)
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(settings.keyframe_interval));
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)?;
        Ok(Self { encoder, settings })
    }

    /// The settings this encoder was built with.
    pub fn settings(&self) -> EncoderSettings {
        self.settings
    }
}

impl VideoEncoder for OpenH264Encoder {
    fn encode(
        &mut self,
        frame: &I420Frame,
        force_keyframe: bool,
    ) -> Result<EncodedFrame, StreamingError> {
        let (w, h) = (frame.width as usize, frame.height as usize);
        if (frame.width, frame.height) != (self.settings.width, self.settings.height) {
            return Err(StreamingError::FrameSize {
                expected: (self.settings.width * self.settings.height) as usize,
                actual: w * h,
            });
        }
        if force_keyframe {
            self.encoder.force_intra_frame();
        }
        let source = YUVSlices::new((&frame.y, &frame.u, &frame.v), (w, h), (w, w / 2, w / 2));
        let bitstream = self.encoder.encode(&source)?;
        let keyframe = matches!(bitstream.frame_type(), FrameType::IDR | FrameType::I);
        Ok(EncodedFrame { data: bitstream.to_vec(), keyframe })
    }

    fn name(&self) -> &'static str {
        "openh264"
    }
}
