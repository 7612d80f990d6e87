//! The model's answers on a DICOM series as a PACS keeps them (what `batch --send` stores): a DICOM
//! SR (TID 1500 in a Comprehensive 3D SR, the model its device observer, unverified) with each
//! boxed finding as a measurement group (its class coded as the SEG codes it, its box a polygon
//! in the source's frame of reference on whatever plane it was found, the model named as the
//! algorithm) and each answer's text as a qualitative evaluation; and the label map of the
//! answers' masks, which the SEG writer takes.

use std::path::Path;

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use groundglass_grounding::parse::RadGrounder;
use groundglass_grounding::{LabelMap, Language};
use groundglass_study::dicom::build::text;
use groundglass_study::dicom::series::DicomSeriesPlan;
use groundglass_study::{LabelVolume, PlaneGrid, VolumeLayout};

use super::dicom_parts::{code, seq, uid_from, Derived};
use super::dicom_seg::class_code;
use super::dicom_sr::{
    container, content, image_region, tracking_identifier, tracking_unique_identifier, Document,
    Observer,
};
use super::{Deidentify, ExportError};
use crate::record::AskRecord;
use crate::state::UNKNOWN_CLASS_LABEL;

/// Writes the SR of `answers` (the model `model`'s, on the series `plan`) to `path`; returns how
/// many findings it places (boxed findings; the others are in the answers' text).
#[allow(clippy::too_many_arguments)]
pub fn write_sr(
    path: &Path,
    plan: &DicomSeriesPlan,
    answers: &[&AskRecord],
    model: &str,
    derived: &Derived<'_>,
    deidentify: Deidentify,
    salt: &str,
    software_version: &str,
) -> Result<usize, ExportError> {
    if answers.is_empty() {
        return Err(ExportError::Invalid(format!(
            "no answers on series {}: nothing to send as DICOM SR",
            plan.uid
        )));
    }
    let placed = answers
        .iter()
        .map(|a| a.findings.iter().filter(|f| f.box_lps.is_some()).count())
        .sum();
    let document = Document {
        plan,
        derived,
        observer: Observer::Model(model),
        deidentify,
        salt,
        software_version,
    };
    document.write(path, |frame| {
        let mut groups = Vec::new();
        let mut texts = Vec::new();
        for answer in answers {
            let at = &answer.slice;
            let place = format!("{} slice {}", at.plane.name(), at.index + 1);
            for (i, finding) in answer.findings.iter().enumerate() {
                let Some(corners) = finding.box_lps else {
                    continue;
                };
                let tracking = uid_from(format!("{salt}\nfinding\n{}\n{i}", answer.id).as_bytes());
                let finding_item = match finding.class_id {
                    Some(class) => content(
                        "CONTAINS",
                        "CODE",
                        code("121071", "DCM", "Finding"),
                        vec![seq(
                            tags::CONCEPT_CODE_SEQUENCE,
                            vec![class_code(
                                class.min(255) as u8,
                                finding.class_name.as_deref().unwrap_or(&finding.keyword),
                            )],
                        )],
                    ),
                    // A finding outside the label map keeps the model's own words.
                    None => content(
                        "CONTAINS",
                        "TEXT",
                        code("121071", "DCM", "Finding"),
                        vec![text(tags::TEXT_VALUE, VR::UT, &finding.keyword)],
                    ),
                };
                // A polygon closes on its first point.
                let mut outline = corners.to_vec();
                outline.push(corners[0]);
                groups.push(container(
                    "CONTAINS",
                    code("125007", "DCM", "Measurement Group"),
                    Some("1410"),
                    vec![
                        tracking_identifier(&format!("{} ({place})", finding.keyword)),
                        tracking_unique_identifier(&tracking),
                        algorithm("111001", "Algorithm Name", model),
                        algorithm("111003", "Algorithm Version", software_version),
                        finding_item,
                        image_region("POLYGON", &outline, frame),
                    ],
                ));
            }
            let readable = RadGrounder {
                labels: LabelMap::radgrounder(),
                language: Language::from(answer.lang),
            }
            .plain_text(&answer.text);
            if !readable.trim().is_empty() {
                texts.push(content(
                    "CONTAINS",
                    "TEXT",
                    code("121071", "DCM", "Finding"),
                    vec![text(
                        tags::TEXT_VALUE,
                        VR::UT,
                        &format!("{place}: {}", readable.trim()),
                    )],
                ));
            }
        }
        // A container holds at least one item (an empty content sequence is not valid DICOM).
        let mut body = Vec::new();
        if !groups.is_empty() {
            body.push(container(
                "CONTAINS",
                code("126010", "DCM", "Imaging Measurements"),
                None,
                groups,
            ));
        }
        if !texts.is_empty() {
            body.push(container(
                "CONTAINS",
                code("C0034375", "UMLS", "Qualitative Evaluations"),
                None,
                texts,
            ));
        }
        body
    })?;
    Ok(placed)
}

