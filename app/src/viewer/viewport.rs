//! One viewport: the GPU slice (a paint callback with small parameters), the overlays radiologists
//! expect (edge letters, scale bar, corner text, crosshair), and PACS-style mouse input.

use eframe::egui::{self, Align2, Color32, FontId, PointerButton, Pos2, Rect, Sense, Stroke, Vec2};
use eframe::egui_wgpu;
use groundglass_study::geometry::Vec3;
use groundglass_study::{Photometric, PlaneGrid, VoiFunction, Volume, VolumeLayout};

use super::editing::{self, Drag, EditEvent, EditInput};
use super::overlay::{self, FindingOverlay};
use super::view::{scale_bar_mm, value_at, ViewState, ViewTransform};
use crate::render::{SliceCallback, SliceParams};

/// What the viewport asks of the app after handling input.
#[derive(Default)]
pub struct ViewportOutcome {
    pub hovered: bool,
    /// A new crosshair point (click, or Shift+move).
    pub crosshair: Option<Vec3>,
    /// Ctrl+drag about the crosshair: turn the other planes by this many radians (clockwise on
    /// this viewport's screen).
    pub tilt: Option<f64>,
    /// Cursor readout: patient position and value.
    pub readout: Option<(Vec3, Option<f64>)>,
    /// The finding under the pointer, and one clicked.
    pub hovered_finding: Option<usize>,
    pub clicked_finding: Option<usize>,
    /// A finished editing gesture.
    pub edit: Option<EditEvent>,
}

pub struct ViewportInput<'a> {
    pub id: usize,
    /// The volume it shows: the series on screen, or the one compared with it.
    pub slot: crate::render::VolumeSlot,
    pub layout: &'a VolumeLayout,
    pub volume: Option<&'a Volume>,
    pub grid: PlaneGrid,
    pub view: &'a mut ViewState,
    pub crosshair: Option<Crosshair>,
    pub corner_text: CornerText,
    pub wheel_accum: &'a mut f32,
    /// Grounded findings to draw (boxes, or lines where they cross this slice).
    pub findings: &'a [FindingOverlay],
    /// Hand-drawn measurements (drawn where their slice is shown).
    pub measurements: &'a [super::measurements::MeasurementOverlay],
    /// Opacity of the mask labels (0 hides them).
    pub mask_opacity: f32,
    /// The editing tools, on the viewport the model is asked about.
    pub edit: Option<EditInput>,
    pub drag: &'a mut Option<Drag>,
}

/// The crosshair of the three-plane layout: the point the planes meet at, and the normals of the
/// two other planes (whose lines cross this one there).
#[derive(Clone, Copy, Debug)]
pub struct Crosshair {
    pub point: Vec3,
    pub others: [Vec3; 2],
}

/// Text for the corners, prepared by the app.
#[derive(Clone, Default)]
pub struct CornerText {
    pub top_left: String,
    pub top_right: String,
}

