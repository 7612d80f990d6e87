//! A label volume aligned voxel for voxel with its source volume: 0 is background, 1..=255 label
//! ids. Masks drawn on a slice of any plane are written into the voxels they cover, so the same
//! labels show on every plane, export as a NIfTI label map or DICOM SEG, and need no resampling.

use crate::geometry::{Affine, Vec3};
use crate::mpr::PlaneGrid;

#[derive(Clone, Debug, PartialEq)]
pub struct LabelVolume {
    pub dims: [usize; 3],
    pub affine: Affine,
    /// x fastest, then y, then z.
    pub labels: Vec<u8>,
}

/// Voxel slices (z range) a change touched, so a GPU copy can be limited to them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dirty {
    pub z0: usize,
    pub z1: usize,
}

impl Dirty {
    pub fn is_empty(&self) -> bool {
        self.z1 <= self.z0
    }

    pub fn include(&mut self, z: usize) {
        if self.is_empty() {
            *self = Dirty { z0: z, z1: z + 1 };
        } else {
            self.z0 = self.z0.min(z);
            self.z1 = self.z1.max(z + 1);
        }
    }

    pub fn merge(&mut self, other: Dirty) {
        if !other.is_empty() {
            self.include(other.z0);
            self.include(other.z1 - 1);
        }
    }
}

impl LabelVolume {
    pub fn new(dims: [usize; 3], affine: Affine) -> Self {
        LabelVolume {
            dims,
            affine,
            labels: vec![0; dims[0] * dims[1] * dims[2]],
        }
    }

    pub fn clear(&mut self) -> Dirty {
        self.labels.iter_mut().for_each(|l| *l = 0);
        Dirty {
            z0: 0,
            z1: self.dims[2],
        }
    }

    fn voxel_of(&self, inverse: &Affine, p: Vec3) -> Option<usize> {
        let ijk = inverse.apply(p);
        let mut idx = [0usize; 3];
        for a in 0..3 {
            let v = ijk[a].round();
            if !(v >= 0.0 && v < self.dims[a] as f64) {
                return None;
            }
            idx[a] = v as usize;
        }
        Some(idx[0] + self.dims[0] * (idx[1] + self.dims[1] * idx[2]))
    }

    /// The label at an LPS position (nearest voxel), 0 outside.
    pub fn at(&self, p: Vec3) -> u8 {
        self.affine
            .inverse()
            .and_then(|inv| self.voxel_of(&inv, p))
            .map(|i| self.labels[i])
            .unwrap_or(0)
    }

    /// Writes `label` (0 erases) into the voxels under the inside pixels of a mask drawn on slice
    /// `index` of `grid` (`width` x `height` pixels, row-major). Each inside pixel is sampled at
    /// its centre and, when the slice's pixels are finer than the voxels, only the nearest voxel is
    /// set; when they are coarser, sub-samples fill the voxels the pixel covers.
    pub fn paint_slice_mask(
        &mut self,
        grid: &PlaneGrid,
        index: usize,
        width: usize,
        height: usize,
        inside: &[bool],
        label: u8,
    ) -> Dirty {
        let mut dirty = Dirty::default();
        let Some(inverse) = self.affine.inverse() else {
            return dirty;
        };
        let voxel = self.affine.spacing();
        let finest = voxel
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .max(1e-6);
        // Sub-samples per pixel side, so no voxel under a pixel is skipped.
        let sub = |s: f64| ((s / finest).ceil() as usize).clamp(1, 8);
        let (sx, sy) = (sub(grid.spacing[0]), sub(grid.spacing[1]));
        for y in 0..height {
            for x in 0..width {
                if !inside.get(y * width + x).copied().unwrap_or(false) {
                    continue;
                }
                for a in 0..sy {
                    for b in 0..sx {
                        let fx = x as f64 + (b as f64 + 0.5) / sx as f64 - 0.5;
                        let fy = y as f64 + (a as f64 + 0.5) / sy as f64 - 0.5;
                        let p = grid.pixel_to_lps(index, fx, fy);
                        if let Some(i) = self.voxel_of(&inverse, p) {
                            self.labels[i] = label;
                            dirty.include(i / (self.dims[0] * self.dims[1]));
                        }
                    }
                }
            }
        }
        dirty
    }

    /// The inside pixels of `label` on slice `index` of `grid` (nearest voxel per pixel centre).
    pub fn slice_mask(&self, grid: &PlaneGrid, index: usize, label: u8) -> Vec<bool> {
        let Some(inverse) = self.affine.inverse() else {
            return vec![false; grid.width * grid.height];
        };
        let mut out = Vec::with_capacity(grid.width * grid.height);
        for y in 0..grid.height {
            for x in 0..grid.width {
                let p = grid.pixel_to_lps(index, x as f64, y as f64);
                out.push(
                    self.voxel_of(&inverse, p)
                        .map(|i| self.labels[i] == label)
                        .unwrap_or(false),
                );
            }
        }
        out
    }

    /// Voxels carrying each label, indexed by label.
    pub fn counts(&self) -> [usize; 256] {
        let mut c = [0usize; 256];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mpr::Plane;

    fn volume() -> LabelVolume {
        // 6 x 5 x 4 voxels, 0.5 x 0.5 x 2 mm, axis-aligned.
        let affine = Affine::from_axes(
            [0.5, 0.0, 0.0],
            [0.0, 0.5, 0.0],
            [0.0, 0.0, 2.0],
            [10.0, 20.0, 30.0],
        );
        LabelVolume::new([6, 5, 4], affine)
    }

    #[test]
    fn an_acquired_slice_mask_lands_on_its_voxels_exactly() {
        let mut v = volume();
        let grid = PlaneGrid::from_geometry(v.dims, &v.affine, Plane::Acquired);
        let mut inside = vec![false; 6 * 5];
        inside[2 * 6 + 3] = true; // x 3, y 2
        let dirty = v.paint_slice_mask(&grid, 1, 6, 5, &inside, 7);
        assert_eq!(dirty, Dirty { z0: 1, z1: 2 });
        assert_eq!(v.counts()[7], 1);
        assert_eq!(v.labels[3 + 6 * (2 + 5)], 7); // x 3, y 2, z 1
        assert_eq!(v.slice_mask(&grid, 1, 7), inside);
    }

    #[test]
    fn a_coronal_stroke_covers_every_slice_it_crosses() {
        let mut v = volume();
        let grid = PlaneGrid::from_geometry(v.dims, &v.affine, Plane::Coronal);
        // A whole coronal slice: every x and z at one y.
        let inside = vec![true; grid.width * grid.height];
        let dirty = v.paint_slice_mask(&grid, 2, grid.width, grid.height, &inside, 3);
        assert_eq!(dirty, Dirty { z0: 0, z1: 4 });
        assert_eq!(v.counts()[3], 6 * 4);
        // The axial slices show it as one row.
        let axial = PlaneGrid::from_geometry(v.dims, &v.affine, Plane::Axial);
        let row: usize = v.slice_mask(&axial, 0, 3).iter().filter(|&&b| b).count();
        assert_eq!(row, 6);
        // Erasing clears it.
        v.paint_slice_mask(&grid, 2, grid.width, grid.height, &inside, 0);
        assert_eq!(v.counts()[3], 0);
    }
}
