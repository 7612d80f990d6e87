//! Multiplanar reformatting: a 2D slice in the acquisition plane or in axial, coronal or sagittal,
//! in radiological display convention, with its physical pixel spacing and edge letters.
//!
//! Screen axes in LPS: axial right = +L, down = +P (anterior up, patient left on screen right);
//! coronal right = +L, down = -S (superior up); sagittal right = +P, down = -S (anterior left,
//! superior up). Reformatted slice indices run along +L (sagittal), +P (coronal), +S (axial).

use serde::Serialize;

use crate::geometry::{add, dot, normalize, orientation_letters, scale, Vec3};
use crate::volume::Volume;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plane {
    Acquired,
    Axial,
    Coronal,
    Sagittal,
}

impl Plane {
    /// Screen right, screen down and the slice normal in LPS, in radiological convention (the
    /// module's header); the acquired plane's depend on the volume and are axial's here.
    pub fn axes(self) -> [Vec3; 3] {
        match self {
            Plane::Coronal => [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]],
            Plane::Sagittal => [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]],
            Plane::Axial | Plane::Acquired => [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "acquired" | "acquisition" | "native" => Some(Plane::Acquired),
            "axial" | "transverse" => Some(Plane::Axial),
            "coronal" => Some(Plane::Coronal),
            "sagittal" => Some(Plane::Sagittal),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Plane::Acquired => "acquired",
            Plane::Axial => "axial",
            Plane::Coronal => "coronal",
            Plane::Sagittal => "sagittal",
        }
    }
}

/// Letters on the four edges of a displayed slice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EdgeLetters {
    pub left: String,
    pub right: String,
    pub top: String,
    pub bottom: String,
}

impl EdgeLetters {
    pub fn from_axes(right: Vec3, down: Vec3) -> Self {
        EdgeLetters {
            left: orientation_letters(scale(right, -1.0)),
            right: orientation_letters(right),
            top: orientation_letters(scale(down, -1.0)),
            bottom: orientation_letters(down),
        }
    }
}

/// The sampling grid of a plane through a volume: unit screen axes in LPS, spacing, size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct PlaneGrid {
    pub plane: Plane,
    pub right: Vec3,
    pub down: Vec3,
    /// Direction of increasing slice index.
    pub normal: Vec3,
    /// Millimetres between pixel centres along right and down, and between slices.
    pub spacing: [f64; 3],
    /// LPS position of pixel (0, 0) of slice 0.
    pub origin: Vec3,
    pub width: usize,
    pub height: usize,
    pub count: usize,
}

impl PlaneGrid {
    pub fn new(volume: &Volume, plane: Plane) -> PlaneGrid {
        Self::from_geometry(volume.dims, &volume.affine, plane)
    }

    /// The grid from a layout, before the voxels are in (progressive display).
    pub fn from_layout(layout: &crate::volume::VolumeLayout, plane: Plane) -> PlaneGrid {
        Self::from_geometry(layout.dims, &layout.affine, plane)
    }

    pub fn from_geometry(
        dims: [usize; 3],
        affine: &crate::geometry::Affine,
        plane: Plane,
    ) -> PlaneGrid {
        let a = affine;
        let [nx, ny, nz] = dims;
        let spacing = a.spacing();
        let axis = |c: usize| normalize(a.column(c)).unwrap_or([0.0; 3]);
        if plane == Plane::Acquired {
            // Stored order: rows run along the row cosine, slices along the stack.
            return PlaneGrid {
                plane,
                right: axis(0),
                down: axis(1),
                normal: axis(2),
                spacing,
                origin: a.origin(),
                width: nx,
                height: ny,
                count: nz,
            };
        }
        let [right, down, normal] = plane.axes();
        Self::from_axes(dims, affine, plane, [right, down, normal])
    }

    /// The grid of a plane with the given screen axes (right, down, normal: orthonormal, in LPS),
    /// covering the whole volume: a tilted (oblique) plane of the three-plane layout. `plane`
    /// names the plane it was tilted from.
    pub fn from_axes(
        dims: [usize; 3],
        affine: &crate::geometry::Affine,
        plane: Plane,
        [right, down, normal]: [Vec3; 3],
    ) -> PlaneGrid {
        let a = affine;
        let [nx, ny, nz] = dims;
        let spacing = a.spacing();
        let axis = |c: usize| normalize(a.column(c)).unwrap_or([0.0; 3]);
        // Extent of the voxel centres along each screen axis.
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for corner in 0..8 {
            let ijk = [
                if corner & 1 == 0 {
                    0.0
                } else {
                    (nx - 1) as f64
                },
                if corner & 2 == 0 {
                    0.0
                } else {
                    (ny - 1) as f64
                },
                if corner & 4 == 0 {
                    0.0
                } else {
                    (nz - 1) as f64
                },
            ];
            let p = a.apply(ijk);
            for (d, dir) in [right, down, normal].iter().enumerate() {
                let v = dot(p, *dir);
                lo[d] = lo[d].min(v);
                hi[d] = hi[d].max(v);
            }
        }
        // Each screen axis keeps the spacing of the volume axis closest to it, so an axis-aligned
        // volume is sampled exactly at its voxel centres.
        let step = |dir: Vec3| {
            let best = (0..3)
                .max_by(|&x, &y| dot(axis(x), dir).abs().total_cmp(&dot(axis(y), dir).abs()))
                .unwrap_or(0);
            spacing[best].max(1e-6)
        };
        let s = [step(right), step(down), step(normal)];
        let size = |d: usize| (((hi[d] - lo[d]) / s[d]).round() as usize + 1).clamp(1, 8192);
        let origin = add(
            add(scale(right, lo[0]), scale(down, lo[1])),
            scale(normal, lo[2]),
        );
        PlaneGrid {
            plane,
            right,
            down,
            normal,
            spacing: s,
            origin,
            width: size(0),
            height: size(1),
            count: size(2),
        }
    }

