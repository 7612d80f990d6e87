//! Tissue classes and their intensities. Painting records a tissue per voxel (the label is kept
//! separately); the tissue becomes a CT or MR value only at the end, so both modalities share one
//! anatomy.

use crate::config::Modality;
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Tissue {
    Air = 0,
    Fat,
    Muscle,
    Lung,
    Myocardium,
    Blood,
    Liver,
    Spleen,
    Kidney,
    StomachContent,
    Bile,
    Pancreas,
    Urine,
    Bowel,
    Cortical,
    Cancellous,
    Disc,
    Csf,
    LesionHypo,
    LesionHyper,
    Cyst,
}

pub const TISSUES: usize = Tissue::Cyst as usize + 1;

/// Intensity of each tissue, indexed by `Tissue as usize`.
pub struct Intensities(pub [f32; TISSUES]);

impl Intensities {
    /// Values for `modality` and contrast phase, with small per-seed shifts of the soft tissues so
    /// no two phantoms share exact organ means.
    pub fn new(modality: Modality, contrast: bool, rng: &mut Rng) -> Self {
        use Tissue::*;
        // (tissue, CT plain, CT contrast, MR T1 plain, MR T1 contrast)
        #[rustfmt::skip]
        let table: [(Tissue, f32, f32, f32, f32); TISSUES] = [
            (Air, -1000.0, -1000.0, 0.0, 0.0),
            (Fat, -100.0, -100.0, 900.0, 900.0),
            (Muscle, 50.0, 60.0, 300.0, 330.0),
            (Lung, -850.0, -850.0, 20.0, 20.0),
            (Myocardium, 45.0, 110.0, 320.0, 450.0),
            (Blood, 40.0, 220.0, 80.0, 650.0),
            (Liver, 60.0, 105.0, 520.0, 700.0),
            (Spleen, 50.0, 115.0, 380.0, 620.0),
            (Kidney, 35.0, 160.0, 400.0, 720.0),
            (StomachContent, 20.0, 20.0, 150.0, 150.0),
            (Bile, 10.0, 10.0, 120.0, 120.0),
            (Pancreas, 45.0, 95.0, 560.0, 650.0),
            (Urine, 10.0, 10.0, 60.0, 60.0),
            (Bowel, 30.0, 75.0, 300.0, 450.0),
            (Cortical, 400.0, 400.0, 30.0, 30.0),
            (Cancellous, 250.0, 250.0, 650.0, 650.0),
            (Disc, 80.0, 85.0, 280.0, 300.0),
            (Csf, 10.0, 10.0, 60.0, 60.0),
            (LesionHypo, 20.0, 45.0, 200.0, 300.0),
            (LesionHyper, 120.0, 190.0, 750.0, 850.0),
            (Cyst, 5.0, 5.0, 60.0, 60.0),
        ];
        let mut v = [0.0f32; TISSUES];
        for (t, ct, ct_c, mr, mr_c) in table {
            v[t as usize] = match (modality, contrast) {
                (Modality::Ct, false) => ct,
                (Modality::Ct, true) => ct_c,
                (Modality::Mr, false) => mr,
                (Modality::Mr, true) => mr_c,
            };
        }
        // Organ means differ by a few HU (a few percent in MR) from one phantom to the next.
        let spread = match modality {
            Modality::Ct => 5.0,
            Modality::Mr => 25.0,
        };
        for t in [
            Muscle, Myocardium, Blood, Liver, Spleen, Kidney, Pancreas, Bowel, Fat,
        ] {
            v[t as usize] += rng.range(-spread, spread) as f32;
        }
        Intensities(v)
    }

    #[inline]
    pub fn of(&self, t: u8) -> f32 {
        self.0[t as usize]
    }
}
