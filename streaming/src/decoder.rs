//! H.264 decoding (openh264), for viewers, checkers and tests. Error
//! concealment is on: after a loss the decoder still yields a picture
//! (marked concealed) rather than nothing until the next keyframe.

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264_sys2::{
    DECODER_OPTION_ERROR_CON_IDC, ERROR_CON_SLICE_MV_COPY_CROSS_IDR, SBufferInfo,
    dsDataErrorConcealed,
};
use yuv::{YuvPlanarImage, YuvRange, YuvStandardMatrix, yuv420_to_rgba};

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
    /// Whether parts of it were concealed (copied from earlier pictures) after a loss.
    pub concealed: bool,
}

/// Decodes Annex-B access units into RGBA pictures.
pub struct H264Decoder {
    decoder: Decoder,
}

impl H264Decoder {
    /// Creates a decoder with error concealment on.
    #[allow(unsafe_code)]
    pub fn new() -> Result<Self, StreamingError> {
        let mut decoder =
            Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())?;
        let mut mode = ERROR_CON_SLICE_MV_COPY_CROSS_IDR;
        // SAFETY: the decoder is initialised; the option reads one int through the
        // pointer, which outlives the call; concealment is not a setting the safe
        // wrapper relies on.
        let status = unsafe {
            decoder
                .raw_api()
                .set_option(DECODER_OPTION_ERROR_CON_IDC, std::ptr::addr_of_mut!(mode).cast())
        };
        if status != 0 {
            return Err(StreamingError::Decoder(format!(
                "enabling error concealment failed ({status})"
            )));
        }
        Ok(Self { decoder })
    }

    /// Decodes one access unit; `None` when it completes no picture. A
    /// damaged unit yields a concealed picture when the decoder can make one.
    #[allow(unsafe_code)]
    pub fn decode(&mut self, annex_b: &[u8]) -> Result<Option<DecodedFrame>, StreamingError> {
        let len = i32::try_from(annex_b.len())
            .map_err(|_| StreamingError::Decoder("unit too large".into()))?;
        let mut planes = [std::ptr::null_mut::<u8>(); 3];
        let mut info = SBufferInfo::default();
        // SAFETY: the decoder is initialised; the source pointer and length describe
        // `annex_b`; `planes` and `info` are valid for writes for the call.
        let state = unsafe {
            self.decoder.raw_api().decode_frame_no_delay(
                annex_b.as_ptr(),
                len,
                planes.as_mut_ptr(),
                &raw mut info,
            )
        };
        let concealed = state & dsDataErrorConcealed != 0;
        if info.iBufferStatus != 1 || planes.iter().any(|p| p.is_null()) {
            return if state == 0 || concealed {
                Ok(None)
            } else {
                Err(StreamingError::Decoder(format!("undecodable unit (state {state:#x})")))
            };
        }
        // SAFETY: with iBufferStatus 1 the decoder wrote the system-buffer variant of
        // UsrData, and the three plane pointers address its internal picture buffer,
        // valid until the next decode call: Y is height rows of stride[0], U and V are
        // height/2 rows of stride[1]. They are only read, before the next call.
        let frame = unsafe {
            let sys = info.UsrData.sSystemBuffer;
            let (w, h) = (sys.iWidth as u32, sys.iHeight as u32);
            let (y_stride, uv_stride) = (sys.iStride[0] as u32, sys.iStride[1] as u32);
            let y = std::slice::from_raw_parts(planes[0], (h * y_stride) as usize);
            let u = std::slice::from_raw_parts(planes[1], (h.div_ceil(2) * uv_stride) as usize);
            let v = std::slice::from_raw_parts(planes[2], (h.div_ceil(2) * uv_stride) as usize);
            let image = YuvPlanarImage {
                y_plane: y,
                y_stride,
                u_plane: u,
                u_stride: uv_stride,
                v_plane: v,
                v_stride: uv_stride,
                width: w,
                height: h,
            };
            let mut rgba = vec![0; (w * h * 4) as usize];
            yuv420_to_rgba(&image, &mut rgba, w * 4, YuvRange::Limited, YuvStandardMatrix::Bt709)
                .map_err(|e| StreamingError::Colour(e.to_string()))?;
            DecodedFrame { width: w, height: h, rgba, concealed }
        };
        Ok(Some(frame))
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
    fn a_damaged_unit_still_yields_a_concealed_picture() {
        let (w, h) = (320, 240);
        let mut conv = ColourConverter::new(w, h);
        let mut enc = OpenH264Encoder::new(EncoderSettings::for_stream(w, h, 30)).unwrap();
        let mut dec = H264Decoder::new().unwrap();
        let mut pictures = Vec::new();
        for f in 0..4u32 {
            let rgba: Vec<u8> = (0..w * h)
                .flat_map(|i| [((i % w + f * 8) % 256) as u8, (i / w) as u8, 90, 255])
                .collect();
            let unit = enc.encode(conv.convert(&rgba).unwrap(), false).unwrap().data;
            // Frame 2 loses the second half of its data.
            let unit = if f == 2 { unit[..unit.len() / 2].to_vec() } else { unit };
            pictures.push(dec.decode(&unit));
        }
        assert!(matches!(&pictures[1], Ok(Some(p)) if !p.concealed));
        let later: Vec<_> =
            pictures[2..].iter().filter_map(|p| p.as_ref().ok().and_then(|p| p.as_ref())).collect();
        assert!(!later.is_empty(), "pictures keep coming after a loss: {pictures:?}");
        assert!(later.iter().any(|p| p.concealed), "and say they were concealed");
    }

    #[test]
    fn garbage_is_an_error_or_no_picture_not_a_panic() {
        let mut dec = H264Decoder::new().unwrap();
        for junk in [&[0u8, 0, 0, 1, 0x65, 1, 2, 3][..], &[0xff; 64][..], &[][..]] {
            let _ = dec.decode(junk);
        }
    }
}
