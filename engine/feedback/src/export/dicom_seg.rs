//! DICOM Segmentation (binary) of a label map over a DICOM series: one segment per class id, one
//! frame per (segment, source slice) that holds any of it, each frame referencing its source
//! instance. Element by element after a file `dciodvfy` accepts without errors (highdicom's output,
//! pared down): the patient, study and frame-of-reference modules are copied from the source, the
//! SEG gets its own series and equipment. With de-identification (the default), the DICOM PS3.15
//! basic profile applies: identifying type-2 attributes stay present but empty, type-1 dates get
//! dummies, and every UID from the source is replaced by a deterministic mapping.

use std::path::Path;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use groundglass_grounding::LabelMap;
use groundglass_study::dicom::build::{ds, multi, text, us};
use groundglass_study::dicom::series::DicomSeriesPlan;
use groundglass_study::LabelVolume;

use super::dicom_parts::{
    code, content_date_time, derived_uid, item, put_common, seq, uid_mapper, write_file, Common,
    Derived, Source,
};
use super::{Deidentify, ExportError};

const SEG_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.66.4";

/// A RadGrounder class id as a code, under a private coding scheme (99 prefix, PS3.16 8.2); the
/// SR of the model's findings codes them the same way.
pub fn class_code(class: u8, name: &str) -> InMemDicomObject {
    code(&format!("RG{class:03}"), "99GGRG", name)
}

