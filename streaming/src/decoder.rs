//! H.264 decoding (openh264), for viewers, checkers and tests.

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::formats::YUVSource;

use crate::StreamingError;

/// A decoded picture as tightly packed RGBA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes.
    pub rgba: Vec<u8>,
}

/// Decodes Annex-B access units into RGBA pictures.
pub struct H264Decoder {
    decoder: Decoder,
}

impl H264Decoder {
    /// Creates a decoder.
    pub fn new() -> Result<Self, StreamingError> {
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())?;
        Ok(Self { decoder })
    }

    /// Decodes one access unit; `None` when it completes no picture.
    pub fn decode(&mut self, annex_b: &[u8]) -> Result<Option<DecodedFrame>, StreamingError> {
        let Some(yuv) = self.decoder.decode(annex_b)? else {
            return Ok(None);
        };
        let (w, h) = yuv.dimensions();
        let mut rgba = vec![0; w * h * 4];
        yuv.write_rgba8(&mut rgba);
        Ok(Some(DecodedFrame { width: w as u32, height: h as u32, rgba }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ColourConverter, EncoderSettings, OpenH264Encoder, VideoEncoder};

    #[test]
    fn decodes_what_the_encoder_made() {
        let (w, h) = (320, 240);
        let mut rgba = vec![0u8; (w * h * 4) as usize];
        for (i, px) in rgba.chunks_mut(4).enumerate() {
            let x = (i as u32 % w) as u8;
            px.copy_from_slice(&[x, 255 - x, 128, 255]);
        }
        let mut conv = ColourConverter::new(w, h);
        let mut enc = OpenH264Encoder::new(EncoderSettings::for_stream(w, h, 30)).unwrap();
        let mut dec = H264Decoder::new().unwrap();
        let first = enc.encode(conv.convert(&rgba).unwrap(), false).unwrap();
        assert!(first.keyframe);
        let picture = dec.decode(&first.data).unwrap().expect("a picture");
        assert_eq!((picture.width, picture.height), (w, h));
        // The gradient survives: red grows left to right.
        let red = |x: u32| picture.rgba[((h / 2 * w + x) * 4) as usize];
        assert!(red(10) + 40 < red(250), "{} vs {}", red(10), red(250));
        let forced = enc.encode(conv.convert(&rgba).unwrap(), true).unwrap();
        assert!(forced.keyframe);
        let next = enc.encode(conv.convert(&rgba).unwrap(), false).unwrap();
        assert!(!next.keyframe);
    }

    #[test]
    fn garbage_is_an_error_or_no_picture_not_a_panic() {
        let mut dec = H264Decoder::new().unwrap();
        for junk in [&[0u8, 0, 0, 1, 0x65, 1, 2, 3][..], &[0xff; 64][..], &[][..]] {
            let _ = dec.decode(junk);
        }
    }
}
