//! One slice of a phantom as the model is shown it under a coordinate convention, with the truth
//! of what it shows: the label map on the shown pixels and each structure's place, on the image
//! (for marks and boxes) and in the patient (for sides and relations, which follow the patient
//! whatever the screen does).

use std::path::Path;

use groundglass_phantom::{write_nifti, Phantom};
use groundglass_study::{extract, nifti, NoProgress, Plane, PlaneGrid, SliceImage, Volume};

use crate::dataset::label_raster;
use crate::mis_ground::terms::Concept;
use crate::{file_err, Result, TrainError};

/// How the slice reaches the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// As radiologists view it (patient right on the image's left), from the phantom in memory.
    Radiological,
    /// Flipped left to right (the neurological convention): the patient's right on the image's
    /// right. Axial and coronal slices only; a sagittal slice has no left and right to flip.
    Neurological,
    /// Written as a NIfTI file whose voxel axes run toward patient left and posterior (LPS
    /// storage), read back through the study loader.
    StoredLps,
    /// The same anatomy written with its voxel axes toward patient right and anterior (RAS
    /// storage), read back through the study loader: the loader's job is that the slice looks
    /// the same.
    StoredRas,
}

impl Convention {
    pub fn name(self) -> &'static str {
        match self {
            Convention::Radiological => "radiological",
            Convention::Neurological => "neurological",
            Convention::StoredLps => "stored_lps",
            Convention::StoredRas => "stored_ras",
        }
    }

    pub const ALL: [Convention; 4] = [
        Convention::Radiological,
        Convention::Neurological,
        Convention::StoredLps,
        Convention::StoredRas,
    ];
}

/// A structure on the shown slice.
#[derive(Clone, Debug)]
pub struct Structure {
    pub class: u32,
    pub pixels: usize,
    /// Union box on the shown image, fractions [x0, y0, x1, y1].
    pub rect: [f64; 4],
    /// A pixel inside it near its centre, fractions of the shown image.
    pub inside: [f64; 2],
    /// Its centroid in the patient (LPS mm).
    pub centroid_lps: [f64; 3],
    /// The patient side it lies on, where it lies clearly to one side (its centre outside the
    /// middle fifth of the radiological view); `None` on sagittal slices and near the midline.
    pub side: Option<Concept>,
}

/// The slice shown to the model and its truth.
#[derive(Clone, Debug)]
pub struct Scene {
    pub slice: SliceImage,
    pub modality: &'static str,
    pub plane: Plane,
    pub convention: Convention,
    /// Class id per shown pixel, row-major.
    pub labels: Vec<u8>,
    pub structures: Vec<Structure>,
}

/// Pixels a structure needs to be asked about (about 0.25 % of a default phantom slice).
pub const MIN_STRUCTURE_PIXELS: usize = 60;

impl Scene {
    /// The structures on the slice that MIS-Ground questions name.
    pub fn named(&self) -> Vec<&Structure> {
        self.structures
            .iter()
            .filter(|s| crate::mis_ground::terms::CLASSES.contains(&s.class))
            .collect()
    }

    pub fn structure(&self, class: u32) -> Option<&Structure> {
        self.structures.iter().find(|s| s.class == class)
    }

    /// The mask of `class` on the shown image.
    pub fn mask(&self, class: u32) -> Vec<bool> {
        self.labels.iter().map(|l| u32::from(*l) == class).collect()
    }
}

/// The phantom written in LPS and in RAS storage and read back, for the stored conventions.
pub struct StoredCopies {
    pub lps: Volume,
    pub ras: Volume,
}

impl StoredCopies {
    /// Writes both files into `dir` and loads them.
    pub fn write(phantom: &Phantom, dir: &Path) -> Result<StoredCopies> {
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
        let load = |p: &Phantom, name: &str| -> Result<Volume> {
            let path = dir.join(name);
            write_nifti(p, &path).map_err(|e| file_err(&path, e))?;
            let header = nifti::read_header(&path).map_err(|e| file_err(&path, e))?;
            nifti::load(&header, 0, &NoProgress).map_err(|e| file_err(&path, e))
        };
        Ok(StoredCopies {
            lps: load(phantom, &format!("phantom-{}-lps.nii", phantom.seed))?,
            ras: load(
                &ras_storage(phantom),
                &format!("phantom-{}-ras.nii", phantom.seed),
            )?,
        })
    }
}

