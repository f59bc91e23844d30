//! NVENC: hardware H.264 on NVIDIA GPUs, behind the `nvenc` feature.
//!
//! The driver is loaded at run time (`libnvidia-encode.so.1`, `libcuda.so.1`), so building
//! with the feature needs neither the driver nor the CUDA toolkit, and a machine without
//! them gets an error from [`NvencEncoder::new`], on which [`crate::open_encoder`] falls
//! back to openh264. The FFI is hand-written against the Video Codec SDK 12.1 header
//! (see `ffi.rs`); drivers from R530 on support that API version.
//!
//! What it does not do: pick the GPU (always CUDA device 0), take frames already on the GPU
//! (frames come from system memory, as the Vulkan readback leaves them), encode
//! asynchronously, or use codecs other than H.264.

// This module is the crate's FFI boundary: calling NVIDIA's C API through function pointers
// loaded at run time cannot be done without `unsafe`. Every unsafe block says why it holds.
#![allow(unsafe_code)]

mod driver;
mod encoder;
mod ffi;

pub use encoder::NvencEncoder;
use thiserror::Error;

use crate::StreamingError;

/// Why NVENC could not be opened or used.
#[derive(Debug, Error)]
pub enum NvencError {
    /// A driver library could not be loaded (typically: no NVIDIA driver installed).
    #[error("cannot load {library}: {reason}")]
    Library {
        /// The library's file name.
        library: &'static str,
        /// The loader's explanation.
        reason: String,
    },
    /// A driver library or the NVENC function list lacks an entry point.
    #[error("{library} has no {symbol}")]
    Symbol {
        /// Where the entry point was looked for.
        library: &'static str,
        /// The missing entry point.
        symbol: &'static str,
    },
    /// The driver's NVENC API is older than the SDK these bindings follow.
    #[error("the driver supports NVENC API {major}.{minor}; 12.1 or newer is needed")]
    DriverTooOld {
        /// The driver's major API version.
        major: u32,
        /// The driver's minor API version.
        minor: u32,
    },
    /// A CUDA driver call failed.
    #[error("{call} failed (CUresult {code})")]
    Cuda {
        /// The CUDA function.
        call: &'static str,
        /// Its `CUresult`.
        code: i32,
    },
    /// The CUDA device to encode on does not exist.
    #[error("no CUDA device {ordinal} ({count} found)")]
    NoDevice {
        /// The device asked for.
        ordinal: i32,
        /// Devices present.
        count: i32,
    },
    /// An NVENC call failed; on GPUs without an encoder (A100, H100, H200) this is
    /// `nvEncOpenEncodeSessionEx` with `NV_ENC_ERR_NO_ENCODE_DEVICE` or similar.
    #[error("{call} failed: {status}{detail}")]
    Api {
        /// The NVENC function.
        call: &'static str,
        /// The `NVENCSTATUS` name.
        status: &'static str,
        /// The driver's last-error text, if any (with a leading space).
        detail: String,
    },
    /// The GPU's encoder does not offer H.264.
    #[error("the GPU's encoder does not offer H.264")]
    NoH264,
    /// The settings or a buffer the driver returned cannot be used.
    #[error("{0}")]
    Settings(String),
}

impl From<NvencError> for StreamingError {
    fn from(e: NvencError) -> Self {
        StreamingError::Encoder(format!("NVENC: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EncoderSettings;

    #[test]
    fn errors_read_as_one_clause() {
        let e = NvencError::Library {
            library: "libnvidia-encode.so.1",
            reason: "cannot open shared object file: No such file or directory".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot load libnvidia-encode.so.1: cannot open shared object file: No such file or directory"
        );
        let e = NvencError::Api {
            call: "nvEncOpenEncodeSessionEx",
            status: "NV_ENC_ERR_NO_ENCODE_DEVICE",
            detail: String::new(),
        };
        assert_eq!(e.to_string(), "nvEncOpenEncodeSessionEx failed: NV_ENC_ERR_NO_ENCODE_DEVICE");
        let s: StreamingError = NvencError::NoH264.into();
        assert!(s.to_string().contains("NVENC: the GPU's encoder does not offer H.264"));
    }

    #[test]
    fn odd_sizes_are_refused_before_touching_the_driver() {
        let e = NvencEncoder::new(EncoderSettings::for_stream(641, 360, 30)).err().unwrap();
        assert!(matches!(e, NvencError::Settings(_)), "{e}");
    }

    /// On a machine without the NVIDIA driver (CI, this repository's dev boxes) opening
    /// fails cleanly with the library's name; with a driver it may succeed or fail further on.
    #[test]
    fn opening_without_a_driver_names_the_missing_library() {
        match NvencEncoder::new(EncoderSettings::for_stream(320, 240, 30)) {
            Ok(encoder) => drop(encoder),
            Err(e) => {
                eprintln!("NVENC unavailable here: {e}");
                if let NvencError::Library { library, .. } = e {
                    assert!(library == driver::NVENC_LIBRARY || library == driver::CUDA_LIBRARY);
                }
            }
        }
    }
}
