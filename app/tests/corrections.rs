//! The corrections contract: `review apply` with the committed example edits on the real CT, then
//! `export` in every format; the exports are read back independently (the NIfTI through the
//! engine's reader, the DICOM SEG and SR with dicom-rs and, where installed, checked by
//! `dciodvfy`).

use std::path::{Path, PathBuf};
use std::process::Command;

use groundglass_study::{open, NoProgress};
use groundglass_tests::assert_valid_dicom;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_groundglass"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ct() -> PathBuf {
    root().join("../shared/testdata/dicom/series/ct_head_invesalius")
}

fn run(args: &[&str], extra: &[&Path]) -> serde_json::Value {
    let out = bin().args(args).args(extra).output().expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// A store with the example edits applied, in a fresh temporary folder.
fn store(name: &str) -> PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-corr-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let report = run(
        &["review", "apply", "--study"],
        &[
            &ct(),
            Path::new("--store"),
            &dir.join("store"),
            Path::new("--edits"),
            &root().join("tests/fixtures/review-edits.jsonl"),
        ],
    );
    assert_eq!(report["applied"], 16);
    assert_eq!(report["annotations"], 4);
    assert_eq!(report["strokes"], 3);
    assert_eq!(report["measurements"], 5);
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(0));
    dir
}

fn export(dir: &Path, format: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["export", "--format", format];
    args.extend_from_slice(extra);
    run(
        &args,
        &[
            Path::new("--study"),
            &ct(),
            Path::new("--store"),
            &dir.join("store"),
            Path::new("--out"),
            &dir.join(format),
        ],
    )
}

#[test]
fn the_label_map_lands_on_the_source_voxels() {
    let dir = store("nifti");
    let written = export(&dir, "nifti", &[]);
    let path = PathBuf::from(written[0]["path"].as_str().expect("path"));
    let study = open(&path).expect("the engine reads the exported NIfTI");
    let labels = study.series[0].load(0, &NoProgress).expect("loads");
    let source = open(&ct()).expect("ct");
    let source = &source.series[0];
    assert_eq!(labels.dims, [256, 256, 108]);
    for r in 0..3 {
        for c in 0..4 {
            let (a, b) = (
                labels.affine.to_rows()[r][c],
                source.affine_lps.to_rows()[r][c],
            );
            assert!((a - b).abs() < 1e-3, "affine differs: {a} vs {b}");
        }
    }
    let at = |x: usize, y: usize, z: usize| labels.modality_value(labels.index(x, y, z));
    // Painted (brain, class 90) on slices 54 and 55, erased at (120, 110) on 54, nothing elsewhere.
    assert_eq!(at(100, 100, 54), 90.0);
    assert_eq!(at(150, 150, 54), 90.0);
    assert_eq!(at(120, 110, 54), 0.0);
    assert_eq!(at(110, 120, 55), 90.0);
    assert_eq!(at(100, 100, 53), 0.0);
    assert_eq!(at(10, 10, 54), 0.0);
    assert_eq!(written[0]["count"].as_u64().map(|n| n > 500), Some(true));
}

fn seg_frames_and_bits(path: &Path) -> (u32, usize, dicom_object::DefaultDicomObject) {
    use dicom_dictionary_std::tags;
    let obj = dicom_object::open_file(path).expect("dicom-rs reads the SEG");
    let frames: u32 = obj
        .element(tags::NUMBER_OF_FRAMES)
        .expect("frames")
        .to_str()
        .expect("str")
        .trim()
        .parse()
        .expect("number");
    let bits = obj
        .element(tags::PIXEL_DATA)
        .expect("pixels")
        .to_bytes()
        .expect("bytes")
        .iter()
        .map(|b| b.count_ones() as usize)
        .sum();
    (frames, bits, obj)
}

