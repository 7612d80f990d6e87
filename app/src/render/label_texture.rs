//! The label volume on the GPU: an R8Uint 3D texture with the volume's dims, sampled at the same
//! voxel as the image and blended with a small palette in the slice shader. Only the z-slices a
//! change touched are written.

use eframe::egui_wgpu::wgpu;
use groundglass_study::{Dirty, LabelVolume};

/// Label ids index this palette modulo its size; 0 is never drawn.
pub const PALETTE_SIZE: usize = 16;

/// Uniform layout of `Palette` in `shaders/slice.wgsl`: RGBA colours, alpha scales the opacity.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Palette {
    pub colours: [[f32; 4]; PALETTE_SIZE],
}

pub struct LabelTexture {
    pub texture: wgpu::Texture,
    pub view: wgpu::TextureView,
    dims: [u32; 3],
}

impl LabelTexture {
    pub fn new(device: &wgpu::Device, dims: [usize; 3]) -> Self {
        let dims = dims.map(|d| d.max(1) as u32);
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("groundglass labels"),
            size: wgpu::Extent3d {
                width: dims[0],
                height: dims[1],
                depth_or_array_layers: dims[2],
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D3,
            format: wgpu::TextureFormat::R8Uint,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        LabelTexture {
            texture,
            view,
            dims,
        }
    }

    /// Copies the dirty z-slices of `labels`; returns the bytes written (0 when the dims differ).
    pub fn write(&self, queue: &wgpu::Queue, labels: &LabelVolume, dirty: Dirty) -> usize {
        if labels.dims.map(|d| d as u32) != self.dims || dirty.is_empty() {
            return 0;
        }
        let plane = (self.dims[0] * self.dims[1]) as usize;
        let z1 = dirty.z1.min(self.dims[2] as usize);
        let bytes = &labels.labels[dirty.z0 * plane..z1 * plane];
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: 0,
                    y: 0,
                    z: dirty.z0 as u32,
                },
                aspect: wgpu::TextureAspect::All,
            },
            bytes,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(self.dims[0]),
                rows_per_image: Some(self.dims[1]),
            },
            wgpu::Extent3d {
                width: self.dims[0],
                height: self.dims[1],
                depth_or_array_layers: (z1 - dirty.z0) as u32,
            },
        );
        bytes.len()
    }
}