/// An algorithm identification item (TID 4019).
fn algorithm(value: &str, meaning: &str, text_value: &str) -> InMemDicomObject {
    content(
        "HAS CONCEPT MOD",
        "TEXT",
        code(value, "DCM", meaning),
        vec![text(tags::TEXT_VALUE, VR::UT, text_value)],
    )
}

/// The answers' masks painted into a label volume over `layout`, each with its finding's class
/// (masks without one as [`UNKNOWN_CLASS_LABEL`]); later answers paint over earlier ones.
pub fn mask_labels(answers: &[&AskRecord], layout: &VolumeLayout) -> LabelVolume {
    let mut labels = LabelVolume::new(layout.dims, layout.affine);
    for answer in answers {
        let grid = PlaneGrid::from_layout(layout, answer.slice.plane);
        for finding in &answer.findings {
            let Some(mask) = finding.mask_index.and_then(|m| answer.masks.get(m)) else {
                continue;
            };
            let class = finding
                .class_id
                .map_or(UNKNOWN_CLASS_LABEL, |c| c.min(255) as u8);
            labels.paint_slice_mask(
                &grid,
                answer.slice.index,
                mask.width,
                mask.height,
                &mask.pixels(),
                class,
            );
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::SliceRef;
    use groundglass_grounding::LocatedFinding;
    use groundglass_model::prompt::{Lang, Task};
    use groundglass_model::session::{Answer, SliceMask};
    use groundglass_study::geometry::Affine;
    use groundglass_study::Plane;

    fn layout() -> VolumeLayout {
        VolumeLayout {
            dims: [24, 20, 12],
            affine: Affine::from_axes(
                [0.8, 0.0, 0.0],
                [0.0, 0.8, 0.0],
                [0.0, 0.0, 2.5],
                [-10.0, -8.0, 4.0],
            ),
            kind: groundglass_study::VoxelKind::I16,
            modality: groundglass_study::ModalityTransform::Rescale(
                groundglass_study::Rescale::IDENTITY,
            ),
            photometric: groundglass_study::Photometric::Monochrome2,
            windows: vec![],
            voi_function: Default::default(),
            voi_lut: None,
            padding: None,
        }
    }

    fn finding(class_id: Option<u32>, mask_index: Option<usize>) -> LocatedFinding {
        LocatedFinding {
            keyword: "liver".into(),
            class_id,
            class_name: None,
            box_px: None,
            box_lps: None,
            mask_index,
        }
    }

    /// The answer's masks land on the plane they were drawn on, with their findings' classes;
    /// a finding without a mask paints nothing.
    #[test]
    fn masks_are_painted_where_the_answer_was_made() {
        let layout = layout();
        let grid = PlaneGrid::from_layout(&layout, Plane::Coronal);
        let (w, h) = (grid.width, grid.height);
        let mut half = vec![false; w * h];
        for y in 0..h {
            for x in 0..w / 2 {
                half[y * w + x] = true;
            }
        }
        let answer = Answer {
            findings: vec![
                finding(Some(5), Some(0)),
                finding(None, Some(1)),
                finding(Some(7), None),
            ],
            masks: vec![
                SliceMask::from_pixels(w, h, &half),
                SliceMask::from_pixels(w, h, &vec![false; w * h]),
            ],
            ..Answer::default()
        };
        let record = AskRecord::new(
            1,
            SliceRef {
                series_uid: "1.2.3".into(),
                volume: 0,
                plane: Plane::Coronal,
                index: 6,
                size: [w, h],
            },
            Task::Segment,
            Lang::En,
            None,
            None,
            false,
            "demo".into(),
            answer,
        );
        let labels = mask_labels(&[&record], &layout);
        let [nx, ny, _] = layout.dims;
        let painted: Vec<(usize, usize, usize, u8)> = labels
            .labels
            .iter()
            .enumerate()
            .filter(|(_, &l)| l > 0)
            .map(|(i, &l)| (i % nx, i / nx % ny, i / (nx * ny), l))
            .collect();
        assert_eq!(
            painted.len(),
            (nx / 2) * layout.dims[2],
            "half of one coronal slice"
        );
        let rows: std::collections::BTreeSet<usize> = painted.iter().map(|p| p.1).collect();
        assert_eq!(rows.len(), 1, "one coronal row of voxels: {rows:?}");
        assert!(painted.iter().all(|p| p.3 == 5), "the finding's class");
    }
}
