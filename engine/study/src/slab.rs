//! Thick slabs: the slices of a plane within a thickness, projected into one image (maximum,
//! minimum or mean intensity), as the slab modes of PACS viewers show them.

use crate::mpr::{extract, Plane, PlaneGrid, SliceImage};
use crate::volume::Volume;

/// How a slab's slices combine, pixel by pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    /// Maximum intensity (MIP): vessels, nodules.
    Max,
    /// Minimum intensity (MinIP): airways, emphysema.
    Min,
    /// The mean: a thick slice with less noise.
    Mean,
}

impl Projection {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "mip" | "max" => Some(Projection::Max),
            "minip" | "min" => Some(Projection::Min),
            "mean" | "average" | "avg" => Some(Projection::Mean),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Projection::Max => "mip",
            Projection::Min => "minip",
            Projection::Mean => "mean",
        }
    }
    /// As radiologists read it on screen: "MIP", "MinIP", "Mean".
    pub fn label(self) -> &'static str {
        match self {
            Projection::Max => "MIP",
            Projection::Min => "MinIP",
            Projection::Mean => "Mean",
        }
    }
}

/// Slices in a slab `thickness_mm` thick at `spacing_mm` between slices: as many as it holds, at
/// least one.
pub fn slab_len(spacing_mm: f64, thickness_mm: f64) -> usize {
    if thickness_mm.is_finite() && thickness_mm > 0.0 {
        ((thickness_mm / spacing_mm.max(1e-6)).round() as usize).max(1)
    } else {
        1
    }
}

/// The slices of `grid` in a slab `thickness_mm` thick centred on slice `index` ([`slab_len`] of
/// them at the plane's slice spacing, the extra one after it when even), cut at the volume's ends.
pub fn slab_slices(
    grid: &PlaneGrid,
    index: usize,
    thickness_mm: f64,
) -> std::ops::RangeInclusive<usize> {
    let last = grid.count.saturating_sub(1);
    let index = index.min(last);
    let n = slab_len(grid.spacing[2], thickness_mm);
    let first = index.saturating_sub((n - 1) / 2);
    first..=(index + n / 2).min(last)
}

/// Slice `index` of `plane` as a slab `thickness_mm` thick, projected. Pixels outside the
/// volume (NaN) do not take part; a pixel outside on every slice stays NaN.
pub fn extract_slab(
    volume: &Volume,
    plane: Plane,
    index: usize,
    thickness_mm: f64,
    projection: Projection,
) -> SliceImage {
    let grid = PlaneGrid::new(volume, plane);
    let slices = slab_slices(&grid, index, thickness_mm);
    let mut out = extract(volume, plane, index);
    if slices.clone().count() <= 1 {
        return out;
    }
    let len = out.values.len();
    let mut acc = vec![f64::NAN; len];
    let mut counts = vec![0u32; len];
    for k in slices {
        let slice = extract(volume, plane, k);
        for ((a, n), &v) in acc.iter_mut().zip(&mut counts).zip(&slice.values) {
            if !v.is_finite() {
                continue;
            }
            let v = f64::from(v);
            *a = match (*n, projection) {
                (0, _) => v,
                (_, Projection::Max) => a.max(v),
                (_, Projection::Min) => a.min(v),
                (_, Projection::Mean) => *a + v,
            };
            *n += 1;
        }
    }
    for ((o, a), n) in out.values.iter_mut().zip(acc).zip(counts) {
        *o = match (n, projection) {
            (0, _) => f32::NAN,
            (n, Projection::Mean) => (a / f64::from(n)) as f32,
            _ => a as f32,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Affine;
    use crate::pixel::{Photometric, Rescale, VoiFunction};
    use crate::volume::{ModalityTransform, VolumeLayout, VoxelData, VoxelKind};

    /// 3 × 2 × 5 voxels of 1 × 1 × 2.5 mm, value = a pseudo-random function of the voxel.
    fn volume() -> Volume {
        let dims = [3, 2, 5];
        let values: Vec<i16> = (0..30).map(|i| ((i * 37 + 11) % 23) as i16 - 7).collect();
        let layout = VolumeLayout {
            dims,
            affine: Affine::from_axes([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.5], [0.0; 3]),
            kind: VoxelKind::I16,
            modality: ModalityTransform::Rescale(Rescale::IDENTITY),
            photometric: Photometric::Monochrome2,
            windows: Vec::new(),
            voi_function: VoiFunction::Linear,
            voi_lut: None,
            padding: None,
        };
        layout.into_volume(VoxelData::I16(values), Vec::new(), Vec::new())
    }

    #[test]
    fn projections_equal_max_min_and_mean_over_the_slab() {
        let v = volume();
        let value = |i: usize, j: usize, k: usize| v.modality_value(v.index(i, j, k));
        // 7.5 mm at 2.5 mm: three slices, 1..=3, around slice 2.
        let grid = PlaneGrid::new(&v, Plane::Acquired);
        assert_eq!(slab_slices(&grid, 2, 7.5), 1..=3);
        for projection in [Projection::Max, Projection::Min, Projection::Mean] {
            let slab = extract_slab(&v, Plane::Acquired, 2, 7.5, projection);
            for j in 0..2 {
                for i in 0..3 {
                    let column: Vec<f64> = (1..=3).map(|k| value(i, j, k)).collect();
                    let expected = match projection {
                        Projection::Max => column.iter().copied().fold(f64::MIN, f64::max),
                        Projection::Min => column.iter().copied().fold(f64::MAX, f64::min),
                        Projection::Mean => column.iter().sum::<f64>() / 3.0,
                    };
                    let got = f64::from(slab.values[j * 3 + i]);
                    assert!((got - expected).abs() < 1e-5, "{projection:?} at {i},{j}");
                }
            }
        }
    }

    #[test]
    fn slabs_are_cut_at_the_ends_and_thin_ones_are_the_slice() {
        let grid = PlaneGrid::new(&volume(), Plane::Acquired);
        assert_eq!(slab_slices(&grid, 0, 10.0), 0..=2);
        assert_eq!(slab_slices(&grid, 4, 10.0), 3..=4);
        assert_eq!(slab_slices(&grid, 2, 1.0), 2..=2);
        assert_eq!(slab_slices(&grid, 2, f64::NAN), 2..=2);
        assert_eq!(slab_slices(&grid, 9, 0.0), 4..=4);
        let v = volume();
        let thin = extract_slab(&v, Plane::Acquired, 1, 2.0, Projection::Max);
        assert_eq!(thin.values, extract(&v, Plane::Acquired, 1).values);
        assert_eq!(Projection::parse(" MinIP "), Some(Projection::Min));
        assert_eq!(Projection::parse("sum"), None);
    }
}
