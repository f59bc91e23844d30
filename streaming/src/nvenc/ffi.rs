//! The slice of NVIDIA's C API the NVENC encoder uses, written by hand.
//!
//! Layouts follow `nvEncodeAPI.h` from **Video Codec SDK 12.1** (`NVENCAPI_MAJOR_VERSION 12`,
//! `NVENCAPI_MINOR_VERSION 1`) on 64-bit targets, and the CUDA driver API (`cuda.h`) for the
//! few context calls. Every `#[repr(C)]` struct here is layout-compatible with its header
//! counterpart, reserved arrays included: the driver reads and writes whole structs, and the
//! struct version it checks says how big it expects them to be. The tests at the bottom pin
//! the sizes and field offsets measured from the 12.1 header with a C compiler.
//!
//! Two members are not spelled out field by field, and are stood in for by something of the
//! same size and alignment:
//! - `NV_ENC_CONFIG::encodeCodecConfig` (the union `NV_ENC_CODEC_CONFIG`) is declared as its
//!   largest member, `NV_ENC_CONFIG_H264` (1792 bytes; HEVC is 1560, AV1 1552, the reserved
//!   arm 1280);
//! - `NV_ENC_PIC_PARAMS::codecPicParams` (the union `NV_ENC_CODEC_PIC_PARAMS`, 1552 bytes) and
//!   `NV_ENC_CONFIG_H264::h264VUIParameters` (112 bytes) are opaque arrays, left zero (the
//!   defaults: no per-picture codec options, no VUI overrides).
//!
//! Bit fields are `u32` words with named masks; GCC, Clang and MSVC all allocate `uint32_t`
//! bit fields from the least significant bit on little-endian targets.

use std::ffi::{c_char, c_int, c_uint, c_void};

/// `NVENCAPI_MAJOR_VERSION` of the header these layouts follow.
pub const API_MAJOR: u32 = 12;
/// `NVENCAPI_MINOR_VERSION` of the header these layouts follow.
pub const API_MINOR: u32 = 1;
/// `NVENCAPI_VERSION`: what `NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS::apiVersion` carries.
pub const API_VERSION: u32 = API_MAJOR | (API_MINOR << 24);

/// `NVENCAPI_STRUCT_VERSION(ver)`.
pub const fn struct_version(ver: u32) -> u32 {
    API_VERSION | (ver << 16) | (0x7 << 28)
}

/// The version `NvEncodeAPIGetMaxSupportedVersion` must report at least: `major << 4 | minor`.
pub const fn max_supported_version_word(major: u32, minor: u32) -> u32 {
    (major << 4) | minor
}

/// Splits a `NvEncodeAPIGetMaxSupportedVersion` word into (major, minor).
pub const fn split_version_word(word: u32) -> (u32, u32) {
    (word >> 4, word & 0xf)
}

/// `NV_ENCODE_API_FUNCTION_LIST_VER`.
pub const FUNCTION_LIST_VER: u32 = struct_version(2);
/// `NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS_VER`.
pub const OPEN_ENCODE_SESSION_EX_PARAMS_VER: u32 = struct_version(1);
/// `NV_ENC_RC_PARAMS_VER`.
pub const RC_PARAMS_VER: u32 = struct_version(1);
/// `NV_ENC_CONFIG_VER`.
pub const CONFIG_VER: u32 = struct_version(8) | (1 << 31);
/// `NV_ENC_INITIALIZE_PARAMS_VER`.
pub const INITIALIZE_PARAMS_VER: u32 = struct_version(6) | (1 << 31);
/// `NV_ENC_RECONFIGURE_PARAMS_VER`.
pub const RECONFIGURE_PARAMS_VER: u32 = struct_version(1) | (1 << 31);
/// `NV_ENC_PRESET_CONFIG_VER`.
pub const PRESET_CONFIG_VER: u32 = struct_version(4) | (1 << 31);
/// `NV_ENC_PIC_PARAMS_VER`.
pub const PIC_PARAMS_VER: u32 = struct_version(6) | (1 << 31);
/// `NV_ENC_LOCK_BITSTREAM_VER`.
pub const LOCK_BITSTREAM_VER: u32 = struct_version(1) | (1 << 31);
/// `NV_ENC_LOCK_INPUT_BUFFER_VER`.
pub const LOCK_INPUT_BUFFER_VER: u32 = struct_version(1);
/// `NV_ENC_CREATE_INPUT_BUFFER_VER`.
pub const CREATE_INPUT_BUFFER_VER: u32 = struct_version(1);
/// `NV_ENC_CREATE_BITSTREAM_BUFFER_VER`.
pub const CREATE_BITSTREAM_BUFFER_VER: u32 = struct_version(1);

/// `NVENC_INFINITE_GOPLENGTH`.
pub const INFINITE_GOPLENGTH: u32 = 0xffff_ffff;

/// `NVENCSTATUS`.
pub type Status = c_int;
/// `NV_ENC_SUCCESS`.
pub const SUCCESS: Status = 0;
/// `NV_ENC_ERR_NEED_MORE_INPUT`: the picture was queued, no output yet.
pub const ERR_NEED_MORE_INPUT: Status = 17;