/// The same phantom with its first two voxel axes reversed (toward patient right and anterior),
/// its affine saying so.
pub fn ras_storage(phantom: &Phantom) -> Phantom {
    let [ni, nj, nk] = phantom.dims;
    let a = &phantom.affine;
    let (ci, cj, ck) = (a.column(0), a.column(1), a.column(2));
    let origin = a.apply([(ni - 1) as f64, (nj - 1) as f64, 0.0]);
    let neg = |v: [f64; 3]| [-v[0], -v[1], -v[2]];
    let affine = groundglass_study::Affine::from_axes(neg(ci), neg(cj), ck, origin);
    let mut values = vec![0i16; phantom.values.len()];
    let mut labels = vec![0u8; phantom.labels.labels.len()];
    for k in 0..nk {
        for j in 0..nj {
            for i in 0..ni {
                let from = phantom.index(i, j, k);
                let to = phantom.index(ni - 1 - i, nj - 1 - j, k);
                values[to] = phantom.values[from];
                labels[to] = phantom.labels.labels[from];
            }
        }
    }
    let mut out = phantom.clone();
    out.affine = affine;
    out.values = values;
    out.labels.affine = affine;
    out.labels.labels = labels;
    out
}

/// Builds the scene of slice `index` of `plane` under `convention`. `volume` is the phantom's
/// own (radiological and neurological); `stored` holds the files for the stored conventions.
pub fn scene(
    phantom: &Phantom,
    volume: &Volume,
    stored: Option<&StoredCopies>,
    plane: Plane,
    index: usize,
    convention: Convention,
) -> Result<Scene> {
    let (w, h, raster) = label_raster(phantom, plane, index);
    let mut slice = match (convention, stored) {
        (Convention::Radiological | Convention::Neurological, _) => extract(volume, plane, index),
        (Convention::StoredLps, Some(s)) => extract(&s.lps, plane, index),
        (Convention::StoredRas, Some(s)) => extract(&s.ras, plane, index),
        (c, None) => {
            return Err(TrainError::Invalid(format!(
                "the {} convention needs the phantom written to files",
                c.name()
            )))
        }
    };
    if slice.width != w || slice.height != h {
        return Err(TrainError::Invalid(format!(
            "phantom {} read back as {}: {} x {} pixels on the {} plane, {} x {} expected",
            phantom.seed,
            convention.name(),
            slice.width,
            slice.height,
            plane.name(),
            w,
            h
        )));
    }
    let flip = convention == Convention::Neurological && plane != Plane::Sagittal;
    let mut labels = raster.clone();
    if flip {
        for row in slice.values.chunks_exact_mut(w * slice.channels) {
            let px: Vec<f32> = row.to_vec();
            for x in 0..w {
                for c in 0..slice.channels {
                    row[x * slice.channels + c] = px[(w - 1 - x) * slice.channels + c];
                }
            }
        }
        for row in labels.chunks_exact_mut(w) {
            row.reverse();
        }
        slice.letters = groundglass_study::EdgeLetters {
            left: slice.letters.right.clone(),
            right: slice.letters.left.clone(),
            top: slice.letters.top.clone(),
            bottom: slice.letters.bottom.clone(),
        };
    }
    let grid = PlaneGrid::from_geometry(phantom.dims, &phantom.affine, plane);
    let mut structures = Vec::new();
    let mut on_slice = [false; 256];
    for l in &labels {
        on_slice[usize::from(*l)] = true;
    }
    for class in (1..=u8::MAX).filter(|c| on_slice[usize::from(*c)]) {
        let shown: Vec<usize> = (0..w * h).filter(|&i| labels[i] == class).collect();
        if shown.len() < MIN_STRUCTURE_PIXELS {
            continue;
        }
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
        let (mut sx, mut sy) = (0.0, 0.0);
        for &i in &shown {
            let (x, y) = (i % w, i / w);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            sx += x as f64;
            sy += y as f64;
        }
        let n = shown.len() as f64;
        let (cx, cy) = (sx / n, sy / n);
        let nearest = shown
            .iter()
            .min_by(|&&a, &&b| {
                let d = |i: usize| ((i % w) as f64 - cx).powi(2) + ((i / w) as f64 - cy).powi(2);
                d(a).total_cmp(&d(b))
            })
            .copied()
            .unwrap_or(0);
        // The patient centroid and side, from the radiological raster (the same anatomy).
        let (mut px, mut lps) = (0.0, [0.0; 3]);
        let mut count = 0.0;
        for (i, l) in raster.iter().enumerate() {
            if *l == class {
                let (x, y) = ((i % w) as f64, (i / w) as f64);
                px += x;
                let p = grid.pixel_to_lps(index, x, y);
                for a in 0..3 {
                    lps[a] += p[a];
                }
                count += 1.0;
            }
        }
        let radiological_cx = (px / count + 0.5) / w as f64;
        let side = if plane == Plane::Sagittal {
            None
        } else if radiological_cx < 0.4 {
            Some(Concept::Right)
        } else if radiological_cx > 0.6 {
            Some(Concept::Left)
        } else {
            None
        };
        structures.push(Structure {
            class: u32::from(class),
            pixels: shown.len(),
            rect: [
                x0 as f64 / w as f64,
                y0 as f64 / h as f64,
                x1 as f64 / w as f64,
                y1 as f64 / h as f64,
            ],
            inside: [
                ((nearest % w) as f64 + 0.5) / w as f64,
                ((nearest / w) as f64 + 0.5) / h as f64,
            ],
            centroid_lps: lps.map(|v| v / count),
            side,
        });
    }
    Ok(Scene {
        slice,
        modality: phantom.modality.code(),
        plane,
        convention,
        labels,
        structures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundglass_phantom::{generate, PhantomConfig};

    /// The loader's promise: RAS or LPS storage, the slice the model sees is the same, value for
    /// value, in every plane.
    #[test]
    fn stored_ras_and_lps_read_back_as_the_same_slice() {
        let phantom = generate(&PhantomConfig {
            dims: [40, 36, 24],
            spacing_mm: [8.8, 9.8, 12.0],
            ..PhantomConfig::ct(5)
        });
        let volume = phantom.to_volume();
        let dir = std::env::temp_dir().join(format!("gg-mis-stored-{}", std::process::id()));
        let stored = StoredCopies::write(&phantom, &dir).expect("stored");
        let _ = std::fs::remove_dir_all(&dir);
        for (plane, index) in [
            (Plane::Axial, 12),
            (Plane::Coronal, 20),
            (Plane::Sagittal, 9),
        ] {
            let base = scene(
                &phantom,
                &volume,
                None,
                plane,
                index,
                Convention::Radiological,
            )
            .expect("radiological");
            for c in [Convention::StoredLps, Convention::StoredRas] {
                let s = scene(&phantom, &volume, Some(&stored), plane, index, c).expect("stored");
                assert_eq!(
                    s.slice.values,
                    base.slice.values,
                    "{} {}",
                    plane.name(),
                    c.name()
                );
                assert_eq!(s.slice.letters, base.slice.letters);
            }
        }
    }

    /// Flipping moves the marks, not the patient: the liver is drawn on the image's right but is
    /// still on the patient's right.
    #[test]
    fn the_neurological_view_mirrors_the_image_and_keeps_the_sides() {
        let phantom = generate(&PhantomConfig::ct(3));
        let volume = phantom.to_volume();
        let grid = PlaneGrid::from_geometry(phantom.dims, &phantom.affine, Plane::Axial);
        let index = (0..grid.count)
            .find(|&k| {
                let (_, _, r) = label_raster(&phantom, Plane::Axial, k);
                r.iter().filter(|l| **l == 5).count() > 500
            })
            .expect("a slice through the liver");
        let radio = scene(
            &phantom,
            &volume,
            None,
            Plane::Axial,
            index,
            Convention::Radiological,
        )
        .expect("radiological");
        let neuro = scene(
            &phantom,
            &volume,
            None,
            Plane::Axial,
            index,
            Convention::Neurological,
        )
        .expect("neurological");
        let (r, n) = (
            radio.structure(5).expect("liver"),
            neuro.structure(5).expect("liver"),
        );
        assert!(
            r.rect[0] < 0.5 && n.rect[2] > 0.5,
            "{:?} {:?}",
            r.rect,
            n.rect
        );
        assert!((r.rect[0] - (1.0 - n.rect[2])).abs() < 1e-9);
        assert_eq!(r.side, Some(Concept::Right));
        assert_eq!(n.side, Some(Concept::Right));
        assert_eq!(r.centroid_lps, n.centroid_lps);
        let w = radio.slice.width;
        assert_eq!(radio.slice.values[3], neuro.slice.values[w - 4]);
        assert_eq!(neuro.slice.letters.left, radio.slice.letters.right);
    }
}
