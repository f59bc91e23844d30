//! The offscreen colour image the game is drawn into, and the host-visible
//! buffer its pixels are copied to for reading.

use std::ptr::NonNull;
use std::sync::Arc;

use ash::vk;

use super::context::Context;
use crate::HostError;

/// Pixel format of the colour image and of [`super::Renderer::pixels`].
pub(crate) const FORMAT: vk::Format = vk::Format::R8G8B8A8_UNORM;

/// The single colour mip level and layer of the image.
pub(crate) const COLOR_RANGE: vk::ImageSubresourceRange = vk::ImageSubresourceRange {
    aspect_mask: vk::ImageAspectFlags::COLOR,
    base_mip_level: 0,
    level_count: 1,
    base_array_layer: 0,
    layer_count: 1,
};

/// A device-local colour image and a persistently mapped readback buffer of
/// `width * height * 4` bytes. Handles start null and are filled in as they
/// are created, so a failure half-way destroys exactly what exists.
pub(crate) struct Target {
    ctx: Arc<Context>,
    pub(crate) extent: vk::Extent2D,
    pub(crate) image: vk::Image,
    image_memory: vk::DeviceMemory,
    pub(crate) view: vk::ImageView,
    pub(crate) buffer: vk::Buffer,
    buffer_memory: vk::DeviceMemory,
    /// Start of the mapped buffer memory; `None` until mapped.
    mapped: Option<NonNull<u8>>,
    len: usize,
    coherent: bool,
}

// SAFETY: the mapping is owned by this struct and only read through `&self`
// (`pixels`) or written by the GPU while the renderer holds `&mut self`;
// Vulkan handles may be used from any thread with external synchronisation,
// which `&mut` access provides.
unsafe impl Send for Target {}

impl Target {
    /// Creates the image, its view and the readback buffer for a
    /// `width` x `height` frame.
    pub(crate) fn new(ctx: Arc<Context>, width: u32, height: u32) -> Result<Self, HostError> {
        let max = ctx.limits.max_image_dimension2_d;
        if width == 0 || height == 0 || width > max || height > max {
            return Err(HostError::FrameSize { width, height });
        }
        let len = width as usize * height as usize * 4;
        let mut t = Self {
            ctx,
            extent: vk::Extent2D { width, height },
            image: vk::Image::null(),
            image_memory: vk::DeviceMemory::null(),
            view: vk::ImageView::null(),
            buffer: vk::Buffer::null(),
            buffer_memory: vk::DeviceMemory::null(),
            mapped: None,
            len,
            coherent: true,
        };
        t.create_image()?;
        t.create_buffer()?;
        Ok(t)
    }

    fn create_image(&mut self) -> Result<(), HostError> {
        let device = &self.ctx.device;
        let info = vk::ImageCreateInfo::default()
            .image_type(vk::ImageType::TYPE_2D)
            .format(FORMAT)
            .extent(self.extent.into())
            .mip_levels(1)
            .array_layers(1)
            .samples(vk::SampleCountFlags::TYPE_1)
            .tiling(vk::ImageTiling::OPTIMAL)
            .usage(vk::ImageUsageFlags::COLOR_ATTACHMENT | vk::ImageUsageFlags::TRANSFER_SRC)
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .initial_layout(vk::ImageLayout::UNDEFINED);
        // SAFETY: `info` is valid and the device is alive; `Drop` destroys the image.
        self.image = unsafe { device.create_image(&info, None) }?;
        // SAFETY: `self.image` was just created on this device.
        let req = unsafe { device.get_image_memory_requirements(self.image) };
        let (type_index, _) = self
            .ctx
            .memory_type(
                req.memory_type_bits,
                &[vk::MemoryPropertyFlags::DEVICE_LOCAL, vk::MemoryPropertyFlags::empty()],
            )
            .ok_or(HostError::NoMemoryType("colour image"))?;
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(req.size)
            .memory_type_index(type_index);
        // SAFETY: size and type come from the image's requirements; `Drop` frees it.
        self.image_memory = unsafe { device.allocate_memory(&alloc, None) }?;
        // SAFETY: the memory is fresh, large enough and of an allowed type.
        unsafe { device.bind_image_memory(self.image, self.image_memory, 0) }?;
        let view_info = vk::ImageViewCreateInfo::default()
            .image(self.image)
            .view_type(vk::ImageViewType::TYPE_2D)
            .format(FORMAT)
            .subresource_range(COLOR_RANGE);
        // SAFETY: the image is bound to memory; `Drop` destroys the view.
        self.view = unsafe { device.create_image_view(&view_info, None) }?;
        Ok(())
    }