/// The name of an `NVENCSTATUS` value, for error messages.
pub fn status_name(status: Status) -> &'static str {
    const NAMES: [&str; 27] = [
        "NV_ENC_SUCCESS",
        "NV_ENC_ERR_NO_ENCODE_DEVICE",
        "NV_ENC_ERR_UNSUPPORTED_DEVICE",
        "NV_ENC_ERR_INVALID_ENCODERDEVICE",
        "NV_ENC_ERR_INVALID_DEVICE",
        "NV_ENC_ERR_DEVICE_NOT_EXIST",
        "NV_ENC_ERR_INVALID_PTR",
        "NV_ENC_ERR_INVALID_EVENT",
        "NV_ENC_ERR_INVALID_PARAM",
        "NV_ENC_ERR_INVALID_CALL",
        "NV_ENC_ERR_OUT_OF_MEMORY",
        "NV_ENC_ERR_ENCODER_NOT_INITIALIZED",
        "NV_ENC_ERR_UNSUPPORTED_PARAM",
        "NV_ENC_ERR_LOCK_BUSY",
        "NV_ENC_ERR_NOT_ENOUGH_BUFFER",
        "NV_ENC_ERR_INVALID_VERSION",
        "NV_ENC_ERR_MAP_FAILED",
        "NV_ENC_ERR_NEED_MORE_INPUT",
        "NV_ENC_ERR_ENCODER_BUSY",
        "NV_ENC_ERR_EVENT_NOT_REGISTERD",
        "NV_ENC_ERR_GENERIC",
        "NV_ENC_ERR_INCOMPATIBLE_CLIENT_KEY",
        "NV_ENC_ERR_UNIMPLEMENTED",
        "NV_ENC_ERR_RESOURCE_REGISTER_FAILED",
        "NV_ENC_ERR_RESOURCE_NOT_REGISTERED",
        "NV_ENC_ERR_RESOURCE_NOT_MAPPED",
        "NV_ENC_ERR_NEED_MORE_OUTPUT",
    ];
    usize::try_from(status).ok().and_then(|i| NAMES.get(i)).copied().unwrap_or("NV_ENC_ERR_?")
}

/// `NV_ENC_DEVICE_TYPE_CUDA`.
pub const DEVICE_TYPE_CUDA: u32 = 0x1;
/// `NV_ENC_BUFFER_FORMAT_IYUV`: planar Y, then U, then V (our I420).
pub const BUFFER_FORMAT_IYUV: u32 = 0x100;
/// `NV_ENC_PARAMS_RC_CBR`.
pub const RC_CBR: u32 = 0x2;
/// `NV_ENC_MULTI_PASS_DISABLED`.
pub const MULTI_PASS_DISABLED: u32 = 0x0;
/// `NV_ENC_TUNING_INFO_ULTRA_LOW_LATENCY`.
pub const TUNING_INFO_ULTRA_LOW_LATENCY: u32 = 3;
/// `NV_ENC_PIC_STRUCT_FRAME`.
pub const PIC_STRUCT_FRAME: u32 = 0x1;
/// `NV_ENC_PIC_TYPE_I`.
pub const PIC_TYPE_I: u32 = 0x2;
/// `NV_ENC_PIC_TYPE_IDR`.
pub const PIC_TYPE_IDR: u32 = 0x3;
/// `NV_ENC_PIC_FLAG_FORCEIDR`.
pub const PIC_FLAG_FORCEIDR: u32 = 0x2;
/// `NV_ENC_PIC_FLAG_OUTPUT_SPSPPS`.
pub const PIC_FLAG_OUTPUT_SPSPPS: u32 = 0x4;
/// `NV_ENC_H264_ENTROPY_CODING_MODE_CAVLC` (what constrained baseline allows).
pub const H264_ENTROPY_CODING_MODE_CAVLC: u32 = 0x2;
/// `NV_ENC_LEVEL_AUTOSELECT`.
pub const LEVEL_AUTOSELECT: u32 = 0;

/// `NV_ENC_RC_PARAMS` bit field `zeroReorderDelay` (bit 9 of the flags word).
pub const RC_FLAG_ZERO_REORDER_DELAY: u32 = 1 << 9;
/// `NV_ENC_CONFIG_H264` bit field `repeatSPSPPS` (bit 12 of the flags word).
pub const H264_FLAG_REPEAT_SPSPPS: u32 = 1 << 12;

/// `GUID`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guid {
    /// `Data1`.
    pub data1: u32,
    /// `Data2`.
    pub data2: u16,
    /// `Data3`.
    pub data3: u16,
    /// `Data4`.
    pub data4: [u8; 8],
}

impl Guid {
    const fn new(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Self {
        Self { data1, data2, data3, data4 }
    }
}

/// `NV_ENC_CODEC_H264_GUID` {6BC82762-4E63-4ca4-AA85-1E50F321F6BF}.
pub const CODEC_H264_GUID: Guid =
    Guid::new(0x6bc8_2762, 0x4e63, 0x4ca4, [0xaa, 0x85, 0x1e, 0x50, 0xf3, 0x21, 0xf6, 0xbf]);
/// `NV_ENC_H264_PROFILE_BASELINE_GUID` {0727BCAA-78C4-4c83-8C2F-EF3DFF267C6A}; NVENC's
/// baseline is constrained baseline, what our SDP offers (`profile-level-id=42e01f`).
pub const H264_PROFILE_BASELINE_GUID: Guid =
    Guid::new(0x0727_bcaa, 0x78c4, 0x4c83, [0x8c, 0x2f, 0xef, 0x3d, 0xff, 0x26, 0x7c, 0x6a]);
/// `NV_ENC_PRESET_P3_GUID` {36850110-3A07-441F-94D5-3670631F91F6}.
pub const PRESET_P3_GUID: Guid =
    Guid::new(0x3685_0110, 0x3a07, 0x441f, [0x94, 0xd5, 0x36, 0x70, 0x63, 0x1f, 0x91, 0xf6]);

/// Marks structs for which all-zero bytes are a valid value (integers, raw pointers,
/// arrays of them), which is how the SDK asks for every struct to be initialised.
///
/// # Safety
/// Implement only for types whose every field is valid when all of its bytes are zero.
pub unsafe trait Zeroable: Sized {}

/// A value of `T` with every byte zero (`memset(&s, 0, sizeof(s))` in the SDK samples).
pub fn zeroed<T: Zeroable>() -> T {
    // SAFETY: `Zeroable` promises that the all-zero bit pattern is a valid `T`.
    unsafe { std::mem::zeroed() }
}

/// `NV_ENC_OPEN_ENCODE_SESSION_EX_PARAMS` (1552 bytes).
#[repr(C)]
pub struct OpenEncodeSessionExParams {
    /// `version`.
    pub version: u32,
    /// `deviceType` (`NV_ENC_DEVICE_TYPE`).
    pub device_type: u32,
    /// `device`: for CUDA, the `CUcontext`.
    pub device: *mut c_void,
    reserved: *mut c_void,
    /// `apiVersion`: [`API_VERSION`].
    pub api_version: u32,
    reserved1: [u32; 253],
    reserved2: [*mut c_void; 64],
}

/// `NV_ENC_QP` (12 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Qp {
    /// `qpInterP`.
    pub inter_p: u32,
    /// `qpInterB`.
    pub inter_b: u32,
    /// `qpIntra`.
    pub intra: u32,
}

