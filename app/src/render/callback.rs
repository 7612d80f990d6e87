//! The per-frame paint callback: a viewport index and ~150 bytes of parameters. It writes them to
//! that viewport's uniform buffer and draws one triangle; the volume texture is never touched.

use eframe::egui_wgpu::{self, wgpu};

use super::RenderContext;

/// Uniforms of one viewport, laid out as `Params` in `shaders/slice.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SliceParams {
    pub screen_to_voxel: [[f32; 4]; 4],
    pub rect_size: [f32; 4],
    pub dims: [f32; 4],
    /// centre, width, rescale slope, rescale intercept
    pub window: [f32; 4],
    /// invert, colour, VOI function, label overlay opacity
    pub flags: [f32; 4],
    /// Thick slab: first sample's offset in slices (<= 0), samples (0 or 1: the slice alone),
    /// projection (0 max, 1 min, 2 mean); and the voxel axis every sample lies on whole voxels
    /// of (`view::whole_voxel_axis`; -1 none). The step between samples is the third column of
    /// `screen_to_voxel`.
    pub slab: [f32; 4],
}

pub struct SliceCallback {
    pub viewport: usize,
    /// The volume it shows.
    pub slot: super::VolumeSlot,
    pub params: SliceParams,
}

impl egui_wgpu::CallbackTrait for SliceCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(ctx) = resources.get_mut::<RenderContext>() {
            if let Some(buffer) = ctx.uniforms.get(self.viewport) {
                queue.write_buffer(buffer, 0, bytemuck::bytes_of(&self.params));
                ctx.stats.uniform_writes += 1;
            }
            ctx.prepare_pipeline(device, self.slot, super::Drawn::of(&self.params));
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: eframe::egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(ctx) = resources.get::<RenderContext>() else {
            return;
        };
        let Some((pipeline, bind_group)) =
            ctx.draw_state(self.slot, self.viewport, super::Drawn::of(&self.params))
        else {
            return;
        };
        render_pass.set_pipeline(pipeline);
        render_pass.set_bind_group(0, bind_group, &[]);
        render_pass.draw(0..3, 0..1);
    }
}
