//! Showing a picture again without encoding it again. When nothing on screen changed, a
//! P frame whose every macroblock is skipped repeats the previous picture for a few
//! bytes, and the encoder's later frames are renumbered (`frame_num`) to follow it, so
//! the stream stays one valid H.264 sequence at the full frame rate.
//!
//! Only streams this module can splice safely are repeated: CAVLC, frames only, one
//! reference frame, picture order derived from `frame_num` (type 2), no slice groups,
//! no weighted prediction and no adaptive reference marking — what openh264 makes. For
//! any other stream [`FrameRepeater::repeat`] says so and the caller encodes again.

use crate::StreamingError;

/// NAL unit types this module reads.
const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

/// Profiles whose SPS carries chroma and scaling fields (High and above): not spliced.
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// What a repeat frame must agree with, from the stream's SPS and PPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Splice {
    pps_id: u32,
    log2_max_frame_num: u32,
    macroblocks: u32,
    redundant_pic_cnt: bool,
    deblocking_control: bool,
}

/// What a spliceable sequence parameter set says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sequence {
    id: u32,
    log2_max_frame_num: u32,
    macroblocks: u32,
}

/// Passes an encoder's frames through and makes repeat frames between them.
#[derive(Debug, Default)]
pub struct FrameRepeater {
    /// `None` while the stream's SPS rules repeats out.
    sequence: Option<Sequence>,
    /// `None` while the stream's parameters rule repeats out.
    splice: Option<Splice>,
    /// Repeats sent since the last IDR: added to the encoder's `frame_num`.
    shift: u32,
    /// `frame_num` of the last reference picture sent; `None` before the first IDR.
    last_frame_num: Option<u32>,
    /// `nal_ref_idc` of the encoder's last reference slice.
    ref_idc: u8,
}

impl FrameRepeater {
    /// A repeater that has seen no frame yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Passes one encoded access unit (Annex-B) on, renumbered after any repeats before
    /// it; learns the stream's parameters from its SPS and PPS.
    pub fn pass(&mut self, access_unit: &[u8]) -> Result<Vec<u8>, StreamingError> {
        let mut out = Vec::with_capacity(access_unit.len() + 16);
        for nal in nal_units(access_unit) {
            let Some(&header) = nal.first() else { continue };
            let (kind, ref_idc, payload) = (header & 0x1f, header >> 5, &nal[1..]);
            out.extend_from_slice(&[0, 0, 0, 1, header]);
            match kind {
                NAL_SPS => self.learn_sequence(&unescape(payload))?,
                NAL_PPS => self.learn_picture_set(&unescape(payload))?,
                NAL_IDR => {
                    self.shift = 0;
                    self.last_frame_num = Some(0);
                    self.ref_idc = ref_idc;
                }
                NAL_SLICE => match self.splice {
                    Some(splice) => {
                        let (frame_num, renumbered) = renumber(splice, self.shift, payload)?;
                        if ref_idc != 0 {
                            self.last_frame_num = Some(frame_num);
                            self.ref_idc = ref_idc;
                        }
                        if let Some(rbsp) = renumbered {
                            escape_into(&rbsp, &mut out);
                            continue;
                        }
                    }
                    None if self.shift > 0 => {
                        return Err(unreadable("parameters changed between repeats and an IDR"));
                    }
                    None => {}
                },
                _ => {}
            }
            out.extend_from_slice(payload);
        }
        Ok(out)
    }

    /// A frame that shows the last picture again, or `None` when this stream cannot be
    /// spliced (or has had no keyframe yet): then encode the picture again.
    #[must_use]
    pub fn repeat(&mut self) -> Option<Vec<u8>> {
        let splice = self.splice?;
        let last = self.last_frame_num?;
        let frame_num = (last + 1) % (1 << splice.log2_max_frame_num);
        let mut bits = BitWriter::default();
        bits.ue(0); // first_mb_in_slice
        bits.ue(5); // slice_type: P, as every slice of the picture
        bits.ue(splice.pps_id);
        bits.bits(frame_num, splice.log2_max_frame_num);
        if splice.redundant_pic_cnt {
            bits.ue(0);
        }
        bits.bits(1, 1); // num_ref_idx_active_override_flag
        bits.ue(0); // num_ref_idx_l0_active_minus1: the one reference
        bits.bits(0, 1); // ref_pic_list_modification_flag_l0
        bits.bits(0, 1); // adaptive_ref_pic_marking_mode_flag: sliding window
        bits.se(0); // slice_qp_delta
        if splice.deblocking_control {
            bits.ue(1); // disable_deblocking_filter_idc: nothing to filter anyway
        }
        bits.ue(splice.macroblocks); // mb_skip_run: every macroblock
        let rbsp = bits.finish();
        let mut out = vec![0, 0, 0, 1, (self.ref_idc << 5) | NAL_SLICE];
        escape_into(&rbsp, &mut out);
        self.shift += 1;
        self.last_frame_num = Some(frame_num);
        Some(out)
    }

