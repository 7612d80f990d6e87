//! The study's measurements as JSON: each with its shape, its slice, its points in slice pixels
//! and in LPS millimetres, and its figures computed from the stored voxels (the engine's
//! `measure`): a length, an angle, a point's value, or a region's mean, SD, minimum, maximum, area
//! and voxel count. The DICOM SR export writes the same reports.

use groundglass_study::measure::{
    angle_deg, length_mm, modality_unit, region_stats, value_at, Region, RegionStats,
};
use groundglass_study::{extract, Series, SliceImage, Volume};
use serde::Serialize;

use crate::record::{MeasureShape, SliceRef};
use crate::state::{Corrections, Measurement};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeasurementReport {
    pub id: String,
    pub shape: MeasureShape,
    pub slice: SliceRef,
    /// Its points as drawn, slice pixel centres: a line's ends, a box's corners, an angle's
    /// three points (vertex second), a freehand outline's vertices, a point.
    pub points_px: Vec<[f64; 2]>,
    /// The same points in patient space (LPS, mm).
    pub points_lps: Vec<[f64; 3]>,
    /// Its outline in patient space: a line's two ends, an angle's three points, a rectangle's
    /// four corners or a freehand outline's vertices (closed: the first again at the end), an
    /// ellipse's axis ends (the longer axis first), a point, as DICOM SR's POLYLINE, POLYGON,
    /// ELLIPSE and POINT take them.
    pub outline_lps: Vec<[f64; 3]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length_mm: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub angle_deg: Option<f64>,
    /// A point's value, in `unit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
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
    /// `None` when an arm has no length.
    Angle(Option<f64>),
    /// `None` when no pixel centre lies inside.
    Region(Option<RegionStats>),
    /// `None` off the slice or the volume.
    Value(Option<f64>),
}

/// The figures of `m` on `slice`, the slice it was drawn on (the viewer's label and this export
/// both read them here). Points the store did not check (fewer than the shape has) give no
/// figure rather than a panic.
pub fn figures(slice: &SliceImage, m: &Measurement) -> Figures {
    let p = |i: usize| m.points.get(i).copied().unwrap_or([f64::NAN; 2]);
    let (a, b) = (p(0), p(1));
    match m.shape {
        MeasureShape::Line => Figures::Length(length_mm(slice, a, b)),
        MeasureShape::Rectangle => Figures::Region(region_stats(slice, Region::Rectangle { a, b })),
        MeasureShape::Ellipse => Figures::Region(region_stats(slice, Region::Ellipse { a, b })),
        MeasureShape::Angle => Figures::Angle(angle_deg(slice, a, b, p(2))),
        MeasureShape::Freehand => {
            Figures::Region(region_stats(slice, Region::Polygon(m.points.clone())))
        }
        MeasureShape::Point => Figures::Value(value_at(slice, a)),
    }
}

/// The outline of a measurement with `points` (slice pixel centres) in LPS.
pub fn outline(slice: &SliceImage, shape: MeasureShape, points: &[[f64; 2]]) -> Vec<[f64; 3]> {
    let lps = |p: [f64; 2]| slice.pixel_to_lps(p[0], p[1]);
    let closed = |corners: Vec<[f64; 2]>| {
        let mut out: Vec<[f64; 3]> = corners.iter().map(|&c| lps(c)).collect();
        out.extend(out.first().copied());
        out
    };
    match (shape, points) {
        (MeasureShape::Rectangle, &[a, b]) => closed(vec![a, [b[0], a[1]], b, [a[0], b[1]]]),
        (MeasureShape::Ellipse, &[a, b]) => {
            let (cx, cy) = ((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0);
            let (rx, ry) = ((b[0] - a[0]).abs() / 2.0, (b[1] - a[1]).abs() / 2.0);
            let across = [lps([cx - rx, cy]), lps([cx + rx, cy])];
            let down = [lps([cx, cy - ry]), lps([cx, cy + ry])];
            let [sx, sy] = slice.pixel_spacing();
            if rx * sx >= ry * sy {
                vec![across[0], across[1], down[0], down[1]]
            } else {
                vec![down[0], down[1], across[0], across[1]]
            }
        }
        (MeasureShape::Freehand, _) => closed(points.to_vec()),
        // A line, an angle and a point: their points, open.
        _ => points.iter().map(|&p| lps(p)).collect(),
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
            let (mut length, mut angle, mut stats, mut value) = (None, None, None, None);
            match figures(&slice, m) {
                Figures::Length(mm) => length = Some(mm),
                Figures::Angle(deg) => angle = deg,
                Figures::Region(s) => stats = s,
                Figures::Value(v) => value = v,
            }
            MeasurementReport {
                id: m.id.clone(),
                shape: m.shape,
                slice: m.slice.clone(),
                points_px: m.points.clone(),
                points_lps: m
                    .points
                    .iter()
                    .map(|p| slice.pixel_to_lps(p[0], p[1]))
                    .collect(),
                outline_lps: outline(&slice, m.shape, &m.points),
                length_mm: length,
                angle_deg: angle,
                value,
                unit: (stats.is_some() || value.is_some()).then(|| modality_unit(&series.modality)),
                stats,
                reviewer: m.edited_by.clone(),
                at_unix_ms: m.edited_at_unix_ms,
            }
        })
        .collect()
}
