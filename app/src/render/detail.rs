//! Full resolution where the user reads, for a volume shown as an overview (over the GPU memory
//! budget): a slab of whole slices along k at every voxel, voxels and labels, beside the
//! overview. Its textures are a ring of `count` layers (slice k in layer k mod count), so moving
//! the slab uploads only the slices that come into it. The slice shader takes a voxel from the
//! slab when the slab holds its slice, else from the overview. The volume stays in the engine's
//! memory, so the slab is written from there, never re-read from disk.

use eframe::egui_wgpu::wgpu;
use groundglass_study::{Dirty, LabelVolume, Volume, VolumeLayout};

use super::volume_texture::{format_of, texture_3d, texture_bytes};

/// The detail slab takes at most this share of the budget (the overview takes the rest, or less).
const BUDGET_SHARE: u64 = 4;
/// Fewer slices than this are not worth a slab.
const MIN_SLICES: usize = 3;

pub struct Detail {
    pub volume_view: wgpu::TextureView,
    pub labels_view: wgpu::TextureView,
    volume: wgpu::Texture,
    labels: wgpu::Texture,
    format: wgpu::TextureFormat,
    dims: [usize; 3],
    /// Layers of the ring (0: the 1 x 1 x 1 stand-in of a volume that needs no slab).
    count: usize,
    /// The first slice held (`first..first + count`), once placed.
    held: Option<usize>,
}

/// How many whole slices the slab holds for a volume of `dims` (`texel` bytes a voxel) kept
/// every `step`-th voxel in `budget` bytes, the overview taking `overview_bytes` of it: 0 when
/// there is no overview, or no room. `limit`: the longest side of a 3D texture.
pub fn slices_for(
    dims: [usize; 3],
    texel: usize,
    step: usize,
    budget: Option<u64>,
    overview_bytes: u64,
    limit: usize,
) -> usize {
    let Some(budget) = budget else {
        return 0;
    };
    let [w, h, depth] = dims;
    if step <= 1 || w > limit || h > limit {
        return 0;
    }
    // Voxels and labels of one slice.
    let slice_bytes = (w * h * (texel + 1)) as u64;
    let room = budget
        .saturating_sub(overview_bytes)
        .min(budget / BUDGET_SHARE);
    let count = (room / slice_bytes.max(1)) as usize;
    let count = count.min(depth).min(limit);
    if count < MIN_SLICES {
        0
    } else {
        count
    }
}

/// Where a slab of `count` slices of a volume `depth` slices deep should start for a user reading
/// at voxel `k` (fractional: a viewport's centre), or `None` where it stays: it moves once `k`
/// leaves the middle half of what it holds (`held` is its first slice), and then centres on `k`.
/// At either end of the volume it cannot centre, and stays while `k` is in it.
pub fn slab_start(count: usize, depth: usize, held: Option<usize>, k: f64) -> Option<usize> {
    if count == 0 || count > depth || !k.is_finite() {
        return None;
    }
    let last_first = depth - count;
    let want = ((k.round() as i64) - (count / 2) as i64).clamp(0, last_first as i64) as usize;
    let Some(first) = held else {
        return Some(want);
    };
    if first == want {
        return None;
    }
    let margin = (count / 4) as f64;
    let lo = if first == 0 {
        f64::NEG_INFINITY
    } else {
        first as f64 + margin
    };
    let hi = if first == last_first {
        f64::INFINITY
    } else {
        (first + count) as f64 - 1.0 - margin
    };
    (k < lo || k > hi).then_some(want)
}