#[test]
fn dicom_seg_is_valid_references_the_source_and_matches_the_label_map() {
    use dicom_dictionary_std::tags;
    let dir = store("seg");
    let nifti = export(&dir, "nifti", &[]);
    let written = export(&dir, "dicom-seg", &[]);
    let path = PathBuf::from(written[0]["path"].as_str().expect("path"));
    let (frames, bits, obj) = seg_frames_and_bits(&path);
    assert_eq!(frames, 2, "class 90 on slices 54 and 55");
    assert_eq!(bits as u64, nifti[0]["count"].as_u64().expect("count"));
    let text = |tag| {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok().map(|s| s.trim().to_string()))
            .unwrap_or_default()
    };
    let source_uid = open(&ct()).expect("ct").series[0].uid.clone();
    // De-identified by default: no name, identity removed, source UIDs mapped.
    assert_eq!(text(tags::PATIENT_NAME), "");
    assert_eq!(text(tags::PATIENT_IDENTITY_REMOVED), "YES");
    assert_eq!(text(tags::MODALITY), "SEG");
    let referenced = |obj: &dicom_object::DefaultDicomObject| {
        obj.element(tags::REFERENCED_SERIES_SEQUENCE)
            .expect("referenced series")
            .items()
            .expect("items")[0]
            .element(tags::SERIES_INSTANCE_UID)
            .expect("uid")
            .to_str()
            .expect("str")
            .trim_end_matches('\0')
            .to_string()
    };
    assert_ne!(referenced(&obj), source_uid);
    // With identifiers kept, it references the source series itself.
    let kept = export(&dir, "dicom-seg", &["--keep-identifiers"]);
    let (_, _, obj) = seg_frames_and_bits(Path::new(kept[0]["path"].as_str().expect("path")));
    assert_eq!(referenced(&obj), source_uid);

    assert_valid_dicom(&path);
}