/// `NV_ENC_RC_PARAMS` (128 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RcParams {
    /// `version`.
    pub version: u32,
    /// `rateControlMode` (`NV_ENC_PARAMS_RC_MODE`).
    pub rate_control_mode: u32,
    /// `constQP`.
    pub const_qp: Qp,
    /// `averageBitRate`, bit/s.
    pub average_bit_rate: u32,
    /// `maxBitRate`, bit/s.
    pub max_bit_rate: u32,
    /// `vbvBufferSize`, bits.
    pub vbv_buffer_size: u32,
    /// `vbvInitialDelay`, bits.
    pub vbv_initial_delay: u32,
    /// The bit fields from `enableMinQP` to `reservedBitFields`.
    pub flags: u32,
    /// `minQP`.
    pub min_qp: Qp,
    /// `maxQP`.
    pub max_qp: Qp,
    /// `initialRCQP`.
    pub initial_rc_qp: Qp,
    /// `temporallayerIdxMask`.
    pub temporal_layer_idx_mask: u32,
    /// `temporalLayerQP`.
    pub temporal_layer_qp: [u8; 8],
    /// `targetQuality`.
    pub target_quality: u8,
    /// `targetQualityLSB`.
    pub target_quality_lsb: u8,
    /// `lookaheadDepth`.
    pub lookahead_depth: u16,
    /// `lowDelayKeyFrameScale`.
    pub low_delay_key_frame_scale: u8,
    /// `yDcQPIndexOffset`.
    pub y_dc_qp_index_offset: i8,
    /// `uDcQPIndexOffset`.
    pub u_dc_qp_index_offset: i8,
    /// `vDcQPIndexOffset`.
    pub v_dc_qp_index_offset: i8,
    /// `qpMapMode`.
    pub qp_map_mode: u32,
    /// `multiPass` (`NV_ENC_MULTI_PASS`).
    pub multi_pass: u32,
    /// `alphaLayerBitrateRatio`.
    pub alpha_layer_bitrate_ratio: u32,
    /// `cbQPIndexOffset`.
    pub cb_qp_index_offset: i8,
    /// `crQPIndexOffset`.
    pub cr_qp_index_offset: i8,
    reserved2: u16,
    reserved: [u32; 4],
}

/// `NV_ENC_CONFIG_H264` (1792 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ConfigH264 {
    /// The bit fields from `enableTemporalSVC` to `reservedBitFields`.
    pub flags: u32,
    /// `level`.
    pub level: u32,
    /// `idrPeriod`.
    pub idr_period: u32,
    /// `separateColourPlaneFlag`.
    pub separate_colour_plane_flag: u32,
    /// `disableDeblockingFilterIDC`.
    pub disable_deblocking_filter_idc: u32,
    /// `numTemporalLayers`.
    pub num_temporal_layers: u32,
    /// `spsId`.
    pub sps_id: u32,
    /// `ppsId`.
    pub pps_id: u32,
    /// `adaptiveTransformMode`.
    pub adaptive_transform_mode: u32,
    /// `fmoMode`.
    pub fmo_mode: u32,
    /// `bdirectMode`.
    pub bdirect_mode: u32,
    /// `entropyCodingMode`.
    pub entropy_coding_mode: u32,
    /// `stereoMode`.
    pub stereo_mode: u32,
    /// `intraRefreshPeriod`.
    pub intra_refresh_period: u32,
    /// `intraRefreshCnt`.
    pub intra_refresh_cnt: u32,
    /// `maxNumRefFrames`.
    pub max_num_ref_frames: u32,
    /// `sliceMode`.
    pub slice_mode: u32,
    /// `sliceModeData`.
    pub slice_mode_data: u32,
    /// `h264VUIParameters` (`NV_ENC_CONFIG_H264_VUI_PARAMETERS`, 28 `uint32_t`s), opaque.
    pub h264_vui_parameters: [u32; 28],
    /// `ltrNumFrames`.
    pub ltr_num_frames: u32,
    /// `ltrTrustMode`.
    pub ltr_trust_mode: u32,
    /// `chromaFormatIDC`.
    pub chroma_format_idc: u32,
    /// `maxTemporalLayers`.
    pub max_temporal_layers: u32,
    /// `useBFramesAsRef`.
    pub use_b_frames_as_ref: u32,
    /// `numRefL0`.
    pub num_ref_l0: u32,
    /// `numRefL1`.
    pub num_ref_l1: u32,
    reserved1: [u32; 267],
    reserved2: [*mut c_void; 64],
}

/// `NV_ENC_CONFIG` (3584 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// `version`.
    pub version: u32,
    /// `profileGUID`.
    pub profile_guid: Guid,
    /// `gopLength`.
    pub gop_length: u32,
    /// `frameIntervalP`: 1 means I and P frames only.
    pub frame_interval_p: i32,
    /// `monoChromeEncoding`.
    pub mono_chrome_encoding: u32,
    /// `frameFieldMode`.
    pub frame_field_mode: u32,
    /// `mvPrecision`.
    pub mv_precision: u32,
    /// `rcParams`.
    pub rc_params: RcParams,
    /// `encodeCodecConfig`: the union `NV_ENC_CODEC_CONFIG`, declared as its largest member
    /// (the H.264 arm is the one this encoder uses; the union is exactly its size).
    pub h264: ConfigH264,
    reserved: [u32; 278],
    reserved2: [*mut c_void; 64],
}