/// Writes the SEG of `labels` (class ids) over the series `plan` to `path`, in the series
/// `derived` describes. `salt` keys the UID mapping of de-identification, so exports of one store
/// map UIDs the same way.
#[allow(clippy::too_many_arguments)]
pub fn write(
    path: &Path,
    plan: &DicomSeriesPlan,
    labels: &LabelVolume,
    classes: &LabelMap,
    derived: &Derived<'_>,
    deidentify: Deidentify,
    salt: &str,
    software_version: &str,
) -> Result<usize, ExportError> {
    let [nx, ny, nz] = labels.dims;
    if plan.slices.len() != nz || plan.dims[0] != nx || plan.dims[1] != ny {
        return Err(ExportError::Invalid(format!(
            "the label map ({nx} x {ny} x {nz}) does not match the series {} ({:?})",
            plan.uid, plan.dims
        )));
    }
    let first = &plan.slices[0].header;
    let source = Source::read(&first.path)?;
    let anonymous = deidentify == Deidentify::Yes;
    let map_uid = uid_mapper(anonymous, salt);

    // Segments: the class ids present, ascending; frames: segment-major, slices in order.
    let plane = nx * ny;
    let mut present = [false; 256];
    for &l in &labels.labels {
        present[l as usize] = true;
    }
    let segments: Vec<u8> = (1..=255u8).filter(|&c| present[c as usize]).collect();
    if segments.is_empty() {
        return Err(ExportError::Invalid(format!(
            "no labelled voxels in series {}: nothing to export as DICOM SEG",
            plan.uid
        )));
    }
    let mut frames: Vec<(u16, usize)> = Vec::new();
    for (s, &class) in segments.iter().enumerate() {
        for k in 0..nz {
            if labels.labels[k * plane..(k + 1) * plane].contains(&class) {
                frames.push((s as u16 + 1, k));
            }
        }
    }

    let (date, time) = content_date_time(anonymous);
    let sop_instance = derived_uid(derived.uid_seed, "seg-instance");
    let dimension_uid = derived_uid(derived.uid_seed, "seg-dimension");
    let g = &first.frame_geometry[0];
    let orientation: Vec<String> = g
        .row_dir
        .iter()
        .chain(g.col_dir.iter())
        .map(|v| ds(*v))
        .collect();

    let mut obj = InMemDicomObject::new_empty();
    put_common(
        &mut obj,
        &source,
        &Common {
            anonymous,
            modality: "SEG",
            derived,
            content_date: &date,
            content_time: &time,
            software_version,
        },
        &map_uid,
    );
    obj.put(multi(
        tags::IMAGE_TYPE,
        VR::CS,
        &["DERIVED".into(), "PRIMARY".into()],
    ));
    obj.put(text(tags::SOP_CLASS_UID, VR::UI, SEG_SOP_CLASS));
    obj.put(text(tags::SOP_INSTANCE_UID, VR::UI, &sop_instance));
    // Every instance a frame references, in slice order.
    let referenced: Vec<InMemDicomObject> = plan
        .files()
        .iter()
        .filter_map(|f| plan.slices.iter().find(|s| &s.header.path == f))
        .map(|s| {
            item(vec![
                text(
                    tags::REFERENCED_SOP_CLASS_UID,
                    VR::UI,
                    &s.header.sop_class_uid,
                ),
                text(
                    tags::REFERENCED_SOP_INSTANCE_UID,
                    VR::UI,
                    &map_uid(&s.header.sop_instance_uid),
                ),
            ])
        })
        .collect();
    obj.put(seq(
        tags::REFERENCED_SERIES_SEQUENCE,
        vec![item(vec![
            seq(tags::REFERENCED_INSTANCE_SEQUENCE, referenced),
            text(tags::SERIES_INSTANCE_UID, VR::UI, &map_uid(&plan.uid)),
        ])],
    ));
    let frame_of_reference = source.str(tags::FRAME_OF_REFERENCE_UID);
    if !frame_of_reference.is_empty() {
        obj.put(text(
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            &map_uid(&frame_of_reference),
        ));
        obj.put(text(
            tags::POSITION_REFERENCE_INDICATOR,
            VR::LO,
            &source.str(tags::POSITION_REFERENCE_INDICATOR),
        ));
    }
    obj.put(seq(
        tags::DIMENSION_ORGANIZATION_SEQUENCE,
        vec![item(vec![text(
            tags::DIMENSION_ORGANIZATION_UID,
            VR::UI,
            &dimension_uid,
        )])],
    ));
    let dimension = |pointer: Tag, group: Tag, label: &str| {
        item(vec![
            text(tags::DIMENSION_ORGANIZATION_UID, VR::UI, &dimension_uid),
            DataElement::new(
                tags::DIMENSION_INDEX_POINTER,
                VR::AT,
                PrimitiveValue::Tags([pointer][..].into()),
            ),
            DataElement::new(
                tags::FUNCTIONAL_GROUP_POINTER,
                VR::AT,
                PrimitiveValue::Tags([group][..].into()),
            ),
            text(tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, label),
        ])
    };
    obj.put(seq(
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![
            dimension(
                tags::REFERENCED_SEGMENT_NUMBER,
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                "Referenced Segment Number",
            ),
            dimension(
                tags::IMAGE_POSITION_PATIENT,
                tags::PLANE_POSITION_SEQUENCE,
                "Image Position Patient",
            ),
        ],
    ));
    obj.put(us(tags::SAMPLES_PER_PIXEL, 1));
    obj.put(text(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    ));
    obj.put(text(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        &frames.len().to_string(),
    ));
    obj.put(us(tags::ROWS, ny as u16));
    obj.put(us(tags::COLUMNS, nx as u16));
    obj.put(us(tags::BITS_ALLOCATED, 1));
    obj.put(us(tags::BITS_STORED, 1));
    obj.put(us(tags::HIGH_BIT, 0));
    obj.put(us(tags::PIXEL_REPRESENTATION, 0));
    obj.put(text(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00"));
    obj.put(text(tags::SEGMENTATION_TYPE, VR::CS, "BINARY"));
    let segment_items = segments
        .iter()
        .enumerate()
        .map(|(s, &class)| {
            let name = classes
                .get(u32::from(class))
                .map(|c| c.english.clone())
                .unwrap_or_else(|| format!("class {class}"));
            let mut elements = vec![
                seq(
                    tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE,
                    vec![code("91723000", "SCT", "Anatomical Structure")],
                ),
                us(tags::SEGMENT_NUMBER, s as u16 + 1),
                text(tags::SEGMENT_LABEL, VR::LO, &name),
            ];
            // A model's masks are automatic, and then the algorithm must be named.
            match derived.algorithm {
                None => elements.push(text(tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "MANUAL")),
                Some(model) => {
                    elements.push(text(tags::SEGMENT_ALGORITHM_TYPE, VR::CS, "AUTOMATIC"));
                    // LO holds 64 characters at most; a long checkpoint name is cut.
                    let name: String = model.chars().take(64).collect();
                    elements.push(text(tags::SEGMENT_ALGORITHM_NAME, VR::LO, &name));
                }
            }
            // RadGrounder's class ids under a private coding scheme (99 prefix, PS3.16 8.2).
            elements.push(seq(
                tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
                vec![class_code(class, &name)],
            ));
            item(elements)
        })
        .collect();
    obj.put(seq(tags::SEGMENT_SEQUENCE, segment_items));
    obj.put(text(tags::SEGMENTS_OVERLAP, VR::CS, "NO"));
    let content_label = match derived.algorithm {
        None => "CORRECTIONS",
        Some(_) => "MODEL_FINDINGS",
    };
    obj.put(text(tags::CONTENT_LABEL, VR::CS, content_label));
    obj.put(text(tags::CONTENT_DESCRIPTION, VR::LO, ""));
    let thickness = first.slice_thickness.unwrap_or(labels.affine.spacing()[2]);
    obj.put(seq(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![item(vec![
            seq(
                tags::PLANE_ORIENTATION_SEQUENCE,
                vec![item(vec![multi(
                    tags::IMAGE_ORIENTATION_PATIENT,
                    VR::DS,
                    &orientation,
                )])],
            ),
            seq(
                tags::PIXEL_MEASURES_SEQUENCE,
                vec![item(vec![
                    text(tags::SLICE_THICKNESS, VR::DS, &ds(thickness)),
                    // PixelSpacing is row spacing, then column spacing.
                    multi(
                        tags::PIXEL_SPACING,
                        VR::DS,
                        &[ds(g.spacing[1]), ds(g.spacing[0])],
                    ),
                ])],
            ),
        ])],
    ));
    let per_frame = frames
        .iter()
        .map(|&(segment, k)| {
            let s = &plan.slices[k];
            let position = s
                .header
                .frame_geometry
                .get(s.frame as usize)
                .map(|f| f.position)
                .unwrap_or_else(|| labels.affine.apply([0.0, 0.0, k as f64]));
            let mut source_item = vec![
                text(
                    tags::REFERENCED_SOP_CLASS_UID,
                    VR::UI,
                    &s.header.sop_class_uid,
                ),
                text(
                    tags::REFERENCED_SOP_INSTANCE_UID,
                    VR::UI,
                    &map_uid(&s.header.sop_instance_uid),
                ),
            ];
            if s.header.frames > 1 {
                source_item.push(text(
                    tags::REFERENCED_FRAME_NUMBER,
                    VR::IS,
                    &(s.frame + 1).to_string(),
                ));
            }
            source_item.push(seq(
                tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
                vec![code(
                    "121322",
                    "DCM",
                    "Source image for image processing operation",
                )],
            ));
            item(vec![
                seq(
                    tags::DERIVATION_IMAGE_SEQUENCE,
                    vec![item(vec![
                        seq(tags::SOURCE_IMAGE_SEQUENCE, vec![item(source_item)]),
                        seq(
                            tags::DERIVATION_CODE_SEQUENCE,
                            vec![code("113076", "DCM", "Segmentation")],
                        ),
                    ])],
                ),
                seq(
                    tags::FRAME_CONTENT_SEQUENCE,
                    vec![item(vec![DataElement::new(
                        tags::DIMENSION_INDEX_VALUES,
                        VR::UL,
                        PrimitiveValue::U32([u32::from(segment), k as u32 + 1].into()),
                    )])],
                ),
                seq(
                    tags::PLANE_POSITION_SEQUENCE,
                    vec![item(vec![multi(
                        tags::IMAGE_POSITION_PATIENT,
                        VR::DS,
                        &position.map(ds),
                    )])],
                ),
                seq(
                    tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                    vec![item(vec![us(tags::REFERENCED_SEGMENT_NUMBER, segment)])],
                ),
            ])
        })
        .collect();
    obj.put(seq(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, per_frame));
    // One bit per pixel, least significant bit first, frames back to back, padded to even length.
    let bits = frames.len() * plane;
    let mut pixels = vec![0u8; bits.div_ceil(8)];
    for (f, &(segment, k)) in frames.iter().enumerate() {
        let class = segments[segment as usize - 1];
        for (p, &l) in labels.labels[k * plane..(k + 1) * plane].iter().enumerate() {
            if l == class {
                let n = f * plane + p;
                pixels[n / 8] |= 1 << (n % 8);
            }
        }
    }
    if pixels.len() % 2 == 1 {
        pixels.push(0);
    }
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(pixels),
    ));
    write_file(obj, path)?;
    Ok(frames.len())
}
