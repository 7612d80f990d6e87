//! Optional focal lesions: small spheres in the liver (hypo- or hyperdense) and simple cysts in the
//! kidneys. They change the tissue, never the label, so organ boxes stay the organ's; where they
//! are is returned alongside the phantom.

use serde::{Deserialize, Serialize};

use crate::canvas::Canvas;
use crate::classes::{KIDNEY_LEFT, KIDNEY_RIGHT, LIVER};
use crate::rng::Rng;
use crate::tissue::Tissue;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LesionKind {
    /// Darker than the liver (e.g. a metastasis).
    Hypodense,
    /// Brighter than the liver (e.g. a haemangioma).
    Hyperdense,
    /// Water-like renal cyst.
    Cyst,
}

/// One lesion: its host organ's class id, kind, centre (LPS mm) and radius (mm, in-plane).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lesion {
    pub host: u8,
    pub kind: LesionKind,
    pub center_lps: [f64; 3],
    pub radius_mm: f64,
    /// Voxels it changed.
    pub voxels: usize,
}

/// Places one to four lesions from the seed's lesion stream.
pub fn place(canvas: &mut Canvas, seed: u64) -> Vec<Lesion> {
    let mut rng = Rng::stream(seed, "lesions");
    let n = rng.int(1, 4);
    let mut hosts: Vec<(u8, Vec<usize>)> = [LIVER, KIDNEY_RIGHT, KIDNEY_LEFT]
        .into_iter()
        .map(|h| (h, Vec::new()))
        .collect();
    for (idx, &l) in canvas.labels.iter().enumerate() {
        if let Some((_, v)) = hosts.iter_mut().find(|(h, _)| *h == l) {
            v.push(idx);
        }
    }
    let mut out = Vec::new();
    for _ in 0..n {
        let (host, kind, radius) = if rng.chance(0.6) {
            let kind = if rng.chance(0.65) {
                LesionKind::Hypodense
            } else {
                LesionKind::Hyperdense
            };
            (LIVER, kind, rng.range(5.0, 12.0))
        } else {
            let host = if rng.chance(0.5) {
                KIDNEY_RIGHT
            } else {
                KIDNEY_LEFT
            };
            (host, LesionKind::Cyst, rng.range(4.0, 9.0))
        };
        let found = hosts.iter().find(|(h, _)| *h == host).map(|(_, v)| v);
        let Some(voxels) = found.filter(|v| !v.is_empty()) else {
            continue;
        };
        // A centre deep enough that the sphere is (nearly) all in the host.
        let centre = (0..60).find_map(|_| {
            let idx = voxels[rng.int(0, voxels.len() - 1)];
            let p = position(canvas, idx);
            let deep = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
                .iter()
                .flat_map(|d| [1.0, -1.0].map(|s| s * 0.8 * radius).map(|o| (d, o)))
                .all(|(d, o)| {
                    label_at(canvas, [p[0] + d[0] * o, p[1] + d[1] * o, p[2] + d[2] * o]) == host
                });
            deep.then_some(p)
        });
        let Some(c) = centre else {
            continue;
        };
        let tissue = match kind {
            LesionKind::Hypodense => Tissue::LesionHypo,
            LesionKind::Hyperdense => Tissue::LesionHyper,
            LesionKind::Cyst => Tissue::Cyst,
        };
        let mut changed = 0;
        let bounds = (
            [c[0] - radius, c[1] - radius, c[2] - radius],
            [c[0] + radius, c[1] + radius, c[2] + radius],
        );
        canvas.paint(bounds, |at| {
            let d2: f64 = (0..3).map(|a| (at.p[a] - c[a]).powi(2)).sum();
            (at.label == host && d2 <= radius * radius).then(|| {
                changed += 1;
                (tissue, host)
            })
        });
        out.push(Lesion {
            host,
            kind,
            center_lps: canvas.to_lps(c),
            radius_mm: radius * canvas.scale[0],
            voxels: changed,
        });
    }
    out
}

/// Canonical position of voxel `idx`.
fn position(canvas: &Canvas, idx: usize) -> [f64; 3] {
    let [nx, ny, _] = canvas.dims;
    let (i, j, k) = (idx % nx, (idx / nx) % ny, idx / (nx * ny));
    [canvas.coord(0, i), canvas.coord(1, j), canvas.coord(2, k)]
}

/// Label of the voxel nearest a canonical position, 0 outside the grid.
fn label_at(canvas: &Canvas, p: [f64; 3]) -> u8 {
    let mut idx = [0usize; 3];
    for a in 0..3 {
        let step = canvas.spacing[a] / canvas.scale[a];
        let n = (p[a] / step + (canvas.dims[a] as f64 - 1.0) / 2.0).round();
        if !(n >= 0.0 && n < canvas.dims[a] as f64) {
            return 0;
        }
        idx[a] = n as usize;
    }
    canvas.labels[canvas.index(idx[0], idx[1], idx[2])]
}
