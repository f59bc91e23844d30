//! GPU discovery: which Vulkan devices this machine has, and which one the
//! renderer should use.
//!
//! [`list_gpus`] opens a short-lived Vulkan instance to describe every
//! physical device; [`pick_best`] prefers discrete over integrated over
//! virtual over CPU (software) devices. Nothing here keeps a device open.
#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cmp::Reverse;
use std::fmt;

use ash::vk;

use crate::HostError;

/// The kind of a Vulkan physical device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// A separate GPU card.
    Discrete,
    /// A GPU built into the CPU package.
    Integrated,
    /// A GPU handed to a virtual machine.
    Virtual,
    /// A software rasteriser on the CPU, such as lavapipe (llvmpipe).
    Cpu,
    /// Anything else the driver reports.
    Other,
}

impl DeviceType {
    fn from_vk(t: vk::PhysicalDeviceType) -> Self {
        match t {
            vk::PhysicalDeviceType::DISCRETE_GPU => Self::Discrete,
            vk::PhysicalDeviceType::INTEGRATED_GPU => Self::Integrated,
            vk::PhysicalDeviceType::VIRTUAL_GPU => Self::Virtual,
            vk::PhysicalDeviceType::CPU => Self::Cpu,
            _ => Self::Other,
        }
    }

    /// Preference for rendering: higher is better.
    fn rank(self) -> u8 {
        match self {
            Self::Discrete => 4,
            Self::Integrated => 3,
            Self::Virtual => 2,
            Self::Cpu => 1,
            Self::Other => 0,
        }
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Discrete => "discrete",
            Self::Integrated => "integrated",
            Self::Virtual => "virtual",
            Self::Cpu => "cpu",
            Self::Other => "other",
        })
    }
}

/// A description of one Vulkan physical device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    /// Driver-reported device name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// PCI vendor id (0x10de NVIDIA, 0x1002 AMD, 0x8086 Intel, 0x10005 Mesa).
    pub vendor_id: u32,
    /// Vendor-specific device id.
    pub device_id: u32,
    /// What kind of device it is.
    pub device_type: DeviceType,
    /// Highest Vulkan version the device supports, as "major.minor.patch".
    pub api_version: String,
}

/// Lists every Vulkan physical device on this machine.
///
/// Creates and destroys a Vulkan instance (a few tens of milliseconds).
pub fn list_gpus() -> Result<Vec<GpuInfo>, HostError> {
    let entry = load_entry()?;
    let instance = create_instance(&entry)?;
    let gpus = enumerate(&instance).map(|all| all.into_iter().map(|g| g.info).collect());
    // SAFETY: the instance was created above, and no object made from it
    // outlives this call (`enumerate` creates none).
    unsafe { instance.destroy_instance(None) };
    gpus
}

/// The best device for rendering: discrete > integrated > virtual > CPU >
/// other; the first listed wins a tie. `None` if `gpus` is empty.
pub fn pick_best(gpus: &[GpuInfo]) -> Option<&GpuInfo> {
    best_index(gpus).map(|i| &gpus[i])
}

/// Position of [`pick_best`]'s choice among `gpus`.
pub(crate) fn best_index<'a>(gpus: impl IntoIterator<Item = &'a GpuInfo>) -> Option<usize> {
    gpus.into_iter().enumerate().min_by_key(|(_, g)| Reverse(g.device_type.rank())).map(|(i, _)| i)
}

/// A physical device with the facts the renderer needs to choose it.
pub(crate) struct PhysicalGpu {
    pub(crate) handle: vk::PhysicalDevice,
    pub(crate) info: GpuInfo,
    /// Packed Vulkan version the device supports.
    pub(crate) api_version: u32,
    /// First queue family with graphics (and so transfer) support.
    pub(crate) graphics_family: Option<u32>,
}