/// The measurements as a DICOM SR (TID 1500): valid to `dciodvfy`, and read back with dicom-rs
/// its groups carry the same figures as the JSON export, with their regions in LPS.
#[test]
fn measurements_export_as_a_valid_dicom_sr_with_the_json_figures() {
    use dicom_dictionary_std::tags;
    let dir = store("sr");
    let json = export(&dir, "json", &[]);
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(json[0]["path"].as_str().expect("path")).expect("json"),
    )
    .expect("parses");
    let written = export(&dir, "sr", &[]);
    assert_eq!(written[0]["count"], 5, "{written}");
    let path = PathBuf::from(written[0]["path"].as_str().expect("path"));
    assert_valid_dicom(&path);
    let obj = dicom_object::open_file(&path).expect("dicom-rs reads the SR");
    let str_of = |o: &dicom_object::InMemDicomObject, tag| {
        o.element(tag)
            .ok()
            .and_then(|e| {
                e.to_str()
                    .ok()
                    .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            })
            .unwrap_or_default()
    };
    assert_eq!(
        str_of(&obj, tags::SOP_CLASS_UID),
        "1.2.840.10008.5.1.4.1.1.88.34"
    );
    assert_eq!(str_of(&obj, tags::MODALITY), "SR");
    assert_eq!(str_of(&obj, tags::PATIENT_IDENTITY_REMOVED), "YES");
    let concept = |o: &dicom_object::InMemDicomObject| {
        o.element(tags::CONCEPT_NAME_CODE_SEQUENCE)
            .ok()
            .and_then(|e| e.items().map(|i| str_of(&i[0], tags::CODE_VALUE)))
            .unwrap_or_default()
    };
    assert_eq!(concept(&obj), "126000");
    let children = |o: &dicom_object::InMemDicomObject| -> Vec<dicom_object::InMemDicomObject> {
        o.element(tags::CONTENT_SEQUENCE)
            .ok()
            .and_then(|e| e.items().map(|i| i.to_vec()))
            .unwrap_or_default()
    };
    let root_items = children(&obj);
    let library = root_items
        .iter()
        .find(|c| concept(c) == "111028")
        .expect("image library");
    let images = children(&children(library)[0]).len();
    assert_eq!(images, 108, "every source instance in the image library");
    let measurements = root_items
        .iter()
        .find(|c| concept(c) == "126010")
        .expect("imaging measurements");
    let groups = children(measurements);
    assert_eq!(groups.len(), 5);
    let number = |group: &dicom_object::InMemDicomObject, code: &str| -> Option<f64> {
        children(group)
            .iter()
            .find(|c| concept(c) == code)
            .map(|c| {
                let value = &c
                    .element(tags::MEASURED_VALUE_SEQUENCE)
                    .expect("value")
                    .items()
                    .expect("items")[0];
                str_of(value, tags::NUMERIC_VALUE).parse().expect("number")
            })
    };
    let items = v["measurements"].as_array().expect("measurements");
    let line = items.iter().find(|m| m["shape"] == "line").expect("line");
    let ellipse = items
        .iter()
        .find(|m| m["shape"] == "ellipse")
        .expect("ellipse");
    let lengths: Vec<f64> = groups
        .iter()
        .filter_map(|g| number(g, "410668003"))
        .collect();
    assert_eq!(lengths.len(), 1);
    assert!((lengths[0] - line["length_mm"].as_f64().expect("mm")).abs() < 1e-6);
    // Means: the ellipse's, the freehand outline's and the point's value, in the store's order.
    let means: Vec<f64> = groups
        .iter()
        .filter_map(|g| number(g, "373098007"))
        .collect();
    let shape = |name: &str| items.iter().find(|m| m["shape"] == name).expect(name);
    let expected = [
        ellipse["mean"].as_f64().expect("mean"),
        shape("freehand")["mean"].as_f64().expect("mean"),
        shape("point")["value"].as_f64().expect("value"),
    ];
    assert_eq!(means.len(), 3, "{means:?}");
    for (m, e) in means.iter().zip(expected) {
        assert!((m - e).abs() < 1e-6 * e.abs().max(1.0), "{m} vs {e}");
    }
    // The angle in degrees (UCUM "deg"), on its two arms.
    let angles: Vec<f64> = groups.iter().filter_map(|g| number(g, "1483009")).collect();
    let angle = shape("angle")["angle_deg"].as_f64().expect("degrees");
    assert!(
        angles.len() == 1 && (angles[0] - angle).abs() < 1e-4,
        "{angles:?} vs {angle}"
    );
    let graphic = |kind: &str| -> Vec<Vec<f32>> {
        groups
            .iter()
            .flat_map(children)
            .filter(|c| concept(c) == "111030" && str_of(c, tags::GRAPHIC_TYPE) == kind)
            .map(|c| {
                c.element(tags::GRAPHIC_DATA)
                    .expect("graphic data")
                    .to_multi_float32()
                    .expect("floats")
            })
            .collect()
    };
    let polylines: Vec<usize> = graphic("POLYLINE").iter().map(Vec::len).collect();
    assert_eq!(
        polylines,
        [6, 9],
        "the line's two ends, the angle's three points"
    );
    // The freehand outline closed (its first vertex again), the rectangle-free fixture's one
    // polygon; the point one position.
    assert_eq!(
        graphic("POLYGON").iter().map(Vec::len).collect::<Vec<_>>(),
        [18]
    );
    assert_eq!(
        graphic("POINT").iter().map(Vec::len).collect::<Vec<_>>(),
        [3]
    );
    // The ellipse's region: its four axis ends in LPS, in the source's (mapped) frame of reference.
    let region = groups
        .iter()
        .flat_map(children)
        .find(|c| concept(c) == "111030" && str_of(c, tags::GRAPHIC_TYPE) == "ELLIPSE")
        .expect("an ellipse region");
    let data = region
        .element(tags::GRAPHIC_DATA)
        .expect("graphic data")
        .to_multi_float32()
        .expect("floats");
    assert_eq!(data.len(), 12);
    assert!(!str_of(&region, tags::REFERENCED_FRAME_OF_REFERENCE_UID).is_empty());
    assert_pydicom_reads_the_json_figures(&path, items);
}

