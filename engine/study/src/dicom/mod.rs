//! DICOM: headers, DICOMDIR, grouping into series, pixel decoding.

pub(crate) mod attrs;
pub mod build;
pub mod codestream;
pub mod decode;
pub mod dicomdir;
pub mod guard;
pub mod header;
pub mod load;
pub mod native;
pub mod seg;
pub mod series;

pub use header::{read_header, DicomHeader, FrameGeometry, Scanned};
pub use series::{group_series, DicomSeriesPlan, SliceRef};

/// Runs third-party parsing or decoding that may panic on corrupt input (dicom-rs codecs have
/// `unwrap`s on data, found by cargo fuzz) and turns a panic into an error message.
pub(crate) fn without_panic<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(format!("{what} failed on corrupt data")))
}