pub fn show(ui: &mut egui::Ui, rect: Rect, input: ViewportInput<'_>) -> ViewportOutcome {
    let ViewportInput {
        id,
        slot,
        layout,
        volume,
        grid,
        view,
        crosshair,
        corner_text,
        wheel_accum,
        findings,
        measurements,
        mask_opacity,
        edit,
        drag,
    } = input;
    let response = ui.interact(
        rect,
        ui.scope_id().with(("viewport", id)),
        Sense::click_and_drag(),
    );
    let mut outcome = ViewportOutcome {
        hovered: response.hovered(),
        ..Default::default()
    };
    let size = [f64::from(rect.width()), f64::from(rect.height())];

    let painter = ui.painter_at(rect);
    // The editing tools get the primary drag first; otherwise it windows as in any PACS.
    let (tool_drag, edit_event) = match &edit {
        Some(input) => {
            let t = ViewTransform::new(grid, view, size);
            let tool_painter = ui.painter_at(rect).with_layer_id(egui::LayerId::new(
                egui::Order::Foreground,
                ui.scope_id().with(("edit", id)),
            ));
            editing::interact(ui, &response, &tool_painter, &t, input, drag)
        }
        None => (false, None),
    };
    outcome.edit = edit_event;
    let local = |p: Pos2| [f64::from(p.x - rect.min.x), f64::from(p.y - rect.min.y)];
    // Ctrl+drag in the three-plane layout turns the crosshair (and the other planes) about its
    // centre, as in Slicer; plain left-drag still windows.
    let tilting = crosshair.is_some()
        && !tool_drag
        && response.dragged_by(PointerButton::Primary)
        && ui.input(|i| i.modifiers.command);
    if let (true, Some(c), Some(pos)) = (tilting, crosshair, response.interact_pointer_pos()) {
        let centre = ViewTransform::new(grid, view, size).lps_to_screen(c.point);
        let now = local(pos);
        let delta = response.drag_delta();
        let before = [now[0] - f64::from(delta.x), now[1] - f64::from(delta.y)];
        outcome.tilt = turn_angle(centre, before, now);
    }
    handle_mouse(
        ui,
        &response,
        view,
        &grid,
        size,
        wheel_accum,
        tool_drag || tilting,
    );
    let transform = ViewTransform::new(grid, view, size);

    if let Some(pos) = response.hover_pos() {
        let lps = transform.screen_to_lps(local(pos));
        outcome.readout = Some((lps, volume.and_then(|v| value_at(v, lps))));
        if ui.input(|i| i.modifiers.shift) {
            outcome.crosshair = Some(lps);
        }
    }
    if response.clicked_by(PointerButton::Primary) && !tool_drag && !tilting {
        if let Some(pos) = response.interact_pointer_pos() {
            outcome.crosshair = Some(transform.screen_to_lps(local(pos)));
        }
    }

    // The slice's own pass covers the viewport (black outside the volume); a fill under it only
    // cost a software adapter a tenth of a frame.
    let mut drawn = false;
    if let Some(mut matrix) = transform.screen_to_voxel(layout) {
        let slab = view.slab_samples(&grid);
        let exact = super::view::whole_voxel_axis(&mut matrix, slab.is_some());
        let (slope, intercept) = match &layout.modality {
            groundglass_study::ModalityTransform::Rescale(r) => {
                (r.slope as f32, r.intercept as f32)
            }
            // LUT volumes are uploaded already mapped.
            groundglass_study::ModalityTransform::Lut(_) => (1.0, 0.0),
        };
        let invert = (layout.photometric == Photometric::Monochrome1) != view.invert;
        let params = SliceParams {
            screen_to_voxel: matrix,
            rect_size: [rect.width(), rect.height(), 0.0, 0.0],
            dims: [
                layout.dims[0] as f32,
                layout.dims[1] as f32,
                layout.dims[2] as f32,
                0.0,
            ],
            window: [
                view.window.center as f32,
                view.window.width as f32,
                slope,
                intercept,
            ],
            flags: [
                f32::from(u8::from(invert)),
                f32::from(u8::from(layout.photometric == Photometric::Rgb)),
                match layout.voi_function {
                    VoiFunction::Linear => 0.0,
                    VoiFunction::LinearExact => 1.0,
                    VoiFunction::Sigmoid => 2.0,
                },
                mask_opacity,
            ],
            slab: {
                let [first, n, code] = slab.unwrap_or([0.0; 3]);
                [first, n, code, exact.map_or(-1.0, |a| a as f32)]
            },
        };
        drawn = true;
        painter.add(egui_wgpu::Callback::new_paint_callback(
            rect,
            SliceCallback {
                viewport: id,
                slot,
                params,
            },
        ));
    }

    if !drawn {
        painter.rect_filled(rect, 0.0, Color32::BLACK);
    }
    draw_overlays(&painter, rect, &transform, view, crosshair, &corner_text);
    outcome.hovered_finding =
        overlay::draw(&painter, rect, &transform, findings, response.hover_pos());
    super::measurements::draw(&painter, rect, &transform, measurements);
    if response.clicked_by(PointerButton::Primary) && !tool_drag {
        outcome.clicked_finding = outcome.hovered_finding;
    }
    outcome
}

/// The angle (radians, clockwise on screen) the pointer turned about `centre` moving from `before`
/// to `now`; `None` too close to the centre to tell a direction.
pub fn turn_angle(centre: [f64; 2], before: [f64; 2], now: [f64; 2]) -> Option<f64> {
    let rel = |p: [f64; 2]| [p[0] - centre[0], p[1] - centre[1]];
    let (a, b) = (rel(before), rel(now));
    if a[0].hypot(a[1]) < 4.0 || b[0].hypot(b[1]) < 4.0 {
        return None;
    }
    let mut angle = b[1].atan2(b[0]) - a[1].atan2(a[0]);
    // Across the atan2 seam.
    if angle > std::f64::consts::PI {
        angle -= std::f64::consts::TAU;
    } else if angle < -std::f64::consts::PI {
        angle += std::f64::consts::TAU;
    }
    (angle != 0.0).then_some(angle)
}