    fn create_buffer(&mut self) -> Result<(), HostError> {
        let device = &self.ctx.device;
        let info = vk::BufferCreateInfo::default()
            .size(self.len as vk::DeviceSize)
            .usage(vk::BufferUsageFlags::TRANSFER_DST)
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        // SAFETY: `info` is valid; `Drop` destroys the buffer.
        self.buffer = unsafe { device.create_buffer(&info, None) }?;
        // SAFETY: `self.buffer` was just created on this device.
        let req = unsafe { device.get_buffer_memory_requirements(self.buffer) };
        use vk::MemoryPropertyFlags as F;
        // Cached memory makes CPU reads fast on real GPUs; coherent spares the
        // invalidate call.
        let (type_index, flags) = self
            .ctx
            .memory_type(
                req.memory_type_bits,
                &[
                    F::HOST_VISIBLE | F::HOST_COHERENT | F::HOST_CACHED,
                    F::HOST_VISIBLE | F::HOST_CACHED,
                    F::HOST_VISIBLE | F::HOST_COHERENT,
                    F::HOST_VISIBLE,
                ],
            )
            .ok_or(HostError::NoMemoryType("readback buffer"))?;
        self.coherent = flags.contains(F::HOST_COHERENT);
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(req.size)
            .memory_type_index(type_index);
        // SAFETY: size and type come from the buffer's requirements; `Drop` frees it.
        self.buffer_memory = unsafe { device.allocate_memory(&alloc, None) }?;
        // SAFETY: the memory is fresh, large enough and of an allowed type.
        unsafe { device.bind_buffer_memory(self.buffer, self.buffer_memory, 0) }?;
        // SAFETY: host-visible memory, not mapped yet; it stays mapped until
        // `Drop` frees it (freeing unmaps implicitly).
        let ptr = unsafe {
            device.map_memory(self.buffer_memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
        }?;
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or(HostError::NoMemoryType("readback buffer"))?;
        // SAFETY: the mapping covers at least `len` bytes (`req.size >= len`) and
        // nothing else accesses it yet. Zeroing means `pixels` never exposes
        // uninitialised memory before the first frame.
        unsafe { ptr.as_ptr().write_bytes(0, self.len) };
        self.mapped = Some(ptr);
        if !self.coherent {
            let range = self.whole_range();
            // SAFETY: the range covers the mapped memory; this makes the zeroes
            // reach the device before any GPU write.
            unsafe { device.flush_mapped_memory_ranges(&[range]) }?;
        }
        Ok(())
    }

    fn whole_range(&self) -> vk::MappedMemoryRange<'static> {
        vk::MappedMemoryRange::default().memory(self.buffer_memory).offset(0).size(vk::WHOLE_SIZE)
    }

    /// Makes the GPU's writes to the buffer visible to the CPU. Call after the
    /// copy's fence has signalled.
    pub(crate) fn invalidate(&self) -> Result<(), HostError> {
        if !self.coherent {
            let range = self.whole_range();
            // SAFETY: the buffer memory is mapped and the range covers it.
            unsafe { self.ctx.device.invalidate_mapped_memory_ranges(&[range]) }?;
        }
        Ok(())
    }

    /// The mapped buffer: tightly packed RGBA rows, top row first.
    pub(crate) fn pixels(&self) -> &[u8] {
        match self.mapped {
            // SAFETY: the mapping is `len` bytes, initialised (zeroed at creation,
            // then written by completed copies), lives as long as `self`, and the
            // GPU only writes it during `Renderer::render`, which takes `&mut self`
            // and so cannot overlap this borrow.
            Some(ptr) => unsafe { std::slice::from_raw_parts(ptr.as_ptr(), self.len) },
            None => &[],
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let device = &self.ctx.device;
        // SAFETY: the renderer waits for the device to go idle before its parts
        // drop, so none of these objects is in use; null handles are ignored by
        // Vulkan, and freeing mapped memory unmaps it.
        unsafe {
            device.destroy_buffer(self.buffer, None);
            device.free_memory(self.buffer_memory, None);
            device.destroy_image_view(self.view, None);
            device.destroy_image(self.image, None);
            device.free_memory(self.image_memory, None);
        }
    }
}
