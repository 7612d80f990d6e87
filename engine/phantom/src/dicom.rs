//! The phantom as a DICOM series: one CT Image Storage or MR Image Storage file per slice,
//! Explicit VR Little Endian, signed 16-bit, with the full plane geometry, so any DICOM reader
//! rebuilds the same affine. Everything, UIDs included, is derived from the configuration: the
//! same phantom always gives the same files.

use std::path::{Path, PathBuf};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use groundglass_study::dicom::build::{ds, multi, text, us};

use crate::config::Modality;
use crate::error::{io_err, PhantomError, Result};
use crate::phantom::Phantom;
use crate::uid::uid;

const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Fixed, so files are reproducible.
const DATE: &str = "20250101";
const TIME: &str = "120000";

/// UIDs of one phantom's series.
struct Uids {
    study: String,
    series: String,
    frame: String,
}

impl Uids {
    fn of(phantom: &Phantom) -> Self {
        let c = &phantom.config;
        let m = c.modality.code();
        // The series depends on everything that changes the pixels; the study and frame of
        // reference on the seed and modality only.
        let series = format!(
            "series/{m}/{:?}/{:?}/{}/{}/{}",
            c.dims, c.spacing_mm, c.lesions, c.contrast, c.noise
        );
        Uids {
            study: uid(c.seed, &format!("study/{m}")),
            series: uid(c.seed, &series),
            frame: uid(c.seed, &format!("frame/{m}")),
        }
    }
}

/// Writes one file per slice into `dir` (created if needed), named `slice_0001.dcm` upward from
/// the most inferior slice; returns their paths in slice order.
pub fn write_dicom_series(phantom: &Phantom, dir: &Path) -> Result<Vec<PathBuf>> {
    let [nx, ny, nz] = phantom.dims;
    let (Ok(columns), Ok(rows)) = (u16::try_from(nx), u16::try_from(ny)) else {
        return Err(PhantomError::Invalid(format!(
            "{nx} x {ny} pixels per slice is more than DICOM allows (65535 a side)"
        )));
    };
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let uids = Uids::of(phantom);
    let digits = nz.to_string().len().max(4);
    let plane = nx * ny;
    let mut paths = Vec::with_capacity(nz);
    for k in 0..nz {
        let path = dir.join(format!("slice_{:0digits$}.dcm", k + 1));
        let pixels = &phantom.values[k * plane..(k + 1) * plane];
        let obj = slice_object(phantom, &uids, k, rows, columns, pixels);
        let file = obj
            .with_meta(
                FileMetaTableBuilder::new()
                    .transfer_syntax(EXPLICIT_VR_LE)
                    .implementation_class_uid("2.25.1207372187062171098013245410921931751")
                    .implementation_version_name("GROUNDGLASS"),
            )
            .map_err(|e| PhantomError::Dicom {
                path: path.clone(),
                message: e.to_string(),
            })?;
        file.write_to_file(&path).map_err(|e| PhantomError::Dicom {
            path: path.clone(),
            message: e.to_string(),
        })?;
        paths.push(path);
    }
    Ok(paths)
}