/// `NV_ENC_PRESET_CONFIG` (5128 bytes).
#[repr(C)]
pub struct PresetConfig {
    /// `version`.
    pub version: u32,
    /// `presetCfg`.
    pub preset_cfg: Config,
    reserved1: [u32; 255],
    reserved2: [*mut c_void; 64],
}

/// `NV_ENC_INITIALIZE_PARAMS` (1808 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct InitializeParams {
    /// `version`.
    pub version: u32,
    /// `encodeGUID`.
    pub encode_guid: Guid,
    /// `presetGUID`.
    pub preset_guid: Guid,
    /// `encodeWidth`.
    pub encode_width: u32,
    /// `encodeHeight`.
    pub encode_height: u32,
    /// `darWidth`.
    pub dar_width: u32,
    /// `darHeight`.
    pub dar_height: u32,
    /// `frameRateNum`.
    pub frame_rate_num: u32,
    /// `frameRateDen`.
    pub frame_rate_den: u32,
    /// `enableEncodeAsync`.
    pub enable_encode_async: u32,
    /// `enablePTD`: the encoder decides picture types.
    pub enable_ptd: u32,
    /// The bit fields from `reportSliceOffsets` to `reservedBitFields`.
    pub flags: u32,
    /// `privDataSize`.
    pub priv_data_size: u32,
    /// `privData`.
    pub priv_data: *mut c_void,
    /// `encodeConfig`.
    pub encode_config: *mut Config,
    /// `maxEncodeWidth`.
    pub max_encode_width: u32,
    /// `maxEncodeHeight`.
    pub max_encode_height: u32,
    /// `maxMEHintCountsPerBlock` (two `NVENC_EXTERNAL_ME_HINT_COUNTS_PER_BLOCKTYPE`).
    pub max_me_hint_counts_per_block: [[u32; 4]; 2],
    /// `tuningInfo` (`NV_ENC_TUNING_INFO`).
    pub tuning_info: u32,
    /// `bufferFormat` (DX12 only).
    pub buffer_format: u32,
    /// `numStateBuffers`.
    pub num_state_buffers: u32,
    /// `outputStatsLevel`.
    pub output_stats_level: u32,
    reserved: [u32; 285],
    reserved2: [*mut c_void; 64],
}

/// `NV_ENC_RECONFIGURE_PARAMS` (1824 bytes).
#[repr(C)]
pub struct ReconfigureParams {
    /// `version`.
    pub version: u32,
    /// `reInitEncodeParams`.
    pub re_init_encode_params: InitializeParams,
    /// The bit fields `resetEncoder` (bit 0), `forceIDR` (bit 1) and `reserved`.
    pub flags: u32,
}

/// `NV_ENC_CREATE_INPUT_BUFFER` (776 bytes).
#[repr(C)]
pub struct CreateInputBuffer {
    /// `version`.
    pub version: u32,
    /// `width`.
    pub width: u32,
    /// `height`.
    pub height: u32,
    memory_heap: u32,
    /// `bufferFmt`.
    pub buffer_fmt: u32,
    reserved: u32,
    /// `inputBuffer` (out).
    pub input_buffer: *mut c_void,
    /// `pSysMemBuffer`.
    pub sys_mem_buffer: *mut c_void,
    reserved1: [u32; 57],
    reserved2: [*mut c_void; 63],
}

/// `NV_ENC_CREATE_BITSTREAM_BUFFER` (776 bytes).
#[repr(C)]
pub struct CreateBitstreamBuffer {
    /// `version`.
    pub version: u32,
    size: u32,
    memory_heap: u32,
    reserved: u32,
    /// `bitstreamBuffer` (out).
    pub bitstream_buffer: *mut c_void,
    bitstream_buffer_ptr: *mut c_void,
    reserved1: [u32; 58],
    reserved2: [*mut c_void; 64],
}

/// `NV_ENC_LOCK_INPUT_BUFFER` (1544 bytes).
#[repr(C)]
pub struct LockInputBuffer {
    /// `version`.
    pub version: u32,
    /// The bit fields `doNotWait` and `reservedBitFields`.
    pub flags: u32,
    /// `inputBuffer`.
    pub input_buffer: *mut c_void,
    /// `bufferDataPtr` (out).
    pub buffer_data_ptr: *mut c_void,
    /// `pitch` (out), bytes per luma row.
    pub pitch: u32,
    reserved1: [u32; 251],
    reserved2: [*mut c_void; 64],
}

