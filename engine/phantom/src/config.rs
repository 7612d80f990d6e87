//! What to generate: seed, modality, grid, lesions, noise.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Modality {
    /// Hounsfield units.
    Ct,
    /// T1-weighted-like magnitude signal, 0..~1000.
    Mr,
}

impl Modality {
    /// The DICOM Modality code.
    pub fn code(self) -> &'static str {
        match self {
            Modality::Ct => "CT",
            Modality::Mr => "MR",
        }
    }
}

/// Parameters of one phantom. The same configuration always gives the same phantom, bit for bit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhantomConfig {
    pub seed: u64,
    pub modality: Modality,
    /// Columns (i, toward patient left), rows (j, toward posterior), slices (k, toward superior).
    pub dims: [usize; 3],
    /// Voxel size along i, j, k in mm.
    pub spacing_mm: [f64; 3],
    /// A few small liver lesions and kidney cysts (the labels keep the host organ).
    pub lesions: bool,
    /// Contrast-enhanced phase: bright blood pool, enhancing liver, spleen and kidneys.
    pub contrast: bool,
    /// Standard deviation of the additive Gaussian noise, in the modality's units (HU for CT).
    pub noise: f32,
}

/// The canonical field of view (mm) the anatomy is laid out in; other grids scale it to fit.
pub const CANONICAL_FOV_MM: [f64; 3] = [352.0, 352.0, 288.0];

impl PhantomConfig {
    /// A CT phantom on the default grid (160 x 160 x 96 voxels of 2.2 x 2.2 x 3 mm), 10 HU noise.
    pub fn ct(seed: u64) -> Self {
        PhantomConfig {
            seed,
            modality: Modality::Ct,
            dims: [160, 160, 96],
            spacing_mm: [2.2, 2.2, 3.0],
            lesions: false,
            contrast: false,
            noise: 10.0,
        }
    }

    /// An MR phantom on the default grid with noise of about 1.5 % of the fat signal.
    pub fn mr(seed: u64) -> Self {
        PhantomConfig {
            modality: Modality::Mr,
            noise: 12.0,
            ..PhantomConfig::ct(seed)
        }
    }

    /// The configuration actually used: every dimension at least 1, and spacings that are not
    /// finite and positive replaced by the default.
    pub fn normalized(&self) -> Self {
        let default = PhantomConfig::ct(self.seed);
        let mut c = self.clone();
        for a in 0..3 {
            c.dims[a] = c.dims[a].max(1);
            if !(c.spacing_mm[a].is_finite() && c.spacing_mm[a] > 0.0) {
                c.spacing_mm[a] = default.spacing_mm[a];
            }
        }
        if !(c.noise.is_finite() && c.noise >= 0.0) {
            c.noise = 0.0;
        }
        c
    }
}

impl Default for PhantomConfig {
    fn default() -> Self {
        PhantomConfig::ct(0)
    }
}
