//! The Vulkan instance, logical device and graphics queue the renderer draws
//! with, opened on the best device that offers Vulkan 1.3.

use ash::vk;

use crate::HostError;
use crate::gpu::{self, GpuInfo, PhysicalGpu};

/// An open Vulkan device. Shared (behind an `Arc`) by every object made from
/// it, so the device outlives them; dropping the last reference waits for
/// the device to go idle and destroys the device, then the instance.
pub(crate) struct Context {
    /// Keeps the Vulkan loader library loaded while the handles below live.
    _entry: ash::Entry,
    pub(crate) instance: ash::Instance,
    pub(crate) device: ash::Device,
    pub(crate) queue: vk::Queue,
    pub(crate) queue_family: u32,
    pub(crate) gpu: GpuInfo,
    pub(crate) memory: vk::PhysicalDeviceMemoryProperties,
    pub(crate) limits: vk::PhysicalDeviceLimits,
}

impl Context {
    /// Loads Vulkan and opens the best Vulkan 1.3 device with a graphics queue,
    /// enabling dynamic rendering and synchronization2.
    pub(crate) fn new() -> Result<Self, HostError> {
        let entry = gpu::load_entry()?;
        let instance = gpu::create_instance(&entry)?;
        match open_device(&instance) {
            Ok((chosen, device, queue, queue_family)) => {
                // SAFETY: `chosen.handle` was enumerated from this live instance.
                let memory =
                    unsafe { instance.get_physical_device_memory_properties(chosen.handle) };
                // SAFETY: as above.
                let limits =
                    unsafe { instance.get_physical_device_properties(chosen.handle) }.limits;
                Ok(Self {
                    _entry: entry,
                    instance,
                    device,
                    queue,
                    queue_family,
                    gpu: chosen.info,
                    memory,
                    limits,
                })
            }
            Err(e) => {
                // SAFETY: no device or other child object of the instance exists
                // (`open_device` destroys nothing it did not hand back).
                unsafe { instance.destroy_instance(None) };
                Err(e)
            }
        }
    }

    /// Index of a memory type allowed by `type_bits` with the first of
    /// `wanted` (tried in order) that the device offers.
    pub(crate) fn memory_type(
        &self,
        type_bits: u32,
        wanted: &[vk::MemoryPropertyFlags],
    ) -> Option<(u32, vk::MemoryPropertyFlags)> {
        let types = &self.memory.memory_types[..self.memory.memory_type_count as usize];
        wanted.iter().find_map(|&flags| {
            types.iter().zip(0u32..).find_map(|(t, i)| {
                (type_bits & (1 << i) != 0 && t.property_flags.contains(flags))
                    .then_some((i, t.property_flags))
            })
        })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: this is the last reference to the device (every renderer
        // object holds an `Arc<Context>`), so all its child objects are already
        // destroyed; waiting for idle first makes sure no queue work is pending.
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.destroy_device(None);
            self.instance.destroy_instance(None);
        }
    }
}

/// Picks the best usable device and creates a logical device with one
/// graphics queue on it; returns the queue's family too.
fn open_device(
    instance: &ash::Instance,
) -> Result<(PhysicalGpu, ash::Device, vk::Queue, u32), HostError> {
    let mut usable: Vec<PhysicalGpu> = gpu::enumerate(instance)?
        .into_iter()
        .filter(|g| g.api_version >= vk::API_VERSION_1_3 && g.graphics_family.is_some())
        .collect();
    let index = gpu::best_index(usable.iter().map(|g| &g.info)).ok_or(HostError::NoVulkanDevice)?;
    let chosen = usable.swap_remove(index);
    let family = chosen.graphics_family.ok_or(HostError::NoVulkanDevice)?;

    let priorities = [1.0_f32];
    let queues = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(family)
        .queue_priorities(&priorities)];
    let mut features13 = vk::PhysicalDeviceVulkan13Features::default()
        .dynamic_rendering(true)
        .synchronization2(true);
    let info =
        vk::DeviceCreateInfo::default().queue_create_infos(&queues).push_next(&mut features13);
    // SAFETY: `chosen.handle` belongs to `instance`; `info` and the structures
    // it points to live until the call returns. Both features are mandatory
    // in Vulkan 1.3, which the filter above requires.
    let device = unsafe { instance.create_device(chosen.handle, &info, None) }?;
    // SAFETY: queue 0 of `family` was requested in `info` above.
    let queue = unsafe { device.get_device_queue(family, 0) };
    Ok((chosen, device, queue, family))
}
