//! Opening a path: a DICOM file, a folder (recursive, any file names, mixed series), a DICOMDIR,
//! or a NIfTI file. Opening reads headers only; [`Series::load`] reads the pixels.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::dicom::{self, DicomSeriesPlan, Scanned};
use crate::error::{Result, StudyError};
use crate::geometry::Affine;
use crate::nifti::{self, NiftiHeader};
use crate::volume::{LoadObserver, Volume};

/// Where a series' pixels come from.
#[derive(Clone, Debug)]
pub enum SeriesSource {
    Dicom(DicomSeriesPlan),
    Nifti(NiftiHeader),
}

/// A series found when opening a path: what it is and where it lies, before any pixel is read.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub uid: String,
    pub modality: String,
    pub description: String,
    /// The Frame of Reference UID (DICOM): series with the same one share patient coordinates,
    /// so positions in one are positions in the other. `None` for NIfTI and where it is absent.
    pub frame_of_reference: Option<String>,
    #[serde(skip)]
    pub patient_name: String,
    #[serde(skip)]
    pub patient_id: String,
    /// Columns, rows, slices, and a fourth entry (volumes) for 4D data.
    pub dims: Vec<usize>,
    pub spacing_mm: [f64; 3],
    pub affine_lps: Affine,
    pub warnings: Vec<String>,
    pub files: Vec<PathBuf>,
    #[serde(skip)]
    pub source: SeriesSource,
}

impl Series {
    /// Loads the pixels (one volume of a 4D series). Progress goes to `observer`.
    pub fn load(&self, volume_index: usize, observer: &dyn LoadObserver) -> Result<Volume> {
        match &self.source {
            SeriesSource::Dicom(plan) => dicom::load::load(plan, observer),
            SeriesSource::Nifti(header) => nifti::load(header, volume_index, observer),
        }
    }

    /// A small greyscale preview of the middle slice in the acquisition plane, in the file's
    /// window, at most `max_side` pixels on a side. DICOM series decode one file for it.
    pub fn thumbnail(&self, max_side: usize) -> Result<crate::render::DisplayImage> {
        let volume = match &self.source {
            SeriesSource::Dicom(plan) => {
                let mut one = plan.clone();
                let middle = plan.slices.len() / 2;
                one.slices = vec![plan.slices[middle].clone()];
                one.dims[2] = 1;
                dicom::load::load(&one, &crate::volume::NoProgress)?
            }
            SeriesSource::Nifti(header) => nifti::load(header, 0, &crate::volume::NoProgress)?,
        };
        let k = if volume.dims[2] > 1 {
            volume.dims[2] / 2
        } else {
            0
        };
        let slice = crate::mpr::extract(&volume, crate::mpr::Plane::Acquired, k);
        let mapping =
            crate::render::VoiMapping::Window(volume.default_window(), volume.voi_function);
        let image = crate::render::to_display(&slice, &mapping, volume.photometric);
        Ok(crate::render::downsample(&image, max_side))
    }

    /// Number of volumes (4th dimension), 1 for 3D.
    pub fn volumes(&self) -> usize {
        self.dims.get(3).copied().unwrap_or(1)
    }
}

/// Everything found under a path.
#[derive(Debug, Default)]
pub struct Study {
    pub series: Vec<Series>,
    /// Files that could not be read, each naming the file and the problem.
    pub errors: Vec<StudyError>,
    /// Files skipped because they are neither DICOM nor NIfTI (only when opening a folder).
    pub skipped: usize,
    /// DICOM Segmentations found beside the images, shown as overlays on the series they fit.
    pub segmentations: Vec<dicom::seg::Segmentation>,
}

/// The largest number of files one open will look at, so a wrong folder (a home directory) cannot
/// stall the app.
const MAX_FILES: usize = 200_000;

/// Opens a file or folder. Fails only when nothing readable was found; per-file problems are
/// collected in [`Study::errors`].
pub fn open(path: &Path) -> Result<Study> {
    let meta = std::fs::metadata(path).map_err(|e| StudyError::io(path, e))?;
    let mut study = Study::default();
    let mut headers = Vec::new();
    if meta.is_dir() {
        let mut files = Vec::new();
        collect_files(path, &mut files, &mut study.errors);
        let results: Vec<(PathBuf, Option<Result<Found>>)> = files
            .into_par_iter()
            .map(|f| {
                let r = scan_file(&f, true);
                (f, r)
            })
            .collect();
        for (_, r) in results {
            match r {
                None => study.skipped += 1,
                Some(Ok(found)) => found.add_to(&mut headers, &mut study),
                Some(Err(e)) => study.errors.push(e),
            }
        }
    } else {
        match scan_file(path, false) {
            Some(Ok(Found::Directory(files))) => {
                let results: Vec<Option<Result<Found>>> =
                    files.par_iter().map(|f| scan_file(f, false)).collect();
                for r in results.into_iter().flatten() {
                    match r {
                        Ok(found) => found.add_to(&mut headers, &mut study),
                        Err(e) => study.errors.push(e),
                    }
                }
            }
            Some(Ok(found)) => found.add_to(&mut headers, &mut study),
            Some(Err(e)) => return Err(e),
            // Not reached: single files are always scanned (`in_folder` is false).
            None => {
                return Err(StudyError::NoImages {
                    path: path.to_path_buf(),
                })
            }
        }
    }
    // Segmentations are overlays, not image series.
    let (segs, headers): (Vec<_>, Vec<_>) = headers
        .into_iter()
        .partition(|h| h.sop_class_uid == dicom::seg::SEG_SOP_CLASS);
    for h in segs {
        match dicom::seg::read_seg(&h.path) {
            Ok(s) => study.segmentations.push(s),
            Err(e) => study.errors.push(e),
        }
    }
    for plan in dicom::group_series(headers) {
        study.series.push(series_from_plan(plan));
    }
    if study.series.is_empty() {
        if !study.segmentations.is_empty() {
            return Err(StudyError::invalid(
                path,
                "a DICOM Segmentation without its images: open the image series (a folder holding \
                 both shows it as an overlay)",
            ));
        }
        if study.errors.len() == 1 {
            return Err(study.errors.remove(0));
        }
        if let Some(first) = study.errors.first() {
            return Err(StudyError::invalid(
                path,
                format!(
                    "no readable images; {} file(s) failed, first: {first}",
                    study.errors.len()
                ),
            ));
        }
        return Err(StudyError::NoImages {
            path: path.to_path_buf(),
        });
    }
    Ok(study)
}