fn handle_mouse(
    ui: &egui::Ui,
    response: &egui::Response,
    view: &mut ViewState,
    grid: &PlaneGrid,
    size: [f64; 2],
    wheel_accum: &mut f32,
    // The primary drag is taken (an editing tool, or tilting).
    primary_taken: bool,
) {
    if response.hovered() {
        // Stack scroll: one slice per wheel notch (line), or per 50 points of smooth scrolling.
        let steps = ui.input(|i| {
            let mut steps = 0i64;
            for e in &i.events {
                if let egui::Event::MouseWheel { unit, delta, .. } = e {
                    match unit {
                        egui::MouseWheelUnit::Line => *wheel_accum += delta.y,
                        egui::MouseWheelUnit::Point => *wheel_accum += delta.y / 50.0,
                        egui::MouseWheelUnit::Page => *wheel_accum += delta.y * 10.0,
                    }
                }
            }
            while *wheel_accum >= 1.0 {
                *wheel_accum -= 1.0;
                steps -= 1;
            }
            while *wheel_accum <= -1.0 {
                *wheel_accum += 1.0;
                steps += 1;
            }
            steps
        });
        if steps != 0 {
            view.scroll(steps, grid.count);
        }
    }
    let delta = response.drag_delta();
    if delta == Vec2::ZERO {
        return;
    }
    let transform = ViewTransform::new(*grid, view, size);
    if response.dragged_by(PointerButton::Primary)
        && !ui.input(|i| i.modifiers.shift)
        && !primary_taken
    {
        view.drag_window(f64::from(delta.x), f64::from(delta.y));
    } else if response.dragged_by(PointerButton::Middle) {
        // Pan: the image follows the pointer.
        let before = transform.screen_to_px([0.0, 0.0]);
        let after = transform.screen_to_px([f64::from(-delta.x), f64::from(-delta.y)]);
        view.center_px = Some([
            transform.center_px[0] + after[0] - before[0],
            transform.center_px[1] + after[1] - before[1],
        ]);
        view.zoom = Some(transform.zoom);
    } else if response.dragged_by(PointerButton::Secondary) {
        // Zoom: drag up to enlarge.
        let factor = (-f64::from(delta.y) * 0.01).exp();
        view.zoom = Some((transform.zoom * factor).clamp(0.01, 200.0));
        view.center_px = Some(transform.center_px);
    }
}

/// Lines of corner text from `anchor` (stacked down for a top corner, up for a bottom one), each
/// cut to `max_width` with an ellipsis.
fn corner_lines(
    painter: &egui::Painter,
    anchor: Pos2,
    align: Align2,
    text: &str,
    max_width: f32,
    font: &FontId,
    color: Color32,
) {
    let galleys: Vec<_> = text
        .lines()
        .map(|line| {
            let mut job =
                egui::text::LayoutJob::simple_singleline(line.to_string(), font.clone(), color);
            job.wrap = egui::text::TextWrapping::truncate_at_width(max_width.max(1.0));
            painter.layout_job(job)
        })
        .collect();
    let bottom = align.y() == egui::Align::Max;
    let mut y = anchor.y;
    let ordered: Box<dyn Iterator<Item = _>> = if bottom {
        Box::new(galleys.into_iter().rev())
    } else {
        Box::new(galleys.into_iter())
    };
    for galley in ordered {
        let size = galley.size();
        let x = if align.x() == egui::Align::Max {
            anchor.x - size.x
        } else {
            anchor.x
        };
        let top = if bottom { y - size.y } else { y };
        y = if bottom { y - size.y } else { y + size.y };
        painter.galley(Pos2::new(x, top), galley, color);
    }
}

