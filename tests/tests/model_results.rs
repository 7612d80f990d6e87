//! The model's answers as DICOM a PACS stores (what `batch --send` sends), on the real CT: a mask
//! drawn on one axial slice becomes a SEG whose one frame is that slice, marked automatic with the
//! model as its algorithm; its SR and SEG pass `dciodvfy`; and the same answers make the same
//! instances (so sending them twice leaves one copy in a PACS), other answers other ones.

mod common;

use dicom_dictionary_std::tags;
use groundglass_feedback::export::dicom_parts::Derived;
use groundglass_feedback::export::{dicom_seg, model_answers, Deidentify};
use groundglass_feedback::{AskRecord, SliceRef};
use groundglass_grounding::{LabelMap, LocatedFinding};
use groundglass_model::prompt::{Lang, Task};
use groundglass_model::session::{Answer, SliceMask};
use groundglass_study::dicom::series::DicomSeriesPlan;
use groundglass_study::{Plane, PlaneGrid, SeriesSource, VolumeLayout};

fn answer_with_mask(layout: &VolumeLayout, index: usize) -> AskRecord {
    let grid = PlaneGrid::from_layout(layout, Plane::Axial);
    let (w, h) = (grid.width, grid.height);
    let mut square = vec![false; w * h];
    for y in h / 3..h / 2 {
        for x in w / 3..w / 2 {
            square[y * w + x] = true;
        }
    }
    let answer = Answer {
        text: "<seg>brain</seg>".into(),
        findings: vec![LocatedFinding {
            keyword: "brain".into(),
            class_id: Some(1),
            class_name: Some("brain".into()),
            box_px: None,
            box_lps: None,
            mask_index: Some(0),
        }],
        masks: vec![SliceMask::from_pixels(w, h, &square)],
        ..Answer::default()
    };
    AskRecord::new(
        7,
        SliceRef {
            series_uid: "ct".into(),
            volume: 0,
            plane: Plane::Axial,
            index,
            size: [w, h],
        },
        Task::Segment,
        Lang::En,
        None,
        None,
        false,
        "tiny".into(),
        answer,
    )
}

/// A checkpoint folder's name longer than DICOM's LO allows (64 characters).
const LONG_NAME: &str =
    "Groundglass tiny-paligemma2-segmentation-fine-tuned-on-the-phantoms-of-2026-12-07";

fn derived(seed: &str) -> Derived<'_> {
    Derived::model_masks_seg(LONG_NAME, seed)
}

fn read(path: &std::path::Path) -> dicom_object::DefaultDicomObject {
    dicom_object::open_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn string(obj: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

#[test]
fn the_models_masks_and_findings_become_a_valid_seg_and_sr_with_stable_uids() {
    let (series, volume) =
        common::only_series(&common::testdata("dicom/series/ct_head_invesalius"));
    let SeriesSource::Dicom(plan) = &series.source else {
        panic!("a DICOM series");
    };
    let plan: &DicomSeriesPlan = plan;
    let index = volume.dims[2] / 2;
    let record = answer_with_mask(&volume, index);
    let dir = std::env::temp_dir().join(format!("gg-model-results-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");

    let labels = model_answers::mask_labels(&[&record], &volume);
    let write_seg = |name: &str, seed: &str| {
        let path = dir.join(name);
        let frames = dicom_seg::write(
            &path,
            plan,
            &labels,
            &LabelMap::radgrounder(),
            &derived(seed),
            Deidentify::No,
            "salt",
            "test",
        )
        .expect("SEG written");
        (path, frames)
    };
    let (seg, frames) = write_seg("a_seg.dcm", "answers 7");
    assert_eq!(frames, 1, "one slice holds the mask");
    groundglass_tests::assert_valid_dicom(&seg);
    let obj = read(&seg);
    let segment = obj
        .element(tags::SEGMENT_SEQUENCE)
        .expect("segments")
        .items()
        .expect("items")[0]
        .clone();
    assert_eq!(string(&segment, tags::SEGMENT_ALGORITHM_TYPE), "AUTOMATIC");
    assert_eq!(
        string(&segment, tags::SEGMENT_ALGORITHM_NAME),
        &LONG_NAME[..64],
        "cut to what LO holds (dciodvfy above found no error)"
    );
    assert_eq!(
        string(&obj, tags::SERIES_DESCRIPTION),
        "Groundglass model masks (unverified)"
    );
    // The frame is the slice the mask was drawn on.
    let frame = &obj
        .element(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .expect("per-frame groups")
        .items()
        .expect("items")[0];
    let derivation = &frame
        .element(tags::DERIVATION_IMAGE_SEQUENCE)
        .expect("a derivation")
        .items()
        .expect("items")[0];
    let source = &derivation
        .element(tags::SOURCE_IMAGE_SEQUENCE)
        .expect("a source image")
        .items()
        .expect("items")[0];
    assert_eq!(
        string(source, tags::REFERENCED_SOP_INSTANCE_UID),
        plan.slices[index].header.sop_instance_uid
    );

    // The same answers, the same instance; others, another.
    let (again, _) = write_seg("b_seg.dcm", "answers 7");
    let (other, _) = write_seg("c_seg.dcm", "answers 8");
    let uid = |p: &std::path::Path| string(&read(p), tags::SOP_INSTANCE_UID);
    assert_eq!(uid(&seg), uid(&again));
    assert_ne!(uid(&seg), uid(&other));
    assert_eq!(
        string(&read(&seg), tags::SERIES_INSTANCE_UID),
        string(&read(&again), tags::SERIES_INSTANCE_UID)
    );

    // The SR of the same answer: valid, the model its device observer, unverified; its text
    // without markup.
    let sr = dir.join("sr.dcm");
    let placed = model_answers::write_sr(
        &sr,
        plan,
        &[&record],
        "Groundglass tiny (PaliGemma)",
        &Derived::model_findings_sr("Groundglass tiny (PaliGemma)", "answers 7"),
        Deidentify::No,
        "salt",
        "test",
    )
    .expect("SR written");
    assert_eq!(placed, 0, "a mask without a box is in the text and the SEG");
    groundglass_tests::assert_valid_dicom(&sr);
    let obj = read(&sr);
    assert_eq!(string(&obj, tags::VERIFICATION_FLAG), "UNVERIFIED");
    let dump = format!("{:?}", obj.into_inner());
    assert!(dump.contains("Device Observer Name"), "{dump}");
    assert!(
        dump.contains(&format!("axial slice {}: brain", index + 1)),
        "{dump}"
    );
    assert!(!dump.contains("<seg>"), "{dump}");
    let _ = std::fs::remove_dir_all(&dir);
}
