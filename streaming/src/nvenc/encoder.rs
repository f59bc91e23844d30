//! [`NvencEncoder`]: one synchronous NVENC H.264 session fed from system memory.

use std::ffi::c_void;
use std::ptr::null_mut;

use super::NvencError;
use super::driver::{Api, CudaContext, Libraries, check};
use super::ffi::{self, Config, InitializeParams, RcParams};
use crate::{EncodedFrame, EncoderSettings, I420Frame, StreamingError, VideoEncoder};

/// The preset: P3 of P1 (fastest) to P7, tuned for ultra-low latency. With that tuning
/// P1..P3 all encode a 1080p60 frame well inside a frame time; P3 spends what is left on
/// quality, which matters at the bitrates a congested link leaves.
const PRESET: ffi::Guid = ffi::PRESET_P3_GUID;

/// The CUDA device NVENC runs on.
const CUDA_DEVICE: i32 = 0;

/// Hardware H.264 on an NVIDIA GPU (NVENC), constrained baseline like [`crate::OpenH264Encoder`].
///
/// Configured for interactive streaming: ultra-low-latency tuning, CBR with a one-frame
/// VBV, no B-frames, an infinite GOP, SPS/PPS before every IDR. IDRs come when asked for
/// (`force_keyframe`) and, as a fallback for lost requests, every
/// [`EncoderSettings::keyframe_interval`] frames (0: never). Encoding is synchronous: each
/// `encode` returns that frame's access unit.
pub struct NvencEncoder {
    api: Api,
    encoder: *mut c_void,
    input: *mut c_void,
    output: *mut c_void,
    /// The session's configuration; `init.encode_config` points here (boxed: stable address).
    config: Box<Config>,
    init: Box<InitializeParams>,
    settings: EncoderSettings,
    frame_idx: u32,
    /// Frames since the last IDR; `None` before the first frame.
    since_keyframe: Option<u32>,
    // Dropped after the session (see `Drop`), then the libraries their entry points live in.
    context: CudaContext,
    _libraries: Libraries,
}

// SAFETY: the session, its buffers and the CUDA context are owned by this value alone and
// used only through `&mut self` (so never from two threads at once). NVENC sessions and
// CUDA contexts are not tied to the thread that created them: the context is made current
// around every call (`CudaContext::enter`) on whichever thread makes it.
unsafe impl Send for NvencEncoder {}

impl NvencEncoder {
    /// Loads the driver, opens an NVENC session on CUDA device 0 and configures it for
    /// `settings`. Fails with a reason when any step does (no driver, no NVENC on the
    /// GPU, no H.264, an old driver, ...); nothing is left behind on failure.
    pub fn new(settings: EncoderSettings) -> Result<Self, NvencError> {
        if settings.width == 0
            || settings.height == 0
            || settings.width % 2 + settings.height % 2 != 0
        {
            return Err(NvencError::Settings(format!(
                "{}x{} is not an even, non-empty size",
                settings.width, settings.height
            )));
        }
        let libraries = Libraries::load()?;
        let api = libraries.nvenc_api()?;
        let context = CudaContext::create(libraries.cuda_api()?, CUDA_DEVICE)?;
        let encoder = open_session(&api, &context)?;
        let mut this = Self {
            api,
            encoder,
            input: null_mut(),
            output: null_mut(),
            config: Box::new(ffi::zeroed()),
            init: Box::new(ffi::zeroed()),
            settings,
            frame_idx: 0,
            since_keyframe: None,
            context,
            _libraries: libraries,
        };
        // From here on, `Drop` cleans up whatever was created if a step fails.
        this.require_h264()?;
        this.initialize()?;
        this.create_buffers()?;
        Ok(this)
    }

    /// The settings the session runs with (the bitrate follows `set_bitrate`).
    pub fn settings(&self) -> EncoderSettings {
        self.settings
    }

    fn fail(&self, status: ffi::Status, call: &'static str) -> Result<(), NvencError> {
        let detail = if status == ffi::SUCCESS { None } else { self.api.last_error(self.encoder) };
        check(status, call, detail.map(|d| format!(" ({d})")))
    }

