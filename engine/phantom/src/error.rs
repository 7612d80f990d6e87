//! Errors of the writers; generation itself cannot fail.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PhantomError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Dicom { path: PathBuf, message: String },
    /// The phantom cannot be written in the asked format (e.g. more rows than DICOM allows).
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, PhantomError>;

/// Maps an I/O error to one that names the file.
pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> PhantomError + '_ {
    move |source| PhantomError::Io {
        path: path.to_path_buf(),
        source,
    }
}