/// `NV_ENC_LOCK_BITSTREAM` (1552 bytes).
#[repr(C)]
pub struct LockBitstream {
    /// `version`.
    pub version: u32,
    /// The bit fields `doNotWait`, `ltrFrame`, `getRCStats`, `reservedBitFields`.
    pub flags: u32,
    /// `outputBitstream`.
    pub output_bitstream: *mut c_void,
    /// `sliceOffsets`.
    pub slice_offsets: *mut u32,
    /// `frameIdx` (out).
    pub frame_idx: u32,
    /// `hwEncodeStatus` (out).
    pub hw_encode_status: u32,
    /// `numSlices` (out).
    pub num_slices: u32,
    /// `bitstreamSizeInBytes` (out).
    pub bitstream_size_in_bytes: u32,
    /// `outputTimeStamp` (out).
    pub output_time_stamp: u64,
    /// `outputDuration` (out).
    pub output_duration: u64,
    /// `bitstreamBufferPtr` (out).
    pub bitstream_buffer_ptr: *mut c_void,
    /// `pictureType` (out, `NV_ENC_PIC_TYPE`).
    pub picture_type: u32,
    /// `pictureStruct` (out).
    pub picture_struct: u32,
    /// `frameAvgQP` (out).
    pub frame_avg_qp: u32,
    /// `frameSatd` (out).
    pub frame_satd: u32,
    /// `ltrFrameIdx` (out).
    pub ltr_frame_idx: u32,
    /// `ltrFrameBitmap` (out).
    pub ltr_frame_bitmap: u32,
    /// `temporalId` (out).
    pub temporal_id: u32,
    /// `intraMBCount` (out).
    pub intra_mb_count: u32,
    /// `interMBCount` (out).
    pub inter_mb_count: u32,
    /// `averageMVX` (out).
    pub average_mvx: i32,
    /// `averageMVY` (out).
    pub average_mvy: i32,
    /// `alphaLayerSizeInBytes` (out).
    pub alpha_layer_size_in_bytes: u32,
    /// `outputStatsPtrSize`.
    pub output_stats_ptr_size: u32,
    /// `outputStatsPtr`.
    pub output_stats_ptr: *mut c_void,
    /// `frameIdxDisplay` (out).
    pub frame_idx_display: u32,
    reserved1: [u32; 220],
    reserved2: [*mut c_void; 63],
    reserved_internal: [u32; 8],
}

/// `NV_ENC_PIC_PARAMS` (3360 bytes).
#[repr(C)]
pub struct PicParams {
    /// `version`.
    pub version: u32,
    /// `inputWidth`.
    pub input_width: u32,
    /// `inputHeight`.
    pub input_height: u32,
    /// `inputPitch`.
    pub input_pitch: u32,
    /// `encodePicFlags` (`NV_ENC_PIC_FLAGS`).
    pub encode_pic_flags: u32,
    /// `frameIdx`.
    pub frame_idx: u32,
    /// `inputTimeStamp`.
    pub input_time_stamp: u64,
    /// `inputDuration`.
    pub input_duration: u64,
    /// `inputBuffer`.
    pub input_buffer: *mut c_void,
    /// `outputBitstream`.
    pub output_bitstream: *mut c_void,
    /// `completionEvent`.
    pub completion_event: *mut c_void,
    /// `bufferFmt`.
    pub buffer_fmt: u32,
    /// `pictureStruct`.
    pub picture_struct: u32,
    /// `pictureType` (ignored with `enablePTD`).
    pub picture_type: u32,
    /// `codecPicParams`: the union `NV_ENC_CODEC_PIC_PARAMS` (1552 bytes), opaque and zero.
    codec_pic_params: [u64; 194],
    /// `meHintCountsPerBlock`.
    me_hint_counts_per_block: [[u32; 4]; 2],
    /// `meExternalHints`.
    me_external_hints: *mut c_void,
    reserved1: [u32; 6],
    reserved2: [*mut c_void; 2],
    /// `qpDeltaMap`.
    qp_delta_map: *mut i8,
    /// `qpDeltaMapSize`.
    qp_delta_map_size: u32,
    reserved_bit_fields: u32,
    /// `meHintRefPicDist`.
    me_hint_ref_pic_dist: [u16; 2],
    /// `alphaBuffer`.
    alpha_buffer: *mut c_void,
    /// `meExternalSbHints`.
    me_external_sb_hints: *mut c_void,
    /// `meSbHintsCount`.
    me_sb_hints_count: u32,
    /// `stateBufferIdx`.
    state_buffer_idx: u32,
    /// `outputReconBuffer`.
    output_recon_buffer: *mut c_void,
    reserved3: [u32; 284],
    reserved4: [*mut c_void; 57],
}

/// `NV_ENCODE_API_FUNCTION_LIST` (2552 bytes). Entries this encoder never calls are typed
/// as untyped pointers; the ones it calls carry their C signatures.
#[repr(C)]
pub struct FunctionList {
    /// `version`.
    pub version: u32,
    reserved: u32,
    open_encode_session: *mut c_void,
    /// `nvEncGetEncodeGUIDCount`.
    pub get_encode_guid_count: Option<GetEncodeGuidCountFn>,
    get_encode_profile_guid_count: *mut c_void,
    get_encode_profile_guids: *mut c_void,
    /// `nvEncGetEncodeGUIDs`.
    pub get_encode_guids: Option<GetEncodeGuidsFn>,
    get_input_format_count: *mut c_void,
    get_input_formats: *mut c_void,
    get_encode_caps: *mut c_void,
    get_encode_preset_count: *mut c_void,
    get_encode_preset_guids: *mut c_void,
    get_encode_preset_config: *mut c_void,
    /// `nvEncInitializeEncoder`.
    pub initialize_encoder: Option<InitializeEncoderFn>,
    /// `nvEncCreateInputBuffer`.
    pub create_input_buffer: Option<CreateInputBufferFn>,
    /// `nvEncDestroyInputBuffer`.
    pub destroy_input_buffer: Option<DestroyBufferFn>,
    /// `nvEncCreateBitstreamBuffer`.
    pub create_bitstream_buffer: Option<CreateBitstreamBufferFn>,
    /// `nvEncDestroyBitstreamBuffer`.
    pub destroy_bitstream_buffer: Option<DestroyBufferFn>,
    /// `nvEncEncodePicture`.
    pub encode_picture: Option<EncodePictureFn>,
    /// `nvEncLockBitstream`.
    pub lock_bitstream: Option<LockBitstreamFn>,
    /// `nvEncUnlockBitstream`.
    pub unlock_bitstream: Option<DestroyBufferFn>,
    /// `nvEncLockInputBuffer`.
    pub lock_input_buffer: Option<LockInputBufferFn>,
    /// `nvEncUnlockInputBuffer`.
    pub unlock_input_buffer: Option<DestroyBufferFn>,
    get_encode_stats: *mut c_void,
    get_sequence_params: *mut c_void,
    register_async_event: *mut c_void,
    unregister_async_event: *mut c_void,
    map_input_resource: *mut c_void,
    unmap_input_resource: *mut c_void,
    /// `nvEncDestroyEncoder`.
    pub destroy_encoder: Option<DestroyEncoderFn>,
    invalidate_ref_frames: *mut c_void,
    /// `nvEncOpenEncodeSessionEx`.
    pub open_encode_session_ex: Option<OpenEncodeSessionExFn>,
    register_resource: *mut c_void,
    unregister_resource: *mut c_void,
    /// `nvEncReconfigureEncoder`.
    pub reconfigure_encoder: Option<ReconfigureEncoderFn>,
    reserved1: *mut c_void,
    create_mv_buffer: *mut c_void,
    destroy_mv_buffer: *mut c_void,
    run_motion_estimation_only: *mut c_void,
    /// `nvEncGetLastErrorString`.
    pub get_last_error_string: Option<GetLastErrorStringFn>,
    set_io_cuda_streams: *mut c_void,
    /// `nvEncGetEncodePresetConfigEx`.
    pub get_encode_preset_config_ex: Option<GetEncodePresetConfigExFn>,
    get_sequence_param_ex: *mut c_void,
    restore_encoder_state: *mut c_void,
    lookahead_picture: *mut c_void,
    reserved2: [*mut c_void; 275],
}

