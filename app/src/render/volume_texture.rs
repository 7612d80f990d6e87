//! The volume as a 3D texture of raw stored values: 16-bit for 16-bit data, so a 512^2 x 300 CT
//! takes what it takes on disk. Values that need a lookup table first (Modality LUT) go up as
//! 32-bit floats already mapped; RGB goes up as RGBA8.

use eframe::egui_wgpu::wgpu;
use groundglass_study::{ModalityTransform, VolumeLayout, VoxelKind, VoxelSlice};

use super::fold::Fold;

/// Which shader variant samples the texture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    pub format: wgpu::TextureFormat,
    /// The volume's voxels (the texture's own size differs when folded).
    dims: [usize; 3],
    pub fold: Option<Fold>,
    /// Every `step`-th voxel along each axis is kept (1: all; more: an overview of a volume over
    /// the GPU memory budget).
    pub step: usize,
}

/// The voxels kept of `dims` at `step`.
pub fn kept_dims(dims: [usize; 3], step: usize) -> [usize; 3] {
    dims.map(|d| d.div_ceil(step.max(1)))
}

/// Every `step`-th texel of every `step`-th row of a `w` x `h` slice of `texel_bytes` texels.
pub fn subsample(data: &[u8], w: usize, h: usize, step: usize, texel_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w.div_ceil(step) * h.div_ceil(step) * texel_bytes);
    for y in (0..h).step_by(step) {
        for x in (0..w).step_by(step) {
            let at = (y * w + x) * texel_bytes;
            out.extend_from_slice(&data[at..at + texel_bytes]);
        }
    }
    out
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
    /// `limit`: the longest side a 3D texture may have (the adapter's, or lower to test folding);
    /// `step`: every `step`-th voxel kept along each axis.
    pub fn new(
        device: &wgpu::Device,
        layout: &VolumeLayout,
        limit: usize,
        step: usize,
    ) -> Result<Self, String> {
        let kept = kept_dims(layout.dims, step);
        let fold = Fold::plan(kept, limit)?;
        let (format, class, _) = format_of(layout);
        let size = fold.map_or(kept, |f| f.texture_dims(kept));
        let texture = texture_3d(device, "groundglass volume", size, format);
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        Ok(VolumeTexture {
            texture,
            view,
            class,
            format,
            dims: layout.dims,
            fold,
            step: step.max(1),
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
        let [w, h, depth] = self.dims;
        let n = w * h;
        if k >= depth || !k.is_multiple_of(self.step) {
            return 0;
        }
        let data = texture_bytes(self.format, slice, layout, n);
        let data: &[u8] = &data;
        if data.len() < n * texel_bytes {
            return 0;
        }
        if self.step > 1 {
            let kept = kept_dims(self.dims, self.step);
            let z = k / self.step;
            let slice = subsample(&data[..n * texel_bytes], w, h, self.step, texel_bytes);
            write_box(
                queue,
                &self.texture,
                self.fold,
                kept,
                [0..kept[0], 0..kept[1], z..z + 1],
                &slice,
                texel_bytes,
            );
            return slice.len();
        }
        write_box(
            queue,
            &self.texture,
            self.fold,
            self.dims,
            [0..w, 0..h, k..k + 1],
            &data[..n * texel_bytes],
            texel_bytes,
        );
        n * texel_bytes
    }
}

/// A 3D texture of `size` texels that shaders read and the queue writes (the volume's, its
/// labels', the detail slab's).
pub fn texture_3d(
    device: &wgpu::Device,
    label: &str,
    size: [usize; 3],
    format: wgpu::TextureFormat,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width: size[0] as u32,
            height: size[1] as u32,
            depth_or_array_layers: size[2] as u32,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D3,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

/// A slice's voxels as `format`'s texels: RGB widened to RGBA, Modality LUT data mapped to f32,
/// everything else as stored. `n`: the slice's voxels.
pub fn texture_bytes<'a>(
    format: wgpu::TextureFormat,
    slice: VoxelSlice<'a>,
    layout: &VolumeLayout,
    n: usize,
) -> std::borrow::Cow<'a, [u8]> {
    match (format, &slice) {
        (wgpu::TextureFormat::Rgba8Unorm, VoxelSlice::Rgb8(rgb)) => rgb
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect::<Vec<u8>>()
            .into(),
        (wgpu::TextureFormat::R32Float, s) if !matches!(s, VoxelSlice::F32(_)) => (0..n)
            .flat_map(|i| (layout.modality.apply(s.get(i)) as f32).to_ne_bytes())
            .collect::<Vec<u8>>()
            .into(),
        (_, s) => s.as_bytes().into(),
    }
}

/// Writes the voxel box `range` of a volume with `dims` (its values in `data`, from the box's
/// first z-slice on, whole slices) into `texture`, folded or not.
pub fn write_box(
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    fold: Option<Fold>,
    dims: [usize; 3],
    range: [std::ops::Range<usize>; 3],
    data: &[u8],
    texel_bytes: usize,
) {
    let z0 = range[2].start;
    for piece in Fold::pieces(fold, dims, range) {
        let [x, y, z] = piece.first_voxel;
        let offset = (((z - z0) * dims[1] + y) * dims[0] + x) * texel_bytes;
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: piece.origin[0],
                    y: piece.origin[1],
                    z: piece.origin[2],
                },
                aspect: wgpu::TextureAspect::All,
            },
            data,
            wgpu::TexelCopyBufferLayout {
                offset: offset as u64,
                bytes_per_row: Some((dims[0] * texel_bytes) as u32),
                rows_per_image: Some(dims[1] as u32),
            },
            wgpu::Extent3d {
                width: piece.extent[0],
                height: piece.extent[1],
                depth_or_array_layers: piece.extent[2],
            },
        );
    }
}
