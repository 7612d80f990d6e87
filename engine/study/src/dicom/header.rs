//! What the loader needs from one DICOM file, read without its pixel data.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;

use super::attrs::{self, Obj};
use crate::error::{Result, StudyError};
use crate::geometry::{cross, normalize, Vec3};
use crate::pixel::{Lut, Rescale, VoiFunction, Window};

const DICOMDIR_SOP_CLASS: &str = "1.2.840.10008.1.3.10";

/// Geometry of one frame: where its first pixel sits and how its rows and columns run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameGeometry {
    pub position: Vec3,
    /// Direction of increasing column index (along a row), then of increasing row index.
    pub row_dir: Vec3,
    pub col_dir: Vec3,
    /// Spacing between columns, then between rows (mm).
    pub spacing: [f64; 2],
}

impl FrameGeometry {
    pub fn normal(&self) -> Vec3 {
        cross(self.row_dir, self.col_dir)
    }
}

/// The header of one DICOM file, as far as loading and grouping need it.
#[derive(Clone, Debug)]
pub struct DicomHeader {
    pub path: PathBuf,
    pub transfer_syntax: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub series_uid: String,
    /// Frame of Reference UID: series that share it share patient coordinates.
    pub frame_of_reference: String,
    pub modality: String,
    pub description: String,
    pub patient_name: String,
    pub patient_id: String,
    pub image_type: Vec<String>,
    pub instance_number: Option<i64>,
    pub rows: u32,
    pub cols: u32,
    pub frames: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub pixel_signed: bool,
    pub photometric: String,
    pub planar_configuration: u16,
    /// One entry per frame when the object has geometry (single frame, enhanced functional groups,
    /// or an RT dose grid); empty otherwise.
    pub frame_geometry: Vec<FrameGeometry>,
    pub slice_thickness: Option<f64>,
    /// One rescale per frame (enhanced objects may vary it per frame).
    pub rescale: Vec<Rescale>,
    pub modality_lut: Option<Lut>,
    pub windows: Vec<Window>,
    pub voi_function: VoiFunction,
    pub voi_lut: Option<Lut>,
    pub palette: Option<[Lut; 3]>,
    pub padding: Option<f64>,
    /// Problems found in the header that do not stop loading.
    pub warnings: Vec<String>,
}

impl DicomHeader {
    pub fn is_localizer(&self) -> bool {
        self.image_type.iter().any(|t| t == "LOCALIZER")
    }
}

/// What a file turned out to be.
pub enum Scanned {
    Image(Box<DicomHeader>),
    /// A DICOMDIR: the image files it references.
    Directory(Vec<PathBuf>),
    /// A valid DICOM object without pixel data (report, structure set...).
    NotAnImage,
}