    /// `nvEncGetEncodeGUIDs`: the GPU must offer H.264.
    fn require_h264(&mut self) -> Result<(), NvencError> {
        let _current = self.context.enter()?;
        let mut count = 0u32;
        // SAFETY: live session; writes one u32.
        let status = unsafe { (self.api.get_encode_guid_count)(self.encoder, &mut count) };
        self.fail(status, "nvEncGetEncodeGUIDCount")?;
        let mut guids = vec![ffi::CODEC_H264_GUID; count as usize];
        let mut written = 0u32;
        // SAFETY: `guids` has room for `count` GUIDs, and the call is told so.
        let status = unsafe {
            (self.api.get_encode_guids)(self.encoder, guids.as_mut_ptr(), count, &mut written)
        };
        self.fail(status, "nvEncGetEncodeGUIDs")?;
        guids.truncate(written as usize);
        if guids.contains(&ffi::CODEC_H264_GUID) { Ok(()) } else { Err(NvencError::NoH264) }
    }

    /// Reads the preset's configuration, adjusts it (see [`low_latency_config`]) and
    /// initialises the session with it.
    fn initialize(&mut self) -> Result<(), NvencError> {
        let _current = self.context.enter()?;
        let mut preset: Box<ffi::PresetConfig> = Box::new(ffi::zeroed());
        preset.version = ffi::PRESET_CONFIG_VER;
        preset.preset_cfg.version = ffi::CONFIG_VER;
        preset.preset_cfg.rc_params.version = ffi::RC_PARAMS_VER;
        // SAFETY: live session; `preset` is a zeroed, versioned NV_ENC_PRESET_CONFIG that the
        // driver fills in. The GUIDs are passed by value, as the prototype declares.
        let status = unsafe {
            (self.api.get_encode_preset_config_ex)(
                self.encoder,
                ffi::CODEC_H264_GUID,
                PRESET,
                ffi::TUNING_INFO_ULTRA_LOW_LATENCY,
                &mut *preset,
            )
        };
        self.fail(status, "nvEncGetEncodePresetConfigEx")?;
        *self.config = low_latency_config(preset.preset_cfg, &self.settings);
        *self.init = initialize_params(&self.settings, &mut self.config);
        // SAFETY: live session; `init` is a versioned NV_ENC_INITIALIZE_PARAMS whose
        // `encode_config` points at `self.config`, which outlives the call.
        let status = unsafe { (self.api.initialize_encoder)(self.encoder, &mut *self.init) };
        self.fail(status, "nvEncInitializeEncoder")
    }

    /// One IYUV input buffer and one bitstream buffer: encoding is synchronous.
    fn create_buffers(&mut self) -> Result<(), NvencError> {
        let _current = self.context.enter()?;
        let mut input: ffi::CreateInputBuffer = ffi::zeroed();
        input.version = ffi::CREATE_INPUT_BUFFER_VER;
        input.width = self.settings.width;
        input.height = self.settings.height;
        input.buffer_fmt = ffi::BUFFER_FORMAT_IYUV;
        // SAFETY: initialised session; versioned struct the driver fills in.
        let status = unsafe { (self.api.create_input_buffer)(self.encoder, &mut input) };
        self.fail(status, "nvEncCreateInputBuffer")?;
        self.input = input.input_buffer;
        let mut output: ffi::CreateBitstreamBuffer = ffi::zeroed();
        output.version = ffi::CREATE_BITSTREAM_BUFFER_VER;
        // SAFETY: as above.
        let status = unsafe { (self.api.create_bitstream_buffer)(self.encoder, &mut output) };
        self.fail(status, "nvEncCreateBitstreamBuffer")?;
        self.output = output.bitstream_buffer;
        Ok(())
    }

    /// Copies `frame` into the input buffer (lock, copy row by row at the driver's pitch,
    /// unlock); returns the pitch.
    fn upload(&self, frame: &I420Frame) -> Result<u32, NvencError> {
        let mut lock: ffi::LockInputBuffer = ffi::zeroed();
        lock.version = ffi::LOCK_INPUT_BUFFER_VER;
        lock.input_buffer = self.input;
        // SAFETY: `input` is this session's input buffer and is not locked.
        let status = unsafe { (self.api.lock_input_buffer)(self.encoder, &mut lock) };
        self.fail(status, "nvEncLockInputBuffer")?;
        let pitch = lock.pitch as usize;
        let len = iyuv_len(pitch, frame.height as usize);
        let copied = if lock.buffer_data_ptr.is_null() || pitch < frame.width as usize {
            Err(NvencError::Settings(format!(
                "input buffer pitch {pitch} for width {}",
                frame.width
            )))
        } else {
            // SAFETY: while locked, the driver maps an IYUV surface of the buffer's height at
            // `pitch` bytes per luma row and pitch/2 per chroma row: `len` bytes from the
            // pointer. Nothing else touches it until the unlock below.
            let dst =
                unsafe { std::slice::from_raw_parts_mut(lock.buffer_data_ptr.cast::<u8>(), len) };
            copy_iyuv(frame, dst, pitch);
            Ok(())
        };
        // SAFETY: the buffer was locked above; the slice into it is gone.
        let status = unsafe { (self.api.unlock_input_buffer)(self.encoder, self.input) };
        copied?;
        self.fail(status, "nvEncUnlockInputBuffer")?;
        Ok(lock.pitch)
    }

