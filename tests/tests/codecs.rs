//! Every transfer syntax decodes to what pydicom (with pylibjpeg, pyjpegls) decodes
//! (`tests/fixtures/make_pixel_fixtures.py`), and every lossless file is pixel-identical to its
//! uncompressed twin.

mod common;

use common::*;
use groundglass_study::{open, NoProgress, Volume, VoxelData};

fn load(path: &std::path::Path) -> Volume {
    let study = open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    study.series[0]
        .load(0, &NoProgress)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Stored sample(s) at (frame, row, col): the volume's frames are its slices in stored order for
/// these files (single frames, or multi-frame objects without a reordering geometry).
fn stored(v: &Volume, frame: usize, row: usize, col: usize) -> Vec<f64> {
    let idx = v.index(col, row, frame);
    match &v.voxels {
        VoxelData::Rgb8(b) => b[idx * 3..idx * 3 + 3]
            .iter()
            .map(|x| f64::from(*x))
            .collect(),
        other => vec![other.get(idx)],
    }
}

#[test]
fn every_decodable_file_matches_pydicom() {
    let dir = repo_root().join("tests/fixtures/pixels");
    let mut checked = 0;
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    for path in names {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if !name.ends_with(".json") || name == "twins.json" {
            continue;
        }
        let fx = fixture(&format!("pixels/{name}"));
        if fx["decoded"] != serde_json::Value::Bool(true) {
            continue;
        }
        let file = from_root(fx["path"].as_str().expect("path"));
        let volume = load(&file);
        let lossy = fx["lossy"].as_bool().unwrap_or(false);
        let range = fx["max"].as_f64().expect("max") - fx["min"].as_f64().expect("min");
        // Other decoders may round lossy data differently (and upsample chroma differently).
        let tol = if lossy { (range * 0.03).max(3.0) } else { 0.0 };
        let key = if fx.get("palette_rgb8_samples").is_some() {
            "palette_rgb8_samples"
        } else {
            "samples"
        };
        for s in fx[key].as_array().expect("samples") {
            let (f, r, c) = (
                s["frame"].as_u64().expect("f") as usize,
                s["row"].as_u64().expect("r") as usize,
                s["col"].as_u64().expect("c") as usize,
            );
            let expected: Vec<f64> = match &s["value"] {
                serde_json::Value::Array(a) => a.iter().map(|x| x.as_f64().expect("v")).collect(),
                v => vec![v.as_f64().expect("v")],
            };
            let got = stored(&volume, f, r, c);
            assert_eq!(got.len(), expected.len(), "{name}: channels");
            for (g, e) in got.iter().zip(&expected) {
                assert!(
                    (g - e).abs() <= tol,
                    "{name}: ({f},{r},{c}) = {got:?}, pydicom {expected:?}"
                );
            }
        }
        if !lossy && key == "samples" && volume.photometric != groundglass_study::Photometric::Rgb {
            let sum: f64 = (0..volume.voxels.len()).map(|i| volume.voxels.get(i)).sum();
            let expected = fx["sum"].as_f64().expect("sum");
            assert!(
                (sum - expected).abs() < 0.5,
                "{name}: sum {sum} vs {expected}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} files checked");
}

#[test]
fn lossless_files_are_identical_to_their_twins() {
    let twins = fixture("pixels/twins.json");
    let mut compared = 0;
    for t in twins.as_array().expect("twins") {
        if t[2] != serde_json::Value::Bool(true) {
            continue;
        }
        let a = load(&from_root(t[0].as_str().expect("a")));
        let b = load(&from_root(t[1].as_str().expect("b")));
        assert_eq!(a.dims, b.dims, "{t}");
        assert!(a.voxels == b.voxels, "{} and {} differ", t[0], t[1]);
        compared += 1;
    }
    assert!(compared >= 12, "{compared}");
}

#[test]
fn twelve_bit_jpeg_with_broken_scan_parameters_decodes_like_its_fixed_copy() {
    // pydicom_JPEG-lossy.dcm has SOS parameters that libjpeg rejects; the fixed copy is
    // pydicom_JPGExtended.dcm. Both must decode to the same image.
    let broken = load(&testdata("dicom/transfer-syntax/pydicom_JPEG-lossy.dcm"));
    let fixed = load(&testdata("dicom/transfer-syntax/pydicom_JPGExtended.dcm"));
    assert_eq!(broken.voxels, fixed.voxels);
}
