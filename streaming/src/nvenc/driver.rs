//! Loading the NVIDIA driver at run time: `libnvidia-encode` for NVENC and `libcuda` for
//! the CUDA context NVENC encodes on. Nothing here links against the driver, so the
//! `nvenc` feature builds on machines without it; a missing library is an ordinary error.

use std::ffi::{CStr, c_int, c_void};

use libloading::Library;

use super::NvencError;
use super::ffi::{self, CuContext, CuResult, FunctionList, Status};

/// The NVENC library's file name.
#[cfg(not(windows))]
pub(super) const NVENC_LIBRARY: &str = "libnvidia-encode.so.1";
/// The NVENC library's file name.
#[cfg(windows)]
pub(super) const NVENC_LIBRARY: &str = "nvEncodeAPI64.dll";
/// The CUDA driver library's file name.
#[cfg(not(windows))]
pub(super) const CUDA_LIBRARY: &str = "libcuda.so.1";
/// The CUDA driver library's file name.
#[cfg(windows)]
pub(super) const CUDA_LIBRARY: &str = "nvcuda.dll";

/// The two driver libraries, kept loaded for as long as anything holds their entry points.
pub(super) struct Libraries {
    nvenc: Library,
    cuda: Library,
}

fn open(name: &'static str) -> Result<Library, NvencError> {
    // SAFETY: loading runs the library's initialisers. These are NVIDIA's own driver
    // libraries, loaded by name exactly as the SDK's samples and ffmpeg load them; their
    // initialisers have no preconditions on our side.
    unsafe { Library::new(name) }.map_err(|e| {
        let reason = e.to_string();
        // dlerror() repeats the file name ("libx.so.1: cannot open shared object file: ...").
        let reason = reason
            .strip_prefix(name)
            .map(|r| r.trim_start_matches(':').trim().to_string())
            .unwrap_or(reason);
        NvencError::Library { library: name, reason }
    })
}

/// Copies one entry point out of a library.
///
/// # Safety
/// `T` must be the function-pointer type of the C symbol `symbol` (NUL-terminated), and the
/// returned pointer must not be called after `library` is dropped.
unsafe fn entry<T: Copy>(
    library: &Library,
    name: &'static str,
    symbol: &'static [u8],
) -> Result<T, NvencError> {
    // SAFETY: the caller guarantees that `T` is the symbol's type.
    let found = unsafe { library.get::<T>(symbol) };
    found.map(|s| *s).map_err(|_| NvencError::Symbol {
        library: name,
        symbol: std::str::from_utf8(&symbol[..symbol.len() - 1]).unwrap_or("?"),
    })
}

impl Libraries {
    /// Loads `libnvidia-encode` first (its absence is the common case: no NVIDIA driver),
    /// then `libcuda`.
    pub(super) fn load() -> Result<Self, NvencError> {
        let nvenc = open(NVENC_LIBRARY)?;
        let cuda = open(CUDA_LIBRARY)?;
        Ok(Self { nvenc, cuda })
    }

    /// Checks the driver's NVENC API version and fills the function list.
    pub(super) fn nvenc_api(&self) -> Result<Api, NvencError> {
        // SAFETY: the types are the header's prototypes for these two exports.
        let (max_version, create_instance) = unsafe {
            (
                entry::<ffi::GetMaxSupportedVersionFn>(
                    &self.nvenc,
                    NVENC_LIBRARY,
                    b"NvEncodeAPIGetMaxSupportedVersion\0",
                )?,
                entry::<ffi::CreateInstanceFn>(
                    &self.nvenc,
                    NVENC_LIBRARY,
                    b"NvEncodeAPICreateInstance\0",
                )?,
            )
        };
        let mut word = 0u32;
        // SAFETY: the function writes one u32 through a valid pointer.
        let status = unsafe { max_version(&mut word) };
        check(status, "NvEncodeAPIGetMaxSupportedVersion", None)?;
        let (major, minor) = ffi::split_version_word(word);
        if word < ffi::max_supported_version_word(ffi::API_MAJOR, ffi::API_MINOR) {
            return Err(NvencError::DriverTooOld { major, minor });
        }
        let mut list: Box<FunctionList> = Box::new(ffi::zeroed());
        list.version = ffi::FUNCTION_LIST_VER;
        // SAFETY: `list` is a zeroed NV_ENCODE_API_FUNCTION_LIST of the 12.1 layout with its
        // version set; the driver (at least 12.1, checked above) fills in the pointers.
        let status = unsafe { create_instance(&mut *list) };
        check(status, "NvEncodeAPICreateInstance", None)?;
        Api::from_list(&list)
    }

