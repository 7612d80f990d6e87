//! Grounded findings drawn over a viewport: on the slice they were asked on, the box with its
//! keyword; on any other slice or plane, the line where the box crosses it. Boxes are kept in
//! patient LPS, so every plane places them the same way. Masks are not drawn here: they are
//! labels in the GPU's label texture, blended by the slice shader.

use eframe::egui::{self, Align2, Color32, FontId, Pos2, Rect, Stroke};
use groundglass_study::geometry::{add, dot, scale, sub, Vec3};

use super::view::ViewTransform;

/// One finding as the viewport draws it.
#[derive(Clone, Debug)]
pub struct FindingOverlay {
    /// The annotation's id in the corrections store.
    pub id: String,
    /// Box corners in LPS: top-left, top-right, bottom-right, bottom-left.
    pub corners: [Vec3; 4],
    pub keyword: String,
    pub colour: Color32,
    pub highlighted: bool,
    /// Rejected findings are drawn dashed and dim.
    pub rejected: bool,
}

/// How a box meets the slice a view shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Footprint {
    /// The box lies in the slice: its screen corners.
    Box([[f64; 2]; 4]),
    /// The box crosses the slice along a segment (screen points).
    Line([[f64; 2]; 2]),
    None,
}

/// Where `corners` land on the slice of `t`: in-plane when every corner is within half a slice
/// spacing of it, else the segment where the box's rectangle crosses the slice plane.
pub fn footprint(t: &ViewTransform, corners: &[Vec3; 4]) -> Footprint {
    let origin = t.grid.pixel_to_lps(t.index, 0.0, 0.0);
    let n = t.grid.normal;
    let d: Vec<f64> = corners.iter().map(|c| dot(sub(*c, origin), n)).collect();
    let half = t.grid.spacing[2] / 2.0;
    if d.iter().all(|x| x.abs() <= half) {
        return Footprint::Box(corners.map(|c| t.lps_to_screen(c)));
    }
    let mut points = Vec::new();
    for i in 0..4 {
        let (a, b) = (corners[i], corners[(i + 1) % 4]);
        let (da, db) = (d[i], d[(i + 1) % 4]);
        if (da <= 0.0) != (db <= 0.0) {
            let f = da / (da - db);
            points.push(t.lps_to_screen(add(a, scale(sub(b, a), f))));
        }
    }
    match points.as_slice() {
        [p, q, ..] => Footprint::Line([*p, *q]),
        _ => Footprint::None,
    }
}

fn distance_to_segment(p: Pos2, a: Pos2, b: Pos2) -> f32 {
    let ab = b - a;
    let t = ((p - a).dot(ab) / ab.length_sq().max(1e-6)).clamp(0.0, 1.0);
    (a + ab * t).distance(p)
}

/// Draws the findings; returns the one under the pointer, if any.
pub fn draw(
    painter: &egui::Painter,
    rect: Rect,
    t: &ViewTransform,
    findings: &[FindingOverlay],
    pointer: Option<Pos2>,
) -> Option<usize> {
    let at = |p: [f64; 2]| Pos2::new(rect.min.x + p[0] as f32, rect.min.y + p[1] as f32);
    let font = FontId::proportional(13.0);
    let mut hovered = None;
    for (i, f) in findings.iter().enumerate() {
        let width = if f.highlighted { 3.0 } else { 1.5 };
        let colour = if f.rejected {
            f.colour.gamma_multiply(0.45)
        } else {
            f.colour
        };
        let stroke = Stroke::new(width, colour);
        match footprint(t, &f.corners) {
            Footprint::Box(c) => {
                let pts: Vec<Pos2> = c.iter().map(|&p| at(p)).collect();
                if f.rejected {
                    for k in 0..4 {
                        painter.extend(egui::Shape::dashed_line(
                            &[pts[k], pts[(k + 1) % 4]],
                            stroke,
                            6.0,
                            4.0,
                        ));
                    }
                } else {
                    painter.add(egui::Shape::closed_line(pts.clone(), stroke));
                }
                let screen = Rect::from_points(&pts);
                if pointer.is_some_and(|p| screen.expand(3.0).contains(p)) {
                    hovered = Some(i);
                }
                let label_at = Pos2::new(screen.min.x, screen.min.y - 2.0);
                let galley = painter.layout_no_wrap(f.keyword.clone(), font.clone(), colour);
                let bg =
                    Rect::from_min_size(label_at - egui::vec2(0.0, galley.size().y), galley.size());
                painter.rect_filled(bg.expand(1.0), 2.0, Color32::from_black_alpha(160));
                painter.galley(bg.min, galley, colour);
            }
            Footprint::Line([a, b]) => {
                let (a, b) = (at(a), at(b));
                painter.extend(egui::Shape::dashed_line(&[a, b], stroke, 8.0, 4.0));
                if pointer.is_some_and(|p| distance_to_segment(p, a, b) < 5.0) {
                    hovered = Some(i);
                }
                // Alternate ends, so labels of findings on one line do not overlap.
                let (left, right) = if a.x <= b.x { (a, b) } else { (b, a) };
                let (at_point, align) = if i % 2 == 0 {
                    (
                        Pos2::new(left.x, left.y.min(right.y) - 2.0),
                        Align2::LEFT_BOTTOM,
                    )
                } else {
                    (
                        Pos2::new(right.x, left.y.max(right.y) + 2.0),
                        Align2::RIGHT_TOP,
                    )
                };
                painter.text(at_point, align, &f.keyword, font.clone(), colour);
            }
            Footprint::None => {}
        }
    }
    hovered
}

