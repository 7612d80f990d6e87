//! The measurements of a DICOM series as a DICOM SR: an Imaging Measurement Report (TID 1500) in a
//! Comprehensive 3D SR. Its image library lists the source instances; each measurement is a
//! planar ROI measurement group (TID 1410) with its tracking identifier, its region as a 3D
//! spatial coordinate in the source's frame of reference (a length's line, an angle's two arms, a
//! rectangle's or a freehand outline's polygon, an ellipse's axes, a point: measurements may lie
//! on reformatted planes, which no single source image holds) and its figures as numbers with
//! UCUM units: length in mm, angle in degrees, or mean, SD, minimum and maximum in HU (CT; "no
//! units" otherwise) and area in mm²; a point's value is its group's mean (of one voxel).
//! Patient, study and de-identification are as in the SEG export.

use std::path::Path;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use groundglass_study::dicom::build::{ds, text};
use groundglass_study::dicom::series::DicomSeriesPlan;

use super::dicom_parts::{
    code, content_date_time, item, new_uid, put_common, seq, uid_from, uid_mapper, write_file,
    Common, Source,
};
use super::measurements::MeasurementReport;
use super::{Deidentify, ExportError};
use crate::record::MeasureShape;

const COMPREHENSIVE_3D_SR: &str = "1.2.840.10008.5.1.4.1.1.88.34";

type Element = DataElement<InMemDicomObject>;

/// A content item: its relationship to its parent, value type, concept name and value.
fn content(
    relationship: &str,
    value_type: &str,
    concept: InMemDicomObject,
    mut value: Vec<Element>,
) -> InMemDicomObject {
    let mut elements = vec![
        text(tags::RELATIONSHIP_TYPE, VR::CS, relationship),
        text(tags::VALUE_TYPE, VR::CS, value_type),
        seq(tags::CONCEPT_NAME_CODE_SEQUENCE, vec![concept]),
    ];
    elements.append(&mut value);
    item(elements)
}