/// Loads the system Vulkan loader.
pub(crate) fn load_entry() -> Result<ash::Entry, HostError> {
    // SAFETY: loading libvulkan runs its initialisers; the Vulkan loader is
    // designed to be loaded this way, and the returned `Entry` keeps the
    // library loaded for as long as any function pointer from it is used.
    unsafe { ash::Entry::load() }.map_err(|e| HostError::VulkanLoad(e.to_string()))
}

/// Creates a Vulkan 1.3 instance with no layers or extensions.
pub(crate) fn create_instance(entry: &ash::Entry) -> Result<ash::Instance, HostError> {
    let app = vk::ApplicationInfo::default()
        .application_name(c"gridplay-host")
        .engine_name(c"gridplay")
        .api_version(vk::API_VERSION_1_3);
    let info = vk::InstanceCreateInfo::default().application_info(&app);
    // SAFETY: `info` and everything it points to live until the call returns;
    // the caller destroys the instance.
    let instance = unsafe { entry.create_instance(&info, None) }?;
    Ok(instance)
}

/// Describes every physical device of `instance`.
pub(crate) fn enumerate(instance: &ash::Instance) -> Result<Vec<PhysicalGpu>, HostError> {
    // SAFETY: `instance` is a live instance.
    let handles = unsafe { instance.enumerate_physical_devices() }?;
    Ok(handles
        .into_iter()
        .map(|handle| {
            // SAFETY: `handle` was just enumerated from this live instance.
            let props = unsafe { instance.get_physical_device_properties(handle) };
            // SAFETY: as above.
            let families = unsafe { instance.get_physical_device_queue_family_properties(handle) };
            let graphics_family = families
                .iter()
                .position(|f| f.queue_flags.contains(vk::QueueFlags::GRAPHICS) && f.queue_count > 0)
                .and_then(|i| u32::try_from(i).ok());
            let name = props
                .device_name_as_c_str()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "unnamed device".to_owned());
            let v = props.api_version;
            PhysicalGpu {
                handle,
                info: GpuInfo {
                    name,
                    vendor_id: props.vendor_id,
                    device_id: props.device_id,
                    device_type: DeviceType::from_vk(props.device_type),
                    api_version: format!(
                        "{}.{}.{}",
                        vk::api_version_major(v),
                        vk::api_version_minor(v),
                        vk::api_version_patch(v)
                    ),
                },
                api_version: v,
                graphics_family,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(name: &str, device_type: DeviceType) -> GpuInfo {
        GpuInfo {
            name: name.into(),
            vendor_id: 0,
            device_id: 0,
            device_type,
            api_version: "1.3.0".into(),
        }
    }

    #[test]
    fn prefers_discrete_then_integrated_then_virtual_then_cpu() {
        let mut gpus = vec![
            gpu("other", DeviceType::Other),
            gpu("cpu", DeviceType::Cpu),
            gpu("virtual", DeviceType::Virtual),
            gpu("integrated", DeviceType::Integrated),
            gpu("discrete", DeviceType::Discrete),
        ];
        for expected in ["discrete", "integrated", "virtual", "cpu", "other"] {
            assert_eq!(pick_best(&gpus).unwrap().name, expected);
            gpus.retain(|g| g.name != expected);
        }
        assert!(pick_best(&gpus).is_none());
    }

    #[test]
    fn first_wins_a_tie() {
        let gpus = [gpu("a", DeviceType::Cpu), gpu("b", DeviceType::Cpu)];
        assert_eq!(pick_best(&gpus).unwrap().name, "a");
    }

    #[test]
    fn lists_the_vulkan_devices_here() {
        let gpus =
            list_gpus().expect("Vulkan loader (apt-get install libvulkan1 mesa-vulkan-drivers)");
        assert!(!gpus.is_empty(), "no Vulkan device; lavapipe comes with mesa-vulkan-drivers");
        for g in &gpus {
            assert!(!g.name.is_empty());
            assert!(g.api_version.split('.').count() == 3);
        }
    }
}