/// pydicom, a reader that shares no code with ours, walks the SR's measurement groups
/// (`tests/fixtures/read_sr.py`): each group has the JSON's figures in UCUM units, its region's
/// graphic type and point count, and a tracking UID of its own. Where python3 has no pydicom this
/// is skipped with a message, except under CI (`.ci/run` installs Debian's python3-pydicom).
fn assert_pydicom_reads_the_json_figures(sr: &Path, items: &[serde_json::Value]) {
    let script = root().join("tests/fixtures/read_sr.py");
    let has_pydicom = Command::new("python3")
        .args(["-c", "import pydicom"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pydicom {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must read the SR back with pydicom (apt-get install python3-pydicom)"
        );
        eprintln!("skipped: python3 has no pydicom; the SR is not read back by it");
        return;
    }
    let out = Command::new("python3")
        .arg(&script)
        .arg(sr)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "pydicom could not read the SR: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    assert_eq!(read["modality"], "SR");
    let groups = read["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), items.len(), "{read}");
    let hu = "[hnsf'U]";
    let mut tracking = std::collections::BTreeSet::new();
    for (group, item) in groups.iter().zip(items) {
        let shape = item["shape"].as_str().expect("shape");
        // (SNOMED code, the JSON's key, the UCUM unit) of each figure the shape has.
        let statistics = [
            ("373098007", "mean", hu),
            ("386136009", "sd", hu),
            ("255605001", "min", hu),
            ("56851009", "max", hu),
            ("42798000", "area_mm2", "mm2"),
        ];
        let (figures, region, points): (Vec<(&str, &str, &str)>, &str, usize) = match shape {
            "line" => (vec![("410668003", "length_mm", "mm")], "POLYLINE", 2),
            "angle" => (vec![("1483009", "angle_deg", "deg")], "POLYLINE", 3),
            "point" => (vec![("373098007", "value", hu)], "POINT", 1),
            "ellipse" => (statistics.to_vec(), "ELLIPSE", 4),
            "freehand" => {
                let vertices = item["points_px"].as_array().expect("points").len();
                (statistics.to_vec(), "POLYGON", vertices + 1)
            }
            other => panic!("a shape the test does not know: {other}"),
        };
        let numbers = group["numbers"].as_object().expect("numbers");
        assert_eq!(numbers.len(), figures.len(), "{shape}: {group}");
        for (code, key, unit) in figures {
            let expected = item[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{shape}: {key}"));
            let number = &numbers[code];
            let got = number["value"].as_f64().expect("value");
            assert!(
                (got - expected).abs() <= 1e-6 * expected.abs().max(1.0),
                "{shape} {key}: pydicom read {got}, the JSON has {expected}"
            );
            assert_eq!(number["unit"], unit, "{shape} {key}");
        }
        assert_eq!(
            group["regions"],
            serde_json::json!([{ "type": region, "points": points }]),
            "{shape}"
        );
        let uid = group["tracking_uid"].as_str().expect("a tracking UID");
        assert!(
            tracking.insert(uid.to_string()),
            "{shape}: tracking UID {uid} twice"
        );
    }
}

#[test]
fn radgrounder_export_has_the_confirmed_boxes_in_both_languages() {
    let dir = store("rg");
    export(&dir, "radgrounder", &[]);
    let read = |lang: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("radgrounder").join(format!("train_{lang}.jsonl")))
            .expect("jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).expect("line"))
            .collect()
    };
    let en = read("en");
    let de = read("de");
    assert_eq!(en.len(), 2, "acquired slice 54 and coronal slice 128");
    let axial = en
        .iter()
        .find(|l| l["plane"] == "acquired")
        .expect("acquired");
    // The moved brain box (62, 48, 196, 214 on 256 px -> bins x 2) and the skull; the deleted box
    // is gone.
    assert_eq!(
        axial["target"],
        "<p bbox=<loc0124><loc0096><loc0392><loc0428> id=<seg090>>brain</p>, \
         <p bbox=<loc0080><loc0060><loc0440><loc0460> id=<seg091>>skull</p>."
    );
    assert_eq!(
        axial["prompt"],
        "\n\nCaption this image and detect keywords: \n"
    );
    let axial_de = de
        .iter()
        .find(|l| l["plane"] == "acquired")
        .expect("acquired");
    assert!(axial_de["target"]
        .as_str()
        .expect("text")
        .contains(">Gehirn</p>"));
    assert!(axial_de["prompt"]
        .as_str()
        .expect("text")
        .contains("Beschreibe dieses Bild und detektiere Schlüsselwörter:"));
    // The slice image: 16-bit, modality values + 32768.
    let png = dir
        .join("radgrounder")
        .join(axial["image"].as_str().expect("image"));
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png).expect("png"),
    ));
    let mut reader = decoder.read_info().expect("header");
    assert_eq!(reader.info().bit_depth, png::BitDepth::Sixteen);
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).expect("frame");
    let source = open(&ct()).expect("ct").series[0]
        .load(0, &NoProgress)
        .expect("load");
    let hu = source.modality_value(source.index(128, 128, 54));
    let stored = u16::from_be_bytes([buf[2 * (128 * 256 + 128)], buf[2 * (128 * 256 + 128) + 1]]);
    assert_eq!(f64::from(stored) - 32768.0, hu);
}

