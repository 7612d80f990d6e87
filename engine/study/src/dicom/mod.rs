//! DICOM: headers, DICOMDIR, grouping into series, pixel decoding.

pub(crate) mod attrs;
pub mod decode;
pub mod dicomdir;
pub mod guard;
pub mod header;
pub mod load;
pub mod native;
pub mod series;

pub use header::{read_header, DicomHeader, FrameGeometry, Scanned};
pub use series::{group_series, DicomSeriesPlan, SliceRef};
