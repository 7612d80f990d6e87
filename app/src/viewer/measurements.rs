//! Hand-drawn measurements on the viewports: a line with its length, a rectangle or an ellipse with
//! its statistics (the engine's `measure`, on the slice's stored values), drawn on the viewport
//! that shows their slice and listed in the panel. They are entries of the corrections store, so
//! they reload with the study and undo like every edit.

use eframe::egui::{self, Align2, Color32, FontId, Pos2, Rect, Stroke};
use groundglass_feedback::record::MeasureShape;
use groundglass_feedback::state::Measurement;
use groundglass_study::geometry::{dot, sub, Vec3};
use groundglass_study::measure::{length_mm, modality_unit, region_stats, Region};
use groundglass_study::{extract, PlaneGrid, Volume};

use super::editing::{ellipse, MEASURE_COLOUR};
use super::view::ViewTransform;
use super::ViewerApp;

/// One measurement as the viewports draw it.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurementOverlay {
    pub id: String,
    pub shape: MeasureShape,
    /// Its two points in LPS (a line's ends, a region's corners).
    pub ends: [Vec3; 2],
    pub label: String,
}

/// The figure a measurement shows: "23.4 mm", or "mean 31.2 HU, SD 4.0, 126.6 mm²".
pub fn label(volume: &Volume, modality: &str, m: &Measurement) -> String {
    let slice = extract(volume, m.slice.plane, m.slice.index);
    let [a, b] = m.points;
    let region = match m.shape {
        MeasureShape::Line => return format!("{:.1} mm", length_mm(&slice, a, b)),
        MeasureShape::Rectangle => Region::Rectangle { a, b },
        MeasureShape::Ellipse => Region::Ellipse { a, b },
    };
    match region_stats(&slice, region) {
        Some(s) => format!(
            "mean {:.1} {}, SD {:.1}, {:.1} mm²",
            s.mean,
            modality_unit(modality),
            s.sd,
            s.area_mm2
        ),
        None => "no pixel inside".to_string(),
    }
}

impl ViewerApp {
    /// The live measurements of the series and volume on screen, labelled (labels are computed
    /// once per measurement, when its volume is in).
    pub fn measurement_overlays(&mut self) -> Vec<MeasurementOverlay> {
        let (Some(layout), Some(series)) = (
            self.layout_info.clone(),
            self.current.and_then(|i| self.series.get(i)),
        ) else {
            return Vec::new();
        };
        let (uid, modality) = (series.uid.clone(), series.modality.clone());
        let mut out = Vec::new();
        for m in self.corrections.measurements.values() {
            if m.deleted || m.slice.series_uid != uid || m.slice.volume != self.volume_index {
                continue;
            }
            let grid = PlaneGrid::from_layout(&layout, m.slice.plane);
            let lps = |p: [f64; 2]| grid.pixel_to_lps(m.slice.index, p[0], p[1]);
            let label = match (self.measure_labels.get(&m.id), &self.volume) {
                (Some(l), _) => l.clone(),
                (None, Some(volume)) => {
                    let l = label(volume, &modality, m);
                    self.measure_labels.insert(m.id.clone(), l.clone());
                    l
                }
                (None, None) => "…".to_string(),
            };
            out.push(MeasurementOverlay {
                id: m.id.clone(),
                shape: m.shape,
                ends: [lps(m.points[0]), lps(m.points[1])],
                label,
            });
        }
        out
    }
}

/// Draws the measurements that lie in the slice `t` shows (both points within half a slice of
/// its plane), each with its figure beside its second point.
pub fn draw(painter: &egui::Painter, rect: Rect, t: &ViewTransform, items: &[MeasurementOverlay]) {
    let origin = t.grid.pixel_to_lps(t.index, 0.0, 0.0);
    let half_slice = t.grid.spacing[2] / 2.0 + 1e-6;
    let stroke = Stroke::new(2.0, MEASURE_COLOUR);
    for m in items {
        let in_plane = m
            .ends
            .iter()
            .all(|p| dot(sub(*p, origin), t.grid.normal).abs() <= half_slice);
        if !in_plane {
            continue;
        }
        let screen = |p: Vec3| {
            let s = t.lps_to_screen(p);
            Pos2::new(rect.min.x + s[0] as f32, rect.min.y + s[1] as f32)
        };
        let (a, b) = (screen(m.ends[0]), screen(m.ends[1]));
        match m.shape {
            MeasureShape::Line => {
                painter.line_segment([a, b], stroke);
                for p in [a, b] {
                    painter.circle_filled(p, 3.0, MEASURE_COLOUR);
                }
            }
            MeasureShape::Rectangle => {
                painter.rect_stroke(
                    Rect::from_two_pos(a, b),
                    0.0,
                    stroke,
                    egui::StrokeKind::Middle,
                );
            }
            MeasureShape::Ellipse => ellipse(painter, Rect::from_two_pos(a, b), stroke),
        }
        let at = Pos2::new(a.x.max(b.x) + 6.0, a.y.max(b.y));
        let galley =
            painter.layout_no_wrap(m.label.clone(), FontId::monospace(12.0), MEASURE_COLOUR);
        let text_rect = Align2::LEFT_BOTTOM.anchor_size(at, galley.size());
        painter.rect_filled(text_rect.expand(2.0), 2.0, Color32::from_black_alpha(160));
        painter.galley(text_rect.min, galley, MEASURE_COLOUR);
    }
}
