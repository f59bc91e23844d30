//! Command recording and submission: one command pool, a draw command buffer
//! re-recorded every frame (the scene is in its push constants), a copy
//! command buffer recorded once, and one fence reused for every submission.

use std::sync::Arc;

use ash::vk;

use super::context::Context;
use super::pipeline::{self, Pipeline};
use super::target::{COLOR_RANGE, Target};
use crate::HostError;

/// Longest wait for one submission before giving up with `TIMEOUT`.
const FENCE_TIMEOUT_NS: u64 = 10_000_000_000;

/// The command pool, its two command buffers and the fence.
pub(crate) struct Commands {
    ctx: Arc<Context>,
    pool: vk::CommandPool,
    pub(crate) draw: vk::CommandBuffer,
    pub(crate) copy: vk::CommandBuffer,
    fence: vk::Fence,
}

impl Commands {
    /// Creates the pool, allocates both command buffers and creates the fence.
    pub(crate) fn new(ctx: Arc<Context>, queue_family: u32) -> Result<Self, HostError> {
        let mut c = Self {
            ctx,
            pool: vk::CommandPool::null(),
            draw: vk::CommandBuffer::null(),
            copy: vk::CommandBuffer::null(),
            fence: vk::Fence::null(),
        };
        let device = &c.ctx.device;
        let pool_info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(queue_family)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: valid create info; `Drop` destroys the pool (and with it the
        // command buffers).
        c.pool = unsafe { device.create_command_pool(&pool_info, None) }?;
        let alloc = vk::CommandBufferAllocateInfo::default()
            .command_pool(c.pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(2);
        // SAFETY: the pool was just created on this device.
        let buffers = unsafe { device.allocate_command_buffers(&alloc) }?;
        (c.draw, c.copy) = (buffers[0], buffers[1]);
        // SAFETY: valid create info; `Drop` destroys the fence.
        c.fence = unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }?;
        Ok(c)
    }

    /// Records the frame: image to attachment layout, one draw of
    /// background + obstacles + player, end. `push` is the scene block and
    /// `instances` the number of shapes.
    pub(crate) fn record_draw(
        &self,
        target: &Target,
        pipeline: &Pipeline,
        push: &[u8; pipeline::PUSH_SIZE],
        instances: u32,
    ) -> Result<(), HostError> {
        let device = &self.ctx.device;
        let cb = self.draw;
        let extent = target.extent;
        let begin = vk::CommandBufferBeginInfo::default()
            .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
        // The previous frame's copy read the image; its contents are discarded.
        let to_attachment = [vk::ImageMemoryBarrier2::default()
            .src_stage_mask(vk::PipelineStageFlags2::COPY)
            .src_access_mask(vk::AccessFlags2::NONE)
            .dst_stage_mask(vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT)
            .dst_access_mask(vk::AccessFlags2::COLOR_ATTACHMENT_WRITE)
            .old_layout(vk::ImageLayout::UNDEFINED)
            .new_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
            .image(target.image)
            .subresource_range(COLOR_RANGE)];
        let attachments = [vk::RenderingAttachmentInfo::default()
            .image_view(target.view)
            .image_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
            // No clear: the background instance covers every pixel.
            .load_op(vk::AttachmentLoadOp::DONT_CARE)
            .store_op(vk::AttachmentStoreOp::STORE)];
        let area = vk::Rect2D { offset: vk::Offset2D::default(), extent };
        let rendering = vk::RenderingInfo::default()
            .render_area(area)
            .layer_count(1)
            .color_attachments(&attachments);
        let viewport = vk::Viewport {
            x: 0.0,
            y: 0.0,
            width: extent.width as f32,
            height: extent.height as f32,
            min_depth: 0.0,
            max_depth: 1.0,
        };
        // SAFETY: the command buffer is not pending (the last submission's fence
        // was waited on) and its pool allows resetting it by beginning again;
        // every handle recorded is alive, and the device has dynamic rendering
        // and synchronization2 enabled.
        unsafe {
            device.begin_command_buffer(cb, &begin)?;
            device.cmd_pipeline_barrier2(
                cb,
                &vk::DependencyInfo::default().image_memory_barriers(&to_attachment),
            );
            device.cmd_begin_rendering(cb, &rendering);
            device.cmd_bind_pipeline(cb, vk::PipelineBindPoint::GRAPHICS, pipeline.pipeline);
            device.cmd_set_viewport(cb, 0, &[viewport]);
            device.cmd_set_scissor(cb, 0, &[area]);
            device.cmd_push_constants(cb, pipeline.layout, pipeline::PUSH_STAGES, 0, push);
            device.cmd_draw(cb, pipeline::VERTICES_PER_SHAPE, instances, 0, 0);
            device.cmd_end_rendering(cb);
            device.end_command_buffer(cb)?;
        }
        Ok(())
    }

    /// Records, once, the copy of the image into the readback buffer, with
    /// the barriers that order it after the draw and before host reads.
    pub(crate) fn record_copy(&self, target: &Target) -> Result<(), HostError> {
        let device = &self.ctx.device;
        let cb = self.copy;
        let to_transfer = [vk::ImageMemoryBarrier2::default()
            .src_stage_mask(vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT)
            .src_access_mask(vk::AccessFlags2::COLOR_ATTACHMENT_WRITE)
            .dst_stage_mask(vk::PipelineStageFlags2::COPY)
            .dst_access_mask(vk::AccessFlags2::TRANSFER_READ)
            .old_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
            .new_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
            .image(target.image)
            .subresource_range(COLOR_RANGE)];
        let region = vk::BufferImageCopy {
            buffer_offset: 0,
            buffer_row_length: 0, // tightly packed
            buffer_image_height: 0,
            image_subresource: vk::ImageSubresourceLayers {
                aspect_mask: vk::ImageAspectFlags::COLOR,
                mip_level: 0,
                base_array_layer: 0,
                layer_count: 1,
            },
            image_offset: vk::Offset3D::default(),
            image_extent: target.extent.into(),
        };
        let to_host = [vk::BufferMemoryBarrier2::default()
            .src_stage_mask(vk::PipelineStageFlags2::COPY)
            .src_access_mask(vk::AccessFlags2::TRANSFER_WRITE)
            .dst_stage_mask(vk::PipelineStageFlags2::HOST)
            .dst_access_mask(vk::AccessFlags2::HOST_READ)
            .buffer(target.buffer)
            .offset(0)
            .size(vk::WHOLE_SIZE)];
        // SAFETY: the command buffer is fresh (never submitted); the image,
        // buffer and region are alive and in bounds. It is recorded without
        // ONE_TIME_SUBMIT, so it may be submitted again once each fence wait
        // returns.
        unsafe {
            device.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default())?;
            device.cmd_pipeline_barrier2(
                cb,
                &vk::DependencyInfo::default().image_memory_barriers(&to_transfer),
            );
            device.cmd_copy_image_to_buffer(
                cb,
                target.image,
                vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                target.buffer,
                &[region],
            );
            device.cmd_pipeline_barrier2(
                cb,
                &vk::DependencyInfo::default().buffer_memory_barriers(&to_host),
            );
            device.end_command_buffer(cb)?;
        }
        Ok(())
    }

    /// Submits `cb` to the queue and waits for it to finish.
    pub(crate) fn submit_and_wait(&self, cb: vk::CommandBuffer) -> Result<(), HostError> {
        let device = &self.ctx.device;
        let cbs = [vk::CommandBufferSubmitInfo::default().command_buffer(cb)];
        let submits = [vk::SubmitInfo2::default().command_buffer_infos(&cbs)];
        // SAFETY: the fence is not pending (every submission is waited on before
        // the next), `cb` is fully recorded, and `&mut Renderer` gives this
        // thread exclusive use of the queue.
        unsafe {
            device.reset_fences(&[self.fence])?;
            device.queue_submit2(self.ctx.queue, &submits, self.fence)?;
            device.wait_for_fences(&[self.fence], true, FENCE_TIMEOUT_NS)?;
        }
        Ok(())
    }
}

impl Drop for Commands {
    fn drop(&mut self) {
        // SAFETY: the renderer waits for the device to go idle before its parts
        // drop, so no command buffer is pending and the fence is unused;
        // destroying the pool frees its command buffers; null handles are ignored.
        unsafe {
            self.ctx.device.destroy_fence(self.fence, None);
            self.ctx.device.destroy_command_pool(self.pool, None);
        }
    }
}