    fn learn_sequence(&mut self, rbsp: &[u8]) -> Result<(), StreamingError> {
        self.sequence = None;
        self.splice = None;
        let mut r = BitReader::new(rbsp);
        let profile = r.bits(8)? as u8;
        r.bits(16)?; // constraint flags and level
        let id = r.ue()?;
        if HIGH_PROFILES.contains(&profile) {
            return Ok(());
        }
        let log2_max_frame_num = r.ue()?.saturating_add(4);
        let poc_type = r.ue()?;
        if poc_type != 2 {
            return Ok(());
        }
        let ref_frames = r.ue()?;
        r.bits(1)?; // gaps_in_frame_num_value_allowed_flag
        let width = r.ue()?.saturating_add(1);
        let height = r.ue()?.saturating_add(1);
        let frames_only = r.bits(1)? == 1;
        if ref_frames == 1 && frames_only && log2_max_frame_num <= 16 {
            let macroblocks = width.saturating_mul(height);
            self.sequence = Some(Sequence { id, log2_max_frame_num, macroblocks });
        }
        Ok(())
    }

    fn learn_picture_set(&mut self, rbsp: &[u8]) -> Result<(), StreamingError> {
        let mut r = BitReader::new(rbsp);
        let pps_id = r.ue()?;
        let sps_id = r.ue()?;
        let cabac = r.bits(1)? == 1;
        r.bits(1)?; // bottom_field_pic_order_in_frame_present_flag: frames only here
        let slice_groups = r.ue()?.saturating_add(1);
        r.ue()?; // num_ref_idx_l0_default_active_minus1: overridden in repeats
        r.ue()?; // num_ref_idx_l1_default_active_minus1
        let weighted = r.bits(1)? == 1;
        r.bits(2)?; // weighted_bipred_idc
        r.se()?; // pic_init_qp_minus26
        r.se()?; // pic_init_qs_minus26
        r.se()?; // chroma_qp_index_offset
        let deblocking_control = r.bits(1)? == 1;
        r.bits(1)?; // constrained_intra_pred_flag
        let redundant_pic_cnt = r.bits(1)? == 1;
        self.splice = match self.sequence {
            Some(Sequence { id, log2_max_frame_num, macroblocks })
                if id == sps_id && !cabac && slice_groups == 1 && !weighted =>
            {
                Some(Splice {
                    pps_id,
                    log2_max_frame_num,
                    macroblocks,
                    redundant_pic_cnt,
                    deblocking_control,
                })
            }
            _ => None,
        };
        Ok(())
    }
}

/// Bytes of a slice that hold its header up to `frame_num`, whatever the picture's size.
const SLICE_HEAD: usize = 32;

/// A non-IDR slice's `frame_num` with `shift` repeats added, and the slice's RBSP
/// carrying it when that changed it.
fn renumber(
    splice: Splice,
    shift: u32,
    payload: &[u8],
) -> Result<(u32, Option<Vec<u8>>), StreamingError> {
    let head = unescape(&payload[..payload.len().min(SLICE_HEAD)]);
    let mut r = BitReader::new(&head);
    r.ue()?; // first_mb_in_slice
    r.ue()?; // slice_type
    let pps_id = r.ue()?;
    let at = r.position();
    let frame_num = r.bits(splice.log2_max_frame_num)?;
    if shift == 0 {
        return Ok((frame_num, None));
    }
    if pps_id != splice.pps_id {
        return Err(unreadable("a slice of another picture parameter set after repeats"));
    }
    let max = 1 << splice.log2_max_frame_num;
    let renumbered = (frame_num + shift % max) % max;
    let mut rbsp = unescape(payload);
    write_bits_at(&mut rbsp, at, renumbered, splice.log2_max_frame_num);
    Ok((renumbered, Some(rbsp)))
}

fn unreadable(what: &str) -> StreamingError {
    StreamingError::Encoder(format!("cannot splice the stream: {what}"))
}

/// The NAL units of an Annex-B access unit, each without its start code.
fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&next| {
            // The next start code, with the zero byte of a four-byte one.
            let mut end = next - 3;
            while end > 0 && data[end - 1] == 0 {
                end -= 1;
            }
            end
        })
        .chain(std::iter::once(data.len()))
        .collect();
    starts.into_iter().zip(ends).map(move |(s, e)| &data[s..e.max(s)])
}

