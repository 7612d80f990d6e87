//! Preprocessing parity with RadGrounder's torch code on real slices
//! (`tests/fixtures/make_preprocess_fixture.py`), and the engine's slice feeding it.

use std::path::PathBuf;

use candle_core::Device;
use groundglass_model::preprocess::{preprocess_slice, preprocess_values};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture() -> std::collections::HashMap<String, candle_core::Tensor> {
    candle_core::safetensors::load(
        root().join("tests/fixtures/preprocess/expected.safetensors"),
        &Device::Cpu,
    )
    .expect("fixture")
}

fn values(t: &candle_core::Tensor) -> Vec<f32> {
    t.flatten_all()
        .expect("flat")
        .to_vec1::<f32>()
        .expect("f32")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn ct_windows_and_resize_match_torch() {
    let f = fixture();
    let input = values(&f["ct_input"]);
    let ours = preprocess_values(&input, 256, 256, true, 224);
    let d = max_diff(&ours.pixels, &values(&f["ct_expected"]));
    assert!(d < 1e-5, "{d}");
}

#[test]
fn mr_min_max_and_resize_match_torch() {
    let f = fixture();
    let input = values(&f["mr_input"]);
    let ours = preprocess_values(&input, 256, 256, false, 224);
    let d = max_diff(&ours.pixels, &values(&f["mr_expected"]));
    assert!(d < 1e-5, "{d}");
}

#[test]
fn the_engine_slice_is_what_gets_preprocessed() {
    // The fixture's CT input is IM0055.dcm; in the sorted series it is acquired slice 54.
    let study =
        groundglass_study::open(&root().join("../shared/testdata/dicom/series/ct_head_invesalius"))
            .expect("open");
    let volume = study.series[0]
        .load(0, &groundglass_study::NoProgress)
        .expect("load");
    let k = study.series[0]
        .files
        .iter()
        .position(|p| p.ends_with("IM0055.dcm"))
        .expect("file");
    let slice = groundglass_study::extract(&volume, groundglass_study::Plane::Acquired, k);
    let ours = preprocess_slice(&slice, "CT", 224);
    let d = max_diff(&ours.pixels, &values(&fixture()["ct_expected"]));
    assert!(d < 1e-5, "{d}");
}

/// A CT slice tagged MONOCHROME1 reaches the model exactly as the authors' reader gives it: Hounsfield
/// units, not inverted (an inversion would turn air into bone in every CT window).
#[test]
fn monochrome1_ct_is_preprocessed_as_the_authors_do() {
    let path = root().join("tests/fixtures/preprocess/ct_head_IM0055_monochrome1.dcm");
    let study = groundglass_study::open(&path).expect("open");
    let volume = study.series[0]
        .load(0, &groundglass_study::NoProgress)
        .expect("load");
    assert_eq!(
        volume.photometric,
        groundglass_study::Photometric::Monochrome1
    );
    let slice = groundglass_study::extract(&volume, groundglass_study::Plane::Acquired, 0);
    let ours = preprocess_slice(&slice, "CT", 224);
    let d = max_diff(&ours.pixels, &values(&fixture()["ct_expected"]));
    assert!(d < 1e-5, "{d}");
}