fn slice_object(
    phantom: &Phantom,
    uids: &Uids,
    k: usize,
    rows: u16,
    columns: u16,
    pixels: &[i16],
) -> InMemDicomObject {
    let c = &phantom.config;
    let ct = c.modality == Modality::Ct;
    let [dx, dy, dz] = phantom.spacing();
    let position = phantom.affine.apply([0.0, 0.0, k as f64]);
    let row_dir = phantom.affine.column(0).map(|v| v / dx);
    let col_dir = phantom.affine.column(1).map(|v| v / dy);
    let window = phantom.window();
    let instance = uid(c.seed, &format!("instance/{}/{k}", uids.series));

    let mut obj = InMemDicomObject::new_empty();
    let image_type: [String; 3] = if ct {
        ["ORIGINAL".into(), "PRIMARY".into(), "AXIAL".into()]
    } else {
        ["ORIGINAL".into(), "PRIMARY".into(), "OTHER".into()]
    };
    obj.put(multi(tags::IMAGE_TYPE, VR::CS, &image_type));
    let sop_class = if ct {
        CT_IMAGE_STORAGE
    } else {
        MR_IMAGE_STORAGE
    };
    obj.put(text(tags::SOP_CLASS_UID, VR::UI, sop_class));
    obj.put(text(tags::SOP_INSTANCE_UID, VR::UI, &instance));
    for tag in [tags::STUDY_DATE, tags::SERIES_DATE, tags::CONTENT_DATE] {
        obj.put(text(tag, VR::DA, DATE));
    }
    for tag in [tags::STUDY_TIME, tags::SERIES_TIME, tags::CONTENT_TIME] {
        obj.put(text(tag, VR::TM, TIME));
    }
    obj.put(text(tags::ACCESSION_NUMBER, VR::SH, ""));
    obj.put(text(tags::MODALITY, VR::CS, c.modality.code()));
    obj.put(text(tags::MANUFACTURER, VR::LO, "Groundglass"));
    obj.put(text(tags::REFERRING_PHYSICIAN_NAME, VR::PN, ""));
    obj.put(text(tags::STUDY_DESCRIPTION, VR::LO, "Groundglass phantom"));
    obj.put(text(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        &format!("Groundglass phantom seed {}", c.seed),
    ));
    obj.put(text(
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        "groundglass-phantom",
    ));
    obj.put(text(
        tags::PATIENT_NAME,
        VR::PN,
        &format!("Phantom^{}", c.seed),
    ));
    obj.put(text(
        tags::PATIENT_ID,
        VR::LO,
        &format!("PHANTOM-{}", c.seed),
    ));
    obj.put(text(tags::PATIENT_BIRTH_DATE, VR::DA, ""));
    obj.put(text(tags::PATIENT_SEX, VR::CS, "O"));
    if !ct {
        obj.put(text(tags::SCANNING_SEQUENCE, VR::CS, "SE"));
        obj.put(text(tags::SEQUENCE_VARIANT, VR::CS, "NONE"));
        obj.put(text(tags::SCAN_OPTIONS, VR::CS, ""));
        obj.put(text(tags::MR_ACQUISITION_TYPE, VR::CS, "2D"));
    }
    // Chest, abdomen and the top of the pelvis (unpaired, so no Laterality).
    obj.put(text(tags::BODY_PART_EXAMINED, VR::CS, "CHESTABDPELVIS"));
    obj.put(text(tags::SLICE_THICKNESS, VR::DS, &ds(dz)));
    if ct {
        obj.put(text(tags::KVP, VR::DS, "120"));
    } else {
        obj.put(text(tags::REPETITION_TIME, VR::DS, "500"));
        obj.put(text(tags::ECHO_TIME, VR::DS, "15"));
        obj.put(text(tags::ECHO_TRAIN_LENGTH, VR::IS, "1"));
        obj.put(text(tags::MAGNETIC_FIELD_STRENGTH, VR::DS, "1.5"));
        obj.put(text(tags::IMAGED_NUCLEUS, VR::SH, "1H"));
    }
    obj.put(text(tags::SPACING_BETWEEN_SLICES, VR::DS, &ds(dz)));
    obj.put(text(
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        concat!("groundglass-phantom ", env!("CARGO_PKG_VERSION")),
    ));
    obj.put(text(tags::PATIENT_POSITION, VR::CS, "HFS"));
    obj.put(text(tags::STUDY_INSTANCE_UID, VR::UI, &uids.study));
    obj.put(text(tags::SERIES_INSTANCE_UID, VR::UI, &uids.series));
    obj.put(text(tags::STUDY_ID, VR::SH, "1"));
    obj.put(text(tags::SERIES_NUMBER, VR::IS, "1"));
    obj.put(text(tags::ACQUISITION_NUMBER, VR::IS, "1"));
    obj.put(text(tags::INSTANCE_NUMBER, VR::IS, &(k + 1).to_string()));
    obj.put(multi(
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        &position.map(ds),
    ));
    let orientation: Vec<String> = row_dir
        .iter()
        .chain(col_dir.iter())
        .map(|v| ds(*v))
        .collect();
    obj.put(multi(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, &orientation));
    obj.put(text(tags::FRAME_OF_REFERENCE_UID, VR::UI, &uids.frame));
    obj.put(text(tags::POSITION_REFERENCE_INDICATOR, VR::LO, ""));
    obj.put(text(tags::SLICE_LOCATION, VR::DS, &ds(position[2])));
    obj.put(us(tags::SAMPLES_PER_PIXEL, 1));
    obj.put(text(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    ));
    obj.put(us(tags::ROWS, rows));
    obj.put(us(tags::COLUMNS, columns));
    // PixelSpacing is the spacing between rows (along j), then between columns (along i).
    obj.put(multi(tags::PIXEL_SPACING, VR::DS, &[ds(dy), ds(dx)]));
    obj.put(us(tags::BITS_ALLOCATED, 16));
    obj.put(us(tags::BITS_STORED, 16));
    obj.put(us(tags::HIGH_BIT, 15));
    obj.put(us(tags::PIXEL_REPRESENTATION, 1));
    obj.put(text(tags::WINDOW_CENTER, VR::DS, &ds(window.center)));
    obj.put(text(tags::WINDOW_WIDTH, VR::DS, &ds(window.width)));
    if ct {
        obj.put(text(tags::RESCALE_INTERCEPT, VR::DS, "0"));
        obj.put(text(tags::RESCALE_SLOPE, VR::DS, "1"));
        obj.put(text(tags::RESCALE_TYPE, VR::LO, "HU"));
    }
    // Signed values as their 16-bit patterns; OW is written little endian.
    let words: Vec<u16> = pixels.iter().map(|&v| v as u16).collect();
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(words.into()),
    ));
    obj
}