/// Removes emulation-prevention bytes: NAL payload → RBSP.
fn unescape(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len());
    let mut zeros = 0;
    for &b in payload {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Appends RBSP with emulation-prevention bytes inserted.
fn escape_into(rbsp: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
}

/// Overwrites `count` bits at bit position `at` with `value`, most significant first.
fn write_bits_at(data: &mut [u8], at: usize, value: u32, count: u32) {
    for i in 0..count as usize {
        let bit = (value >> (count as usize - 1 - i)) & 1;
        let (byte, shift) = ((at + i) / 8, 7 - (at + i) % 8);
        if let Some(b) = data.get_mut(byte) {
            *b = (*b & !(1 << shift)) | ((bit as u8) << shift);
        }
    }
}

/// Reads bits and Exp-Golomb codes from an RBSP.
struct BitReader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    fn position(&self) -> usize {
        self.at
    }

    fn bit(&mut self) -> Result<u32, StreamingError> {
        let byte = self.data.get(self.at / 8).ok_or_else(|| unreadable("truncated unit"))?;
        let bit = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Ok(u32::from(bit))
    }

    fn bits(&mut self, count: u32) -> Result<u32, StreamingError> {
        (0..count).try_fold(0, |v, _| Ok((v << 1) | self.bit()?))
    }

    fn ue(&mut self) -> Result<u32, StreamingError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(unreadable("Exp-Golomb code too long"));
            }
        }
        Ok(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)) as u32)
    }

    fn se(&mut self) -> Result<i32, StreamingError> {
        let k = self.ue()?;
        let magnitude = k.div_ceil(2) as i32;
        Ok(if k % 2 == 1 { magnitude } else { -magnitude })
    }
}

/// Writes bits and Exp-Golomb codes into an RBSP.
#[derive(Default)]
struct BitWriter {
    data: Vec<u8>,
    used: u32,
}

impl BitWriter {
    fn bits(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            if self.used.is_multiple_of(8) {
                self.data.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            if let Some(last) = self.data.last_mut() {
                *last |= bit << (7 - self.used % 8);
            }
            self.used += 1;
        }
    }

    fn ue(&mut self, value: u32) {
        let coded = u64::from(value) + 1;
        let length = 64 - coded.leading_zeros();
        self.bits(0, length - 1);
        for i in (0..length).rev() {
            self.bits(((coded >> i) & 1) as u32, 1);
        }
    }

    fn se(&mut self, value: i32) {
        let mapped = if value > 0 { 2 * value as u32 - 1 } else { 2 * value.unsigned_abs() };
        self.ue(mapped);
    }

    /// Ends the RBSP with its stop bit and alignment.
    fn finish(mut self) -> Vec<u8> {
        self.bits(1, 1);
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ColourConverter, EncoderSettings, H264Decoder, OpenH264Encoder, VideoEncoder};

    const W: u32 = 320;
    const H: u32 = 240;

