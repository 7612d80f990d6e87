//! The label volume on the GPU: an R8Uint 3D texture with the volume's dims, sampled at the same
//! voxel as the image and blended with a small palette in the slice shader. Only the z-slices a
//! change touched are written.

use eframe::egui_wgpu::wgpu;
use groundglass_study::{Dirty, LabelVolume};

use super::fold::Fold;
use super::volume_texture::{kept_dims, subsample, texture_3d, write_box};

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
    /// The volume's voxels; the texture keeps every `step`-th and is folded as the volume's is.
    dims: [usize; 3],
    step: usize,
    fold: Option<Fold>,
}

impl LabelTexture {
    pub fn new(device: &wgpu::Device, dims: [usize; 3], step: usize, fold: Option<Fold>) -> Self {
        let dims = dims.map(|d| d.max(1));
        let step = step.max(1);
        let kept = kept_dims(dims, step);
        let size = fold.map_or(kept, |f| f.texture_dims(kept));
        let texture = texture_3d(
            device,
            "groundglass labels",
            size,
            wgpu::TextureFormat::R8Uint,
        );
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        LabelTexture {
            texture,
            view,
            dims,
            step,
            fold,
        }
    }

    /// Copies the dirty z-slices of `labels`; returns the bytes written (0 when the dims differ).
    pub fn write(&self, queue: &wgpu::Queue, labels: &LabelVolume, dirty: Dirty) -> usize {
        if labels.dims != self.dims || dirty.is_empty() {
            return 0;
        }
        let [w, h, depth] = self.dims;
        let plane = w * h;
        let z1 = dirty.z1.min(depth);
        if dirty.z0 >= z1 {
            return 0;
        }
        if self.step > 1 {
            // The overview's slices among the dirty ones, each subsampled.
            let kept = kept_dims(self.dims, self.step);
            let (k0, k1) = (dirty.z0.div_ceil(self.step), z1.div_ceil(self.step));
            if k0 >= k1 {
                return 0;
            }
            let bytes: Vec<u8> = (k0..k1)
                .flat_map(|k| {
                    let z = k * self.step;
                    subsample(
                        &labels.labels[z * plane..(z + 1) * plane],
                        w,
                        h,
                        self.step,
                        1,
                    )
                })
                .collect();
            write_box(
                queue,
                &self.texture,
                self.fold,
                kept,
                [0..kept[0], 0..kept[1], k0..k1],
                &bytes,
                1,
            );
            return bytes.len();
        }
        let bytes = &labels.labels[dirty.z0 * plane..z1 * plane];
        write_box(
            queue,
            &self.texture,
            self.fold,
            self.dims,
            [0..w, 0..h, dirty.z0..z1],
            bytes,
            1,
        );
        bytes.len()
    }
}
