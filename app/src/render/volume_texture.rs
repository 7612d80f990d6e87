//! The volume as a 3D texture of raw stored values: 16-bit for 16-bit data, so a 512^2 x 300 CT
//! takes what it takes on disk. Values that need a lookup table first (Modality LUT) go up as
//! 32-bit floats already mapped; RGB goes up as RGBA8.

use eframe::egui_wgpu::wgpu;
use groundglass_study::{ModalityTransform, VolumeLayout, VoxelKind, VoxelSlice};

/// Which shader variant samples the texture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TexelClass {
    Sint = 0,
    Uint = 1,
    Float = 2,
}

impl TexelClass {
    pub const ALL: [TexelClass; 3] = [TexelClass::Sint, TexelClass::Uint, TexelClass::Float];

    pub fn wgsl_type(self) -> &'static str {
        match self {
            TexelClass::Sint => "i32",
            TexelClass::Uint => "u32",
            TexelClass::Float => "f32",
        }
    }

    pub fn sample_type(self) -> wgpu::TextureSampleType {
        match self {
            TexelClass::Sint => wgpu::TextureSampleType::Sint,
            TexelClass::Uint => wgpu::TextureSampleType::Uint,
            TexelClass::Float => wgpu::TextureSampleType::Float { filterable: false },
        }
    }
}

pub struct VolumeTexture {
    pub texture: wgpu::Texture,
    pub view: wgpu::TextureView,
    pub class: TexelClass,
    format: wgpu::TextureFormat,
    dims: [u32; 3],
}

/// Texture format, texel class and bytes per texel for a layout.
pub fn format_of(layout: &VolumeLayout) -> (wgpu::TextureFormat, TexelClass, usize) {
    use wgpu::TextureFormat as F;
    if matches!(layout.modality, ModalityTransform::Lut(_)) && layout.kind != VoxelKind::Rgb8 {
        return (F::R32Float, TexelClass::Float, 4);
    }
    match layout.kind {
        VoxelKind::U8 => (F::R8Uint, TexelClass::Uint, 1),
        VoxelKind::I16 => (F::R16Sint, TexelClass::Sint, 2),
        VoxelKind::U16 => (F::R16Uint, TexelClass::Uint, 2),
        VoxelKind::I32 => (F::R32Sint, TexelClass::Sint, 4),
        VoxelKind::U32 => (F::R32Uint, TexelClass::Uint, 4),
        VoxelKind::F32 => (F::R32Float, TexelClass::Float, 4),
        VoxelKind::Rgb8 => (F::Rgba8Unorm, TexelClass::Float, 4),
    }
}

impl VolumeTexture {
    pub fn new(device: &wgpu::Device, layout: &VolumeLayout) -> Result<Self, String> {
        let limit = device.limits().max_texture_dimension_3d as usize;
        if layout.dims.iter().any(|d| *d > limit || *d == 0) {
            return Err(format!(
                "the volume is {:?} voxels; this GPU takes 3D textures up to {limit} on a side",
                layout.dims
            ));
        }
        let (format, class, _) = format_of(layout);
        let dims = layout.dims.map(|d| d as u32);
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("groundglass volume"),
            size: wgpu::Extent3d {
                width: dims[0],
                height: dims[1],
                depth_or_array_layers: dims[2],
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D3,
            format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        Ok(VolumeTexture {
            texture,
            view,
            class,
            format,
            dims,
        })
    }

    /// Writes slice `k`; returns the bytes written.
    pub fn write_slice(
        &self,
        queue: &wgpu::Queue,
        k: usize,
        slice: VoxelSlice<'_>,
        layout: &VolumeLayout,
    ) -> usize {
        let (_, _, texel_bytes) = format_of(layout);
        let n = (self.dims[0] * self.dims[1]) as usize;
        let converted: Vec<u8>;
        let data: &[u8] = match (self.format, &slice) {
            (wgpu::TextureFormat::Rgba8Unorm, VoxelSlice::Rgb8(rgb)) => {
                converted = rgb
                    .chunks_exact(3)
                    .flat_map(|p| [p[0], p[1], p[2], 255])
                    .collect();
                &converted
            }
            (wgpu::TextureFormat::R32Float, s) if !matches!(s, VoxelSlice::F32(_)) => {
                // Modality LUT data: upload the mapped values.
                converted = (0..n)
                    .flat_map(|i| (layout.modality.apply(s.get(i)) as f32).to_ne_bytes())
                    .collect();
                &converted
            }
            (_, s) => s.as_bytes(),
        };
        if data.len() < n * texel_bytes || k as u32 >= self.dims[2] {
            return 0;
        }
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: 0,
                    y: 0,
                    z: k as u32,
                },
                aspect: wgpu::TextureAspect::All,
            },
            &data[..n * texel_bytes],
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(self.dims[0] * texel_bytes as u32),
                rows_per_image: Some(self.dims[1]),
            },
            wgpu::Extent3d {
                width: self.dims[0],
                height: self.dims[1],
                depth_or_array_layers: 1,
            },
        );
        n * texel_bytes
    }
}