#[test]
fn the_viewer_reads_the_exported_seg_back_as_an_overlay() {
    use eframe::egui;
    let dir = store("seg-back");
    let written = export(&dir, "dicom-seg", &[]);
    let seg = PathBuf::from(written[0]["path"].as_str().expect("path"));
    let (_, bits, _) = seg_frames_and_bits(&seg);
    // The CT with the (de-identified) SEG beside it, as a PACS export would put them.
    let study = dir.join("study");
    std::fs::create_dir_all(&study).expect("dir");
    for f in std::fs::read_dir(ct()).expect("ct") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, study.join(f.file_name().expect("name"))).expect("copy");
    }
    std::fs::copy(&seg, study.join("corrections_seg.dcm")).expect("copy seg");
    let options = groundglass_app::viewer::Options {
        path: Some(study),
        store_root: Some(dir.join("viewer-stores")),
        ..Default::default()
    };
    let mut h = egui_kittest::Harness::builder()
        .with_size(egui::vec2(900.0, 600.0))
        .wgpu()
        .build_eframe(move |cc| groundglass_app::viewer::ViewerApp::new(cc, options));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !h.state().is_loaded() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            h.state().notices
        );
        h.step();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    h.run_steps(3);
    let app = h.state();
    assert_eq!(app.series.len(), 1, "the SEG is an overlay, not a series");
    assert_eq!(app.segmentations.len(), 1);
    let labels = app.labels.as_ref().expect("the overlay is shown");
    assert_eq!(
        labels.counts()[90],
        bits,
        "every SEG pixel lands on its voxel (class 90, brain)"
    );
}

#[test]
fn measurements_export_as_json_with_lps_geometry_and_numpys_figures() {
    let dir = store("json");
    let written = export(&dir, "json", &[]);
    assert_eq!(written[0]["count"], 5, "{written}");
    let path = PathBuf::from(written[0]["path"].as_str().expect("path"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("json")).expect("parses");
    let items = v["measurements"].as_array().expect("measurements");
    let line = items.iter().find(|m| m["shape"] == "line").expect("line");
    let ends: Vec<Vec<f64>> = line["points_lps"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            p.as_array()
                .expect("xyz")
                .iter()
                .map(|c| c.as_f64().expect("mm"))
                .collect()
        })
        .collect();
    let apart = (0..3)
        .map(|i| (ends[0][i] - ends[1][i]).powi(2))
        .sum::<f64>()
        .sqrt();
    let length = line["length_mm"].as_f64().expect("length");
    assert!(
        (apart - length).abs() < 1e-9 && length > 100.0,
        "{apart} vs {length}"
    );
    assert_eq!(line["reviewer"], "dr. example");
    // The ellipse is the measure fixture's third region: numpy's figures on the same voxels.
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/measure/ct_head_invesalius.json"))
            .expect("fixture"),
    )
    .expect("json");
    let numpy = &fixture["regions"][2];
    assert_eq!(numpy["kind"], "ellipse");
    let ellipse = items
        .iter()
        .find(|m| m["shape"] == "ellipse")
        .expect("ellipse");
    assert_eq!(ellipse["voxels"], numpy["voxels"]);
    assert_eq!(ellipse["unit"], "HU");
    // The freehand outline is the fixture's first polygon.
    let freehand = items
        .iter()
        .find(|m| m["shape"] == "freehand")
        .expect("freehand");
    let polygon = &fixture["regions"][4];
    assert_eq!(polygon["kind"], "polygon");
    for (ours, numpy) in [(ellipse, numpy), (freehand, polygon)] {
        assert_eq!(ours["voxels"], numpy["voxels"]);
        assert_eq!(ours["unit"], "HU");
        for key in ["mean", "sd", "min", "max", "area_mm2"] {
            let (a, b) = (
                ours[key].as_f64().expect("ours"),
                numpy[key].as_f64().expect("numpy"),
            );
            assert!((a - b).abs() < 1e-9 * b.abs().max(1.0), "{key}: {a} vs {b}");
        }
    }
    // Outlines in LPS are closed: the first vertex again at the end.
    let outline = freehand["outline_lps"].as_array().expect("outline");
    assert_eq!(outline.len(), 6);
    assert_eq!(outline[0], outline[5]);
    let point = items.iter().find(|m| m["shape"] == "point").expect("point");
    assert!(
        point["value"].is_number() && point["unit"] == "HU",
        "{point}"
    );
}

