//! What the DICOM exports (SEG, SR) share: UIDs, sequences and codes, the source series' first
//! file, the patient / study / series / equipment attributes copied from it (or emptied and
//! mapped under de-identification, DICOM PS3.15's basic profile), and writing the file.

use std::path::Path;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject, OpenFileOptions};
use groundglass_study::dicom::build::text;

use super::ExportError;

pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// A UID under the 2.25 root (a 128-bit number as decimal), from `seed`.
pub fn uid_from(seed: &[u8]) -> String {
    // Two CRC-32 lanes are too few bits; FNV-1a 128 gives a stable, well-spread 128-bit value.
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for &b in seed {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    format!("2.25.{h}")
}

/// How an export writes the source's UIDs: as they are, or under de-identification replaced by a
/// deterministic mapping keyed by `salt` (so exports of one store map them the same way).
pub fn uid_mapper(anonymous: bool, salt: &str) -> impl Fn(&str) -> String + '_ {
    move |uid| {
        if anonymous {
            uid_from(format!("{salt}\n{uid}").as_bytes())
        } else {
            uid.to_string()
        }
    }
}

/// The UID of `what` in a derived object: from its seed when it has one (the same content made
/// twice gets the same UIDs), else fresh.
pub fn derived_uid(seed: Option<&str>, what: &str) -> String {
    match seed {
        Some(seed) => uid_from(format!("{seed}\n{what}").as_bytes()),
        None => new_uid(what),
    }
}

/// A fresh UID.
pub fn new_uid(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    uid_from(format!("{what}-{nanos}-{}", std::process::id()).as_bytes())
}

pub fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
}

pub fn item(elements: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

pub fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    item(vec![
        text(tags::CODE_VALUE, VR::SH, value),
        text(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme),
        text(tags::CODE_MEANING, VR::LO, meaning),
    ])
}

/// Source attributes read from the first file of the series.
pub struct Source {
    get: InMemDicomObject,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source, ExportError> {
        Ok(Source {
            get: OpenFileOptions::new()
                .read_until(tags::PIXEL_DATA)
                .open_file(path)
                .map_err(|e| ExportError::Dicom {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
                .into_inner(),
        })
    }

    pub fn str(&self, tag: Tag) -> String {
        self.get
            .get(tag)
            .and_then(|e| e.value().to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .unwrap_or_default()
    }
}

/// The new series a derived object (SEG, SR) goes into, and who made what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Derived<'a> {
    pub series_description: &'a str,
    pub series_number: &'a str,
    /// The model that made the content (the checkpoint), unverified by anyone; `None` for a
    /// person's corrections or measurements.
    pub algorithm: Option<&'a str>,
    /// Seeds the series and instance UIDs, so the same content made twice is the same instance
    /// (a batch sending again after a kill adds nothing to the PACS); `None`: new UIDs each time.
    pub uid_seed: Option<&'a str>,
}

impl Derived<'static> {
    /// The corrections' SEG, as `export` and the viewer's "Send to PACS" write it.
    pub const CORRECTIONS_SEG: Derived<'static> = Derived {
        series_description: "Groundglass corrections",
        series_number: "9001",
        algorithm: None,
        uid_seed: None,
    };
    /// The measurements' SR.
    pub const MEASUREMENTS_SR: Derived<'static> = Derived {
        series_description: "Groundglass measurements",
        series_number: "9002",
        algorithm: None,
        uid_seed: None,
    };
}

impl<'a> Derived<'a> {
    /// The SR of the model `algorithm`'s findings (`batch --send`), its UIDs from `uid_seed`.
    pub fn model_findings_sr(algorithm: &'a str, uid_seed: &'a str) -> Derived<'a> {
        Derived {
            series_description: "Groundglass model findings (unverified)",
            series_number: "9003",
            algorithm: Some(algorithm),
            uid_seed: Some(uid_seed),
        }
    }

    /// The SEG of the model `algorithm`'s masks (`batch --send`), its UIDs from `uid_seed`.
    pub fn model_masks_seg(algorithm: &'a str, uid_seed: &'a str) -> Derived<'a> {
        Derived {
            series_description: "Groundglass model masks (unverified)",
            series_number: "9004",
            algorithm: Some(algorithm),
            uid_seed: Some(uid_seed),
        }
    }
}

/// What differs between the exports in the attributes [`put_common`] writes.
pub struct Common<'a> {
    pub anonymous: bool,
    pub modality: &'a str,
    pub derived: &'a Derived<'a>,
    pub content_date: &'a str,
    pub content_time: &'a str,
    pub software_version: &'a str,
}

