//! The Vulkan renderer for Orbit: draws a [`Scene`] offscreen and reads the
//! pixels back to host memory, ready for a video encoder.
//!
//! It opens its own Vulkan 1.3 device (the best one [`crate::gpu`] finds),
//! draws with dynamic rendering and synchronization2, and presents nothing:
//! there is no window or swapchain. Geometry comes from the vertex index and
//! instance index, so there are no vertex buffers; the scene travels in push
//! constants. Every frame reuses the same command buffers, fence, image and
//! persistently mapped readback buffer, so rendering allocates nothing.
#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod commands;
mod context;
mod pipeline;
mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::HostError;
use crate::gpu::GpuInfo;
use crate::workloads::orbit::game::Scene;
use commands::Commands;
use context::Context;
use pipeline::Pipeline;
use target::Target;

/// Wall-clock cost of one frame, measured on the CPU around each submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameTimings {
    /// Recording the draw, submitting it and waiting for the GPU to finish it.
    pub render: Duration,
    /// Submitting the image-to-buffer copy and waiting for it to finish, so
    /// the pixels are readable by the CPU.
    pub readback: Duration,
}

impl FrameTimings {
    /// `render + readback`.
    pub fn total(&self) -> Duration {
        self.render + self.readback
    }
}

/// An offscreen renderer of a fixed frame size.
///
/// Dropping it waits for the GPU to go idle and destroys every Vulkan object.
pub struct Renderer {
    // Field order does not matter for safety: each part holds the `Arc<Context>`,
    // so the device outlives them all, and `Drop` waits for idle first.
    commands: Commands,
    pipeline: Pipeline,
    target: Target,
    ctx: Arc<Context>,
}

impl Renderer {
    /// Opens the best Vulkan 1.3 device and prepares to render
    /// `width` x `height` RGBA frames (instance + device creation: tens of ms).
    pub fn new(width: u32, height: u32) -> Result<Self, HostError> {
        let ctx = Arc::new(Context::new()?);
        let target = Target::new(Arc::clone(&ctx), width, height)?;
        let pipeline = Pipeline::new(Arc::clone(&ctx))?;
        let commands = Commands::new(Arc::clone(&ctx), ctx.queue_family)?;
        commands.record_copy(&target)?;
        Ok(Self { commands, pipeline, target, ctx })
    }

    /// Draws `scene` (background, obstacles, then the player on top) and
    /// copies it to the readback buffer; on return [`pixels`](Self::pixels)
    /// holds the new frame. Blocks until the GPU is done.
    pub fn render(&mut self, scene: &Scene) -> Result<FrameTimings, HostError> {
        let start = Instant::now();
        let push = pipeline::push_constants(scene);
        // Background + obstacles + player.
        let instances = scene.obstacles.saturating_add(2);
        self.commands.record_draw(&self.target, &self.pipeline, &push, instances)?;
        self.commands.submit_and_wait(self.commands.draw)?;
        let drawn = Instant::now();
        self.commands.submit_and_wait(self.commands.copy)?;
        self.target.invalidate()?;
        let done = Instant::now();
        Ok(FrameTimings { render: drawn - start, readback: done - drawn })
    }

    /// The last rendered frame: tightly packed RGBA8 (UNORM, the shaders'
    /// values unconverted, alpha 255),
    /// `width * height * 4` bytes, top row first. All zero before the first
    /// [`render`](Self::render).
    pub fn pixels(&self) -> &[u8] {
        self.target.pixels()
    }

    /// Frame width in pixels.
    pub fn width(&self) -> u32 {
        self.target.extent.width
    }

    /// Frame height in pixels.
    pub fn height(&self) -> u32 {
        self.target.extent.height
    }

    /// The device this renderer draws on.
    pub fn gpu(&self) -> &GpuInfo {
        &self.ctx.gpu
    }
}

impl Drop for Renderer {
    fn drop(&mut self) {
        // SAFETY: the device is alive (`self.ctx`); waiting for idle before the
        // fields drop means no Vulkan object is in use when it is destroyed.
        let _ = unsafe { self.ctx.device.device_wait_idle() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_constants_follow_the_shader_layout() {
        let scene = Scene {
            time_s: 2.5,
            player_x: 0.25,
            player_y: 0.75,
            player_size: 0.08,
            aspect: 16.0 / 9.0,
            obstacles: 8,
        };
        let bytes = pipeline::push_constants(&scene);
        let word = |i: usize| u32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(f32::from_bits(word(0)), 0.25);
        assert_eq!(f32::from_bits(word(1)), 0.75);
        assert_eq!(f32::from_bits(word(2)), 0.08);
        assert_eq!(f32::from_bits(word(3)), 16.0 / 9.0);
        assert_eq!(f32::from_bits(word(4)), 2.5);
        assert_eq!(word(5), 8);
    }

    #[test]
    fn renderer_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Renderer>();
    }

    #[test]
    fn rejects_empty_frames() {
        assert!(matches!(
            Renderer::new(0, 720),
            Err(HostError::FrameSize { width: 0, height: 720 })
        ));
    }
}
