//! Study I/O and geometry for Groundglass: open DICOM (files, folders, DICOMDIR, multi-frame) and
//! NIfTI, stack series in one LPS patient space, run the pixel pipeline, and cut MPR slices.
//! No GPU and no UI here: everything is testable headless.

pub mod dicom;
pub mod error;
pub mod geometry;
pub mod labels;
pub mod measure;
pub mod mpr;
pub mod nifti;
pub mod pixel;
pub mod render;
pub mod slab;
pub mod study;
pub mod volume;

pub use error::{Result, StudyError};
pub use geometry::{Affine, Vec3};
pub use labels::{Dirty, LabelVolume};
pub use mpr::{extract, EdgeLetters, Plane, PlaneGrid, SliceImage};
pub use pixel::{Photometric, Rescale, VoiFunction, Window, WindowPreset};
pub use render::{
    square_pixels, square_size, square_values, to_display, DisplayImage, SquareImage, VoiMapping,
};
pub use study::{open, Series, SeriesSource, Study};
pub use volume::{
    LoadObserver, ModalityTransform, NoProgress, Volume, VolumeLayout, VoxelData, VoxelKind,
    VoxelSlice,
};