// SAFETY (all impls below): each struct consists only of integers, raw pointers, `Option`s of
// function pointers (zero is `None`), `Guid`s and arrays of these; all-zero is valid for each.
unsafe impl Zeroable for OpenEncodeSessionExParams {}
unsafe impl Zeroable for Config {}
unsafe impl Zeroable for PresetConfig {}
unsafe impl Zeroable for InitializeParams {}
unsafe impl Zeroable for ReconfigureParams {}
unsafe impl Zeroable for CreateInputBuffer {}
unsafe impl Zeroable for CreateBitstreamBuffer {}
unsafe impl Zeroable for LockInputBuffer {}
unsafe impl Zeroable for LockBitstream {}
unsafe impl Zeroable for PicParams {}
unsafe impl Zeroable for FunctionList {}

/// `NvEncodeAPIGetMaxSupportedVersion`.
pub type GetMaxSupportedVersionFn = unsafe extern "system" fn(version: *mut u32) -> Status;
/// `NvEncodeAPICreateInstance`.
pub type CreateInstanceFn = unsafe extern "system" fn(list: *mut FunctionList) -> Status;
/// `nvEncOpenEncodeSessionEx`.
pub type OpenEncodeSessionExFn = unsafe extern "system" fn(
    params: *mut OpenEncodeSessionExParams,
    encoder: *mut *mut c_void,
) -> Status;
/// `nvEncGetEncodeGUIDCount`.
pub type GetEncodeGuidCountFn =
    unsafe extern "system" fn(encoder: *mut c_void, count: *mut u32) -> Status;
/// `nvEncGetEncodeGUIDs`.
pub type GetEncodeGuidsFn = unsafe extern "system" fn(
    encoder: *mut c_void,
    guids: *mut Guid,
    array_size: u32,
    count: *mut u32,
) -> Status;
/// `nvEncGetEncodePresetConfigEx`.
pub type GetEncodePresetConfigExFn = unsafe extern "system" fn(
    encoder: *mut c_void,
    encode_guid: Guid,
    preset_guid: Guid,
    tuning_info: u32,
    preset_config: *mut PresetConfig,
) -> Status;
/// `nvEncInitializeEncoder`.
pub type InitializeEncoderFn =
    unsafe extern "system" fn(encoder: *mut c_void, params: *mut InitializeParams) -> Status;
/// `nvEncCreateInputBuffer`.
pub type CreateInputBufferFn =
    unsafe extern "system" fn(encoder: *mut c_void, params: *mut CreateInputBuffer) -> Status;
/// `nvEncCreateBitstreamBuffer`.
pub type CreateBitstreamBufferFn =
    unsafe extern "system" fn(encoder: *mut c_void, params: *mut CreateBitstreamBuffer) -> Status;
/// `nvEncDestroyInputBuffer`, `nvEncDestroyBitstreamBuffer`, `nvEncUnlockBitstream`,
/// `nvEncUnlockInputBuffer`: one buffer handle in, a status out.
pub type DestroyBufferFn =
    unsafe extern "system" fn(encoder: *mut c_void, buffer: *mut c_void) -> Status;
/// `nvEncEncodePicture`.
pub type EncodePictureFn =
    unsafe extern "system" fn(encoder: *mut c_void, params: *mut PicParams) -> Status;
/// `nvEncLockBitstream`.
pub type LockBitstreamFn =
    unsafe extern "system" fn(encoder: *mut c_void, params: *mut LockBitstream) -> Status;
/// `nvEncLockInputBuffer`.
pub type LockInputBufferFn =
    unsafe extern "system" fn(encoder: *mut c_void, params: *mut LockInputBuffer) -> Status;
/// `nvEncDestroyEncoder`.
pub type DestroyEncoderFn = unsafe extern "system" fn(encoder: *mut c_void) -> Status;
/// `nvEncReconfigureEncoder`.
pub type ReconfigureEncoderFn =
    unsafe extern "system" fn(encoder: *mut c_void, params: *mut ReconfigureParams) -> Status;
/// `nvEncGetLastErrorString`.
pub type GetLastErrorStringFn = unsafe extern "system" fn(encoder: *mut c_void) -> *const c_char;

/// `CUresult`.
pub type CuResult = c_int;
/// `CUDA_SUCCESS`.
pub const CUDA_SUCCESS: CuResult = 0;
/// `CUdevice`.
pub type CuDevice = c_int;
/// `CUcontext`.
pub type CuContext = *mut c_void;