    /// LPS position of pixel (x, y) of slice `index` (fractional pixels allowed).
    pub fn pixel_to_lps(&self, index: usize, x: f64, y: f64) -> Vec3 {
        add(
            add(
                self.origin,
                scale(self.normal, index as f64 * self.spacing[2]),
            ),
            add(
                scale(self.right, x * self.spacing[0]),
                scale(self.down, y * self.spacing[1]),
            ),
        )
    }
}

/// One extracted slice: modality values (or RGB bytes as 0..255 floats), row-major.
#[derive(Clone, Debug)]
pub struct SliceImage {
    pub grid: PlaneGrid,
    pub index: usize,
    pub width: usize,
    pub height: usize,
    /// 1 for greyscale, 3 for RGB.
    pub channels: usize,
    /// Modality values; NaN where the plane leaves the volume.
    pub values: Vec<f32>,
    pub letters: EdgeLetters,
}

impl SliceImage {
    /// Millimetres between pixel centres: (x, y).
    pub fn pixel_spacing(&self) -> [f64; 2] {
        [self.grid.spacing[0], self.grid.spacing[1]]
    }

    /// LPS position of pixel (x, y).
    pub fn pixel_to_lps(&self, x: f64, y: f64) -> Vec3 {
        self.grid.pixel_to_lps(self.index, x, y)
    }

    /// Position of this slice along the plane's normal (mm), as shown in corner text.
    pub fn position_mm(&self) -> f64 {
        dot(self.pixel_to_lps(0.0, 0.0), self.grid.normal)
    }
}

/// Extracts slice `index` of `plane`. An index past the end is clamped to the last slice.
pub fn extract(volume: &Volume, plane: Plane, index: usize) -> SliceImage {
    let grid = PlaneGrid::new(volume, plane);
    let index = index.min(grid.count.saturating_sub(1));
    let channels = if volume.is_colour() { 3 } else { 1 };
    let mut values = vec![f32::NAN; grid.width * grid.height * channels];
    if plane == Plane::Acquired {
        copy_acquired(volume, index, &mut values, channels);
    } else {
        resample(volume, &grid, index, &mut values, channels);
    }
    SliceImage {
        letters: EdgeLetters::from_axes(grid.right, grid.down),
        grid,
        index,
        width: grid.width,
        height: grid.height,
        channels,
        values,
    }
}

fn copy_acquired(volume: &Volume, k: usize, out: &mut [f32], channels: usize) {
    let n = volume.slice_len();
    let base = k * n;
    if channels == 3 {
        if let crate::volume::VoxelData::Rgb8(v) = &volume.voxels {
            for (o, b) in out.iter_mut().zip(&v[base * 3..(base + n) * 3]) {
                *o = f32::from(*b);
            }
        }
        return;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = volume.modality_value(base + i) as f32;
    }
}