/// The corrections go back to the PACS with `export --send`: the SEG over DICOMweb (STOW-RS),
/// the SR over DIMSE (C-STORE, our AE title GGTEST); Orthanc then holds both in the source study,
/// beside its CT series. A peer that does not answer to its AE title refuses the C-STORE with a
/// message naming it.
#[test]
fn seg_and_sr_go_back_to_the_pacs_over_both_protocols() {
    if groundglass_tests::orthanc::in_private_network(
        "seg_and_sr_go_back_to_the_pacs_over_both_protocols",
    ) {
        send_inside_the_namespace();
    }
}

fn send_inside_the_namespace() {
    use groundglass_tests::orthanc::Orthanc;
    let orthanc = Orthanc::start(8042, 4242, None);
    assert_eq!(orthanc.upload(&ct()), 108);
    let dir = store("send");
    let seg = export(&dir, "dicom-seg", &["--send", &orthanc.dicom_web()]);
    assert_eq!(seg.as_array().map(Vec::len), Some(1), "{seg}");
    let dimse = "dicom://ORTHANC@127.0.0.1:4242";
    let sr = export(&dir, "sr", &["--send", dimse, "--calling-ae", "GGTEST"]);
    assert_eq!(sr.as_array().map(Vec::len), Some(1), "{sr}");
    let series = orthanc.series();
    let mut modalities: Vec<&str> = series.iter().map(|s| s.modality.as_str()).collect();
    modalities.sort();
    assert_eq!(modalities, ["CT", "SEG", "SR"], "{series:?}");
    let studies: std::collections::BTreeSet<&str> =
        series.iter().map(|s| s.study.as_str()).collect();
    assert!(
        studies.len() == 1 && !studies.contains(""),
        "SEG and SR in the CT's study: {series:?}"
    );
    for s in &series {
        let expected = if s.modality == "CT" { 108 } else { 1 };
        assert_eq!(s.instances.len(), expected, "{}", s.modality);
    }
    // The stored SR is the one exported: the same SOP instance.
    let sr_series = series.iter().find(|s| s.modality == "SR").expect("SR");
    let instance = &sr_series.instances[0];
    let tags = orthanc.get_json(&format!("/instances/{instance}/simplified-tags"));
    let exported = dicom_object::open_file(sr[0]["path"].as_str().expect("path")).expect("SR");
    let uid = exported
        .element(dicom_dictionary_std::tags::SOP_INSTANCE_UID)
        .expect("uid")
        .to_str()
        .expect("text")
        .trim_end_matches('\0')
        .to_string();
    assert_eq!(tags["SOPInstanceUID"], uid.as_str());
    // A called AE title the peer does not answer to: refused before anything is written there.
    let out = bin()
        .args([
            "export",
            "--format",
            "sr",
            "--send",
            "dicom://NOT_ORTHANC@127.0.0.1:4242",
        ])
        .args(["--calling-ae", "GGTEST", "--study"])
        .arg(ct())
        .arg("--store")
        .arg(dir.join("store"))
        .arg("--out")
        .arg(dir.join("sr-again"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("NOT_ORTHANC") && said.contains("association"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
