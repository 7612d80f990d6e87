//! Hand-drawn measurements on the viewports: a line with its length, an angle, a point's value, a
//! rectangle, an ellipse or a freehand outline with its statistics (the engine's `measure`, on
//! the slice's stored values), drawn on the viewport that shows their slice (and, thin, where they
//! cross the other planes) and listed in the panel. They are entries of the corrections store,
//! so they reload with the study and undo like every edit.

use eframe::egui::{self, Align2, Color32, FontId, Pos2, Rect, Stroke};
use groundglass_feedback::export::measurements::{figures, Figures};
use groundglass_feedback::record::MeasureShape;
use groundglass_feedback::state::Measurement;
use groundglass_study::geometry::{add, dot, scale, sub, Vec3};
use groundglass_study::measure::modality_unit;
use groundglass_study::{extract, PlaneGrid, Volume};

use super::editing::{measurement_outline, MEASURE_COLOUR};
use super::view::ViewTransform;
use super::ViewerApp;

/// One measurement as the viewports draw it.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurementOverlay {
    pub id: String,
    pub shape: MeasureShape,
    /// Its points in LPS, as the store keeps them (a line's ends, a box's corners, an angle's
    /// three, an outline's vertices, a point).
    pub points: Vec<Vec3>,
    /// Its outline in LPS, for where it crosses other slices and planes: a line's or an angle's
    /// points (open), a region's boundary (closed, the first point again at the end).
    pub outline: Vec<Vec3>,
    pub label: String,
}

/// The figure a measurement shows: "23.4 mm", "47.2°", "31 HU" or "mean 31.2 HU, SD 4.0, 126.6
/// mm²".
pub fn label(volume: &Volume, modality: &str, m: &Measurement) -> String {
    let slice = extract(volume, m.slice.plane, m.slice.index);
    let unit = modality_unit(modality);
    match figures(&slice, m) {
        Figures::Length(mm) => format!("{mm:.1} mm"),
        Figures::Angle(Some(deg)) => format!("{deg:.1}°"),
        Figures::Angle(None) => "no angle (an arm has no length)".to_string(),
        Figures::Value(Some(v)) => format!("{v} {unit}"),
        Figures::Value(None) => "outside the volume".to_string(),
        Figures::Region(Some(s)) => format!(
            "mean {:.1} {unit}, SD {:.1}, {:.1} mm²",
            s.mean, s.sd, s.area_mm2
        ),
        Figures::Region(None) => "no pixel inside".to_string(),
    }
}

/// A measurement's boundary in slice pixels: a line's or an angle's points (open), a rectangle's
/// corners, an ellipse as a 64-gon, an outline's vertices (closed), a point.
fn boundary(shape: MeasureShape, points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    let closed = |mut v: Vec<[f64; 2]>| {
        v.extend(v.first().copied());
        v
    };
    match (shape, points) {
        (MeasureShape::Rectangle, &[a, b]) => closed(vec![a, [b[0], a[1]], b, [a[0], b[1]]]),
        (MeasureShape::Ellipse, &[a, b]) => {
            let (cx, cy) = ((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0);
            let (rx, ry) = ((b[0] - a[0]) / 2.0, (b[1] - a[1]) / 2.0);
            closed(
                (0..64)
                    .map(|i| {
                        let t = i as f64 / 64.0 * std::f64::consts::TAU;
                        [cx + rx * t.cos(), cy + ry * t.sin()]
                    })
                    .collect(),
            )
        }
        (MeasureShape::Freehand, _) => closed(points.to_vec()),
        _ => points.to_vec(),
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
            let lps = |p: &[f64; 2]| grid.pixel_to_lps(m.slice.index, p[0], p[1]);
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
                        .insert(m.id.clone(), (m.points.clone(), l.clone()));
                    l
                }
                (None, None) => "…".to_string(),
            };
            out.push(MeasurementOverlay {
                id: m.id.clone(),
                shape: m.shape,
                points: m.points.iter().map(lps).collect(),
                outline: boundary(m.shape, &m.points).iter().map(lps).collect(),
                label,
            });
        }
        out
    }
}