impl Detail {
    /// A slab of `count` slices for `layout` (0: a 1 x 1 x 1 stand-in the bind group needs).
    pub fn new(device: &wgpu::Device, layout: &VolumeLayout, count: usize) -> Self {
        let (format, _, _) = format_of(layout);
        let [w, h, _] = layout.dims;
        let size = if count == 0 { [1, 1, 1] } else { [w, h, count] };
        let volume = texture_3d(device, "groundglass detail volume", size, format);
        let labels = texture_3d(
            device,
            "groundglass detail labels",
            size,
            wgpu::TextureFormat::R8Uint,
        );
        Detail {
            volume_view: volume.create_view(&wgpu::TextureViewDescriptor::default()),
            labels_view: labels.create_view(&wgpu::TextureViewDescriptor::default()),
            volume,
            labels,
            format,
            dims: layout.dims,
            count,
            held: None,
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The slices held, once placed.
    pub fn held(&self) -> Option<std::ops::Range<usize>> {
        self.held.map(|f| f..f + self.count)
    }

    /// The shader's `Folding.detail`: first slice held and slices (0 until placed).
    pub fn uniform(&self) -> [f32; 4] {
        match self.held {
            Some(first) => [first as f32, self.count as f32, 0.0, 0.0],
            None => [0.0; 4],
        }
    }

    /// Where the slab should start for a user reading at voxel `k` ([`slab_start`]).
    pub fn first_for(&self, k: f64) -> Option<usize> {
        slab_start(self.count, self.dims[2], self.held, k)
    }

    /// Holds slices `first..first + count` from now on, writing those it did not hold (voxels
    /// from `volume`, labels from `labels` or none). Returns the slices and bytes written.
    pub fn move_to(
        &mut self,
        queue: &wgpu::Queue,
        first: usize,
        volume: &Volume,
        labels: Option<&LabelVolume>,
    ) -> (usize, usize) {
        let n = self.count;
        if n == 0 || volume.layout.dims != self.dims || first + n > self.dims[2] {
            return (0, 0);
        }
        let old = self.held();
        let plane = self.dims[0] * self.dims[1];
        let labels = labels.filter(|l| l.dims == self.dims);
        let zeros = vec![0u8; if labels.is_some() { 0 } else { plane }];
        let (mut slices, mut bytes) = (0, 0);
        for k in first..first + n {
            if old.as_ref().is_some_and(|r| r.contains(&k)) {
                continue;
            }
            let slice = volume.voxels.view(k * plane, plane);
            let data = texture_bytes(self.format, slice, &volume.layout, plane);
            self.write_layer(queue, &self.volume, k, &data);
            let label_bytes = match labels {
                Some(l) => &l.labels[k * plane..(k + 1) * plane],
                None => &zeros[..],
            };
            self.write_layer(queue, &self.labels, k, label_bytes);
            slices += 1;
            bytes += data.len() + label_bytes.len();
        }
        self.held = Some(first);
        (slices, bytes)
    }

    /// Copies the dirty slices of `labels` that the slab holds; returns the bytes written.
    pub fn write_labels(&self, queue: &wgpu::Queue, labels: &LabelVolume, dirty: Dirty) -> usize {
        let Some(held) = self.held() else {
            return 0;
        };
        if labels.dims != self.dims {
            return 0;
        }
        let plane = self.dims[0] * self.dims[1];
        let mut bytes = 0;
        for k in dirty.z0.max(held.start)..dirty.z1.min(held.end) {
            let data = &labels.labels[k * plane..(k + 1) * plane];
            self.write_layer(queue, &self.labels, k, data);
            bytes += data.len();
        }
        bytes
    }

    /// Slice `k`'s texels into its layer of `texture` (whole rows; `data` one slice).
    fn write_layer(&self, queue: &wgpu::Queue, texture: &wgpu::Texture, k: usize, data: &[u8]) {
        let [w, h, _] = self.dims;
        if data.is_empty() || !data.len().is_multiple_of(w * h) {
            return;
        }
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: 0,
                    y: 0,
                    z: (k % self.count) as u32,
                },
                aspect: wgpu::TextureAspect::All,
            },
            data,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some((data.len() / h) as u32),
                rows_per_image: Some(h as u32),
            },
            wgpu::Extent3d {
                width: w as u32,
                height: h as u32,
                depth_or_array_layers: 1,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slab_fits_what_the_budget_leaves() {
        // 512 x 512 x 3000 int16 at a 1 GiB budget, an overview of every 2nd voxel (295 MB):
        // a quarter of the budget, in slices of 768 KiB (voxels and labels): 341.
        let dims = [512, 512, 3000];
        let n = slices_for(dims, 2, 2, Some(1 << 30), 295 << 20, 2048);
        assert_eq!(n, 341);
        // The room the overview leaves, where that is less.
        assert_eq!(
            slices_for(dims, 2, 2, Some(1 << 30), (1 << 30) - (10 << 20), 2048),
            13
        );
        assert_eq!(
            slices_for(dims, 2, 1, Some(1 << 30), 0, 2048),
            0,
            "no overview"
        );
        assert_eq!(slices_for(dims, 2, 2, None, 0, 2048), 0, "no budget");
        assert_eq!(
            slices_for(dims, 2, 2, Some(1 << 30), 1 << 30, 2048),
            0,
            "no room"
        );
        assert_eq!(
            slices_for([4096, 512, 3000], 2, 2, Some(1 << 34), 0, 2048),
            0,
            "a slice wider than a texture may be"
        );
        // Never deeper than the volume or the texture limit.
        assert_eq!(slices_for([16, 16, 40], 2, 2, Some(1 << 30), 0, 2048), 40);
        assert_eq!(
            slices_for([16, 16, 4000], 2, 2, Some(1 << 30), 0, 2048),
            2048
        );
    }

    #[test]
    fn the_slab_centres_on_the_reader_and_stays_while_they_read_inside_it() {
        let at = |held, k| slab_start(100, 1000, held, k);
        assert_eq!(at(None, 500.0), Some(450));
        assert_eq!(at(None, 3.0), Some(0), "clamped at the start");
        assert_eq!(at(None, 999.0), Some(900), "and at the end");
        assert_eq!(at(Some(450), 500.4), None, "where it is");
        assert_eq!(at(Some(450), 480.0), None, "inside the middle half");
        assert_eq!(at(Some(450), 524.0), None);
        assert_eq!(at(Some(450), 525.0), Some(475), "past it: centred again");
        assert_eq!(at(Some(450), 470.0), Some(420));
        assert_eq!(at(Some(0), 2.0), None, "at the start it stays");
        assert_eq!(at(Some(900), 998.0), None, "and at the end");
        assert_eq!(at(Some(900), 10.0), Some(0), "a jump");
        assert_eq!(slab_start(0, 1000, None, 5.0), None, "no slab");
        assert_eq!(slab_start(100, 1000, None, f64::NAN), None);
    }
}