/// Reads the header of `path` (everything before the Pixel Data element).
pub fn read_header(path: &Path) -> Result<Scanned> {
    super::guard::check_lengths(path)?;
    let obj = super::without_panic("the DICOM parser", || {
        OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(path)
            .map_err(|e| e.to_string())
    })
    .map_err(|e| StudyError::dicom(path, e))?;
    let meta = obj.meta();
    let transfer_syntax = meta.transfer_syntax().trim_end_matches('\0').to_string();
    if meta.media_storage_sop_class_uid().trim_end_matches('\0') == DICOMDIR_SOP_CLASS {
        return Ok(Scanned::Directory(super::dicomdir::referenced_files(
            path, &obj,
        )?));
    }
    let (Some(rows), Some(cols)) = (
        attrs::uint(&obj, tags::ROWS),
        attrs::uint(&obj, tags::COLUMNS),
    ) else {
        return Ok(Scanned::NotAnImage);
    };
    if rows == 0 || cols == 0 {
        return Err(StudyError::invalid(path, "image has zero rows or columns"));
    }
    let mut warnings = Vec::new();
    let frames = match attrs::int(&obj, tags::NUMBER_OF_FRAMES) {
        None => 1,
        Some(n) if n >= 1 && n <= i64::from(u32::MAX) => n as u32,
        Some(n) => {
            warnings.push(format!("NumberOfFrames {n} is invalid; reading one frame"));
            1
        }
    };
    let bits_allocated = attrs::uint(&obj, tags::BITS_ALLOCATED).unwrap_or(16) as u16;
    if ![1, 8, 16, 32].contains(&bits_allocated) {
        return Err(StudyError::invalid(
            path,
            format!("BitsAllocated {bits_allocated} is not supported"),
        ));
    }
    let bits_stored = attrs::uint(&obj, tags::BITS_STORED)
        .map(|b| b as u16)
        .filter(|b| *b >= 1 && *b <= bits_allocated)
        .unwrap_or(bits_allocated);
    let samples_per_pixel = attrs::uint(&obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1) as u16;
    if samples_per_pixel != 1 && samples_per_pixel != 3 {
        return Err(StudyError::invalid(
            path,
            format!("SamplesPerPixel {samples_per_pixel} is not supported"),
        ));
    }
    let photometric = attrs::string(&obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_else(|| {
        if samples_per_pixel == 3 {
            "RGB".into()
        } else {
            "MONOCHROME2".into()
        }
    });

    // Native pixel data must fit in the file: catches truncated files and absurd sizes before
    // any buffer is allocated for them.
    if super::native::handles(&transfer_syntax) {
        let bits = u64::from(rows)
            * u64::from(cols)
            * u64::from(frames)
            * u64::from(samples_per_pixel)
            * u64::from(bits_allocated);
        let needed = bits.div_ceil(8);
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX);
        if needed > len {
            return Err(StudyError::invalid(
                path,
                format!(
                    "file is truncated or its header is wrong: {cols}x{rows}x{frames} pixels need {needed} bytes of pixel data, the whole file has {len}"
                ),
            ));
        }
    }
    let slice_thickness = attrs::float(&obj, tags::SLICE_THICKNESS).filter(|t| *t > 0.0);
    let frame_geometry = frame_geometry(&obj, frames, &mut warnings);
    let rescale = rescales(&obj, frames);
    let (windows, voi_function) = windows_of(&obj);
    let voi_lut = attrs::first_item(&obj, tags::VOILUT_SEQUENCE).and_then(lut_of);
    let modality_lut = attrs::first_item(&obj, tags::MODALITY_LUT_SEQUENCE).and_then(lut_of);
    let palette = if photometric == "PALETTE COLOR" {
        let p = palette_of(&obj);
        if p.is_none() {
            return Err(StudyError::invalid(
                path,
                "PALETTE COLOR image without a usable palette (segmented palettes are not supported)",
            ));
        }
        p
    } else {
        None
    };

    Ok(Scanned::Image(Box::new(DicomHeader {
        path: path.to_path_buf(),
        transfer_syntax,
        sop_class_uid: meta
            .media_storage_sop_class_uid()
            .trim_end_matches('\0')
            .to_string(),
        sop_instance_uid: attrs::string(&obj, tags::SOP_INSTANCE_UID).unwrap_or_default(),
        series_uid: attrs::string(&obj, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
        frame_of_reference: attrs::string(&obj, tags::FRAME_OF_REFERENCE_UID).unwrap_or_default(),
        modality: attrs::string(&obj, tags::MODALITY).unwrap_or_default(),
        description: attrs::string(&obj, tags::SERIES_DESCRIPTION).unwrap_or_default(),
        patient_name: attrs::string(&obj, tags::PATIENT_NAME).unwrap_or_default(),
        patient_id: attrs::string(&obj, tags::PATIENT_ID).unwrap_or_default(),
        image_type: attrs::strings(&obj, tags::IMAGE_TYPE),
        instance_number: attrs::int(&obj, tags::INSTANCE_NUMBER),
        rows,
        cols,
        frames,
        samples_per_pixel,
        bits_allocated,
        bits_stored,
        pixel_signed: attrs::uint(&obj, tags::PIXEL_REPRESENTATION) == Some(1),
        photometric,
        planar_configuration: attrs::uint(&obj, tags::PLANAR_CONFIGURATION).unwrap_or(0) as u16,
        frame_geometry,
        slice_thickness,
        rescale,
        modality_lut,
        windows,
        voi_function,
        voi_lut,
        palette,
        padding: attrs::float(&obj, tags::PIXEL_PADDING_VALUE),
        warnings,
    })))
}

/// Plane geometry from one data set level: position, orientation and pixel spacing, each of which
/// may come from a functional group item instead of the root.
fn plane(
    position: Option<Vec3>,
    orientation: Option<Vec<f64>>,
    spacing: Option<Vec<f64>>,
) -> Option<FrameGeometry> {
    let o = orientation.filter(|o| o.len() >= 6)?;
    let row_dir = normalize([o[0], o[1], o[2]])?;
    let col_dir = normalize([o[3], o[4], o[5]])?;
    // PixelSpacing is (row spacing, column spacing): the distance between rows comes first.
    let s = spacing.filter(|s| s.len() >= 2 && s[0] > 0.0 && s[1] > 0.0)?;
    Some(FrameGeometry {
        position: position?,
        row_dir,
        col_dir,
        spacing: [s[1], s[0]],
    })
}

fn frame_geometry(obj: &Obj, frames: u32, warnings: &mut Vec<String>) -> Vec<FrameGeometry> {
    let root_spacing = attrs::floats(obj, tags::PIXEL_SPACING)
        .or_else(|| attrs::floats(obj, tags::IMAGER_PIXEL_SPACING));
    let root = plane(
        attrs::vec3(obj, tags::IMAGE_POSITION_PATIENT),
        attrs::floats(obj, tags::IMAGE_ORIENTATION_PATIENT),
        root_spacing.clone(),
    );

    // Enhanced multi-frame: per-frame groups override the shared groups.
    let per_frame = attrs::items(obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    let shared = attrs::first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    if !per_frame.is_empty() || shared.is_some() {
        let find = |frame: Option<&Obj>, seq, f: &dyn Fn(&Obj) -> Option<Vec<f64>>| {
            frame
                .and_then(|fr| attrs::first_item(fr, seq))
                .and_then(f)
                .or_else(|| shared.and_then(|s| attrs::first_item(s, seq)).and_then(f))
        };
        let mut out = Vec::with_capacity(frames as usize);
        for f in 0..frames as usize {
            let frame = per_frame.get(f);
            let position = find(frame, tags::PLANE_POSITION_SEQUENCE, &|i| {
                attrs::floats(i, tags::IMAGE_POSITION_PATIENT)
            })
            .filter(|v| v.len() >= 3)
            .map(|v| [v[0], v[1], v[2]]);
            let orientation = find(frame, tags::PLANE_ORIENTATION_SEQUENCE, &|i| {
                attrs::floats(i, tags::IMAGE_ORIENTATION_PATIENT)
            });
            let spacing = find(frame, tags::PIXEL_MEASURES_SEQUENCE, &|i| {
                attrs::floats(i, tags::PIXEL_SPACING)
            })
            .or_else(|| root_spacing.clone());
            match plane(position, orientation, spacing) {
                Some(g) => out.push(g),
                None => {
                    // Enhanced objects stripped of geometry (emri_small) are common: only a
                    // partial geometry is worth a warning.
                    if f > 0 {
                        warnings.push(format!(
                            "frame {} has no usable plane geometry in its functional groups; frames not placed",
                            f + 1
                        ));
                    }
                    return Vec::new();
                }
            }
        }
        return out;
    }

    let Some(root) = root else {
        return Vec::new();
    };
    if frames == 1 {
        return vec![root];
    }
    // RT dose grids place frames along the normal by GridFrameOffsetVector.
    if let Some(offsets) = attrs::floats(obj, tags::GRID_FRAME_OFFSET_VECTOR) {
        if offsets.len() == frames as usize {
            let n = root.normal();
            let base = offsets[0];
            return offsets
                .iter()
                .map(|o| FrameGeometry {
                    position: crate::geometry::add(
                        root.position,
                        crate::geometry::scale(n, o - base),
                    ),
                    ..root
                })
                .collect();
        }
        warnings.push(format!(
            "GridFrameOffsetVector has {} values for {frames} frames; frames not placed",
            offsets.len()
        ));
    }
    Vec::new()
}

fn rescales(obj: &Obj, frames: u32) -> Vec<Rescale> {
    let root = |o: &Obj| -> Option<Rescale> {
        let slope = attrs::float(o, tags::RESCALE_SLOPE);
        let intercept = attrs::float(o, tags::RESCALE_INTERCEPT);
        if slope.is_none() && intercept.is_none() {
            return None;
        }
        Some(Rescale {
            slope: slope.filter(|s| *s != 0.0).unwrap_or(1.0),
            intercept: intercept.unwrap_or(0.0),
        })
    };
    // RT dose: stored values times DoseGridScaling are Gy.
    let dose = attrs::float(obj, tags::DOSE_GRID_SCALING)
        .filter(|s| *s > 0.0)
        .map(|slope| Rescale {
            slope,
            intercept: 0.0,
        });
    let base = root(obj).or(dose).unwrap_or(Rescale::IDENTITY);
    let per_frame = attrs::items(obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    let shared = attrs::first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let from_group = |g: Option<&Obj>| {
        g.and_then(|g| attrs::first_item(g, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE))
            .and_then(root)
    };
    let shared_rescale = from_group(shared).unwrap_or(base);
    (0..frames as usize)
        .map(|f| from_group(per_frame.get(f)).unwrap_or(shared_rescale))
        .collect()
}

fn windows_of(obj: &Obj) -> (Vec<Window>, VoiFunction) {
    // Enhanced objects keep the window in the Frame VOI LUT functional group.
    let source = if attrs::floats(obj, tags::WINDOW_CENTER).is_some() {
        Some(obj)
    } else {
        attrs::first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
            .or_else(|| attrs::first_item(obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE))
            .and_then(|g| attrs::first_item(g, tags::FRAME_VOILUT_SEQUENCE))
    };
    let Some(src) = source else {
        return (Vec::new(), VoiFunction::Linear);
    };
    let centers = attrs::floats(src, tags::WINDOW_CENTER).unwrap_or_default();
    let widths = attrs::floats(src, tags::WINDOW_WIDTH).unwrap_or_default();
    let windows = centers
        .iter()
        .zip(&widths)
        .map(|(c, w)| Window::new(*c, *w))
        .filter(Window::is_usable)
        .collect();
    let function = attrs::string(src, tags::VOILUT_FUNCTION)
        .map(|s| VoiFunction::from_dicom(&s))
        .unwrap_or_default();
    (windows, function)
}

/// A Modality or VOI LUT item: LUTDescriptor (entries, first mapped, bits) and LUTData.
fn lut_of(item: &Obj) -> Option<Lut> {
    lut_from(item, tags::LUT_DESCRIPTOR, tags::LUT_DATA)
}

fn lut_from(item: &Obj, descriptor: dicom_core::Tag, data: dicom_core::Tag) -> Option<Lut> {
    let d = attrs::floats(item, descriptor)?;
    if d.len() < 3 {
        return None;
    }
    // 0 entries means 65536 (PS3.3 C.11.1.1).
    let entries = if d[0] as i64 == 0 {
        65536
    } else {
        d[0] as usize
    };
    // The first mapped value may be signed although the VR says US.
    let first = d[1] as i64;
    let first_mapped = if first >= 32768 { first - 65536 } else { first };
    let bits = d[2] as u16;
    let mut values = attrs::words(item, data, entries)?;
    values.truncate(entries);
    (!values.is_empty()).then_some(Lut {
        first_mapped,
        entries: values,
        bits,
    })
}

fn palette_of(obj: &Obj) -> Option<[Lut; 3]> {
    Some([
        lut_from(
            obj,
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?,
        lut_from(
            obj,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?,
        lut_from(
            obj,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        )?,
    ])
}
