//! Choosing the H.264 encoder: NVENC where the `nvenc` feature is built in and the GPU and
//! driver can do it, openh264 otherwise.

use std::fmt;

use crate::{EncoderSettings, OpenH264Encoder, StreamingError, VideoEncoder};

/// Which encoder [`open_encoder`] chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderKind {
    /// Software H.264 (openh264).
    Openh264,
    /// NVIDIA hardware H.264 (NVENC).
    Nvenc,
}

impl fmt::Display for EncoderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Openh264 => "openh264",
            Self::Nvenc => "nvenc",
        })
    }
}

/// Opens the best encoder for `settings`. With the `nvenc` feature NVENC is tried first;
/// if it cannot be opened (no driver, a GPU without an encoder such as H100/H200, an old
/// driver, ...) one line says why at `info` and openh264 is used. Fails only if the
/// encoder it ends up with cannot be created.
pub fn open_encoder(
    settings: EncoderSettings,
) -> Result<(Box<dyn VideoEncoder + Send>, EncoderKind), StreamingError> {
    #[cfg(feature = "nvenc")]
    match crate::nvenc::NvencEncoder::new(settings) {
        Ok(encoder) => {
            tracing::info!(
                "encoding with NVENC ({}x{} at {} fps)",
                settings.width,
                settings.height,
                settings.fps
            );
            return Ok((Box::new(encoder), EncoderKind::Nvenc));
        }
        Err(e) => tracing::info!("NVENC unavailable ({e}); encoding with openh264"),
    }
    Ok((Box::new(OpenH264Encoder::new(settings)?), EncoderKind::Openh264))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::I420Frame;

    #[test]
    fn kinds_display_as_short_names() {
        assert_eq!(EncoderKind::Openh264.to_string(), "openh264");
        assert_eq!(EncoderKind::Nvenc.to_string(), "nvenc");
    }

    /// Without NVENC (no feature, or no driver as on CI and GPUs without an encoder) this
    /// is openh264; either way the encoder produces a keyframe for the first frame.
    #[test]
    fn opens_an_encoder_that_encodes() {
        let settings = EncoderSettings::for_stream(320, 240, 30);
        let (mut encoder, kind) = open_encoder(settings).unwrap();
        #[cfg(feature = "nvenc")]
        let nvenc_works = crate::nvenc::NvencEncoder::new(settings).is_ok();
        #[cfg(not(feature = "nvenc"))]
        let nvenc_works = false;
        if !nvenc_works {
            assert_eq!(kind, EncoderKind::Openh264);
        }
        assert_eq!(encoder.name(), kind.to_string());
        let frame = I420Frame::new(320, 240);
        let first = encoder.encode(&frame, false).unwrap();
        assert!(first.keyframe);
        assert!(first.data.starts_with(&[0, 0, 0, 1]) || first.data.starts_with(&[0, 0, 1]));
        encoder.set_bitrate(300_000).unwrap();
        let forced = encoder.encode(&frame, true).unwrap();
        assert!(forced.keyframe);
    }
}
