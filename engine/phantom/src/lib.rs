//! Seedable synthetic torso phantoms for Groundglass: a CT or MR volume of a chest and upper
//! abdomen with a label map of its organs (class ids of RadGrounder's label map), written as a
//! DICOM series or NIfTI. Training data and grounding evaluation for a small model are built from
//! them, so the anatomy keeps the real layout (the liver on the patient's right, the spleen on the
//! left, lungs above the diaphragm) while shapes, sizes and positions vary with the seed.
//!
//! Patient space is DICOM LPS, as everywhere in Groundglass: voxel i runs toward the patient's
//! left, j posterior, k superior (ImageOrientationPatient 1\0\0\0\1\0, axial slices from the feet
//! up), the grid centred on the origin.
//!
//! ```no_run
//! let phantom = groundglass_phantom::generate(&groundglass_phantom::PhantomConfig::ct(7));
//! groundglass_phantom::write_dicom_series(&phantom, std::path::Path::new("out/ct7"))?;
//! groundglass_phantom::write_nifti(&phantom, std::path::Path::new("out/ct7.nii.gz"))?;
//! groundglass_phantom::write_label_nifti(&phantom, std::path::Path::new("out/ct7_labels.nii.gz"))?;
//! # Ok::<(), groundglass_phantom::PhantomError>(())
//! ```

mod anatomy;
mod canvas;
pub mod classes;
mod config;
mod dicom;
mod error;
mod lesions;
mod nifti;
mod phantom;
mod render;
mod rng;
mod shape;
mod tissue;
mod uid;

pub use config::{Modality, PhantomConfig, CANONICAL_FOV_MM};
pub use dicom::write_dicom_series;
pub use error::{PhantomError, Result};
pub use lesions::{Lesion, LesionKind};
pub use nifti::{write_label_nifti, write_nifti};
pub use phantom::{generate, Phantom};
