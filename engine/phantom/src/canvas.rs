//! The voxel grid being painted: a tissue and a label per voxel. Anatomy is described in a
//! canonical frame (millimetres in a 352 x 352 x 288 mm field of view, centred on the grid centre,
//! LPS axes); a grid with another field of view scales that frame to fit, so every organ is in
//! every phantom whatever its size.

use std::ops::RangeInclusive;

use groundglass_study::Affine;

use crate::config::CANONICAL_FOV_MM;
use crate::shape::{Bounds, V3};
use crate::tissue::Tissue;

pub struct Canvas {
    pub dims: [usize; 3],
    pub spacing: V3,
    /// LPS millimetres per canonical millimetre along x, y, z.
    pub scale: V3,
    pub tissue: Vec<u8>,
    pub labels: Vec<u8>,
}

/// One voxel offered to a painter: its canonical position, indices and current content.
pub struct At {
    pub p: V3,
    pub j: usize,
    pub k: usize,
    pub label: u8,
}

impl Canvas {
    pub fn new(dims: [usize; 3], spacing: V3) -> Self {
        let fov: Vec<f64> = (0..3).map(|a| dims[a] as f64 * spacing[a]).collect();
        // One in-plane scale keeps cross-sections round; z scales on its own.
        let xy = (fov[0] / CANONICAL_FOV_MM[0]).min(fov[1] / CANONICAL_FOV_MM[1]);
        let n = dims[0] * dims[1] * dims[2];
        Canvas {
            dims,
            spacing,
            scale: [xy, xy, fov[2] / CANONICAL_FOV_MM[2]],
            tissue: vec![Tissue::Air as u8; n],
            labels: vec![0; n],
        }
    }

    /// Voxel (i, j, k) to LPS: i toward patient left, j posterior, k superior, the grid centred
    /// on the origin.
    pub fn affine(&self) -> Affine {
        let origin = self.lps_of_index(0, 0, 0);
        let [dx, dy, dz] = self.spacing;
        Affine::from_axes([dx, 0.0, 0.0], [0.0, dy, 0.0], [0.0, 0.0, dz], origin)
    }

    fn lps_of_index(&self, i: usize, j: usize, k: usize) -> V3 {
        let c =
            |a: usize, n: usize| (n as f64 - (self.dims[a] as f64 - 1.0) / 2.0) * self.spacing[a];
        [c(0, i), c(1, j), c(2, k)]
    }

    /// Canonical coordinate of index `n` along `axis`.
    #[inline]
    pub fn coord(&self, axis: usize, n: usize) -> f64 {
        (n as f64 - (self.dims[axis] as f64 - 1.0) / 2.0) * self.spacing[axis] / self.scale[axis]
    }

    /// Canonical position to LPS.
    pub fn to_lps(&self, c: V3) -> V3 {
        [
            c[0] * self.scale[0],
            c[1] * self.scale[1],
            c[2] * self.scale[2],
        ]
    }

    /// Indices along `axis` whose canonical coordinate lies in [lo, hi]; `None` when none does.
    fn range(&self, axis: usize, lo: f64, hi: f64) -> Option<RangeInclusive<usize>> {
        let step = self.spacing[axis] / self.scale[axis];
        let mid = (self.dims[axis] as f64 - 1.0) / 2.0;
        let a = (lo / step + mid).ceil().max(0.0);
        let b = (hi / step + mid).floor().min(self.dims[axis] as f64 - 1.0);
        (a <= b).then_some(a as usize..=b as usize)
    }

    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        (k * self.dims[1] + j) * self.dims[0] + i
    }

    /// Offers every voxel within `bounds` (canonical) to `f`, which returns the tissue and label to
    /// write there, or `None` to leave the voxel as it is. Later paint wins, so the order of calls
    /// is the order of precedence.
    pub fn paint(&mut self, bounds: Bounds, mut f: impl FnMut(&At) -> Option<(Tissue, u8)>) {
        let (lo, hi) = bounds;
        let (Some(ri), Some(rj), Some(rk)) = (
            self.range(0, lo[0], hi[0]),
            self.range(1, lo[1], hi[1]),
            self.range(2, lo[2], hi[2]),
        ) else {
            return;
        };
        for k in rk {
            let z = self.coord(2, k);
            for j in rj.clone() {
                let y = self.coord(1, j);
                for i in ri.clone() {
                    let idx = self.index(i, j, k);
                    let at = At {
                        p: [self.coord(0, i), y, z],
                        j,
                        k,
                        label: self.labels[idx],
                    };
                    if let Some((t, l)) = f(&at) {
                        self.tissue[idx] = t as u8;
                        self.labels[idx] = l;
                    }
                }
            }
        }
    }

    /// Writes `tissue` and `label` to voxels `i0..=i1` of row (j, k).
    pub fn span(&mut self, j: usize, k: usize, i0: usize, i1: usize, tissue: Tissue, label: u8) {
        let a = self.index(i0, j, k);
        let b = self.index(i1, j, k);
        self.tissue[a..=b].fill(tissue as u8);
        self.labels[a..=b].fill(label);
    }

    /// Indices along x whose canonical coordinate lies in [lo, hi].
    pub fn x_range(&self, lo: f64, hi: f64) -> Option<RangeInclusive<usize>> {
        self.range(0, lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_grid_is_the_canonical_frame_centred() {
        let c = Canvas::new([160, 160, 96], [2.2, 2.2, 3.0]);
        assert!(c.scale.iter().all(|s| (s - 1.0).abs() < 1e-12));
        let a = c.affine();
        let centre = a.apply([79.5, 79.5, 47.5]);
        assert!(centre.iter().all(|v| v.abs() < 1e-9));
        assert_eq!(a.column(0), [2.2, 0.0, 0.0]);
        // Index ranges agree with coordinates.
        let r = c.range(0, -1.0, 1.2).expect("voxels near the centre");
        assert_eq!(r, 80..=80);
        assert!((c.coord(0, 80) - 1.1).abs() < 1e-9);
    }
}