/// `cuInit`.
pub type CuInitFn = unsafe extern "system" fn(flags: c_uint) -> CuResult;
/// `cuDeviceGetCount`.
pub type CuDeviceGetCountFn = unsafe extern "system" fn(count: *mut c_int) -> CuResult;
/// `cuDeviceGet`.
pub type CuDeviceGetFn =
    unsafe extern "system" fn(device: *mut CuDevice, ordinal: c_int) -> CuResult;
/// `cuCtxCreate_v2`.
pub type CuCtxCreateFn =
    unsafe extern "system" fn(ctx: *mut CuContext, flags: c_uint, device: CuDevice) -> CuResult;
/// `cuCtxDestroy_v2`.
pub type CuCtxDestroyFn = unsafe extern "system" fn(ctx: CuContext) -> CuResult;
/// `cuCtxPushCurrent_v2`.
pub type CuCtxPushCurrentFn = unsafe extern "system" fn(ctx: CuContext) -> CuResult;
/// `cuCtxPopCurrent_v2`.
pub type CuCtxPopCurrentFn = unsafe extern "system" fn(ctx: *mut CuContext) -> CuResult;

#[cfg(test)]
mod tests {
    use std::mem::{align_of, offset_of, size_of};

    use super::*;

    #[test]
    fn struct_versions_match_the_12_1_header() {
        // Values printed from the SDK 12.1 header's macros by a C compiler.
        assert_eq!(API_VERSION, 0x0100_000c);
        assert_eq!(FUNCTION_LIST_VER, 0x7102_000c);
        assert_eq!(OPEN_ENCODE_SESSION_EX_PARAMS_VER, 0x7101_000c);
        assert_eq!(RC_PARAMS_VER, 0x7101_000c);
        assert_eq!(CONFIG_VER, 0xf108_000c);
        assert_eq!(INITIALIZE_PARAMS_VER, 0xf106_000c);
        assert_eq!(RECONFIGURE_PARAMS_VER, 0xf101_000c);
        assert_eq!(PRESET_CONFIG_VER, 0xf104_000c);
        assert_eq!(PIC_PARAMS_VER, 0xf106_000c);
        assert_eq!(LOCK_BITSTREAM_VER, 0xf101_000c);
        assert_eq!(LOCK_INPUT_BUFFER_VER, 0x7101_000c);
        assert_eq!(CREATE_INPUT_BUFFER_VER, 0x7101_000c);
        assert_eq!(CREATE_BITSTREAM_BUFFER_VER, 0x7101_000c);
    }

    #[test]
    fn max_supported_version_words() {
        assert_eq!(max_supported_version_word(12, 1), 0xc1);
        assert_eq!(split_version_word(0xc2), (12, 2));
        assert!(max_supported_version_word(11, 1) < max_supported_version_word(12, 1));
        assert!(max_supported_version_word(13, 0) > max_supported_version_word(12, 1));
    }