    fn encode_frame(&mut self, frame: &I420Frame, idr: bool) -> Result<EncodedFrame, NvencError> {
        let _current = self.context.enter()?;
        let pitch = self.upload(frame)?;
        let mut pic: ffi::PicParams = ffi::zeroed();
        pic.version = ffi::PIC_PARAMS_VER;
        pic.input_width = frame.width;
        pic.input_height = frame.height;
        pic.input_pitch = pitch;
        pic.encode_pic_flags =
            if idr { ffi::PIC_FLAG_FORCEIDR | ffi::PIC_FLAG_OUTPUT_SPSPPS } else { 0 };
        pic.frame_idx = self.frame_idx;
        pic.input_time_stamp = u64::from(self.frame_idx);
        pic.input_buffer = self.input;
        pic.output_bitstream = self.output;
        pic.buffer_fmt = ffi::BUFFER_FORMAT_IYUV;
        pic.picture_struct = ffi::PIC_STRUCT_FRAME;
        self.frame_idx = self.frame_idx.wrapping_add(1);
        // SAFETY: initialised session; both buffers belong to it and are unlocked.
        let status = unsafe { (self.api.encode_picture)(self.encoder, &mut pic) };
        if status == ffi::ERR_NEED_MORE_INPUT {
            // Only with reordering, which this configuration turns off; treat as skipped.
            return Ok(EncodedFrame { data: Vec::new(), keyframe: false });
        }
        self.fail(status, "nvEncEncodePicture")?;
        let mut lock: ffi::LockBitstream = ffi::zeroed();
        lock.version = ffi::LOCK_BITSTREAM_VER;
        lock.output_bitstream = self.output;
        // SAFETY: the bitstream buffer holds this picture's output; the lock waits for it.
        let status = unsafe { (self.api.lock_bitstream)(self.encoder, &mut lock) };
        self.fail(status, "nvEncLockBitstream")?;
        let data = if lock.bitstream_buffer_ptr.is_null() {
            Vec::new()
        } else {
            // SAFETY: while locked, `bitstream_size_in_bytes` bytes at the pointer are this
            // picture's Annex-B output; they are copied out before the unlock.
            unsafe {
                std::slice::from_raw_parts(
                    lock.bitstream_buffer_ptr.cast::<u8>(),
                    lock.bitstream_size_in_bytes as usize,
                )
            }
            .to_vec()
        };
        // SAFETY: locked above; the borrowed slice is gone.
        let status = unsafe { (self.api.unlock_bitstream)(self.encoder, self.output) };
        self.fail(status, "nvEncUnlockBitstream")?;
        let keyframe = matches!(lock.picture_type, ffi::PIC_TYPE_IDR | ffi::PIC_TYPE_I);
        Ok(EncodedFrame { data, keyframe })
    }

