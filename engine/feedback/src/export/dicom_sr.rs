//! The measurements of a DICOM series as a DICOM SR: an Imaging Measurement Report (TID 1500) in a
//! Comprehensive 3D SR. Its image library lists the source instances; each measurement is a
//! planar ROI measurement group (TID 1410) with its tracking identifier, its region as a 3D
//! spatial coordinate in the source's frame of reference (a length's line, an angle's two arms, a
//! rectangle's or a freehand outline's polygon, an ellipse's axes, a point: measurements may lie
//! on reformatted planes, which no single source image holds) and its figures as numbers with
//! UCUM units: length in mm, angle in degrees, or mean, SD, minimum and maximum in HU (CT; "no
//! units" otherwise) and area in mm²; a point's value is its group's mean (of one voxel).
//! Patient, study and de-identification are as in the SEG export. The report around the groups
//! ([`Document`]: evidence, image library, observer) is shared with the SR of the model's
//! answers (`model_answers`), which names the model as a device observer.

use std::path::Path;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use groundglass_study::dicom::build::{ds, text};
use groundglass_study::dicom::series::DicomSeriesPlan;

use super::dicom_parts::{
    code, content_date_time, derived_uid, item, put_common, seq, uid_from, uid_mapper, write_file,
    Common, Derived, Source,
};
use super::measurements::MeasurementReport;
use super::{Deidentify, ExportError};
use crate::record::MeasureShape;

const COMPREHENSIVE_3D_SR: &str = "1.2.840.10008.5.1.4.1.1.88.34";

type Element = DataElement<InMemDicomObject>;

/// A content item: its relationship to its parent, value type, concept name and value.
pub(super) fn content(
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

pub(super) fn container(
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
    let ct = plan.modality.eq_ignore_ascii_case("CT");
    let value_unit = if ct {
        ("[hnsf'U]", "Hounsfield unit")
    } else {
        ("1", "no units")
    };
    let observer = reports
        .iter()
        .map(|m| m.reviewer.trim())
        .find(|r| !r.is_empty())
        .unwrap_or("Groundglass user")
        .to_string();
    let document = Document {
        plan,
        derived: &Derived::MEASUREMENTS_SR,
        observer: Observer::Person(&observer),
        deidentify,
        salt,
        software_version,
    };
    document.write(path, |frame| {
        let groups = reports
            .iter()
            .map(|m| measurement_group(m, frame, salt, value_unit))
            .collect();
        vec![container(
            "CONTAINS",
            code("126010", "DCM", "Imaging Measurements"),
            None,
            groups,
        )]
    })?;
    Ok(reports.len())
}

/// A measurement as a planar ROI measurement group (TID 1410).
fn measurement_group(
    m: &MeasurementReport,
    frame: &str,
    salt: &str,
    value_unit: (&str, &str),
) -> InMemDicomObject {
    let (graphic, what) = match m.shape {
        MeasureShape::Line => ("POLYLINE", "length"),
        MeasureShape::Rectangle => ("POLYGON", "rectangle"),
        MeasureShape::Ellipse => ("ELLIPSE", "ellipse"),
        MeasureShape::Angle => ("POLYLINE", "angle"),
        MeasureShape::Freehand => ("POLYGON", "freehand"),
        MeasureShape::Point => ("POINT", "point"),
    };
    let tracking_uid = uid_from(format!("{salt}\nmeasurement\n{}", m.id).as_bytes());
    let mut children = vec![
        tracking_identifier(&format!("Groundglass {what} {}", m.id)),
        tracking_unique_identifier(&tracking_uid),
        image_region(graphic, &m.outline_lps, frame),
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
}

/// A measurement group's tracking identifier (its name for people).
pub(super) fn tracking_identifier(name: &str) -> InMemDicomObject {
    content(
        "HAS OBS CONTEXT",
        "TEXT",
        code("112039", "DCM", "Tracking Identifier"),
        vec![text(tags::TEXT_VALUE, VR::UT, name)],
    )
}

/// A measurement group's tracking UID (the same finding, the same UID, in every report).
pub(super) fn tracking_unique_identifier(uid: &str) -> InMemDicomObject {
    content(
        "HAS OBS CONTEXT",
        "UIDREF",
        code("112040", "DCM", "Tracking Unique Identifier"),
        vec![text(tags::UID, VR::UI, uid)],
    )
}

/// A region in the source's frame of reference (LPS mm): measurements and findings may lie on
/// reformatted planes, which no single source image holds.
pub(super) fn image_region(
    graphic: &str,
    points_lps: &[[f64; 3]],
    frame: &str,
) -> InMemDicomObject {
    let points: Vec<f32> = points_lps
        .iter()
        .flat_map(|p| p.map(|c| c as f32))
        .collect();
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
            text(tags::REFERENCED_FRAME_OF_REFERENCE_UID, VR::UI, frame),
        ],
    )
}