/// Where a measurement's outline meets the slice of `t`.
#[derive(Clone, Debug, PartialEq)]
pub enum Crossing {
    /// Every point lies within half a slice of it: drawn whole.
    InPlane,
    /// Where the outline's segments cross the slice's plane (screen pixels of `t`, in order
    /// along the outline).
    Points(Vec<[f64; 2]>),
}

/// How `outline` (LPS) meets the slice `t` shows.
pub fn crossing(t: &ViewTransform, outline: &[Vec3]) -> Crossing {
    let origin = t.grid.pixel_to_lps(t.index, 0.0, 0.0);
    let d: Vec<f64> = outline
        .iter()
        .map(|c| dot(sub(*c, origin), t.grid.normal))
        .collect();
    if d.iter().all(|x| x.abs() <= t.grid.spacing[2] / 2.0) {
        return Crossing::InPlane;
    }
    let mut points = Vec::new();
    for i in 1..outline.len() {
        let (a, b, da, db) = (outline[i - 1], outline[i], d[i - 1], d[i]);
        if (da <= 0.0) != (db <= 0.0) {
            let f = da / (da - db);
            points.push(t.lps_to_screen(add(a, scale(sub(b, a), f))));
        }
    }
    Crossing::Points(points)
}

/// Draws the measurements that lie in the slice `t` shows (within half a slice of its plane), each
/// with its figure (an angle's at its vertex, others beside their lowest point); on other slices
/// and planes, where they cross them: a line's or an angle's crossing points, a region's crossing
/// segments (thin, without a figure).
pub fn draw(painter: &egui::Painter, rect: Rect, t: &ViewTransform, items: &[MeasurementOverlay]) {
    let at = |p: [f64; 2]| Pos2::new(rect.min.x + p[0] as f32, rect.min.y + p[1] as f32);
    let thin = Stroke::new(1.0, MEASURE_COLOUR);
    for m in items {
        match crossing(t, &m.outline) {
            Crossing::InPlane => {}
            Crossing::Points(points) => {
                let region = matches!(
                    m.shape,
                    MeasureShape::Rectangle | MeasureShape::Ellipse | MeasureShape::Freehand
                );
                if region {
                    // The crossings of a closed outline lie on one line: sorted along it, each
                    // pair bounds a stretch inside the region.
                    let mut sorted = points.clone();
                    if let (Some(first), Some(last)) = (points.first(), points.last()) {
                        let dir = [last[0] - first[0], last[1] - first[1]];
                        sorted.sort_by(|p, q| {
                            let along = |a: &[f64; 2]| a[0] * dir[0] + a[1] * dir[1];
                            along(p).total_cmp(&along(q))
                        });
                    }
                    for pair in sorted.chunks_exact(2) {
                        let (p, q) = (at(pair[0]), at(pair[1]));
                        if p.distance(q) < 1.0 {
                            painter.circle_stroke(p, 4.0, Stroke::new(1.5, MEASURE_COLOUR));
                        } else {
                            painter.line_segment([p, q], thin);
                        }
                    }
                } else {
                    for p in points {
                        painter.circle_stroke(at(p), 4.0, Stroke::new(1.5, MEASURE_COLOUR));
                    }
                }
                continue;
            }
        }
        let screen: Vec<Pos2> = m.points.iter().map(|&p| at(t.lps_to_screen(p))).collect();
        measurement_outline(painter, m.shape, &screen);
        if matches!(m.shape, MeasureShape::Line | MeasureShape::Angle) {
            for &p in &screen {
                painter.circle_filled(p, 3.0, MEASURE_COLOUR);
            }
        }
        let Some(lowest) = screen.iter().copied().max_by(|a, b| a.y.total_cmp(&b.y)) else {
            continue;
        };
        let right = screen.iter().map(|p| p.x).fold(f32::NEG_INFINITY, f32::max);
        // An angle's figure sits at its vertex, as in every viewer; others beside their lowest
        // point, right of the shape.
        let anchor = match (m.shape, screen.as_slice()) {
            (MeasureShape::Angle, &[_, vertex, _]) => vertex + egui::vec2(10.0, -8.0),
            _ => Pos2::new(right + 6.0, lowest.y),
        };
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

    fn views() -> (PlaneGrid, impl Fn(Plane, usize) -> ViewTransform) {
        // 100 x 100 x 50 voxels of 1 mm.
        let affine = Affine::from_axes([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0; 3]);
        let grid = move |plane| PlaneGrid::from_geometry([100, 100, 50], &affine, plane);
        let view = move |plane, index| {
            let g = grid(plane);
            let state = ViewState {
                index,
                ..ViewState::new(plane, &g, Window::new(0.0, 1.0))
            };
            ViewTransform::new(g, &state, [400.0, 400.0])
        };
        (grid(Plane::Axial), view)
    }

    fn near(p: [f64; 2], q: [f64; 2]) -> bool {
        (p[0] - q[0]).abs() < 1e-6 && (p[1] - q[1]).abs() < 1e-6
    }

    #[test]
    fn a_line_on_an_axial_slice_crosses_the_sagittal_plane_in_a_point() {
        // A line along x on axial slice 10, at row 50.
        let (axial, view) = views();
        let lps = |x: f64, y: f64| axial.pixel_to_lps(10, x, y);
        let outline: Vec<Vec3> = boundary(MeasureShape::Line, &[[20.0, 50.0], [80.0, 50.0]])
            .iter()
            .map(|p| lps(p[0], p[1]))
            .collect();
        assert_eq!(
            crossing(&view(Plane::Axial, 10), &outline),
            Crossing::InPlane
        );
        assert_eq!(
            crossing(&view(Plane::Axial, 12), &outline),
            Crossing::Points(vec![])
        );
        // The sagittal slice through x = 50 meets the line at one point.
        let sagittal = view(Plane::Sagittal, 50);
        let Crossing::Points(points) = crossing(&sagittal, &outline) else {
            panic!("the line crosses the sagittal plane");
        };
        let expected = sagittal.lps_to_screen(lps(50.0, 50.0));
        assert!(points.len() == 1 && near(points[0], expected), "{points:?}");
    }

    #[test]
    fn a_concave_outline_crosses_another_plane_in_two_stretches() {
        // A U on axial slice 10: the sagittal plane x = 50 cuts both of its arms.
        let (axial, view) = views();
        let u = [
            [20.0, 20.0],
            [80.0, 20.0],
            [80.0, 80.0],
            [60.0, 80.0],
            [60.0, 40.0],
            [40.0, 40.0],
            [40.0, 80.0],
            [20.0, 80.0],
        ];
        let outline: Vec<Vec3> = boundary(MeasureShape::Freehand, &u)
            .iter()
            .map(|p| axial.pixel_to_lps(10, p[0], p[1]))
            .collect();
        assert_eq!(outline.len(), 9, "closed");
        let coronal = view(Plane::Coronal, 70);
        let Crossing::Points(points) = crossing(&coronal, &outline) else {
            panic!("the U crosses the coronal plane");
        };
        // y = 70 meets the U's edges at x = 20, 40, 60 and 80.
        assert_eq!(points.len(), 4, "{points:?}");
        let mut xs: Vec<f64> = points
            .iter()
            .map(|p| {
                let at = axial.pixel_to_lps(10, 0.0, 0.0);
                let want = |x: f64| coronal.lps_to_screen([at[0] + x, at[1] + 70.0, at[2]]);
                [20.0, 40.0, 60.0, 80.0]
                    .into_iter()
                    .find(|&x| near(*p, want(x)))
                    .expect("a crossing at an edge of the U")
            })
            .collect();
        xs.sort_by(f64::total_cmp);
        assert_eq!(xs, [20.0, 40.0, 60.0, 80.0]);
    }
}