fn draw_overlays(
    painter: &egui::Painter,
    rect: Rect,
    t: &ViewTransform,
    view: &ViewState,
    crosshair: Option<Crosshair>,
    corner: &CornerText,
) {
    let font = FontId::proportional(14.0);
    let text = Color32::from_rgb(230, 230, 160);
    let letters = t.letters();
    let m = 6.0;
    painter.text(
        Pos2::new(rect.center().x, rect.min.y + m),
        Align2::CENTER_TOP,
        &letters.top,
        font.clone(),
        text,
    );
    painter.text(
        Pos2::new(rect.center().x, rect.max.y - m),
        Align2::CENTER_BOTTOM,
        &letters.bottom,
        font.clone(),
        text,
    );
    painter.text(
        Pos2::new(rect.min.x + m, rect.center().y),
        Align2::LEFT_CENTER,
        &letters.left,
        font.clone(),
        text,
    );
    painter.text(
        Pos2::new(rect.max.x - m, rect.center().y),
        Align2::RIGHT_CENTER,
        &letters.right,
        font.clone(),
        text,
    );

    // Each corner gets the width beside the edge letter in its half (and, bottom right, the scale
    // bar); longer lines end in an ellipsis instead of running into their neighbours.
    let small = FontId::monospace(12.0);
    let letter_width = |s: &str| {
        painter
            .layout_no_wrap(s.to_string(), font.clone(), text)
            .size()
            .x
    };
    let beside =
        |letter: &str| (rect.width() / 2.0 - letter_width(letter) / 2.0 - 2.0 * m).max(0.0);
    let top_width = beside(&letters.top);
    corner_lines(
        painter,
        rect.min + Vec2::new(m, m),
        Align2::LEFT_TOP,
        &corner.top_left,
        top_width,
        &small,
        text,
    );
    corner_lines(
        painter,
        Pos2::new(rect.max.x - m, rect.min.y + m),
        Align2::RIGHT_TOP,
        &corner.top_right,
        top_width,
        &small,
        text,
    );
    let position = dot_position(t);
    let slab = if view.slab_samples(&t.grid).is_some() {
        format!("  {} {:.0} mm", view.projection.label(), view.slab_mm)
    } else {
        String::new()
    };
    let bottom_left = format!(
        // Short lines: in the narrow viewports of the 1x3 layout a long one is cut.
        "{}{} {}/{}\n{:+.1} mm{slab}\nW {:.0} L {:.0}{}\nzoom {:.2}",
        if view.is_tilted() { "oblique " } else { "" },
        t.grid.plane.name(),
        t.index + 1,
        t.grid.count,
        position,
        view.window.width,
        view.window.center,
        if view.invert { "  inverted" } else { "" },
        t.zoom
    );
    // Scale bar, bottom right.
    let mm = scale_bar_mm(t.zoom, f64::from(rect.width()));
    let len = (mm * t.zoom) as f32;
    corner_lines(
        painter,
        Pos2::new(rect.min.x + m, rect.max.y - m),
        Align2::LEFT_BOTTOM,
        &bottom_left,
        beside(&letters.bottom).min(rect.width() - len - 12.0 - 3.0 * m),
        &small,
        text,
    );
    let y = rect.max.y - 24.0;
    let x1 = rect.max.x - 12.0;
    let stroke = Stroke::new(2.0, text);
    painter.line_segment([Pos2::new(x1 - len, y), Pos2::new(x1, y)], stroke);
    for x in [x1 - len, x1] {
        painter.line_segment([Pos2::new(x, y - 4.0), Pos2::new(x, y + 4.0)], stroke);
    }
    painter.text(
        Pos2::new(x1 - len / 2.0, y - 6.0),
        Align2::CENTER_BOTTOM,
        format!("{mm:.0} mm"),
        small,
        text,
    );

    if let Some(c) = crosshair {
        draw_crosshair(painter, rect, t, c);
    }
}

/// The lines where the two other planes cut this one, through the crosshair point: horizontal
/// and vertical until the planes are tilted, then turned with them.
fn draw_crosshair(painter: &egui::Painter, rect: Rect, t: &ViewTransform, c: Crosshair) {
    use groundglass_study::geometry::{add, cross, normalize, scale};
    let at = |p: [f64; 2]| Pos2::new(rect.min.x + p[0] as f32, rect.min.y + p[1] as f32);
    let centre = t.lps_to_screen(c.point);
    let stroke = Stroke::new(1.0, Color32::from_rgba_unmultiplied(80, 200, 255, 160));
    let reach = f64::from(rect.width().hypot(rect.height()));
    for other in c.others {
        // Parallel planes (none, while the three stay perpendicular) cut no line.
        let Some(along) = normalize(cross(t.grid.normal, other)) else {
            continue;
        };
        let ahead = t.lps_to_screen(add(c.point, scale(along, 1.0)));
        let d = [ahead[0] - centre[0], ahead[1] - centre[1]];
        let len = d[0].hypot(d[1]);
        if len < 1e-9 {
            continue;
        }
        let d = [d[0] / len * reach, d[1] / len * reach];
        painter.line_segment(
            [
                at([centre[0] - d[0], centre[1] - d[1]]),
                at([centre[0] + d[0], centre[1] + d[1]]),
            ],
            stroke,
        );
    }
}

/// The slice's position along its normal (mm), for the corner text.
fn dot_position(t: &ViewTransform) -> f64 {
    groundglass_study::geometry::dot(t.grid.pixel_to_lps(t.index, 0.0, 0.0), t.grid.normal)
}

#[cfg(test)]
mod tests {
    use super::turn_angle;

    #[test]
    fn the_turn_angle_follows_the_pointer_across_the_seam() {
        let c = [100.0, 100.0];
        // From the right of the centre to below it: a quarter turn clockwise on screen (y down).
        let a = turn_angle(c, [150.0, 100.0], [100.0, 150.0]).expect("angle");
        assert!((a - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
        // Just above and just below the left-pointing seam of atan2: a small turn, not a full one.
        let b = turn_angle(c, [50.0, 99.0], [50.0, 101.0]).expect("angle");
        assert!(b < 0.0 && b > -0.05, "{b}");
        assert_eq!(
            turn_angle(c, [101.0, 100.0], [100.0, 150.0]),
            None,
            "too near the centre"
        );
    }
}