/// The patient, study, series and equipment attributes of a derived object in the source's
/// study: copied, or under de-identification empty (type 2) with the identity-removed flags, and
/// the study UID through `map_uid`. The series is new.
pub fn put_common(
    obj: &mut InMemDicomObject,
    source: &Source,
    c: &Common<'_>,
    map_uid: &dyn Fn(&str) -> String,
) {
    let copy = |tag: Tag| {
        if c.anonymous {
            String::new()
        } else {
            source.str(tag)
        }
    };
    let charset = source.str(tags::SPECIFIC_CHARACTER_SET);
    if !charset.is_empty() {
        obj.put(text(tags::SPECIFIC_CHARACTER_SET, VR::CS, &charset));
    }
    obj.put(text(tags::STUDY_DATE, VR::DA, &copy(tags::STUDY_DATE)));
    obj.put(text(tags::CONTENT_DATE, VR::DA, c.content_date));
    obj.put(text(tags::STUDY_TIME, VR::TM, &copy(tags::STUDY_TIME)));
    obj.put(text(tags::CONTENT_TIME, VR::TM, c.content_time));
    obj.put(text(
        tags::ACCESSION_NUMBER,
        VR::SH,
        &copy(tags::ACCESSION_NUMBER),
    ));
    obj.put(text(tags::MODALITY, VR::CS, c.modality));
    obj.put(text(tags::MANUFACTURER, VR::LO, "Groundglass"));
    obj.put(text(
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        &copy(tags::REFERRING_PHYSICIAN_NAME),
    ));
    obj.put(text(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        c.derived.series_description,
    ));
    obj.put(text(
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        "Groundglass viewer",
    ));
    obj.put(text(tags::PATIENT_NAME, VR::PN, &copy(tags::PATIENT_NAME)));
    obj.put(text(tags::PATIENT_ID, VR::LO, &copy(tags::PATIENT_ID)));
    obj.put(text(
        tags::PATIENT_BIRTH_DATE,
        VR::DA,
        &copy(tags::PATIENT_BIRTH_DATE),
    ));
    obj.put(text(tags::PATIENT_SEX, VR::CS, &copy(tags::PATIENT_SEX)));
    if c.anonymous {
        obj.put(text(tags::PATIENT_IDENTITY_REMOVED, VR::CS, "YES"));
        obj.put(text(
            tags::DEIDENTIFICATION_METHOD,
            VR::LO,
            "DICOM PS3.15 Basic Application Level Confidentiality Profile",
        ));
        obj.put(seq(
            tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
            vec![code(
                "113100",
                "DCM",
                "Basic Application Confidentiality Profile",
            )],
        ));
    }
    obj.put(text(tags::DEVICE_SERIAL_NUMBER, VR::LO, "0"));
    obj.put(text(tags::SOFTWARE_VERSIONS, VR::LO, c.software_version));
    obj.put(text(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        &map_uid(&source.str(tags::STUDY_INSTANCE_UID)),
    ));
    obj.put(text(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &derived_uid(c.derived.uid_seed, &format!("{}-series", c.modality)),
    ));
    obj.put(text(tags::STUDY_ID, VR::SH, &copy(tags::STUDY_ID)));
    obj.put(text(tags::SERIES_NUMBER, VR::IS, c.derived.series_number));
    obj.put(text(tags::INSTANCE_NUMBER, VR::IS, "1"));
}

/// The content date and time: now (UTC), or dummies under de-identification.
pub fn content_date_time(anonymous: bool) -> (String, String) {
    if anonymous {
        return ("19000101".to_string(), "000000".to_string());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    civil_date_time(now)
}

/// Writes `obj` as a Part 10 file (explicit VR little endian).
pub fn write_file(obj: InMemDicomObject, path: &Path) -> Result<(), ExportError> {
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(EXPLICIT_VR_LE)
                .implementation_class_uid("2.25.1207372187062171098013245410921931751")
                .implementation_version_name("GROUNDGLASS"),
        )
        .map_err(|e| ExportError::Dicom {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    file.write_to_file(path).map_err(|e| ExportError::Dicom {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// UTC date (YYYYMMDD) and time (HHMMSS) of a Unix time.
fn civil_date_time(secs: u64) -> (String, String) {
    let days = (secs / 86_400) as i64;
    let s = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{:02}{:02}", s / 3600, s / 60 % 60, s % 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_date_time(0), ("19700101".into(), "000000".into()));
        // python: datetime.utcfromtimestamp(1795000000) = 2026-11-18 11:06:40
        assert_eq!(
            civil_date_time(1_795_000_000),
            ("20261118".into(), "110640".into())
        );
    }

    #[test]
    fn uids_are_valid_and_deterministic() {
        let a = uid_from(b"x");
        assert_eq!(a, uid_from(b"x"));
        assert_ne!(a, uid_from(b"y"));
        assert!(a.len() <= 64 && a.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
    }
}