/// Who made an SR's content.
pub(super) enum Observer<'a> {
    /// A person: the reviewer who measured.
    Person(&'a str),
    /// A device: the model (its checkpoint's name), with a UID derived from that name.
    Model(&'a str),
}

/// An Imaging Measurement Report (TID 1500) over a DICOM series, around the containers its
/// writer adds: the patient, study and evidence of the source, its image library, the observer.
pub(super) struct Document<'a> {
    pub plan: &'a DicomSeriesPlan,
    pub derived: &'a Derived<'a>,
    pub observer: Observer<'a>,
    pub deidentify: Deidentify,
    pub salt: &'a str,
    pub software_version: &'a str,
}

impl Document<'_> {
    /// Writes the report to `path`; `body` makes the containers after the image library from the
    /// frame-of-reference UID (as the report writes it) their regions refer to.
    pub fn write(
        &self,
        path: &Path,
        body: impl FnOnce(&str) -> Vec<InMemDicomObject>,
    ) -> Result<(), ExportError> {
        let plan = self.plan;
        let first = plan.first();
        let source = Source::read(&first.path)?;
        let anonymous = self.deidentify == Deidentify::Yes;
        let map_uid = uid_mapper(anonymous, self.salt);
        let frame_of_reference = source.str(tags::FRAME_OF_REFERENCE_UID);
        if frame_of_reference.is_empty() {
            return Err(ExportError::Invalid(format!(
                "{}: the series has no frame of reference UID, so nothing can be placed on it in a \
                 DICOM SR",
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
                derived: self.derived,
                content_date: &date,
                content_time: &time,
                software_version: self.software_version,
            },
            &map_uid,
        );
        obj.put(text(tags::SOP_CLASS_UID, VR::UI, COMPREHENSIVE_3D_SR));
        obj.put(text(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            &derived_uid(self.derived.uid_seed, "sr-instance"),
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
        let mut root_children = vec![code_item(
            "HAS CONCEPT MOD",
            code("121049", "DCM", "Language of Content Item and Descendants"),
            code("en-US", "RFC5646", "English (United States)"),
        )];
        root_children.extend(self.observer_context());
        root_children.push(code_item(
            "HAS CONCEPT MOD",
            code("121058", "DCM", "Procedure reported"),
            code("363679005", "SCT", "Imaging procedure"),
        ));
        root_children.push(container(
            "CONTAINS",
            code("111028", "DCM", "Image Library"),
            None,
            vec![container(
                "CONTAINS",
                code("126200", "DCM", "Image Library Group"),
                None,
                library,
            )],
        ));
        root_children.extend(body(&map_uid(&frame_of_reference)));
        obj.put(text(tags::VALUE_TYPE, VR::CS, "CONTAINER"));
        obj.put(seq(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code("126000", "DCM", "Imaging Measurement Report")],
        ));
        obj.put(text(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE"));
        obj.put(template_sequence("1500"));
        obj.put(seq(tags::CONTENT_SEQUENCE, root_children));
        write_file(obj, path)
    }

    /// The observer context (TID 1002): a person by name, or a device (TID 1004) by UID and name.
    fn observer_context(&self) -> Vec<InMemDicomObject> {
        match self.observer {
            Observer::Person(name) => vec![
                code_item(
                    "HAS OBS CONTEXT",
                    code("121005", "DCM", "Observer Type"),
                    code("121006", "DCM", "Person"),
                ),
                content(
                    "HAS OBS CONTEXT",
                    "PNAME",
                    code("121008", "DCM", "Person Observer Name"),
                    vec![text(tags::PERSON_NAME, VR::PN, name)],
                ),
            ],
            Observer::Model(name) => vec![
                code_item(
                    "HAS OBS CONTEXT",
                    code("121005", "DCM", "Observer Type"),
                    code("121007", "DCM", "Device"),
                ),
                content(
                    "HAS OBS CONTEXT",
                    "UIDREF",
                    code("121012", "DCM", "Device Observer UID"),
                    vec![text(
                        tags::UID,
                        VR::UI,
                        &uid_from(format!("groundglass model\n{name}").as_bytes()),
                    )],
                ),
                content(
                    "HAS OBS CONTEXT",
                    "TEXT",
                    code("121013", "DCM", "Device Observer Name"),
                    vec![text(tags::TEXT_VALUE, VR::UT, name)],
                ),
            ],
        }
    }
}
