//! The generated phantom and what can be asked of it.

use groundglass_study::{
    Affine, ModalityTransform, Photometric, Rescale, VoiFunction, Volume, VolumeLayout, VoxelData,
    VoxelKind, Window,
};

use crate::anatomy::Anatomy;
use crate::canvas::Canvas;
use crate::config::{Modality, PhantomConfig};
use crate::lesions::{self, Lesion};
use crate::render;
use groundglass_study::LabelVolume;

/// A synthetic torso: intensities, organ labels on the same grid, and its geometry.
#[derive(Clone, Debug, PartialEq)]
pub struct Phantom {
    /// The configuration it was generated from (normalised, see [`PhantomConfig::normalized`]).
    pub config: PhantomConfig,
    pub seed: u64,
    pub modality: Modality,
    /// Columns (i), rows (j), slices (k).
    pub dims: [usize; 3],
    /// Voxel (i, j, k) to LPS mm; axis-aligned: i to patient left, j posterior, k superior.
    pub affine: Affine,
    /// One value per voxel, i fastest, then j, then k. CT: Hounsfield units; MR: signal 0..~1000.
    pub values: Vec<i16>,
    /// Class ids of RadGrounder's label map (see [`crate::classes`]), 0 background.
    pub labels: LabelVolume,
    /// Lesions placed when `config.lesions` is set (their voxels keep the host's label).
    pub lesions: Vec<Lesion>,
}

/// Generates the phantom `config` describes. Deterministic: the same configuration gives the same
/// phantom. The anatomy depends on the seed only (the grid scales it), so a CT and an MR, or a
/// phantom with and without lesions, of one seed share their labels.
pub fn generate(config: &PhantomConfig) -> Phantom {
    let config = config.normalized();
    let mut canvas = Canvas::new(config.dims, config.spacing_mm);
    Anatomy::draw(config.seed).paint(&mut canvas);
    let lesions = if config.lesions {
        lesions::place(&mut canvas, config.seed)
    } else {
        Vec::new()
    };
    let values = render::values(&canvas, &config);
    let affine = canvas.affine();
    Phantom {
        seed: config.seed,
        modality: config.modality,
        dims: config.dims,
        affine,
        values,
        labels: LabelVolume {
            dims: config.dims,
            affine,
            labels: canvas.labels,
        },
        lesions,
        config,
    }
}

impl Phantom {
    pub fn spacing(&self) -> [f64; 3] {
        self.config.spacing_mm
    }

    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        (k * self.dims[1] + j) * self.dims[0] + i
    }

    pub fn value(&self, i: usize, j: usize, k: usize) -> i16 {
        self.values[self.index(i, j, k)]
    }

    pub fn label(&self, i: usize, j: usize, k: usize) -> u8 {
        self.labels.labels[self.index(i, j, k)]
    }

    /// The display window: CT soft tissue (40 / 400), MR 500 / 1000.
    pub fn window(&self) -> Window {
        match self.modality {
            Modality::Ct => Window::new(40.0, 400.0),
            Modality::Mr => Window::new(500.0, 1000.0),
        }
    }

    /// Smallest and largest voxel index (i, j, k) holding `label`, inclusive; `None` if absent.
    pub fn voxel_bounds(&self, label: u8) -> Option<([usize; 3], [usize; 3])> {
        let [nx, ny, _] = self.dims;
        let mut lo = [usize::MAX; 3];
        let mut hi = [0; 3];
        for (idx, _) in self
            .labels
            .labels
            .iter()
            .enumerate()
            .filter(|(_, &l)| l == label)
        {
            let ijk = [idx % nx, (idx / nx) % ny, idx / (nx * ny)];
            for a in 0..3 {
                lo[a] = lo[a].min(ijk[a]);
                hi[a] = hi[a].max(ijk[a]);
            }
        }
        (lo[0] != usize::MAX).then_some((lo, hi))
    }

    /// Centre of mass (LPS mm) of the voxels holding `label`; `None` if absent.
    pub fn centroid_lps(&self, label: u8) -> Option<[f64; 3]> {
        let [nx, ny, _] = self.dims;
        let mut sum = [0.0; 3];
        let mut n = 0usize;
        for (idx, _) in self
            .labels
            .labels
            .iter()
            .enumerate()
            .filter(|(_, &l)| l == label)
        {
            let p = [
                (idx % nx) as f64,
                ((idx / nx) % ny) as f64,
                (idx / (nx * ny)) as f64,
            ];
            for a in 0..3 {
                sum[a] += p[a];
            }
            n += 1;
        }
        (n > 0).then(|| self.affine.apply(sum.map(|s| s / n as f64)))
    }

    /// The phantom as an engine volume (stored value = modality value), for use without files.
    pub fn to_volume(&self) -> Volume {
        let layout = VolumeLayout {
            dims: self.dims,
            affine: self.affine,
            kind: VoxelKind::I16,
            modality: ModalityTransform::Rescale(Rescale::IDENTITY),
            photometric: Photometric::Monochrome2,
            windows: vec![self.window()],
            voi_function: VoiFunction::Linear,
            voi_lut: None,
            padding: None,
        };
        layout.into_volume(VoxelData::I16(self.values.clone()), Vec::new(), Vec::new())
    }
}
