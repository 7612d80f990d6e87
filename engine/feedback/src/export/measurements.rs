//! The study's measurements as JSON: each with its shape, its slice, its points in slice pixels
//! and in LPS millimetres, and its figures computed from the stored voxels (the engine's
//! `measure`): a length, or a region's mean, SD, minimum, maximum, area and voxel count. The DICOM
//! SR export writes the same reports.

use groundglass_study::measure::{length_mm, modality_unit, region_stats, Region, RegionStats};
use groundglass_study::{extract, Series, SliceImage, Volume};
use serde::Serialize;

use crate::record::{MeasureShape, SliceRef};
use crate::state::{Corrections, Measurement};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeasurementReport {
    pub id: String,
    pub shape: MeasureShape,
    pub slice: SliceRef,
    /// A line's ends or a region's corners, slice pixel centres.
    pub points_px: [[f64; 2]; 2],
    /// The same points in patient space (LPS, mm).
    pub points_lps: [[f64; 3]; 2],
    /// Its outline in patient space: a line's two ends, a rectangle's four corners (closed: the
    /// first again at the end), an ellipse's axis ends (the longer axis first), as DICOM SR's
    /// POLYLINE, POLYGON and ELLIPSE take them.
    pub outline_lps: Vec<[f64; 3]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_mm: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub stats: Option<RegionStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    pub reviewer: String,
    pub at_unix_ms: u64,
}

/// What a measurement measures on its slice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Figures {
    Length(f64),
    /// `None` when no pixel centre lies inside.
    Region(Option<RegionStats>),
}

/// The figures of `m` on `slice`, the slice it was drawn on (the viewer's label and this export
/// both read them here).
pub fn figures(slice: &SliceImage, m: &Measurement) -> Figures {
    let [a, b] = m.points;
    match m.shape {
        MeasureShape::Line => Figures::Length(length_mm(slice, a, b)),
        MeasureShape::Rectangle => Figures::Region(region_stats(slice, Region::Rectangle { a, b })),
        MeasureShape::Ellipse => Figures::Region(region_stats(slice, Region::Ellipse { a, b })),
    }
}

/// The outline of a measurement with `points` (slice pixel centres) in LPS.
pub fn outline(slice: &SliceImage, shape: MeasureShape, points: [[f64; 2]; 2]) -> Vec<[f64; 3]> {
    let lps = |x: f64, y: f64| slice.pixel_to_lps(x, y);
    let [a, b] = points;
    match shape {
        MeasureShape::Line => vec![lps(a[0], a[1]), lps(b[0], b[1])],
        MeasureShape::Rectangle => vec![
            lps(a[0], a[1]),
            lps(b[0], a[1]),
            lps(b[0], b[1]),
            lps(a[0], b[1]),
            lps(a[0], a[1]),
        ],
        MeasureShape::Ellipse => {
            let (cx, cy) = ((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0);
            let (rx, ry) = ((b[0] - a[0]).abs() / 2.0, (b[1] - a[1]).abs() / 2.0);
            let across = [lps(cx - rx, cy), lps(cx + rx, cy)];
            let down = [lps(cx, cy - ry), lps(cx, cy + ry)];
            let [sx, sy] = slice.pixel_spacing();
            if rx * sx >= ry * sy {
                vec![across[0], across[1], down[0], down[1]]
            } else {
                vec![down[0], down[1], across[0], across[1]]
            }
        }
    }
}

/// The live measurements of `series` on `volume` (its volume `volume_index`), in the store's order
/// of ids.
pub fn reports(
    series: &Series,
    volume: &Volume,
    volume_index: usize,
    corrections: &Corrections,
) -> Vec<MeasurementReport> {
    corrections
        .measurements
        .values()
        .filter(|m| {
            !m.deleted && m.slice.series_uid == series.uid && m.slice.volume == volume_index
        })
        .map(|m| {
            let slice = extract(volume, m.slice.plane, m.slice.index);
            let (length, stats) = match figures(&slice, m) {
                Figures::Length(mm) => (Some(mm), None),
                Figures::Region(stats) => (None, stats),
            };
            MeasurementReport {
                id: m.id.clone(),
                shape: m.shape,
                slice: m.slice.clone(),
                points_px: m.points,
                points_lps: m.points.map(|p| slice.pixel_to_lps(p[0], p[1])),
                outline_lps: outline(&slice, m.shape, m.points),
                length_mm: length,
                unit: stats.map(|_| modality_unit(&series.modality)),
                stats,
                reviewer: m.edited_by.clone(),
                at_unix_ms: m.edited_at_unix_ms,
            }
        })
        .collect()
}