/// Distinct colours, by class id (or by index for findings without a class); the label palette
/// uses the same list, so a mask, its box and its keyword share a colour.
pub const FINDING_COLOURS: [Color32; 16] = [
    Color32::from_rgb(255, 99, 71),
    Color32::from_rgb(80, 200, 120),
    Color32::from_rgb(70, 150, 255),
    Color32::from_rgb(255, 200, 40),
    Color32::from_rgb(200, 100, 255),
    Color32::from_rgb(0, 210, 210),
    Color32::from_rgb(255, 140, 0),
    Color32::from_rgb(255, 105, 180),
    Color32::from_rgb(160, 220, 60),
    Color32::from_rgb(140, 140, 255),
    Color32::from_rgb(230, 230, 230),
    Color32::from_rgb(190, 140, 90),
    Color32::from_rgb(255, 60, 60),
    Color32::from_rgb(60, 255, 160),
    Color32::from_rgb(255, 230, 150),
    Color32::from_rgb(120, 200, 255),
];

pub fn finding_colour(i: usize) -> Color32 {
    FINDING_COLOURS[i % FINDING_COLOURS.len()]
}

/// The colour of a class id (or of another key, such as a keyword's hash).
pub fn class_colour(class: Option<u32>, fallback: usize) -> Color32 {
    match class {
        Some(c) => finding_colour(c as usize),
        None => finding_colour(fallback),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viewer::view::ViewState;
    use groundglass_study::{Affine, Plane, PlaneGrid, Window};

    fn grid(plane: Plane) -> PlaneGrid {
        let affine = Affine::from_axes([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [0.0; 3]);
        PlaneGrid::from_geometry([100, 80, 40], &affine, plane)
    }

    fn transform(plane: Plane, index: usize) -> ViewTransform {
        let g = grid(plane);
        let mut view = ViewState::new(plane, &g, Window::new(40.0, 400.0));
        view.index = index;
        ViewTransform::new(g, &view, [200.0, 200.0])
    }

    #[test]
    fn an_axial_box_is_a_box_on_its_slice_and_a_line_on_the_others() {
        // Box on axial slice 10 (z = 20 mm): x 10..30, y 20..40.
        let z = 20.0;
        let corners = [
            [10.0, 20.0, z],
            [30.0, 20.0, z],
            [30.0, 40.0, z],
            [10.0, 40.0, z],
        ];
        assert!(matches!(
            footprint(&transform(Plane::Axial, 10), &corners),
            Footprint::Box(_)
        ));
        assert_eq!(
            footprint(&transform(Plane::Axial, 11), &corners),
            Footprint::None
        );
        // Coronal slice through y = 30 mm crosses it along x 10..30 at z = 20.
        let coronal = transform(Plane::Coronal, 30);
        let Footprint::Line([a, b]) = footprint(&coronal, &corners) else {
            panic!("expected a line");
        };
        let (pa, pb) = (coronal.screen_to_lps(a), coronal.screen_to_lps(b));
        let xs = [pa[0].min(pb[0]), pa[0].max(pb[0])];
        assert!(
            (xs[0] - 10.0).abs() < 1e-6 && (xs[1] - 30.0).abs() < 1e-6,
            "{xs:?}"
        );
        assert!((pa[2] - z).abs() < 1e-6 && (pb[2] - z).abs() < 1e-6);
        // A coronal slice outside the box's y range misses it.
        assert_eq!(
            footprint(&transform(Plane::Coronal, 60), &corners),
            Footprint::None
        );
    }
}
