//! Raw frames and RGBA or BGRA → I420 colour conversion (BT.709, limited range).

use yuv::{
    BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix,
    bgra_to_yuv420, rgba_to_yuv420,
};

use crate::StreamingError;

/// One of the `yuv` crate's packed-to-I420 conversions.
type ToYuv = fn(
    &mut YuvPlanarImageMut<'_, u8>,
    &[u8],
    u32,
    YuvRange,
    YuvStandardMatrix,
    YuvConversionMode,
) -> Result<(), yuv::YuvError>;

/// A planar 4:2:0 frame: Y, then U, then V, each tightly packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420Frame {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Y plane (`width * height` bytes).
    pub y: Vec<u8>,
    /// U plane (`width/2 * height/2` bytes).
    pub u: Vec<u8>,
    /// V plane (`width/2 * height/2` bytes).
    pub v: Vec<u8>,
}

impl I420Frame {
    /// A black frame of the given size.
    pub fn new(width: u32, height: u32) -> Self {
        let luma = (width * height) as usize;
        let chroma = ((width / 2) * (height / 2)) as usize;
        Self { width, height, y: vec![16; luma], u: vec![128; chroma], v: vec![128; chroma] }
    }
}

/// Converts RGBA frames into a reused I420 buffer.
#[derive(Debug)]
pub struct ColourConverter {
    frame: I420Frame,
}

impl ColourConverter {
    /// A converter for frames of one size.
    pub fn new(width: u32, height: u32) -> Self {
        Self { frame: I420Frame::new(width, height) }
    }

    /// The frame converted last (black before the first).
    pub fn last(&self) -> &I420Frame {
        &self.frame
    }

    /// Converts tightly packed RGBA (`width * height * 4` bytes) and returns the I420 frame.
    pub fn convert(&mut self, rgba: &[u8]) -> Result<&I420Frame, StreamingError> {
        self.convert_with(rgba, rgba_to_yuv420)
    }

    /// Converts tightly packed BGRA or BGRX (X11's 24-bit visual; the
    /// fourth byte is ignored) and returns the I420 frame.
    pub fn convert_bgra(&mut self, bgra: &[u8]) -> Result<&I420Frame, StreamingError> {
        self.convert_with(bgra, bgra_to_yuv420)
    }

    fn convert_with(&mut self, pixels: &[u8], to_yuv: ToYuv) -> Result<&I420Frame, StreamingError> {
        let (width, height) = (self.frame.width, self.frame.height);
        let expected = (width * height * 4) as usize;
        if pixels.len() != expected {
            return Err(StreamingError::FrameSize { expected, actual: pixels.len() });
        }
        let mut planar = YuvPlanarImageMut {
            y_plane: BufferStoreMut::Borrowed(&mut self.frame.y),
            y_stride: width,
            u_plane: BufferStoreMut::Borrowed(&mut self.frame.u),
            u_stride: width / 2,
            v_plane: BufferStoreMut::Borrowed(&mut self.frame.v),
            v_stride: width / 2,
            width,
            height,
        };
        to_yuv(
            &mut planar,
            pixels,
            width * 4,
            YuvRange::Limited,
            YuvStandardMatrix::Bt709,
            YuvConversionMode::Balanced,
        )
        .map_err(|e| StreamingError::Colour(e.to_string()))?;
        Ok(&self.frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_white_and_black_to_limited_range_luma() {
        let mut conv = ColourConverter::new(4, 2);
        let mut rgba = vec![255u8; 4 * 2 * 4];
        rgba[..16].fill(0);
        for px in rgba.chunks_mut(4) {
            px[3] = 255;
        }
        let frame = conv.convert(&rgba).unwrap();
        assert!(frame.y[..4].iter().all(|&y| y <= 17), "{:?}", frame.y);
        assert!(frame.y[4..].iter().all(|&y| y >= 234), "{:?}", frame.y);
        assert!(frame.u.iter().chain(&frame.v).all(|&c| (126..=130).contains(&c)));
    }

    #[test]
    fn bgra_and_rgba_of_one_colour_agree() {
        let (mut a, mut b) = (ColourConverter::new(2, 2), ColourConverter::new(2, 2));
        let rgba = [200u8, 30, 60, 255].repeat(4);
        let bgrx = [60u8, 30, 200, 0].repeat(4);
        let from_rgba = a.convert(&rgba).unwrap();
        let from_bgrx = b.convert_bgra(&bgrx).unwrap();
        assert_eq!(
            (&from_rgba.y, &from_rgba.u, &from_rgba.v),
            (&from_bgrx.y, &from_bgrx.u, &from_bgrx.v)
        );
        assert!(from_rgba.v[0] > 180, "red is high in V: {:?}", from_rgba.v);
    }

    #[test]
    fn rejects_wrong_sized_buffers() {
        let mut conv = ColourConverter::new(4, 2);
        assert!(matches!(
            conv.convert(&[0; 7]),
            Err(StreamingError::FrameSize { expected: 32, actual: 7 })
        ));
    }
}
