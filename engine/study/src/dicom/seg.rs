//! DICOM Segmentation objects (binary) read as label overlays: the segments, and per frame its
//! segment, its plane position and its bit mask. A SEG is placed on a loaded series by position
//! (each frame lands on the slice through its ImagePositionPatient), so a de-identified SEG, whose
//! UIDs no longer match, still lands on its series.

use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};

use crate::error::{Result, StudyError};
use crate::geometry::Vec3;
use crate::labels::{Dirty, LabelVolume};
use crate::volume::VolumeLayout;

pub const SEG_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.66.4";

#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub number: u16,
    pub label: String,
    /// The label value it takes in the overlay: a RadGrounder class id when the segment is coded
    /// in Groundglass' private scheme (`RGnnn`), else its segment number.
    pub value: u8,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SegFrame {
    pub segment: u16,
    pub position: Option<Vec3>,
    /// Rows x columns, row-major.
    pub inside: Vec<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Segmentation {
    pub path: PathBuf,
    pub referenced_series_uid: Option<String>,
    pub rows: usize,
    pub columns: usize,
    pub segments: Vec<Segment>,
    pub frames: Vec<SegFrame>,
}

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
}

fn number<T: std::str::FromStr>(obj: &InMemDicomObject, tag: Tag) -> Option<T> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

fn items(obj: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
    obj.get(tag).and_then(|e| e.items()).unwrap_or(&[])
}

fn position(item: &InMemDicomObject) -> Option<Vec3> {
    let plane = items(item, tags::PLANE_POSITION_SEQUENCE).first()?;
    let v = plane
        .get(tags::IMAGE_POSITION_PATIENT)?
        .to_multi_float64()
        .ok()?;
    (v.len() == 3).then(|| [v[0], v[1], v[2]])
}

/// Reads a binary SEG; errors name the file.
pub fn read_seg(path: &Path) -> Result<Segmentation> {
    let bad = |m: String| StudyError::invalid(path, m);
    // Declared lengths are checked before dicom-rs allocates for them.
    super::guard::check_lengths(path)?;
    let obj = super::without_panic("reading the segmentation", || {
        OpenFileOptions::new()
            .open_file(path)
            .map_err(|e| e.to_string())
    })
    .map_err(bad)?
    .into_inner();
    if text(&obj, tags::SOP_CLASS_UID).as_deref() != Some(SEG_SOP_CLASS) {
        return Err(bad("not a DICOM Segmentation".into()));
    }
    if text(&obj, tags::SEGMENTATION_TYPE).as_deref() != Some("BINARY") {
        return Err(bad(
            "only BINARY segmentations are read (this one is FRACTIONAL)".into(),
        ));
    }
    let rows: usize = obj
        .get(tags::ROWS)
        .and_then(|e| e.to_int::<u16>().ok())
        .ok_or_else(|| bad("no Rows".into()))? as usize;
    let columns: usize = obj
        .get(tags::COLUMNS)
        .and_then(|e| e.to_int::<u16>().ok())
        .ok_or_else(|| bad("no Columns".into()))? as usize;
    let count: usize = number(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1);
    if rows == 0 || columns == 0 || count == 0 || rows * columns * count > 1 << 34 {
        return Err(bad(format!(
            "implausible size {columns} x {rows} x {count}"
        )));
    }
    let segments = items(&obj, tags::SEGMENT_SEQUENCE)
        .iter()
        .filter_map(|s| {
            let number = s.get(tags::SEGMENT_NUMBER)?.to_int::<u16>().ok()?;
            let code = items(s, tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE)
                .first()
                .and_then(|c| text(c, tags::CODE_VALUE));
            let value = code
                .as_deref()
                .and_then(|c| c.strip_prefix("RG"))
                .and_then(|n| n.parse::<u8>().ok())
                .unwrap_or(number.min(255) as u8);
            Some(Segment {
                number,
                label: text(s, tags::SEGMENT_LABEL).unwrap_or_default(),
                value,
            })
        })
        .collect::<Vec<_>>();
    let pixels = obj
        .get(tags::PIXEL_DATA)
        .and_then(|e| e.to_bytes().ok())
        .ok_or_else(|| bad("no pixel data".into()))?;
    let plane = rows * columns;
    if pixels.len() * 8 < plane * count {
        return Err(bad(format!(
            "{} bytes of pixel data for {count} frames of {columns} x {rows} bits",
            pixels.len()
        )));
    }
    let shared = items(&obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE).first();
    let per_frame = items(&obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    let frames = (0..count)
        .map(|f| {
            let item = per_frame.get(f);
            let segment = item
                .or(shared)
                .and_then(|i| items(i, tags::SEGMENT_IDENTIFICATION_SEQUENCE).first())
                .and_then(|s| s.get(tags::REFERENCED_SEGMENT_NUMBER))
                .and_then(|e| e.to_int::<u16>().ok())
                .unwrap_or(1);
            let inside = (0..plane)
                .map(|p| {
                    let n = f * plane + p;
                    pixels[n / 8] >> (n % 8) & 1 == 1
                })
                .collect();
            SegFrame {
                segment,
                position: item.and_then(position),
                inside,
            }
        })
        .collect();
    let referenced_series_uid = items(&obj, tags::REFERENCED_SERIES_SEQUENCE)
        .first()
        .and_then(|s| text(s, tags::SERIES_INSTANCE_UID));
    Ok(Segmentation {
        path: path.to_path_buf(),
        referenced_series_uid,
        rows,
        columns,
        segments,
        frames,
    })
}

impl Segmentation {
    /// Paints the frames that lie on slices of `layout` (same matrix, position on a slice centre
    /// within a quarter of a voxel) into `labels`; returns how many frames landed.
    pub fn paint(&self, layout: &VolumeLayout, labels: &mut LabelVolume) -> (usize, Dirty) {
        let mut dirty = Dirty::default();
        let mut landed = 0;
        let [nx, ny, nz] = layout.dims;
        if self.columns != nx || self.rows != ny || labels.dims != layout.dims {
            return (0, dirty);
        }
        let Some(inverse) = layout.affine.inverse() else {
            return (0, dirty);
        };
        for frame in &self.frames {
            let Some(p) = frame.position else { continue };
            let ijk = inverse.apply(p);
            let k = ijk[2].round();
            let on_grid = ijk[0].abs() < 0.25 && ijk[1].abs() < 0.25 && (ijk[2] - k).abs() < 0.25;
            if !on_grid || k < 0.0 || k as usize >= nz {
                continue;
            }
            let k = k as usize;
            let value = self
                .segments
                .iter()
                .find(|s| s.number == frame.segment)
                .map(|s| s.value)
                .unwrap_or(frame.segment.min(255) as u8);
            let start = k * nx * ny;
            for (i, &inside) in frame.inside.iter().enumerate() {
                if inside {
                    labels.labels[start + i] = value;
                }
            }
            dirty.include(k);
            landed += 1;
        }
        (landed, dirty)
    }
}