/// Trilinear resampling at the grid's pixel centres. Sample points that land on voxel centres
/// (to 1e-6 voxel) take the voxel's value exactly.
fn resample(volume: &Volume, grid: &PlaneGrid, index: usize, out: &mut [f32], channels: usize) {
    let Some(inverse) = volume.affine.inverse() else {
        return;
    };
    let [nx, ny, nz] = volume.dims;
    let rgb = match &volume.voxels {
        crate::volume::VoxelData::Rgb8(v) => Some(v.as_slice()),
        _ => None,
    };
    let sample = |i: usize, j: usize, k: usize, c: usize| -> f64 {
        let idx = (k * ny + j) * nx + i;
        match rgb {
            Some(v) => f64::from(v[idx * 3 + c]),
            None => volume.modality_value(idx),
        }
    };
    let snap = |v: f64| {
        let r = v.round();
        if (v - r).abs() < 1e-6 {
            r
        } else {
            v
        }
    };
    for y in 0..grid.height {
        for x in 0..grid.width {
            let p = grid.pixel_to_lps(index, x as f64, y as f64);
            let ijk = inverse.apply(p).map(snap);
            let inside = ijk
                .iter()
                .zip([nx, ny, nz])
                .all(|(v, n)| *v >= -0.5 && *v <= n as f64 - 0.5);
            if !inside {
                continue;
            }
            let clampi = |v: f64, n: usize| v.clamp(0.0, (n - 1) as f64);
            let (fi, fj, fk) = (clampi(ijk[0], nx), clampi(ijk[1], ny), clampi(ijk[2], nz));
            let (i0, j0, k0) = (
                fi.floor() as usize,
                fj.floor() as usize,
                fk.floor() as usize,
            );
            let (i1, j1, k1) = (
                (i0 + 1).min(nx - 1),
                (j0 + 1).min(ny - 1),
                (k0 + 1).min(nz - 1),
            );
            let (ti, tj, tk) = (fi - i0 as f64, fj - j0 as f64, fk - k0 as f64);
            for c in 0..channels {
                let v = if ti == 0.0 && tj == 0.0 && tk == 0.0 {
                    sample(i0, j0, k0, c)
                } else {
                    let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
                    let c00 = lerp(sample(i0, j0, k0, c), sample(i1, j0, k0, c), ti);
                    let c10 = lerp(sample(i0, j1, k0, c), sample(i1, j1, k0, c), ti);
                    let c01 = lerp(sample(i0, j0, k1, c), sample(i1, j0, k1, c), ti);
                    let c11 = lerp(sample(i0, j1, k1, c), sample(i1, j1, k1, c), ti);
                    lerp(lerp(c00, c10, tj), lerp(c01, c11, tj), tk)
                };
                out[(y * grid.width + x) * channels + c] = v as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{norm, rotate, sub, Affine};

    fn affine() -> Affine {
        Affine::from_axes(
            [0.8, 0.0, 0.0],
            [0.0, 0.8, 0.0],
            [0.0, 0.0, 2.5],
            [-40.0, -30.0, 100.0],
        )
    }

    #[test]
    fn untilted_axes_give_the_planes_own_grid() {
        let dims = [100, 80, 40];
        for plane in [Plane::Axial, Plane::Coronal, Plane::Sagittal] {
            let own = PlaneGrid::from_geometry(dims, &affine(), plane);
            assert_eq!(
                PlaneGrid::from_axes(dims, &affine(), plane, plane.axes()),
                own
            );
        }
    }

    #[test]
    fn a_tilted_grid_covers_the_volume_and_stays_orthonormal() {
        let dims = [100, 80, 40];
        let a = affine();
        // The coronal plane turned 30 degrees about the axial normal, then 10 about its own right.
        let [r, d, n] = Plane::Coronal.axes();
        let turn = |v| rotate(v, [0.0, 0.0, 1.0], 30f64.to_radians());
        let (r, d, n) = (turn(r), turn(d), turn(n));
        let tip = |v| rotate(v, r, 10f64.to_radians());
        let axes = [r, tip(d), tip(n)];
        let g = PlaneGrid::from_axes(dims, &a, Plane::Coronal, axes);
        assert!(dot(g.right, g.down).abs() < 1e-12 && dot(g.down, g.normal).abs() < 1e-12);
        assert!((norm(g.normal) - 1.0).abs() < 1e-12);
        // Every corner voxel centre lies on the grid's extent, one of them on each bound.
        let (mut lo, mut hi) = ([f64::MAX; 3], [f64::MIN; 3]);
        for corner in 0..8 {
            let ijk = [0, 1, 2].map(|c| ((corner >> c) & 1) as f64 * (dims[c] - 1) as f64);
            let rel = sub(a.apply(ijk), g.origin);
            for (c, axis) in [g.right, g.down, g.normal].into_iter().enumerate() {
                let at = dot(rel, axis) / g.spacing[c];
                lo[c] = lo[c].min(at);
                hi[c] = hi[c].max(at);
            }
        }
        let size = [g.width, g.height, g.count];
        for c in 0..3 {
            assert!(lo[c].abs() < 1e-9, "axis {c} starts at {}", lo[c]);
            assert!(
                (hi[c] - (size[c] - 1) as f64).abs() <= 0.5,
                "axis {c}: {} of {}",
                hi[c],
                size[c]
            );
        }
        // The volume's centre is inside the stack of slices, and the pixel the grid says is there.
        let centre = a.apply([49.5, 39.5, 19.5]);
        let rel = sub(centre, g.origin);
        let k = dot(rel, g.normal) / g.spacing[2];
        let (x, y) = (
            dot(rel, g.right) / g.spacing[0],
            dot(rel, g.down) / g.spacing[1],
        );
        let back = g.pixel_to_lps(0, x, y);
        assert!(norm(sub(add(back, scale(g.normal, k * g.spacing[2])), centre)) < 1e-9);
        assert!(k > 0.0 && k < (g.count - 1) as f64);
    }
}
