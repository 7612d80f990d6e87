//! Exports of the corrections, as training data and as label images other tools read:
//! RadGrounder's grounded-report format (slice images and target text with `<p bbox=...>` phrases,
//! English and German), NIfTI label maps aligned voxel for voxel with the source volume, and DICOM
//! SEG referencing the source series. Identifying attributes are removed by default
//! (`Deidentify::Yes`); the caller opts out explicitly.

pub mod dicom_parts;
pub mod dicom_seg;
pub mod dicom_sr;
pub mod measurements;
pub mod model_answers;
pub mod nifti;
pub mod radgrounder;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Dicom { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

pub fn io_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |e| ExportError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Whether exports drop identifying attributes (DICOM PS3.15 basic profile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deidentify {
    Yes,
    No,
}