enum Found {
    Dicom(Box<dicom::DicomHeader>),
    Nifti(Box<NiftiHeader>),
    Directory(Vec<PathBuf>),
    Nothing,
}

impl Found {
    fn add_to(self, headers: &mut Vec<dicom::DicomHeader>, study: &mut Study) {
        match self {
            Found::Dicom(h) => headers.push(*h),
            Found::Nifti(h) => study.series.push(series_from_nifti(*h)),
            // Inside a folder the DICOMDIR's images are found by the folder walk itself.
            Found::Directory(_) | Found::Nothing => {}
        }
    }
}

/// Scans one file. In a folder walk, files that do not look like DICOM or NIfTI are skipped
/// (`None`) instead of reported.
fn scan_file(path: &Path, in_folder: bool) -> Option<Result<Found>> {
    if nifti::is_nifti_path(path) {
        return Some(nifti::read_header(path).map(|h| Found::Nifti(Box::new(h))));
    }
    if in_folder && !looks_like_dicom(path) {
        return None;
    }
    Some(dicom::read_header(path).map(|s| match s {
        Scanned::Image(h) => Found::Dicom(h),
        Scanned::Directory(files) => Found::Directory(files),
        Scanned::NotAnImage => Found::Nothing,
    }))
}

/// "DICM" at offset 128, or a `.dcm` name, or a DICOMDIR.
fn looks_like_dicom(path: &Path) -> bool {
    use std::io::Read;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".dcm") || name == "dicomdir" {
        return true;
    }
    let mut buf = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map(|_| &buf[128..132] == b"DICM")
        .unwrap_or(false)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<StudyError>) {
    let mut stack = vec![dir.to_path_buf()];
    // Folders by their real path: a symlinked folder (an archive of linked studies) is walked
    // once, and a link back up the tree cannot trap the walk.
    let mut seen = std::collections::HashSet::new();
    seen.extend(std::fs::canonicalize(dir).ok());
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                errors.push(StudyError::io(&d, e));
                continue;
            }
        };
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        names.sort();
        for p in names {
            // Hidden entries are not images: a transfer's file still being written
            // (`.x.dcm.part`, renamed when whole), macOS's `._` resource forks, `.git`.
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let link = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() => {
                    let real = std::fs::canonicalize(&p)
                        .ok()
                        .or_else(|| (!link).then(|| p.clone()));
                    if real.is_some_and(|r| seen.insert(r)) {
                        stack.push(p);
                    }
                }
                Ok(m) if m.is_file() => {
                    if out.len() >= MAX_FILES {
                        errors.push(StudyError::invalid(
                            dir,
                            format!("more than {MAX_FILES} files; the rest were not read"),
                        ));
                        return;
                    }
                    out.push(p)
                }
                _ => {}
            }
        }
    }
    out.sort();
}

fn series_from_plan(plan: DicomSeriesPlan) -> Series {
    Series {
        uid: plan.uid.clone(),
        modality: plan.modality.clone(),
        description: plan.description.clone(),
        frame_of_reference: plan
            .slices
            .first()
            .map(|s| s.header.frame_of_reference.clone())
            .filter(|f| !f.is_empty()),
        patient_name: plan.patient_name.clone(),
        patient_id: plan.patient_id.clone(),
        dims: plan.dims.to_vec(),
        spacing_mm: plan.affine.spacing(),
        affine_lps: plan.affine,
        warnings: plan.warnings.clone(),
        files: plan.files(),
        source: SeriesSource::Dicom(plan),
    }
}

fn series_from_nifti(h: NiftiHeader) -> Series {
    let mut dims = h.dims[..3].to_vec();
    if h.volumes() > 1 {
        dims.push(h.volumes());
    }
    let stem = h
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Series {
        uid: stem.clone(),
        modality: String::new(),
        frame_of_reference: None,
        description: if h.description.is_empty() {
            stem
        } else {
            h.description.clone()
        },
        patient_name: String::new(),
        patient_id: String::new(),
        dims,
        spacing_mm: h.affine_lps.spacing(),
        affine_lps: h.affine_lps,
        warnings: h.warnings.clone(),
        files: if h.data_path == h.path {
            vec![h.path.clone()]
        } else {
            vec![h.path.clone(), h.data_path.clone()]
        },
        source: SeriesSource::Nifti(h),
    }
}