    /// The CUDA driver entry points.
    pub(super) fn cuda_api(&self) -> Result<Cuda, NvencError> {
        let l = &self.cuda;
        let n = CUDA_LIBRARY;
        // SAFETY: each type is the `cuda.h` prototype of the named (versioned) export.
        unsafe {
            Ok(Cuda {
                init: entry(l, n, b"cuInit\0")?,
                device_get_count: entry(l, n, b"cuDeviceGetCount\0")?,
                device_get: entry(l, n, b"cuDeviceGet\0")?,
                ctx_create: entry(l, n, b"cuCtxCreate_v2\0")?,
                ctx_destroy: entry(l, n, b"cuCtxDestroy_v2\0")?,
                ctx_push: entry(l, n, b"cuCtxPushCurrent_v2\0")?,
                ctx_pop: entry(l, n, b"cuCtxPopCurrent_v2\0")?,
            })
        }
    }
}

/// The NVENC entry points this encoder calls, checked non-null once.
#[derive(Clone, Copy)]
pub(super) struct Api {
    pub open_encode_session_ex: ffi::OpenEncodeSessionExFn,
    pub get_encode_guid_count: ffi::GetEncodeGuidCountFn,
    pub get_encode_guids: ffi::GetEncodeGuidsFn,
    pub get_encode_preset_config_ex: ffi::GetEncodePresetConfigExFn,
    pub initialize_encoder: ffi::InitializeEncoderFn,
    pub create_input_buffer: ffi::CreateInputBufferFn,
    pub destroy_input_buffer: ffi::DestroyBufferFn,
    pub create_bitstream_buffer: ffi::CreateBitstreamBufferFn,
    pub destroy_bitstream_buffer: ffi::DestroyBufferFn,
    pub encode_picture: ffi::EncodePictureFn,
    pub lock_bitstream: ffi::LockBitstreamFn,
    pub unlock_bitstream: ffi::DestroyBufferFn,
    pub lock_input_buffer: ffi::LockInputBufferFn,
    pub unlock_input_buffer: ffi::DestroyBufferFn,
    pub reconfigure_encoder: ffi::ReconfigureEncoderFn,
    pub destroy_encoder: ffi::DestroyEncoderFn,
    pub get_last_error_string: Option<ffi::GetLastErrorStringFn>,
}

impl Api {
    fn from_list(list: &FunctionList) -> Result<Self, NvencError> {
        fn need<T>(f: Option<T>, symbol: &'static str) -> Result<T, NvencError> {
            f.ok_or(NvencError::Symbol { library: "NV_ENCODE_API_FUNCTION_LIST", symbol })
        }
        Ok(Self {
            open_encode_session_ex: need(list.open_encode_session_ex, "nvEncOpenEncodeSessionEx")?,
            get_encode_guid_count: need(list.get_encode_guid_count, "nvEncGetEncodeGUIDCount")?,
            get_encode_guids: need(list.get_encode_guids, "nvEncGetEncodeGUIDs")?,
            get_encode_preset_config_ex: need(
                list.get_encode_preset_config_ex,
                "nvEncGetEncodePresetConfigEx",
            )?,
            initialize_encoder: need(list.initialize_encoder, "nvEncInitializeEncoder")?,
            create_input_buffer: need(list.create_input_buffer, "nvEncCreateInputBuffer")?,
            destroy_input_buffer: need(list.destroy_input_buffer, "nvEncDestroyInputBuffer")?,
            create_bitstream_buffer: need(
                list.create_bitstream_buffer,
                "nvEncCreateBitstreamBuffer",
            )?,
            destroy_bitstream_buffer: need(
                list.destroy_bitstream_buffer,
                "nvEncDestroyBitstreamBuffer",
            )?,
            encode_picture: need(list.encode_picture, "nvEncEncodePicture")?,
            lock_bitstream: need(list.lock_bitstream, "nvEncLockBitstream")?,
            unlock_bitstream: need(list.unlock_bitstream, "nvEncUnlockBitstream")?,
            lock_input_buffer: need(list.lock_input_buffer, "nvEncLockInputBuffer")?,
            unlock_input_buffer: need(list.unlock_input_buffer, "nvEncUnlockInputBuffer")?,
            reconfigure_encoder: need(list.reconfigure_encoder, "nvEncReconfigureEncoder")?,
            destroy_encoder: need(list.destroy_encoder, "nvEncDestroyEncoder")?,
            get_last_error_string: list.get_last_error_string,
        })
    }

    /// The driver's text for the last error on `encoder`, if it has one.
    pub(super) fn last_error(&self, encoder: *mut c_void) -> Option<String> {
        let f = self.get_last_error_string?;
        if encoder.is_null() {
            return None;
        }
        // SAFETY: `encoder` is a live session handle; the driver returns NULL or a
        // NUL-terminated string it owns, which is copied out before the next call.
        let text = unsafe {
            let ptr = f(encoder);
            if ptr.is_null() {
                return None;
            }
            CStr::from_ptr(ptr).to_string_lossy().into_owned()
        };
        (!text.is_empty()).then_some(text)
    }
}