    #[test]
    fn status_names() {
        assert_eq!(status_name(SUCCESS), "NV_ENC_SUCCESS");
        assert_eq!(status_name(2), "NV_ENC_ERR_UNSUPPORTED_DEVICE");
        assert_eq!(status_name(ERR_NEED_MORE_INPUT), "NV_ENC_ERR_NEED_MORE_INPUT");
        assert_eq!(status_name(26), "NV_ENC_ERR_NEED_MORE_OUTPUT");
        assert_eq!(status_name(27), "NV_ENC_ERR_?");
        assert_eq!(status_name(-1), "NV_ENC_ERR_?");
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn sizes_match_the_12_1_header() {
        // sizeof() of each struct, measured from the SDK 12.1 header (x86_64, GCC).
        assert_eq!(size_of::<Guid>(), 16);
        assert_eq!(size_of::<FunctionList>(), 2552);
        assert_eq!(size_of::<OpenEncodeSessionExParams>(), 1552);
        assert_eq!(size_of::<RcParams>(), 128);
        assert_eq!(size_of::<ConfigH264>(), 1792);
        assert_eq!(size_of::<Config>(), 3584);
        assert_eq!(size_of::<PresetConfig>(), 5128);
        assert_eq!(size_of::<InitializeParams>(), 1808);
        assert_eq!(size_of::<ReconfigureParams>(), 1824);
        assert_eq!(size_of::<CreateInputBuffer>(), 776);
        assert_eq!(size_of::<CreateBitstreamBuffer>(), 776);
        assert_eq!(size_of::<LockInputBuffer>(), 1544);
        assert_eq!(size_of::<LockBitstream>(), 1552);
        assert_eq!(size_of::<PicParams>(), 3360);
        assert_eq!(align_of::<Config>(), 8);
        assert_eq!(align_of::<PicParams>(), 8);
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn field_offsets_match_the_12_1_header() {
        // offsetof() of the fields this encoder touches, from the same measurement.
        assert_eq!(offset_of!(FunctionList, get_encode_guids), 40);
        assert_eq!(offset_of!(FunctionList, initialize_encoder), 96);
        assert_eq!(offset_of!(FunctionList, destroy_encoder), 224);
        assert_eq!(offset_of!(FunctionList, open_encode_session_ex), 240);
        assert_eq!(offset_of!(FunctionList, reconfigure_encoder), 264);
        assert_eq!(offset_of!(FunctionList, get_last_error_string), 304);
        assert_eq!(offset_of!(FunctionList, get_encode_preset_config_ex), 320);
        assert_eq!(offset_of!(FunctionList, reserved2), 352);
        assert_eq!(offset_of!(OpenEncodeSessionExParams, api_version), 24);
        assert_eq!(offset_of!(RcParams, average_bit_rate), 20);
        assert_eq!(offset_of!(RcParams, min_qp), 40);
        assert_eq!(offset_of!(RcParams, temporal_layer_qp), 80);
        assert_eq!(offset_of!(RcParams, qp_map_mode), 96);
        assert_eq!(offset_of!(RcParams, multi_pass), 100);
        assert_eq!(offset_of!(RcParams, cb_qp_index_offset), 108);
        assert_eq!(offset_of!(RcParams, reserved), 112);
        assert_eq!(offset_of!(ConfigH264, idr_period), 8);
        assert_eq!(offset_of!(ConfigH264, max_num_ref_frames), 60);
        assert_eq!(offset_of!(ConfigH264, h264_vui_parameters), 72);
        assert_eq!(offset_of!(ConfigH264, ltr_num_frames), 184);
        assert_eq!(offset_of!(ConfigH264, num_ref_l1), 208);
        assert_eq!(offset_of!(ConfigH264, reserved1), 212);
        assert_eq!(offset_of!(ConfigH264, reserved2), 1280);
        assert_eq!(offset_of!(Config, profile_guid), 4);
        assert_eq!(offset_of!(Config, gop_length), 20);
        assert_eq!(offset_of!(Config, frame_interval_p), 24);
        assert_eq!(offset_of!(Config, rc_params), 40);
        assert_eq!(offset_of!(Config, h264), 168);
        assert_eq!(offset_of!(Config, reserved), 1960);
        assert_eq!(offset_of!(Config, reserved2), 3072);
        assert_eq!(offset_of!(PresetConfig, preset_cfg), 8);
        assert_eq!(offset_of!(PresetConfig, reserved1), 3592);
        assert_eq!(offset_of!(InitializeParams, encode_guid), 4);
        assert_eq!(offset_of!(InitializeParams, preset_guid), 20);
        assert_eq!(offset_of!(InitializeParams, enable_ptd), 64);
        assert_eq!(offset_of!(InitializeParams, priv_data_size), 72);
        assert_eq!(offset_of!(InitializeParams, priv_data), 80);
        assert_eq!(offset_of!(InitializeParams, encode_config), 88);
        assert_eq!(offset_of!(InitializeParams, max_encode_width), 96);
        assert_eq!(offset_of!(InitializeParams, max_me_hint_counts_per_block), 104);
        assert_eq!(offset_of!(InitializeParams, tuning_info), 136);
        assert_eq!(offset_of!(InitializeParams, output_stats_level), 148);
        assert_eq!(offset_of!(InitializeParams, reserved), 152);
        assert_eq!(offset_of!(InitializeParams, reserved2), 1296);
        assert_eq!(offset_of!(ReconfigureParams, re_init_encode_params), 8);
        assert_eq!(offset_of!(CreateInputBuffer, buffer_fmt), 16);
        assert_eq!(offset_of!(CreateInputBuffer, input_buffer), 24);
        assert_eq!(offset_of!(CreateInputBuffer, reserved1), 40);
        assert_eq!(offset_of!(CreateInputBuffer, reserved2), 272);
        assert_eq!(offset_of!(CreateBitstreamBuffer, bitstream_buffer), 16);
        assert_eq!(offset_of!(CreateBitstreamBuffer, reserved2), 264);
        assert_eq!(offset_of!(LockInputBuffer, input_buffer), 8);
        assert_eq!(offset_of!(LockInputBuffer, buffer_data_ptr), 16);
        assert_eq!(offset_of!(LockInputBuffer, pitch), 24);
        assert_eq!(offset_of!(LockBitstream, output_bitstream), 8);
        assert_eq!(offset_of!(LockBitstream, frame_idx), 24);
        assert_eq!(offset_of!(LockBitstream, bitstream_size_in_bytes), 36);
        assert_eq!(offset_of!(LockBitstream, output_time_stamp), 40);
        assert_eq!(offset_of!(LockBitstream, bitstream_buffer_ptr), 56);
        assert_eq!(offset_of!(LockBitstream, picture_type), 64);
        assert_eq!(offset_of!(LockBitstream, output_stats_ptr), 120);
        assert_eq!(offset_of!(LockBitstream, frame_idx_display), 128);
        assert_eq!(offset_of!(LockBitstream, reserved2), 1016);
        assert_eq!(offset_of!(LockBitstream, reserved_internal), 1520);
        assert_eq!(offset_of!(PicParams, encode_pic_flags), 16);
        assert_eq!(offset_of!(PicParams, input_time_stamp), 24);
        assert_eq!(offset_of!(PicParams, input_buffer), 40);
        assert_eq!(offset_of!(PicParams, output_bitstream), 48);
        assert_eq!(offset_of!(PicParams, buffer_fmt), 64);
        assert_eq!(offset_of!(PicParams, picture_type), 72);
        assert_eq!(offset_of!(PicParams, codec_pic_params), 80);
        assert_eq!(offset_of!(PicParams, me_hint_counts_per_block), 1632);
        assert_eq!(offset_of!(PicParams, me_external_hints), 1664);
        assert_eq!(offset_of!(PicParams, reserved1), 1672);
        assert_eq!(offset_of!(PicParams, qp_delta_map), 1712);
        assert_eq!(offset_of!(PicParams, me_hint_ref_pic_dist), 1728);
        assert_eq!(offset_of!(PicParams, alpha_buffer), 1736);
        assert_eq!(offset_of!(PicParams, output_recon_buffer), 1760);
        assert_eq!(offset_of!(PicParams, reserved3), 1768);
        assert_eq!(offset_of!(PicParams, reserved4), 2904);
    }

    #[test]
    fn zeroed_structs_are_all_zero() {
        let list: FunctionList = zeroed();
        assert!(list.open_encode_session_ex.is_none());
        let config: Config = zeroed();
        assert_eq!(config.gop_length, 0);
        assert_eq!(config.h264.reserved2[63], std::ptr::null_mut());
    }
}
