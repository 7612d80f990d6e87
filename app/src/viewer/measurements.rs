//! Hand-drawn measurements on the viewports: a line with its length, a rectangle or an ellipse with
//! its statistics (the engine's `measure`, on the slice's stored values), drawn on the viewport
//! that shows their slice (and, thin, where they cross the other planes) and listed in the panel. They are entries of the corrections store, so
//! they reload with the study and undo like every edit.

use eframe::egui::{self, Align2, Color32, FontId, Pos2, Rect, Stroke};
use groundglass_feedback::export::measurements::{figures, Figures};
use groundglass_feedback::record::MeasureShape;
use groundglass_feedback::state::Measurement;
use groundglass_study::geometry::Vec3;
use groundglass_study::measure::modality_unit;
use groundglass_study::{extract, PlaneGrid, Volume};

use super::editing::{measurement_outline, MEASURE_COLOUR};
use super::overlay::{footprint, Footprint};
use super::view::ViewTransform;
use super::ViewerApp;

/// One measurement as the viewports draw it.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurementOverlay {
    pub id: String,
    pub shape: MeasureShape,
    /// Its two points in LPS (a line's ends, a region's corners).
    pub ends: [Vec3; 2],
    /// The region's four corners in LPS (a line's: its ends twice), for where it crosses other
    /// slices and planes.
    pub corners: [Vec3; 4],
    pub label: String,
}

/// The figure a measurement shows: "23.4 mm", or "mean 31.2 HU, SD 4.0, 126.6 mm²".
pub fn label(volume: &Volume, modality: &str, m: &Measurement) -> String {
    let slice = extract(volume, m.slice.plane, m.slice.index);
    match figures(&slice, m) {
        Figures::Length(mm) => format!("{mm:.1} mm"),
        Figures::Region(Some(s)) => format!(
            "mean {:.1} {}, SD {:.1}, {:.1} mm²",
            s.mean,
            modality_unit(modality),
            s.sd,
            s.area_mm2
        ),
        Figures::Region(None) => "no pixel inside".to_string(),
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
            // Cached with the points it was computed for (a move or its undo recomputes it).
            let cached = self
                .measure_labels
                .get(&m.id)
                .filter(|(points, _)| *points == m.points);
            let label = match (cached, &self.volume) {
                (Some((_, l)), _) => l.clone(),
                (None, Some(volume)) => {
                    let l = label(volume, &modality, m);
                    self.measure_labels
                        .insert(m.id.clone(), (m.points, l.clone()));
                    l
                }
                (None, None) => "…".to_string(),
            };
            let [a, b] = m.points;
            let corners = match m.shape {
                MeasureShape::Line => [lps(a), lps(b), lps(b), lps(a)],
                _ => [lps(a), lps([b[0], a[1]]), lps(b), lps([a[0], b[1]])],
            };
            out.push(MeasurementOverlay {
                id: m.id.clone(),
                shape: m.shape,
                ends: [lps(a), lps(b)],
                corners,
                label,
            });
        }
        out
    }
}

/// Draws the measurements that lie in the slice `t` shows (within half a slice of its plane), each
/// with its figure beside its second point; on other slices and planes, where they cross them: a
/// line's crossing point, a region's crossing segment (thin, without a figure).
pub fn draw(painter: &egui::Painter, rect: Rect, t: &ViewTransform, items: &[MeasurementOverlay]) {
    let at = |p: [f64; 2]| Pos2::new(rect.min.x + p[0] as f32, rect.min.y + p[1] as f32);
    for m in items {
        match footprint(t, &m.corners) {
            Footprint::Box(_) => {}
            Footprint::Line([p, q]) => {
                let (p, q) = (at(p), at(q));
                if p.distance(q) < 1.0 {
                    painter.circle_stroke(p, 4.0, Stroke::new(1.5, MEASURE_COLOUR));
                } else {
                    painter.line_segment([p, q], Stroke::new(1.0, MEASURE_COLOUR));
                }
                continue;
            }
            Footprint::None => continue,
        }
        let (a, b) = (
            at(t.lps_to_screen(m.ends[0])),
            at(t.lps_to_screen(m.ends[1])),
        );
        measurement_outline(painter, m.shape, a, b);
        if m.shape == MeasureShape::Line {
            for p in [a, b] {
                painter.circle_filled(p, 3.0, MEASURE_COLOUR);
            }
        }
        let anchor = Pos2::new(a.x.max(b.x) + 6.0, a.y.max(b.y));
        let galley =
            painter.layout_no_wrap(m.label.clone(), FontId::monospace(12.0), MEASURE_COLOUR);
        let text_rect = Align2::LEFT_BOTTOM.anchor_size(anchor, galley.size());
        painter.rect_filled(text_rect.expand(2.0), 2.0, Color32::from_black_alpha(160));
        painter.galley(text_rect.min, galley, MEASURE_COLOUR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viewer::view::ViewState;
    use groundglass_study::{Affine, Plane, Window};

    #[test]
    fn a_line_on_an_axial_slice_crosses_the_sagittal_plane_in_a_point() {
        // 100 x 100 x 50 voxels of 1 mm; a line along x on axial slice 10, at row 50.
        let affine = Affine::from_axes([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0; 3]);
        let grid = |plane| PlaneGrid::from_geometry([100, 100, 50], &affine, plane);
        let axial = grid(Plane::Axial);
        let lps = |x: f64, y: f64| axial.pixel_to_lps(10, x, y);
        let (a, b) = (lps(20.0, 50.0), lps(80.0, 50.0));
        let corners = [a, b, b, a];
        let view = |plane, index| {
            let g = grid(plane);
            let state = ViewState {
                index,
                ..ViewState::new(plane, &g, Window::new(0.0, 1.0))
            };
            ViewTransform::new(g, &state, [400.0, 400.0])
        };
        assert!(matches!(
            footprint(&view(Plane::Axial, 10), &corners),
            Footprint::Box(_)
        ));
        assert_eq!(
            footprint(&view(Plane::Axial, 12), &corners),
            Footprint::None
        );
        // The sagittal slice through x = 50 meets the line at one point.
        let sagittal = view(Plane::Sagittal, 50);
        let Footprint::Line([p, q]) = footprint(&sagittal, &corners) else {
            panic!("the line crosses the sagittal plane");
        };
        let expected = sagittal.lps_to_screen(lps(50.0, 50.0));
        for point in [p, q] {
            assert!((point[0] - expected[0]).abs() < 1e-6 && (point[1] - expected[1]).abs() < 1e-6);
        }
    }
}
