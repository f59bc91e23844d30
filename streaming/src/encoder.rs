//! H.264 encoders behind one trait: openh264 everywhere (NVENC joins behind
//! the `nvenc` feature).

use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSlices;
use openh264_sys2::{
    ENCODER_OPTION, ENCODER_OPTION_BITRATE, ENCODER_OPTION_MAX_BITRATE, SBitrateInfo,
    SPATIAL_LAYER_0, SPATIAL_LAYER_ALL,
};

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
    /// Changes the target bitrate from the next frame on, without a keyframe.
    fn set_bitrate(&mut self, bps: u32) -> Result<(), StreamingError>;
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

impl OpenH264Encoder {
    #[allow(unsafe_code)]
    fn set_bitrate_option(
        &mut self,
        option: ENCODER_OPTION,
        bps: u32,
    ) -> Result<(), StreamingError> {
        // The target applies to the whole stream; the maximum is checked per layer (one here).
        let layer =
            if option == ENCODER_OPTION_MAX_BITRATE { SPATIAL_LAYER_0 } else { SPATIAL_LAYER_ALL };
        let mut info = SBitrateInfo { iLayer: layer, iBitrate: bps.min(i32::MAX as u32) as i32 };
        // SAFETY: the encoder is initialised (it was created by `with_api_config`), and both
        // bitrate options read one SBitrateInfo through the pointer, which outlives the call.
        // Bitrates are not parameters the safe wrapper relies on.
        let status = unsafe {
            self.encoder.raw_api().set_option(option, std::ptr::addr_of_mut!(info).cast())
        };
        if status != 0 {
            return Err(StreamingError::Encoder(format!(
                "setting bitrate option {option} to {bps} failed ({status})"
            )));
        }
        Ok(())
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

    fn set_bitrate(&mut self, bps: u32) -> Result<(), StreamingError> {
        // openh264 refuses a target above the layer's maximum, and a maximum below the
        // target: raise the maximum first when going up, lower it last when going down.
        let raising = bps > self.settings.bitrate_bps;
        let order = if raising {
            [ENCODER_OPTION_MAX_BITRATE, ENCODER_OPTION_BITRATE]
        } else {
            [ENCODER_OPTION_BITRATE, ENCODER_OPTION_MAX_BITRATE]
        };
        for option in order {
            self.set_bitrate_option(option, bps)?;
        }
        self.settings.bitrate_bps = bps;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "openh264"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ColourConverter;

    /// Encodes `frames` frames of moving noise-like content; returns the bytes produced.
    fn encoded_bytes(encoder: &mut OpenH264Encoder, frames: u32, offset: u32) -> usize {
        let (w, h) = (320, 240);
        let mut conv = ColourConverter::new(w, h);
        let mut total = 0;
        for f in offset..offset + frames {
            let rgba: Vec<u8> = (0..w * h)
                .flat_map(|i| {
                    let (x, y) = (i % w + f * 3, i / w + f);
                    [(x * 5 % 256) as u8, (y * 3 % 256) as u8, ((x ^ y) % 256) as u8, 255]
                })
                .collect();
            let encoded = encoder.encode(conv.convert(&rgba).unwrap(), false).unwrap();
            assert!(!encoded.keyframe || f == 0, "unexpected keyframe at frame {f}");
            total += encoded.data.len();
        }
        total
    }

    #[test]
    fn a_lower_bitrate_makes_smaller_frames_without_a_keyframe() {
        let settings = EncoderSettings {
            bitrate_bps: 4_000_000,
            keyframe_interval: 1000,
            ..EncoderSettings::for_stream(320, 240, 30)
        };
        let mut encoder = OpenH264Encoder::new(settings).unwrap();
        encoded_bytes(&mut encoder, 30, 0);
        let high = encoded_bytes(&mut encoder, 30, 30);
        encoder.set_bitrate(200_000).unwrap();
        encoded_bytes(&mut encoder, 30, 60);
        let low = encoded_bytes(&mut encoder, 30, 90);
        assert!(low * 2 < high, "{low} vs {high}");
        assert_eq!(encoder.settings().bitrate_bps, 200_000);
        encoder.set_bitrate(6_000_000).unwrap();
        encoded_bytes(&mut encoder, 30, 120);
        let raised = encoded_bytes(&mut encoder, 30, 150);
        assert!(raised > low * 2, "{raised} vs {low}");
    }
}
