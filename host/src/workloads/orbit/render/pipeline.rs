//! The graphics pipeline that draws Orbit: one vertex and one fragment shader
//! (compiled by `build.rs`), no vertex buffers, the [`Scene`] in push
//! constants, and dynamic rendering into the [`FORMAT`] colour image.

use std::io::Cursor;
use std::sync::Arc;

use ash::vk;

use super::context::Context;
use super::target::FORMAT;
use crate::HostError;
use crate::workloads::orbit::game::Scene;

const VERT_SPV: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/game.vert.spv"));
const FRAG_SPV: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/game.frag.spv"));

/// Size of the push-constant block shared by both shaders.
pub(crate) const PUSH_SIZE: usize = 24;
/// Shader stages that read the push constants.
pub(crate) const PUSH_STAGES: vk::ShaderStageFlags = vk::ShaderStageFlags::from_raw(
    vk::ShaderStageFlags::VERTEX.as_raw() | vk::ShaderStageFlags::FRAGMENT.as_raw(),
);
/// Vertices per instance: every shape is drawn as two triangles.
pub(crate) const VERTICES_PER_SHAPE: u32 = 6;

/// Lays `scene` out as the shaders' `Scene` push-constant block:
/// `vec2 player; float player_size; float aspect; float time; uint obstacles;`.
pub(crate) fn push_constants(scene: &Scene) -> [u8; PUSH_SIZE] {
    let words = [
        scene.player_x.to_bits(),
        scene.player_y.to_bits(),
        scene.player_size.to_bits(),
        scene.aspect.to_bits(),
        scene.time_s.to_bits(),
        scene.obstacles,
    ];
    let mut out = [0u8; PUSH_SIZE];
    for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    out
}

/// The pipeline and its layout.
pub(crate) struct Pipeline {
    ctx: Arc<Context>,
    pub(crate) layout: vk::PipelineLayout,
    pub(crate) pipeline: vk::Pipeline,
}

impl Pipeline {
    /// Builds the pipeline for [`FORMAT`] colour attachments; viewport and
    /// scissor are dynamic.
    pub(crate) fn new(ctx: Arc<Context>) -> Result<Self, HostError> {
        let mut p = Self {
            ctx: Arc::clone(&ctx),
            layout: vk::PipelineLayout::null(),
            pipeline: vk::Pipeline::null(),
        };
        let device = &ctx.device;
        let ranges =
            [vk::PushConstantRange { stage_flags: PUSH_STAGES, offset: 0, size: PUSH_SIZE as u32 }];
        let layout_info = vk::PipelineLayoutCreateInfo::default().push_constant_ranges(&ranges);
        // SAFETY: `layout_info` is valid; `Drop` destroys the layout.
        p.layout = unsafe { device.create_pipeline_layout(&layout_info, None) }?;

        let vert = ShaderModule::new(device, "game.vert", VERT_SPV)?;
        let frag = ShaderModule::new(device, "game.frag", FRAG_SPV)?;
        let stages = [
            vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::VERTEX)
                .module(vert.module)
                .name(c"main"),
            vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::FRAGMENT)
                .module(frag.module)
                .name(c"main"),
        ];
        let vertex_input = vk::PipelineVertexInputStateCreateInfo::default();
        let input_assembly = vk::PipelineInputAssemblyStateCreateInfo::default()
            .topology(vk::PrimitiveTopology::TRIANGLE_LIST);
        let viewport =
            vk::PipelineViewportStateCreateInfo::default().viewport_count(1).scissor_count(1);
        let raster = vk::PipelineRasterizationStateCreateInfo::default()
            .polygon_mode(vk::PolygonMode::FILL)
            .cull_mode(vk::CullModeFlags::NONE)
            .front_face(vk::FrontFace::COUNTER_CLOCKWISE)
            .line_width(1.0);
        let multisample = vk::PipelineMultisampleStateCreateInfo::default()
            .rasterization_samples(vk::SampleCountFlags::TYPE_1);
        let blend_attachments = [vk::PipelineColorBlendAttachmentState::default()
            .blend_enable(false)
            .color_write_mask(vk::ColorComponentFlags::RGBA)];
        let blend =
            vk::PipelineColorBlendStateCreateInfo::default().attachments(&blend_attachments);
        let dynamic_states = [vk::DynamicState::VIEWPORT, vk::DynamicState::SCISSOR];
        let dynamic = vk::PipelineDynamicStateCreateInfo::default().dynamic_states(&dynamic_states);
        let formats = [FORMAT];
        let mut rendering =
            vk::PipelineRenderingCreateInfo::default().color_attachment_formats(&formats);
        let info = vk::GraphicsPipelineCreateInfo::default()
            .stages(&stages)
            .vertex_input_state(&vertex_input)
            .input_assembly_state(&input_assembly)
            .viewport_state(&viewport)
            .rasterization_state(&raster)
            .multisample_state(&multisample)
            .color_blend_state(&blend)
            .dynamic_state(&dynamic)
            .layout(p.layout)
            .push_next(&mut rendering);
        // SAFETY: every structure `info` points to lives until the call returns;
        // dynamic rendering is enabled on the device; `Drop` destroys the pipeline.
        let pipelines =
            unsafe { device.create_graphics_pipelines(vk::PipelineCache::null(), &[info], None) }
                .map_err(|(_, e)| e)?;
        p.pipeline = pipelines[0];
        Ok(p)
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // SAFETY: the renderer waits for the device to go idle before its parts
        // drop; null handles are ignored.
        unsafe {
            self.ctx.device.destroy_pipeline(self.pipeline, None);
            self.ctx.device.destroy_pipeline_layout(self.layout, None);
        }
    }
}

/// A shader module that lives only while the pipeline is built.
struct ShaderModule<'a> {
    device: &'a ash::Device,
    module: vk::ShaderModule,
}

impl<'a> ShaderModule<'a> {
    fn new(device: &'a ash::Device, name: &'static str, spv: &[u8]) -> Result<Self, HostError> {
        let code = ash::util::read_spv(&mut Cursor::new(spv))
            .map_err(|e| HostError::Shader { name, reason: e.to_string() })?;
        let info = vk::ShaderModuleCreateInfo::default().code(&code);
        // SAFETY: `code` is SPIR-V produced by glslc at build time; `Drop`
        // destroys the module.
        let module = unsafe { device.create_shader_module(&info, None) }?;
        Ok(Self { device, module })
    }
}

impl Drop for ShaderModule<'_> {
    fn drop(&mut self) {
        // SAFETY: a module may be destroyed once pipelines using it are created.
        unsafe { self.device.destroy_shader_module(self.module, None) };
    }
}
