//! Errors of the study layer. Every variant names the file it came from, so a message shown to the
//! user says which file is bad and why.

use std::path::PathBuf;

/// Result type of the study crate.
pub type Result<T, E = StudyError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a readable DICOM file: {message}")]
    Dicom { path: PathBuf, message: String },
    #[error("{path}: transfer syntax {name} ({uid}) cannot be decoded here")]
    UnsupportedTransferSyntax {
        path: PathBuf,
        uid: String,
        name: String,
    },
    #[error("{path}: pixel data could not be decoded ({syntax}): {message}")]
    Decode {
        path: PathBuf,
        syntax: String,
        message: String,
    },
    #[error("{path}: not a readable NIfTI file: {message}")]
    Nifti { path: PathBuf, message: String },
    #[error("{path}: {what} would need {bytes} bytes, above the limit of {limit} bytes; refusing to allocate")]
    TooLarge {
        path: PathBuf,
        what: String,
        bytes: u64,
        limit: u64,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: no images found")]
    NoImages { path: PathBuf },
    #[error("loading was cancelled")]
    Cancelled,
}

impl StudyError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn dicom(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Self::Dicom {
            path: path.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn nifti(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Nifti {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The largest voxel buffer we agree to allocate for one volume (16 GiB). Headers that ask for more
/// are corrupt or hostile; refusing before allocating keeps a bad file from taking the machine down.
pub const MAX_VOLUME_BYTES: u64 = 16 << 30;

/// Checks a requested allocation against [`MAX_VOLUME_BYTES`].
pub(crate) fn check_alloc(path: &std::path::Path, what: &str, bytes: u64) -> Result<()> {
    if bytes > MAX_VOLUME_BYTES {
        return Err(StudyError::TooLarge {
            path: path.to_path_buf(),
            what: what.to_string(),
            bytes,
            limit: MAX_VOLUME_BYTES,
        });
    }
    Ok(())
}