fn container(
    relationship: &str,
    concept: InMemDicomObject,
    template: Option<&str>,
    children: Vec<InMemDicomObject>,
) -> InMemDicomObject {
    let mut value = vec![text(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE")];
    if let Some(t) = template {
        value.push(template_sequence(t));
    }
    value.push(seq(tags::CONTENT_SEQUENCE, children));
    content(relationship, "CONTAINER", concept, value)
}

fn template_sequence(id: &str) -> Element {
    seq(
        tags::CONTENT_TEMPLATE_SEQUENCE,
        vec![item(vec![
            text(tags::MAPPING_RESOURCE, VR::CS, "DCMR"),
            text(tags::TEMPLATE_IDENTIFIER, VR::CS, id),
        ])],
    )
}

fn code_item(
    relationship: &str,
    concept: InMemDicomObject,
    value: InMemDicomObject,
) -> InMemDicomObject {
    content(
        relationship,
        "CODE",
        concept,
        vec![seq(tags::CONCEPT_CODE_SEQUENCE, vec![value])],
    )
}

fn num(concept: InMemDicomObject, value: f64, unit: (&str, &str)) -> InMemDicomObject {
    content(
        "CONTAINS",
        "NUM",
        concept,
        vec![seq(
            tags::MEASURED_VALUE_SEQUENCE,
            vec![item(vec![
                seq(
                    tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
                    vec![code(unit.0, "UCUM", unit.1)],
                ),
                text(tags::NUMERIC_VALUE, VR::DS, &ds(value)),
            ])],
        )],
    )
}

/// Writes the SR of `reports` (measurements of the series `plan`) to `path`; returns how many
/// measurement groups it holds.
#[allow(clippy::too_many_arguments)]
pub fn write(
    path: &Path,
    plan: &DicomSeriesPlan,
    reports: &[MeasurementReport],
    deidentify: Deidentify,
    salt: &str,
    software_version: &str,
) -> Result<usize, ExportError> {
    if reports.is_empty() {
        return Err(ExportError::Invalid(format!(
            "no measurements on series {}: nothing to export as DICOM SR",
            plan.uid
        )));
    }
    let first = plan.first();
    let source = Source::read(&first.path)?;
    let anonymous = deidentify == Deidentify::Yes;
    let map_uid = uid_mapper(anonymous, salt);
    let frame_of_reference = source.str(tags::FRAME_OF_REFERENCE_UID);
    if frame_of_reference.is_empty() {
        return Err(ExportError::Invalid(format!(
            "{}: the series has no frame of reference UID, so its measurements cannot be placed in \
             a DICOM SR",
            first.path.display()
        )));
    }
    let (date, time) = content_date_time(anonymous);
    let mut obj = InMemDicomObject::new_empty();
    put_common(
        &mut obj,
        &source,
        &Common {
            anonymous,
            modality: "SR",
            series_description: "Groundglass measurements",
            series_number: "9002",
            content_date: &date,
            content_time: &time,
            software_version,
        },
        &map_uid,
    );
    obj.put(text(tags::SOP_CLASS_UID, VR::UI, COMPREHENSIVE_3D_SR));
    obj.put(text(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        &new_uid("sr-instance"),
    ));
    obj.put(seq(
        tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
        vec![],
    ));
    obj.put(seq(tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]));
    obj.put(text(tags::COMPLETION_FLAG, VR::CS, "COMPLETE"));
    obj.put(text(tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED"));

    // The source instances, once each, in slice order.
    let mut instances: Vec<(String, String)> = Vec::new();
    for s in &plan.slices {
        let key = (
            s.header.sop_class_uid.clone(),
            map_uid(&s.header.sop_instance_uid),
        );
        if !instances.contains(&key) {
            instances.push(key);
        }
    }
    let sop_ref = |(class, instance): &(String, String)| {
        item(vec![
            text(tags::REFERENCED_SOP_CLASS_UID, VR::UI, class),
            text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, instance),
        ])
    };
    obj.put(seq(
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![item(vec![
            seq(
                tags::REFERENCED_SERIES_SEQUENCE,
                vec![item(vec![
                    seq(
                        tags::REFERENCED_SOP_SEQUENCE,
                        instances.iter().map(sop_ref).collect(),
                    ),
                    text(tags::SERIES_INSTANCE_UID, VR::UI, &map_uid(&plan.uid)),
                ])],
            ),
            text(
                tags::STUDY_INSTANCE_UID,
                VR::UI,
                &map_uid(&source.str(tags::STUDY_INSTANCE_UID)),
            ),
        ])],
    ));

    let frame = map_uid(&frame_of_reference);
    let ct = plan.modality.eq_ignore_ascii_case("CT");
    let value_unit = if ct {
        ("[hnsf'U]", "Hounsfield unit")
    } else {
        ("1", "no units")
    };
    let groups: Vec<InMemDicomObject> = reports
        .iter()
        .map(|m| {
            let (graphic, what) = match m.shape {
                MeasureShape::Line => ("POLYLINE", "length"),
                MeasureShape::Rectangle => ("POLYGON", "rectangle"),
                MeasureShape::Ellipse => ("ELLIPSE", "ellipse"),
                MeasureShape::Angle => ("POLYLINE", "angle"),
                MeasureShape::Freehand => ("POLYGON", "freehand"),
                MeasureShape::Point => ("POINT", "point"),
            };
            let points: Vec<f32> = m
                .outline_lps
                .iter()
                .flat_map(|p| p.map(|c| c as f32))
                .collect();
            let mut children = vec![
                content(
                    "HAS OBS CONTEXT",
                    "TEXT",
                    code("112039", "DCM", "Tracking Identifier"),
                    vec![text(
                        tags::TEXT_VALUE,
                        VR::UT,
                        &format!("Groundglass {what} {}", m.id),
                    )],
                ),
                content(
                    "HAS OBS CONTEXT",
                    "UIDREF",
                    code("112040", "DCM", "Tracking Unique Identifier"),
                    vec![text(
                        tags::UID,
                        VR::UI,
                        &uid_from(format!("{salt}\nmeasurement\n{}", m.id).as_bytes()),
                    )],
                ),
                content(
                    "CONTAINS",
                    "SCOORD3D",
                    code("111030", "DCM", "Image Region"),
                    vec![
                        text(tags::GRAPHIC_TYPE, VR::CS, graphic),
                        DataElement::new(
                            tags::GRAPHIC_DATA,
                            VR::FL,
                            PrimitiveValue::F32(points.into()),
                        ),
                        text(tags::REFERENCED_FRAME_OF_REFERENCE_UID, VR::UI, &frame),
                    ],
                ),
            ];
            if let Some(mm) = m.length_mm {
                children.push(num(
                    code("410668003", "SCT", "Length"),
                    mm,
                    ("mm", "millimeter"),
                ));
            }
            if let Some(deg) = m.angle_deg {
                children.push(num(code("1483009", "SCT", "Angle"), deg, ("deg", "degree")));
            }
            if let Some(v) = m.value {
                children.push(num(code("373098007", "SCT", "Mean"), v, value_unit));
            }
            if let Some(s) = &m.stats {
                for (concept, v) in [
                    (code("373098007", "SCT", "Mean"), s.mean),
                    (code("386136009", "SCT", "Standard Deviation"), s.sd),
                    (code("255605001", "SCT", "Minimum"), s.min),
                    (code("56851009", "SCT", "Maximum"), s.max),
                ] {
                    children.push(num(concept, v, value_unit));
                }
                children.push(num(
                    code("42798000", "SCT", "Area"),
                    s.area_mm2,
                    ("mm2", "square millimeter"),
                ));
            }
            container(
                "CONTAINS",
                code("125007", "DCM", "Measurement Group"),
                Some("1410"),
                children,
            )
        })
        .collect();

    let observer = reports
        .iter()
        .map(|m| m.reviewer.trim())
        .find(|r| !r.is_empty())
        .unwrap_or("Groundglass user")
        .to_string();
    let library: Vec<InMemDicomObject> = instances
        .iter()
        .map(|i| {
            item(vec![
                text(tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS"),
                text(tags::VALUE_TYPE, VR::CS, "IMAGE"),
                seq(tags::REFERENCED_SOP_SEQUENCE, vec![sop_ref(i)]),
            ])
        })
        .collect();
    let root_children = vec![
        code_item(
            "HAS CONCEPT MOD",
            code("121049", "DCM", "Language of Content Item and Descendants"),
            code("en-US", "RFC5646", "English (United States)"),
        ),
        code_item(
            "HAS OBS CONTEXT",
            code("121005", "DCM", "Observer Type"),
            code("121006", "DCM", "Person"),
        ),
        content(
            "HAS OBS CONTEXT",
            "PNAME",
            code("121008", "DCM", "Person Observer Name"),
            vec![text(tags::PERSON_NAME, VR::PN, &observer)],
        ),
        code_item(
            "HAS CONCEPT MOD",
            code("121058", "DCM", "Procedure reported"),
            code("363679005", "SCT", "Imaging procedure"),
        ),
        container(
            "CONTAINS",
            code("111028", "DCM", "Image Library"),
            None,
            vec![container(
                "CONTAINS",
                code("126200", "DCM", "Image Library Group"),
                None,
                library,
            )],
        ),
        container(
            "CONTAINS",
            code("126010", "DCM", "Imaging Measurements"),
            None,
            groups,
        ),
    ];
    obj.put(text(tags::VALUE_TYPE, VR::CS, "CONTAINER"));
    obj.put(seq(
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code("126000", "DCM", "Imaging Measurement Report")],
    ));
    obj.put(text(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE"));
    obj.put(template_sequence("1500"));
    obj.put(seq(tags::CONTENT_SEQUENCE, root_children));
    write_file(obj, path)?;
    Ok(reports.len())
}
