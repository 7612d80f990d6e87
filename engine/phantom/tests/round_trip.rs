//! What the writers produce reads back through the engine's own loaders with the same geometry,
//! values and labels.

use std::path::PathBuf;

use groundglass_phantom::{
    generate, write_dicom_series, write_label_nifti, write_nifti, Phantom, PhantomConfig,
};
use groundglass_study::{NoProgress, Volume};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("phantom-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn assert_affine(a: &groundglass_study::Affine, b: &groundglass_study::Affine) {
    for r in 0..4 {
        for c in 0..4 {
            assert!((a.0[r][c] - b.0[r][c]).abs() < 1e-3, "{a:?} != {b:?}");
        }
    }
}

/// Opens `path`, expects one series matching the phantom's grid, and loads it.
fn open_one(path: &std::path::Path, phantom: &Phantom) -> (groundglass_study::Series, Volume) {
    let study = groundglass_study::open(path).expect("opens");
    assert!(study.errors.is_empty(), "{:?}", study.errors);
    assert_eq!(study.series.len(), 1);
    let series = study.series.into_iter().next().expect("one series");
    assert_eq!(series.dims, phantom.dims.to_vec());
    assert_affine(&series.affine_lps, &phantom.affine);
    let volume = series.load(0, &NoProgress).expect("loads");
    assert_eq!(volume.dims, phantom.dims);
    assert_affine(&volume.affine, &phantom.affine);
    (series, volume)
}

fn assert_values(volume: &Volume, phantom: &Phantom) {
    let [nx, ny, nz] = phantom.dims;
    // A few named voxels, then all of them.
    for (i, j, k) in [
        (0, 0, 0),
        (nx / 3, ny / 2, nz / 2),
        (nx - 1, ny - 1, nz - 1),
    ] {
        assert_eq!(
            volume.modality_value(volume.index(i, j, k)),
            f64::from(phantom.value(i, j, k)),
            "voxel {i} {j} {k}"
        );
    }
    for n in 0..phantom.values.len() {
        assert_eq!(
            volume.modality_value(n),
            f64::from(phantom.values[n]),
            "voxel {n}"
        );
    }
}

#[test]
fn a_ct_dicom_series_reads_back() {
    let mut config = PhantomConfig::ct(21);
    config.lesions = true;
    let phantom = generate(&config);
    let dir = scratch("dicom-ct");
    let files = write_dicom_series(&phantom, &dir).expect("writes");
    assert_eq!(files.len(), phantom.dims[2]);
    let (series, volume) = open_one(&dir, &phantom);
    assert_eq!(series.modality, "CT");
    assert_eq!(series.description, "Groundglass phantom seed 21");
    assert_eq!(series.patient_name, "Phantom^21");
    assert_eq!(series.patient_id, "PHANTOM-21");
    assert_values(&volume, &phantom);
    assert_eq!(volume.default_window().center, 40.0);
    assert_eq!(volume.default_window().width, 400.0);

    // Same phantom, same bytes (UIDs included); another seed, other UIDs.
    let again = scratch("dicom-ct-again");
    let files_again = write_dicom_series(&phantom, &again).expect("writes");
    for (a, b) in files.iter().zip(&files_again) {
        assert!(
            std::fs::read(a).ok() == std::fs::read(b).ok(),
            "{a:?} differs"
        );
    }
    let other = scratch("dicom-ct-other");
    write_dicom_series(&generate(&PhantomConfig::ct(22)), &other).expect("writes");
    let uid = |dir: &std::path::Path| {
        groundglass_study::open(dir).expect("opens").series[0]
            .uid
            .clone()
    };
    assert_ne!(uid(&dir), uid(&other));
}

#[test]
fn an_mr_dicom_series_on_a_non_square_grid_reads_back() {
    // Unequal rows, columns and spacings catch a swapped PixelSpacing or Rows / Columns.
    let mut config = PhantomConfig::mr(8);
    config.dims = [96, 80, 40];
    config.spacing_mm = [3.0, 2.5, 6.0];
    let phantom = generate(&config);
    let dir = scratch("dicom-mr");
    write_dicom_series(&phantom, &dir).expect("writes");
    let (series, volume) = open_one(&dir, &phantom);
    assert_eq!(series.modality, "MR");
    assert_eq!(series.spacing_mm, [3.0, 2.5, 6.0]);
    assert_values(&volume, &phantom);

    // The header says what the task asks for, element by element.
    let first = dir.join("slice_0001.dcm");
    let obj = dicom_object::open_file(&first).expect("a DICOM file");
    let s = |tag| {
        obj.element(tag)
            .expect("present")
            .to_str()
            .expect("text")
            .trim_end_matches(['\0', ' '])
            .to_string()
    };
    use dicom_dictionary_std::tags;
    assert_eq!(s(tags::SOP_CLASS_UID), "1.2.840.10008.5.1.4.1.1.4");
    assert_eq!(s(tags::IMAGE_ORIENTATION_PATIENT), "1\\0\\0\\0\\1\\0");
    assert_eq!(s(tags::PIXEL_SPACING), "2.5\\3");
    assert_eq!(s(tags::ROWS), "80");
    assert_eq!(s(tags::COLUMNS), "96");
    assert_eq!(s(tags::SPACING_BETWEEN_SLICES), "6");
    assert!(s(tags::STUDY_INSTANCE_UID).starts_with("2.25."));
    assert_eq!(
        obj.meta().transfer_syntax().trim_end_matches('\0'),
        "1.2.840.10008.1.2.1"
    );
}

#[test]
fn nifti_image_and_labels_read_back() {
    let mut config = PhantomConfig::ct(33);
    config.dims = [120, 110, 72];
    config.spacing_mm = [2.8, 3.0, 4.0];
    let phantom = generate(&config);
    let dir = scratch("nifti");
    for name in ["image.nii.gz", "image.nii"] {
        let path = dir.join(name);
        write_nifti(&phantom, &path).expect("writes");
        let (_, volume) = open_one(&path, &phantom);
        assert_values(&volume, &phantom);
    }
    let path = dir.join("labels.nii.gz");
    write_label_nifti(&phantom, &path).expect("writes");
    let (_, volume) = open_one(&path, &phantom);
    match &volume.voxels {
        groundglass_study::VoxelData::U8(v) => assert!(v == &phantom.labels.labels),
        other => panic!("labels load as {:?}", other.kind()),
    }
}

#[test]
fn writing_into_a_file_names_the_path() {
    let dir = scratch("blocked");
    let blocker = dir.join("file");
    std::fs::write(&blocker, b"x").expect("scratch file");
    let phantom = generate(&PhantomConfig {
        dims: [16, 16, 8],
        ..PhantomConfig::ct(1)
    });
    let err = write_dicom_series(&phantom, &blocker.join("series")).expect_err("not a directory");
    assert!(err.to_string().contains("file"), "{err}");
    let err = write_nifti(&phantom, &blocker.join("x.nii")).expect_err("not a directory");
    assert!(err.to_string().contains("x.nii"), "{err}");
}