/// Turns an `NVENCSTATUS` into a result.
pub(super) fn check(
    status: Status,
    call: &'static str,
    detail: Option<String>,
) -> Result<(), NvencError> {
    if status == ffi::SUCCESS {
        return Ok(());
    }
    Err(NvencError::Api {
        call,
        status: ffi::status_name(status),
        detail: detail.unwrap_or_default(),
    })
}

/// The CUDA driver entry points used to make and switch the encoder's context.
#[derive(Clone, Copy)]
pub(super) struct Cuda {
    init: ffi::CuInitFn,
    device_get_count: ffi::CuDeviceGetCountFn,
    device_get: ffi::CuDeviceGetFn,
    ctx_create: ffi::CuCtxCreateFn,
    ctx_destroy: ffi::CuCtxDestroyFn,
    ctx_push: ffi::CuCtxPushCurrentFn,
    ctx_pop: ffi::CuCtxPopCurrentFn,
}

fn cuda_check(code: CuResult, call: &'static str) -> Result<(), NvencError> {
    if code == ffi::CUDA_SUCCESS { Ok(()) } else { Err(NvencError::Cuda { call, code }) }
}

/// A CUDA context on one device, destroyed on drop. It is not left current on any thread:
/// [`CudaContext::enter`] makes it current around each group of NVENC calls.
pub(super) struct CudaContext {
    cuda: Cuda,
    ctx: CuContext,
}

impl CudaContext {
    /// Initialises CUDA and creates a context on device `ordinal`.
    pub(super) fn create(cuda: Cuda, ordinal: c_int) -> Result<Self, NvencError> {
        // SAFETY: cuInit takes flags (must be 0) and may be called any number of times.
        cuda_check(unsafe { (cuda.init)(0) }, "cuInit")?;
        let mut count: c_int = 0;
        // SAFETY: writes one int through a valid pointer.
        cuda_check(unsafe { (cuda.device_get_count)(&mut count) }, "cuDeviceGetCount")?;
        if count <= ordinal {
            return Err(NvencError::NoDevice { ordinal, count });
        }
        let mut device = 0;
        // SAFETY: writes one CUdevice through a valid pointer; ordinal < count.
        cuda_check(unsafe { (cuda.device_get)(&mut device, ordinal) }, "cuDeviceGet")?;
        let mut ctx: CuContext = std::ptr::null_mut();
        // SAFETY: writes one CUcontext through a valid pointer for a valid device.
        cuda_check(unsafe { (cuda.ctx_create)(&mut ctx, 0, device) }, "cuCtxCreate")?;
        let context = Self { cuda, ctx };
        // cuCtxCreate made it current on this thread; take it off again.
        let mut popped: CuContext = std::ptr::null_mut();
        // SAFETY: the context was just pushed by cuCtxCreate on this thread.
        cuda_check(unsafe { (cuda.ctx_pop)(&mut popped) }, "cuCtxPopCurrent")?;
        Ok(context)
    }

    /// The raw context, for `nvEncOpenEncodeSessionEx`.
    pub(super) fn raw(&self) -> CuContext {
        self.ctx
    }

    /// Makes the context current on this thread until the guard drops.
    pub(super) fn enter(&self) -> Result<Current<'_>, NvencError> {
        // SAFETY: `ctx` is a live context owned by `self`.
        cuda_check(unsafe { (self.cuda.ctx_push)(self.ctx) }, "cuCtxPushCurrent")?;
        Ok(Current { context: self })
    }
}

impl Drop for CudaContext {
    fn drop(&mut self) {
        // SAFETY: `ctx` was created by cuCtxCreate and nothing uses it after this (the
        // encoder session on it is destroyed before the context: see NvencEncoder's fields).
        let code = unsafe { (self.cuda.ctx_destroy)(self.ctx) };
        if code != ffi::CUDA_SUCCESS {
            tracing::warn!("cuCtxDestroy failed (CUresult {code})");
        }
    }
}

/// The context is current on this thread while this lives.
pub(super) struct Current<'a> {
    context: &'a CudaContext,
}

impl Drop for Current<'_> {
    fn drop(&mut self) {
        let mut popped: CuContext = std::ptr::null_mut();
        // SAFETY: `enter` pushed this context on this thread (the guard is not Send).
        let code = unsafe { (self.context.cuda.ctx_pop)(&mut popped) };
        if code != ffi::CUDA_SUCCESS {
            tracing::warn!("cuCtxPopCurrent failed (CUresult {code})");
        }
    }
}