    /// `nvEncReconfigureEncoder` with the new CBR target; no IDR, no reset.
    fn reconfigure_bitrate(&mut self, bps: u32) -> Result<(), NvencError> {
        let _current = self.context.enter()?;
        let previous = self.config.rc_params;
        set_cbr(&mut self.config.rc_params, bps, self.settings.fps);
        let mut params: ffi::ReconfigureParams = ffi::zeroed();
        params.version = ffi::RECONFIGURE_PARAMS_VER;
        params.re_init_encode_params = *self.init;
        // SAFETY: initialised session; the params carry the session's own initialisation
        // with `encode_config` pointing at the (updated) `self.config`.
        let status = unsafe { (self.api.reconfigure_encoder)(self.encoder, &mut params) };
        if let Err(e) = self.fail(status, "nvEncReconfigureEncoder") {
            self.config.rc_params = previous;
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for NvencEncoder {
    fn drop(&mut self) {
        let current = self.context.enter();
        if let Err(e) = &current {
            tracing::warn!("NVENC teardown without its CUDA context: {e}");
        }
        // SAFETY: each handle is either null (never created) or owned by this session and
        // unlocked; after this nothing refers to them. The session goes last.
        unsafe {
            if !self.input.is_null() {
                (self.api.destroy_input_buffer)(self.encoder, self.input);
            }
            if !self.output.is_null() {
                (self.api.destroy_bitstream_buffer)(self.encoder, self.output);
            }
            (self.api.destroy_encoder)(self.encoder);
        }
        drop(current);
        // `context`, then `_libraries`, drop after this in field order.
    }
}

impl VideoEncoder for NvencEncoder {
    fn encode(
        &mut self,
        frame: &I420Frame,
        force_keyframe: bool,
    ) -> Result<EncodedFrame, StreamingError> {
        if (frame.width, frame.height) != (self.settings.width, self.settings.height) {
            return Err(StreamingError::FrameSize {
                expected: (self.settings.width * self.settings.height) as usize,
                actual: (frame.width * frame.height) as usize,
            });
        }
        let idr = wants_idr(self.since_keyframe, self.settings.keyframe_interval, force_keyframe);
        let encoded = self.encode_frame(frame, idr).map_err(StreamingError::from)?;
        self.since_keyframe = match (encoded.keyframe, self.since_keyframe) {
            (true, _) => Some(1),
            (false, Some(n)) => Some(n.saturating_add(1)),
            (false, None) => None,
        };
        Ok(encoded)
    }

    fn set_bitrate(&mut self, bps: u32) -> Result<(), StreamingError> {
        self.reconfigure_bitrate(bps)?;
        self.settings.bitrate_bps = bps;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "nvenc"
    }
}

/// `nvEncOpenEncodeSessionEx` on `context`; on failure destroys the half-open session, as
/// the header asks.
fn open_session(api: &Api, context: &CudaContext) -> Result<*mut c_void, NvencError> {
    let _current = context.enter()?;
    let mut params: ffi::OpenEncodeSessionExParams = ffi::zeroed();
    params.version = ffi::OPEN_ENCODE_SESSION_EX_PARAMS_VER;
    params.device_type = ffi::DEVICE_TYPE_CUDA;
    params.device = context.raw();
    params.api_version = ffi::API_VERSION;
    let mut encoder: *mut c_void = null_mut();
    // SAFETY: versioned params naming a live CUDA context; writes one handle.
    let status = unsafe { (api.open_encode_session_ex)(&mut params, &mut encoder) };
    if status != ffi::SUCCESS {
        let detail = api.last_error(encoder).map(|d| format!(" ({d})"));
        if !encoder.is_null() {
            // SAFETY: the handle came from the failed open and is used no more.
            unsafe { (api.destroy_encoder)(encoder) };
        }
        check(status, "nvEncOpenEncodeSessionEx", detail)?;
    }
    if encoder.is_null() {
        return Err(NvencError::Api {
            call: "nvEncOpenEncodeSessionEx",
            status: "no session handle",
            detail: String::new(),
        });
    }
    Ok(encoder)
}

/// The preset's configuration adjusted for interactive streaming: constrained baseline,
/// infinite GOP with no B-frames, single-pass CBR with a one-frame VBV and no reordering
/// delay, SPS/PPS repeated before every IDR.
pub(super) fn low_latency_config(preset: Config, settings: &EncoderSettings) -> Config {
    let mut config = preset;
    config.version = ffi::CONFIG_VER;
    config.profile_guid = ffi::H264_PROFILE_BASELINE_GUID;
    config.gop_length = ffi::INFINITE_GOPLENGTH;
    config.frame_interval_p = 1;
    config.rc_params.version = ffi::RC_PARAMS_VER;
    config.rc_params.rate_control_mode = ffi::RC_CBR;
    config.rc_params.multi_pass = ffi::MULTI_PASS_DISABLED;
    config.rc_params.flags |= ffi::RC_FLAG_ZERO_REORDER_DELAY;
    set_cbr(&mut config.rc_params, settings.bitrate_bps, settings.fps);
    let h264 = &mut config.h264;
    h264.idr_period = ffi::INFINITE_GOPLENGTH;
    h264.flags |= ffi::H264_FLAG_REPEAT_SPSPPS;
    h264.level = ffi::LEVEL_AUTOSELECT;
    h264.entropy_coding_mode = ffi::H264_ENTROPY_CODING_MODE_CAVLC;
    h264.chroma_format_idc = 1;
    config
}

/// Sets the CBR target with a one-frame VBV buffer (the lowest-latency rate control).
pub(super) fn set_cbr(rc: &mut RcParams, bps: u32, fps: u32) {
    rc.average_bit_rate = bps;
    rc.max_bit_rate = bps;
    rc.vbv_buffer_size = one_frame_vbv(bps, fps);
    rc.vbv_initial_delay = rc.vbv_buffer_size;
}

/// Bits in one frame at `bps` and `fps` (at least 1 bit; `fps` 0 is taken as 1).
pub(super) fn one_frame_vbv(bps: u32, fps: u32) -> u32 {
    (bps / fps.max(1)).max(1)
}

/// `NV_ENC_INITIALIZE_PARAMS` for `settings`, pointing at `config`.
fn initialize_params(settings: &EncoderSettings, config: &mut Config) -> InitializeParams {
    let mut init: InitializeParams = ffi::zeroed();
    init.version = ffi::INITIALIZE_PARAMS_VER;
    init.encode_guid = ffi::CODEC_H264_GUID;
    init.preset_guid = PRESET;
    init.encode_width = settings.width;
    init.encode_height = settings.height;
    init.dar_width = settings.width;
    init.dar_height = settings.height;
    init.frame_rate_num = settings.fps.max(1);
    init.frame_rate_den = 1;
    init.enable_encode_async = 0;
    init.enable_ptd = 1;
    init.encode_config = config;
    init.max_encode_width = settings.width;
    init.max_encode_height = settings.height;
    init.tuning_info = ffi::TUNING_INFO_ULTRA_LOW_LATENCY;
    init
}

/// Whether the next frame must be an IDR: on request, first of all, and after
/// `interval` frames without one (`interval` 0: only on request).
pub(super) fn wants_idr(since_keyframe: Option<u32>, interval: u32, forced: bool) -> bool {
    match since_keyframe {
        None => true,
        Some(n) => forced || (interval > 0 && n >= interval),
    }
}

/// Bytes of an IYUV surface `height` rows tall at `pitch` bytes per luma row.
pub(super) fn iyuv_len(pitch: usize, height: usize) -> usize {
    pitch * height + 2 * (pitch / 2) * height.div_ceil(2)
}

/// Copies an I420 frame into an IYUV surface with `pitch` bytes per luma row (`pitch / 2`
/// per chroma row): Y rows, then U rows, then V rows. `dst` must be [`iyuv_len`] long.
pub(super) fn copy_iyuv(frame: &I420Frame, dst: &mut [u8], pitch: usize) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (cw, ch, cpitch) = (w / 2, h / 2, pitch / 2);
    let (y_plane, chroma) = dst.split_at_mut(pitch * h);
    let (u_plane, v_plane) = chroma.split_at_mut(cpitch * ch);
    for (row, src) in y_plane.chunks_mut(pitch).zip(frame.y.chunks(w)) {
        row[..w].copy_from_slice(src);
    }
    for (plane, src) in [(u_plane, &frame.u), (v_plane, &frame.v)] {
        for (row, src) in plane.chunks_mut(cpitch).zip(src.chunks(cw)) {
            row[..cw].copy_from_slice(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32) -> I420Frame {
        let (w, h) = (w as usize, h as usize);
        I420Frame {
            width: w as u32,
            height: h as u32,
            y: (0..w * h).map(|i| (i % 251) as u8).collect(),
            u: (0..w * h / 4).map(|i| (i % 7) as u8 + 100).collect(),
            v: (0..w * h / 4).map(|i| (i % 5) as u8 + 200).collect(),
        }
    }

    #[test]
    fn copies_planes_at_the_drivers_pitch() {
        let f = frame(6, 4);
        let pitch = 8;
        let mut dst = vec![0xee; iyuv_len(pitch, 4)];
        assert_eq!(dst.len(), 8 * 4 + 2 * 4 * 2);
        copy_iyuv(&f, &mut dst, pitch);
        for r in 0..4 {
            assert_eq!(&dst[r * 8..r * 8 + 6], &f.y[r * 6..r * 6 + 6]);
            assert_eq!(&dst[r * 8 + 6..r * 8 + 8], &[0xee, 0xee], "padding untouched");
        }
        let u_at = 32;
        let v_at = 32 + 8;
        for r in 0..2 {
            assert_eq!(&dst[u_at + r * 4..u_at + r * 4 + 3], &f.u[r * 3..r * 3 + 3]);
            assert_eq!(&dst[v_at + r * 4..v_at + r * 4 + 3], &f.v[r * 3..r * 3 + 3]);
        }
    }

    #[test]
    fn copies_tightly_packed_frames_verbatim() {
        let f = frame(16, 8);
        let mut dst = vec![0; iyuv_len(16, 8)];
        copy_iyuv(&f, &mut dst, 16);
        assert_eq!(dst, [f.y.clone(), f.u.clone(), f.v.clone()].concat());
    }

    #[test]
    fn idr_first_on_request_and_at_the_interval() {
        assert!(wants_idr(None, 60, false));
        assert!(!wants_idr(Some(1), 60, false));
        assert!(wants_idr(Some(1), 60, true));
        assert!(!wants_idr(Some(59), 60, false));
        assert!(wants_idr(Some(60), 60, false));
        assert!(!wants_idr(Some(10_000), 0, false), "interval 0: only on request");
    }

    #[test]
    fn low_latency_config_overrides_the_preset() {
        let mut preset: Config = ffi::zeroed();
        preset.gop_length = 250;
        preset.frame_interval_p = 3;
        preset.rc_params.multi_pass = 1;
        preset.rc_params.flags = 1 << 3; // the preset's AQ stays
        preset.h264.idr_period = 250;
        preset.h264.flags = 1 << 6; // outputAUD stays
        let settings = EncoderSettings::for_stream(1280, 720, 60);
        let config = low_latency_config(preset, &settings);
        assert_eq!(config.version, ffi::CONFIG_VER);
        assert_eq!(config.profile_guid, ffi::H264_PROFILE_BASELINE_GUID);
        assert_eq!(config.gop_length, ffi::INFINITE_GOPLENGTH);
        assert_eq!(config.h264.idr_period, ffi::INFINITE_GOPLENGTH);
        assert_eq!(config.frame_interval_p, 1, "no B-frames");
        assert_eq!(config.rc_params.rate_control_mode, ffi::RC_CBR);
        assert_eq!(config.rc_params.multi_pass, ffi::MULTI_PASS_DISABLED);
        assert_eq!(config.rc_params.flags, (1 << 3) | ffi::RC_FLAG_ZERO_REORDER_DELAY);
        assert_eq!(config.h264.flags, (1 << 6) | ffi::H264_FLAG_REPEAT_SPSPPS);
        assert_eq!(config.rc_params.average_bit_rate, settings.bitrate_bps);
        assert_eq!(config.rc_params.max_bit_rate, settings.bitrate_bps);
        assert_eq!(config.rc_params.vbv_buffer_size, settings.bitrate_bps / 60);
    }

    #[test]
    fn cbr_vbv_is_one_frame() {
        let mut rc = ffi::zeroed::<Config>().rc_params;
        set_cbr(&mut rc, 6_000_000, 60);
        assert_eq!((rc.average_bit_rate, rc.max_bit_rate), (6_000_000, 6_000_000));
        assert_eq!((rc.vbv_buffer_size, rc.vbv_initial_delay), (100_000, 100_000));
        assert_eq!(one_frame_vbv(1000, 0), 1000);
        assert_eq!(one_frame_vbv(0, 30), 1);
    }

    #[test]
    fn initialize_params_point_at_the_config() {
        let settings = EncoderSettings::for_stream(640, 360, 30);
        let mut config: Config = ffi::zeroed();
        let init = initialize_params(&settings, &mut config);
        assert_eq!(init.version, ffi::INITIALIZE_PARAMS_VER);
        assert_eq!(init.encode_guid, ffi::CODEC_H264_GUID);
        assert_eq!((init.encode_width, init.encode_height), (640, 360));
        assert_eq!((init.frame_rate_num, init.frame_rate_den), (30, 1));
        assert_eq!(init.enable_ptd, 1);
        assert_eq!(init.tuning_info, ffi::TUNING_INFO_ULTRA_LOW_LATENCY);
        assert!(std::ptr::eq(init.encode_config, &config));
    }
}