    /// A picture that differs in every frame: a gradient scrolled by `f`.
    fn picture(f: u32) -> Vec<u8> {
        (0..W * H)
            .flat_map(|i| {
                let (x, y) = (i % W + f * 4, i / W + f);
                [(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8, 255]
            })
            .collect()
    }

    /// Mean absolute difference of two RGBA pictures, per channel.
    fn difference(a: &[u8], b: &[u8]) -> f64 {
        let sum: u64 = a.iter().zip(b).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
        sum as f64 / a.len() as f64
    }

    #[test]
    fn repeats_show_the_last_picture_and_later_frames_decode_cleanly() {
        let settings =
            EncoderSettings { keyframe_interval: 1000, ..EncoderSettings::for_stream(W, H, 30) };
        let mut encoder = OpenH264Encoder::new(settings).unwrap();
        let mut converter = ColourConverter::new(W, H);
        let mut repeater = FrameRepeater::new();
        let mut decoder = H264Decoder::new().unwrap();
        assert!(repeater.repeat().is_none(), "nothing to repeat before the first keyframe");
        // Encoded frames (Some(f)) with runs of repeats (None) between them, across an IDR.
        let plan =
            [Some(0), Some(1), None, None, None, Some(2), None, Some(3), Some(4), None, Some(5)];
        let mut last = None;
        for (step, frame) in plan.iter().enumerate() {
            let unit = match frame {
                Some(f) => {
                    let keyframe = *f == 4;
                    let encoded =
                        encoder.encode(converter.convert(&picture(*f)).unwrap(), keyframe).unwrap();
                    assert_eq!(encoded.keyframe, *f == 0 || keyframe);
                    repeater.pass(&encoded.data).unwrap()
                }
                None => {
                    let unit = repeater.repeat().expect("openh264's stream can be spliced");
                    assert!(unit.len() < 16, "a repeat is a few bytes: {}", unit.len());
                    unit
                }
            };
            let decoded = decoder.decode(&unit).unwrap().expect("every unit is a picture");
            assert!(!decoded.concealed, "step {step} decoded cleanly");
            match (frame, &last) {
                (None, Some(previous)) => assert_eq!(&decoded.rgba, previous, "step {step}"),
                (Some(f), _) => {
                    let off = difference(&decoded.rgba, &picture(*f));
                    assert!(off < 6.0, "step {step}: frame {f} is off by {off:.1}");
                }
                (None, None) => unreachable!(),
            }
            last = Some(decoded.rgba);
        }
    }

    #[test]
    fn without_renumbering_the_frames_after_a_repeat_would_break() {
        // The same splice with the encoder's frames passed on unchanged: the decoder sees
        // a frame_num it does not expect, which is what `pass` exists to prevent.
        let mut encoder = OpenH264Encoder::new(EncoderSettings::for_stream(W, H, 30)).unwrap();
        let mut converter = ColourConverter::new(W, H);
        let mut repeater = FrameRepeater::new();
        let mut decoder = H264Decoder::new().unwrap();
        let first = encoder.encode(converter.convert(&picture(0)).unwrap(), false).unwrap();
        decoder.decode(&repeater.pass(&first.data).unwrap()).unwrap();
        decoder.decode(&repeater.repeat().unwrap()).unwrap();
        let next = encoder.encode(converter.convert(&picture(1)).unwrap(), false).unwrap();
        let passed = repeater.pass(&next.data).unwrap();
        assert_ne!(passed, next.data, "the slice was renumbered");
        let raw = decoder.decode(&next.data);
        assert!(
            !matches!(&raw, Ok(Some(p)) if !p.concealed),
            "an unrenumbered frame decodes cleanly: {raw:?}"
        );
    }

    #[test]
    fn without_repeats_frames_pass_byte_for_byte() {
        let mut encoder = OpenH264Encoder::new(EncoderSettings::for_stream(W, H, 30)).unwrap();
        let mut converter = ColourConverter::new(W, H);
        let mut repeater = FrameRepeater::new();
        for f in 0..5 {
            let frame = encoder.encode(converter.convert(&picture(f)).unwrap(), f == 3).unwrap();
            assert_eq!(repeater.pass(&frame.data).unwrap(), frame.data, "frame {f}");
        }
    }

    #[test]
    fn streams_it_cannot_splice_are_not_repeated() {
        // SPS (Baseline, POC type 0) and a CABAC PPS, then an IDR.
        let mut sps = BitWriter::default();
        sps.bits(66, 8);
        sps.bits(0, 16);
        for v in [0, 0, 0, 4, 1] {
            sps.ue(v); // id, log2_max_frame_num-4, poc type 0, its lsb size, ref frames
        }
        let mut repeater = FrameRepeater::new();
        let mut unit = vec![0, 0, 0, 1, 0x67];
        escape_into(&sps.finish(), &mut unit);
        unit.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88]);
        repeater.pass(&unit).unwrap();
        assert!(repeater.repeat().is_none());
    }

    #[test]
    fn truncated_or_junk_units_are_errors_not_panics() {
        let mut repeater = FrameRepeater::new();
        for junk in [
            &[0u8, 0, 1, 0x67][..],
            &[0, 0, 1, 0x68, 0xff][..],
            &[0, 0, 1, 0x41, 0x9a][..],
            &[0xff; 9][..],
            &[][..],
        ] {
            let _ = repeater.pass(junk);
        }
        assert!(repeater.repeat().is_none());
    }

    #[test]
    fn escaping_round_trips_and_guards_start_codes() {
        let rbsp = [0, 0, 1, 0, 0, 0, 0, 0, 3, 7];
        let mut escaped = Vec::new();
        escape_into(&rbsp, &mut escaped);
        assert_eq!(escaped, [0, 0, 3, 1, 0, 0, 3, 0, 0, 3, 0, 3, 7]);
        assert_eq!(unescape(&escaped), rbsp);
    }

    #[test]
    fn exp_golomb_codes_round_trip() {
        let mut w = BitWriter::default();
        for v in [0, 1, 2, 7, 3600, 1 << 30] {
            w.ue(v);
        }
        w.se(-3);
        w.se(5);
        let data = w.finish();
        let mut r = BitReader::new(&data);
        for v in [0, 1, 2, 7, 3600, 1 << 30] {
            assert_eq!(r.ue().unwrap(), v);
        }
        assert_eq!(r.se().unwrap(), -3);
        assert_eq!(r.se().unwrap(), 5);
    }
}
