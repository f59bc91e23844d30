//! The host crate's error type.

/// Everything that can go wrong in the session host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The Vulkan loader (`libvulkan.so.1`) could not be loaded.
    #[error("could not load the Vulkan loader: {0}")]
    VulkanLoad(String),
    /// No physical device offers Vulkan 1.3 with a graphics queue.
    #[error("no Vulkan 1.3 device with a graphics queue was found")]
    NoVulkanDevice,
    /// A Vulkan call returned an error code.
    #[error("Vulkan call failed: {0}")]
    Vulkan(#[from] ash::vk::Result),
    /// The device has no memory type with the properties a resource needs.
    #[error("no Vulkan memory type suits the {0}")]
    NoMemoryType(&'static str),
    /// A compiled shader could not be read as SPIR-V.
    #[error("invalid SPIR-V for shader {name}: {reason}")]
    Shader {
        /// Which shader.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A frame size of zero, or one larger than the renderer supports.
    #[error("unsupported frame size {width}x{height}")]
    FrameSize {
        /// Requested width in pixels.
        width: u32,
        /// Requested height in pixels.
        height: u32,
    },
    /// The media path failed.
    #[error(transparent)]
    Streaming(#[from] gridplay_streaming::StreamingError),
    /// A token or message from a peer was invalid.
    #[error(transparent)]
    Protocol(#[from] gridplay_protocol::ProtocolError),
    /// Talking to the broker failed.
    #[error("broker: {0}")]
    Broker(String),
    /// The broker presented a token-signing key other than the one this host trusts.
    #[error(
        "the broker presents key {presented}, but this host trusts only {trusted} ({origin}); \
         refusing it (a different broker, or someone in between)"
    )]
    UntrustedBroker {
        /// The key the broker presented (base64url).
        presented: String,
        /// The key this host trusts (base64url).
        trusted: String,
        /// How that key came to be trusted.
        origin: String,
    },
    /// A socket or file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The app catalogue was refused.
    #[error("{}:{line}: {reason}", file.display())]
    Catalogue {
        /// The catalogue file.
        file: std::path::PathBuf,
        /// The line at fault (0 when the whole file is).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An app's display, sandbox or capture failed.
    #[error("app: {0}")]
    App(String),
    /// The session's app ended on its own.
    #[error("app {0}")]
    AppExited(crate::workloads::AppExit),
    /// A session's worker process misbehaved.
    #[error("worker: {0}")]
    Worker(String),
    /// A session's worker process died before saying why.
    #[error("the session's worker {0}")]
    WorkerDied(String),
}
