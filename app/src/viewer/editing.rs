//! The annotator's tools on the asked viewport: move or resize the selected box (drag inside it or
//! on its edges and corners), draw a new box, paint or erase a mask with a round brush, measure a
//! length, an angle, a point's value or a region (rectangle, ellipse or freehand outline), mark a
//! region to ask the model about (a box or a point). The tools only produce events in slice pixels when a drag ends; the app turns them into
//! store entries (or, for a marked region, into the next question's mark).

use eframe::egui::{self, Color32, PointerButton, Pos2, Rect, Stroke};
use groundglass_feedback::record::{MeasureShape, MAX_FREEHAND_POINTS};
use groundglass_model::visual_prompt::VisualPrompt;

use super::view::ViewTransform;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tool {
    /// Reading: PACS mouse; the selected box can be moved and resized.
    #[default]
    Read,
    Box,
    Brush,
    Eraser,
    /// Measurements: drag from one end (corner) to the other; an angle's first arm is dragged
    /// and its second placed with a click; a freehand outline is drawn while the button is held
    /// (released, it closes); a point value is a click.
    Measure(MeasureShape),
    /// A region to ask the model about: drag a box, or click a point.
    Region,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Read => "Read / move",
            Tool::Box => "Draw box (b)",
            Tool::Brush => "Brush (p)",
            Tool::Eraser => "Eraser (e)",
            Tool::Measure(MeasureShape::Line) => "Length (l)",
            Tool::Measure(MeasureShape::Rectangle) => "Rectangle ROI (o)",
            Tool::Measure(MeasureShape::Ellipse) => "Ellipse ROI (c)",
            Tool::Measure(MeasureShape::Angle) => "Angle (g)",
            Tool::Measure(MeasureShape::Freehand) => "Freehand ROI (d)",
            Tool::Measure(MeasureShape::Point) => "Point value (u)",
            Tool::Region => "Mark a region to ask about (q)",
        }
    }
}

/// Which part of a box a drag holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handle {
    Move,
    Left,
    Right,
    Top,
    Bottom,
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

/// What of a measurement a drag holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grip {
    /// One of its points.
    Point(usize),
    /// All of it (a freehand outline, by the grip at its centre).
    Whole,
    /// A freehand outline's vertex, held anywhere on the outline: it goes with the pointer and
    /// drags its neighbours along, less the farther along the outline they are (see
    /// [`sculpt_reach`]), so that a pixel-dense outline is reshaped, not torn.
    Sculpt(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Drag {
    /// A new box from `start` to `now` (slice pixel edges).
    Draw { start: [f64; 2], now: [f64; 2] },
    /// A region to ask about, from `start` to `now` (slice pixel edges).
    Region { start: [f64; 2], now: [f64; 2] },
    /// A brush stroke through these pixel centres.
    Stroke { points: Vec<[f64; 2]>, erase: bool },
    /// Point `which` of measurement `id` held (for a freehand outline: `Grip::Whole`, its centre
    /// grip, which moves it all, or `Grip::Sculpt`, a vertex), its points when the drag began
    /// (pixel centres) and where the pointer is now (pixel edges).
    MeasureHandle {
        id: String,
        shape: MeasureShape,
        grip: Grip,
        points: Vec<[f64; 2]>,
        start: [f64; 2],
        now: [f64; 2],
    },
    /// An angle whose first arm (`first` to the vertex, pixel centres) is drawn: its second arm
    /// follows the pointer (`now`, pixel edges) until a click places it.
    AngleArm {
        first: [f64; 2],
        vertex: [f64; 2],
        now: [f64; 2],
    },
    /// A freehand outline being drawn through these pixel centres.
    Outline { points: Vec<[f64; 2]> },
    /// A measurement from `start` to `now` (slice pixel edges, as `Draw`).
    Measure {
        shape: MeasureShape,
        start: [f64; 2],
        now: [f64; 2],
    },
    /// The selected box held by `handle`.
    Handle {
        handle: Handle,
        start_box: [f64; 4],
        start: [f64; 2],
        now: [f64; 2],
    },
}

/// What the tools need from the app, for the asked viewport.
#[derive(Clone, Debug)]
pub struct EditInput {
    pub tool: Tool,
    /// The selected annotation's box when it lies on this slice (slice pixel edges).
    pub selected_box: Option<[f64; 4]>,
    pub brush_radius_px: f64,
    pub colour: Color32,
    /// The measurements on this slice: id, shape and points (slice pixel centres), whose points
    /// the reading tool can drag.
    pub measurements: Vec<(String, MeasureShape, Vec<[f64; 2]>)>,
    /// The region marked on this slice for a question (fractions of the slice).
    pub region: Option<VisualPrompt>,
}

/// A finished gesture, in slice pixels.
#[derive(Clone, Debug, PartialEq)]
pub enum EditEvent {
    AddBox([f64; 4]),
    MoveBox([f64; 4]),
    Stroke {
        points: Vec<[f64; 2]>,
        erase: bool,
    },
    /// A measurement's points (slice pixel centres), as the store keeps them.
    Measure {
        shape: MeasureShape,
        points: Vec<[f64; 2]>,
    },
    /// Measurement `id`'s points after one (or, for an outline, all) was dragged.
    MoveMeasurement {
        id: String,
        points: Vec<[f64; 2]>,
    },
    /// A region marked to ask about (fractions of the slice).
    Region(VisualPrompt),
}

/// The tool state the app keeps between frames.
#[derive(Clone, Debug)]
pub struct EditState {
    pub tool: Tool,
    /// Class for new boxes and brush strokes (RadGrounder id).
    pub class_id: u32,
    pub brush_radius_px: f64,
    pub drag: Option<Drag>,
    /// The class picker's search text and the keyword being edited.
    pub filter: String,
    pub keyword: String,
    /// The reviewer name edited in the panel (the app keeps it in settings).
    pub reviewer: String,
    /// The PACS server (index in the settings) the panel sends the SEG and SR to.
    pub send_to: usize,
}

impl Default for EditState {
    fn default() -> Self {
        EditState {
            tool: Tool::Read,
            class_id: 5,
            brush_radius_px: 4.0,
            drag: None,
            filter: String::new(),
            keyword: String::new(),
            reviewer: String::new(),
            send_to: 0,
        }
    }
}

impl EditState {
    pub fn change_brush(&mut self, delta: f64) {
        self.brush_radius_px = (self.brush_radius_px + delta).clamp(0.5, 64.0);
    }
}

/// The mark a region gesture makes: a box where it spans two pixels each way, else a point where
/// it began (fractions of the slice).
fn region_mark(t: &ViewTransform, start: [f64; 2], now: [f64; 2]) -> VisualPrompt {
    let (w, h) = (t.grid.width.max(1) as f64, t.grid.height.max(1) as f64);
    let f = |e: [f64; 2]| [(e[0] / w).clamp(0.0, 1.0), (e[1] / h).clamp(0.0, 1.0)];
    let (a, b) = (f(start), f(now));
    if (now[0] - start[0]).abs() >= 2.0 && (now[1] - start[1]).abs() >= 2.0 {
        VisualPrompt::Box {
            rect: [
                a[0].min(b[0]),
                a[1].min(b[1]),
                a[0].max(b[0]),
                a[1].max(b[1]),
            ],
        }
    } else {
        VisualPrompt::Point { at: a }
    }
}

/// The marked region in the colour the model sees it in (yellow), over the slice.
fn draw_region(painter: &egui::Painter, t: &ViewTransform, rect: Rect, mark: &VisualPrompt) {
    let (w, h) = (t.grid.width as f64, t.grid.height as f64);
    let at = |f: [f64; 2]| to_screen(t, rect, [f[0] * w, f[1] * h]);
    let stroke = Stroke::new(2.0, REGION_COLOUR);
    match mark {
        VisualPrompt::Box { rect: r } => {
            painter.rect_stroke(
                Rect::from_two_pos(at([r[0], r[1]]), at([r[2], r[3]])),
                0.0,
                stroke,
                egui::StrokeKind::Middle,
            );
        }
        VisualPrompt::Point { at: p } | VisualPrompt::Label { at: p } => {
            painter.circle_filled(at(*p), 4.0, REGION_COLOUR);
        }
        VisualPrompt::Arrow { tip } => {
            let p = at(*tip);
            painter.arrow(p - egui::vec2(24.0, 24.0), egui::vec2(24.0, 24.0), stroke);
        }
        VisualPrompt::Mask {
            width,
            height,
            inside,
        } => {
            // The painted mask is on screen already (the label overlay): its bounds say which
            // one the question is about.
            let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
            for (i, _) in inside.iter().enumerate().filter(|(_, p)| **p) {
                let (x, y) = (i % width.max(&1), i / width.max(&1));
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            }
            if x0 < x1 {
                let (fw, fh) = (*width as f64, *height as f64);
                painter.rect_stroke(
                    Rect::from_two_pos(
                        at([x0 as f64 / fw, y0 as f64 / fh]),
                        at([x1 as f64 / fw, y1 as f64 / fh]),
                    ),
                    2.0,
                    Stroke::new(1.0, REGION_COLOUR),
                    egui::StrokeKind::Outside,
                );
            }
        }
    }
}

/// Yellow: the colour the mark is burned into the model's input in.
pub const REGION_COLOUR: Color32 = Color32::from_rgb(255, 230, 0);

/// Screen point (absolute) to slice pixel edge coordinates.
fn to_edges(t: &ViewTransform, rect: Rect, p: Pos2) -> [f64; 2] {
    let c = t.screen_to_px([f64::from(p.x - rect.min.x), f64::from(p.y - rect.min.y)]);
    [c[0] + 0.5, c[1] + 0.5]
}

fn to_screen(t: &ViewTransform, rect: Rect, e: [f64; 2]) -> Pos2 {
    let s = t.px_to_screen([e[0] - 0.5, e[1] - 0.5]);
    Pos2::new(rect.min.x + s[0] as f32, rect.min.y + s[1] as f32)
}

fn screen_rect(t: &ViewTransform, rect: Rect, b: [f64; 4]) -> Rect {
    Rect::from_two_pos(
        to_screen(t, rect, [b[0], b[1]]),
        to_screen(t, rect, [b[2], b[3]]),
    )
}

/// The handle of `b` under the pointer `p` (screen), within `grip` points of an edge.
pub fn handle_at(screen: Rect, p: Pos2, grip: f32) -> Option<Handle> {
    if !screen.expand(grip).contains(p) {
        return None;
    }
    let near = |a: f32, b: f32| (a - b).abs() <= grip;
    let (l, r) = (near(p.x, screen.min.x), near(p.x, screen.max.x));
    let (t, b) = (near(p.y, screen.min.y), near(p.y, screen.max.y));
    Some(match (l, r, t, b) {
        (true, _, true, _) => Handle::TopLeft,
        (_, true, true, _) => Handle::TopRight,
        (true, _, _, true) => Handle::BottomLeft,
        (_, true, _, true) => Handle::BottomRight,
        (true, ..) => Handle::Left,
        (_, true, ..) => Handle::Right,
        (_, _, true, _) => Handle::Top,
        (.., true) => Handle::Bottom,
        _ => Handle::Move,
    })
}

/// The box after dragging `handle` by `d` (slice pixels).
pub fn dragged(b: [f64; 4], handle: Handle, d: [f64; 2]) -> [f64; 4] {
    let [mut x0, mut y0, mut x1, mut y1] = b;
    match handle {
        Handle::Move => {
            x0 += d[0];
            x1 += d[0];
            y0 += d[1];
            y1 += d[1];
        }
        Handle::Left => x0 += d[0],
        Handle::Right => x1 += d[0],
        Handle::Top => y0 += d[1],
        Handle::Bottom => y1 += d[1],
        Handle::TopLeft => {
            x0 += d[0];
            y0 += d[1];
        }
        Handle::TopRight => {
            x1 += d[0];
            y0 += d[1];
        }
        Handle::BottomLeft => {
            x0 += d[0];
            y1 += d[1];
        }
        Handle::BottomRight => {
            x1 += d[0];
            y1 += d[1];
        }
    }
    [x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)]
}

/// Handles the tools' mouse input on the asked viewport and draws their previews. Returns whether
/// the primary drag belongs to a tool (so it does not window), and a finished gesture.
pub fn interact(
    ui: &egui::Ui,
    response: &egui::Response,
    painter: &egui::Painter,
    t: &ViewTransform,
    input: &EditInput,
    drag: &mut Option<Drag>,
) -> (bool, Option<EditEvent>) {
    let rect = response.rect;
    let pointer = response.hover_pos();
    let mut event = None;
    let primary_down = ui.input(|i| i.pointer.primary_down());
    let shift = ui.input(|i| i.modifiers.shift);

    // Start a gesture.
    if drag.is_none() && response.drag_started_by(PointerButton::Primary) && !shift {
        if let Some(origin) = ui.input(|i| i.pointer.press_origin()) {
            let at = to_edges(t, rect, origin);
            *drag = match input.tool {
                Tool::Box => Some(Drag::Draw { start: at, now: at }),
                Tool::Region => Some(Drag::Region { start: at, now: at }),
                Tool::Brush | Tool::Eraser => Some(Drag::Stroke {
                    points: vec![centre(at)],
                    erase: input.tool == Tool::Eraser,
                }),
                Tool::Measure(MeasureShape::Freehand) => Some(Drag::Outline {
                    points: vec![centre(at)],
                }),
                Tool::Measure(shape) => Some(Drag::Measure {
                    shape,
                    start: at,
                    now: at,
                }),
                Tool::Read => input
                    .selected_box
                    .and_then(|b| {
                        handle_at(screen_rect(t, rect, b), origin, 6.0).map(|handle| Drag::Handle {
                            handle,
                            start_box: b,
                            start: at,
                            now: at,
                        })
                    })
                    .or_else(|| measurement_handle(t, rect, &input.measurements, origin, at)),
            };
        }
    }
    // Follow it.
    if let (Some(d), Some(p)) = (
        drag.as_mut(),
        pointer.or_else(|| ui.input(|i| i.pointer.latest_pos())),
    ) {
        let at = to_edges(t, rect, p);
        match d {
            Drag::Draw { now, .. }
            | Drag::Region { now, .. }
            | Drag::Handle { now, .. }
            | Drag::Measure { now, .. }
            | Drag::MeasureHandle { now, .. }
            | Drag::AngleArm { now, .. } => *now = at,
            Drag::Stroke { points, .. } => {
                let c = centre(at);
                if points
                    .last()
                    .is_none_or(|l| (l[0] - c[0]).hypot(l[1] - c[1]) >= 0.5)
                {
                    points.push(c);
                }
            }
            Drag::Outline { points } => {
                // A vertex a pixel apart at most as many as the store keeps; a longer trace
                // keeps its last stretch straight rather than growing without end.
                let c = centre(at);
                if points
                    .last()
                    .is_none_or(|l| (l[0] - c[0]).hypot(l[1] - c[1]) >= 1.0)
                {
                    if points.len() >= MAX_FREEHAND_POINTS {
                        points.pop();
                    }
                    points.push(c);
                }
            }
        }
    }
    // Finish it (a pending angle waits for its click).
    let pending_angle = matches!(drag, Some(Drag::AngleArm { .. }));
    if drag.is_some() && !primary_down && !pending_angle {
        event = match drag.take() {
            Some(Drag::Draw { start, now }) => {
                let b = [
                    start[0].min(now[0]),
                    start[1].min(now[1]),
                    start[0].max(now[0]),
                    start[1].max(now[1]),
                ];
                // A click is not a box.
                ((b[2] - b[0]) >= 1.0 && (b[3] - b[1]) >= 1.0).then_some(EditEvent::AddBox(b))
            }
            Some(Drag::Region { start, now }) => {
                Some(EditEvent::Region(region_mark(t, start, now)))
            }
            Some(Drag::Stroke { points, erase }) => Some(EditEvent::Stroke { points, erase }),
            Some(Drag::MeasureHandle {
                id,
                grip,
                points,
                start,
                now,
                ..
            }) => {
                let moved = moved_points(&points, grip, start, now);
                (moved != points).then_some(EditEvent::MoveMeasurement { id, points: moved })
            }
            Some(Drag::Measure { shape, start, now }) => {
                let (dx, dy) = ((now[0] - start[0]).abs(), (now[1] - start[1]).abs());
                match shape {
                    // The first arm drawn, the second follows the pointer until a click.
                    MeasureShape::Angle if dx.hypot(dy) >= 1.0 => {
                        *drag = Some(Drag::AngleArm {
                            first: centre(start),
                            vertex: centre(now),
                            now,
                        });
                        None
                    }
                    MeasureShape::Point => Some(EditEvent::Measure {
                        shape,
                        points: vec![centre(now)],
                    }),
                    // A click measures nothing: a line needs a pixel of length, a region one
                    // each way.
                    MeasureShape::Line if dx.hypot(dy) >= 1.0 => Some(EditEvent::Measure {
                        shape,
                        points: vec![centre(start), centre(now)],
                    }),
                    MeasureShape::Rectangle | MeasureShape::Ellipse if dx >= 1.0 && dy >= 1.0 => {
                        Some(EditEvent::Measure {
                            shape,
                            points: vec![centre(start), centre(now)],
                        })
                    }
                    _ => None,
                }
            }
            Some(Drag::Outline { points }) => {
                // An outline encloses something: three vertices and a pixel of area.
                (points.len() >= 3 && polygon_area(&points) >= 1.0).then_some(EditEvent::Measure {
                    shape: MeasureShape::Freehand,
                    points,
                })
            }
            Some(pending @ Drag::AngleArm { .. }) => {
                *drag = Some(pending);
                None
            }
            Some(Drag::Handle {
                handle,
                start_box,
                start,
                now,
            }) => {
                let b = dragged(start_box, handle, [now[0] - start[0], now[1] - start[1]]);
                (b != start_box).then_some(EditEvent::MoveBox(b))
            }
            None => None,
        };
    }

    // A click with the region tool marks a point; with the point tool it measures one; with
    // the angle tool, while its first arm is drawn, it places the second.
    // (A press that moves before its release places the second arm too.)
    let placing_arm = matches!(drag, Some(Drag::AngleArm { .. }))
        && response.drag_stopped_by(PointerButton::Primary);
    let click = (response.clicked_by(PointerButton::Primary) || placing_arm)
        .then(|| response.interact_pointer_pos())
        .flatten()
        .map(|p| to_edges(t, rect, p));
    if let (None, Some(at)) = (&event, click) {
        match (input.tool, drag.as_ref()) {
            (Tool::Region, None) => event = Some(EditEvent::Region(region_mark(t, at, at))),
            (Tool::Measure(MeasureShape::Point), None) => {
                event = Some(EditEvent::Measure {
                    shape: MeasureShape::Point,
                    points: vec![centre(at)],
                })
            }
            (_, Some(Drag::AngleArm { first, vertex, .. })) => {
                let second = centre(at);
                let arm = (second[0] - vertex[0]).hypot(second[1] - vertex[1]);
                // A click on the vertex itself measures nothing; the arm stays to be placed.
                if arm >= 1.0 {
                    event = Some(EditEvent::Measure {
                        shape: MeasureShape::Angle,
                        points: vec![*first, *vertex, second],
                    });
                    *drag = None;
                }
            }
            _ => {}
        }
    }
    // Another tool, or Escape, drops a half-drawn angle.
    if matches!(drag, Some(Drag::AngleArm { .. }))
        && input.tool != Tool::Measure(MeasureShape::Angle)
    {
        *drag = None;
    }

    // Previews.
    let stroke = Stroke::new(2.0, input.colour);
    if let Some(region) = &input.region {
        draw_region(painter, t, rect, region);
    }
    match drag.as_ref() {
        Some(Drag::Region { start, now }) => {
            draw_region(painter, t, rect, &region_mark(t, *start, *now));
        }
        Some(Drag::Draw { start, now }) => {
            painter.rect_stroke(
                Rect::from_two_pos(to_screen(t, rect, *start), to_screen(t, rect, *now)),
                0.0,
                stroke,
                egui::StrokeKind::Middle,
            );
        }
        Some(Drag::Handle {
            handle,
            start_box,
            start,
            now,
        }) => {
            let b = dragged(*start_box, *handle, [now[0] - start[0], now[1] - start[1]]);
            painter.rect_stroke(
                screen_rect(t, rect, b),
                0.0,
                stroke,
                egui::StrokeKind::Middle,
            );
        }
        Some(Drag::MeasureHandle {
            shape,
            grip,
            points,
            start,
            now,
            ..
        }) => {
            let moved = moved_points(points, *grip, *start, *now);
            let screen: Vec<Pos2> = moved.iter().map(|&c| pixel_to_screen(t, rect, c)).collect();
            measurement_outline(painter, *shape, &screen);
        }
        Some(Drag::Measure { shape, start, now }) => {
            let (a, b) = (to_screen(t, rect, *start), to_screen(t, rect, *now));
            let points = match shape {
                MeasureShape::Point => vec![b],
                _ => vec![a, b],
            };
            // An angle's first arm is a line until its second is placed.
            let shape = match shape {
                MeasureShape::Angle => MeasureShape::Line,
                s => *s,
            };
            measurement_outline(painter, shape, &points);
        }
        Some(Drag::AngleArm { first, vertex, now }) => {
            let points = [
                pixel_to_screen(t, rect, *first),
                pixel_to_screen(t, rect, *vertex),
                to_screen(t, rect, *now),
            ];
            measurement_outline(painter, MeasureShape::Angle, &points);
        }
        Some(Drag::Outline { points }) => {
            let screen: Vec<Pos2> = points
                .iter()
                .map(|&c| pixel_to_screen(t, rect, c))
                .collect();
            painter.add(egui::Shape::line(screen, Stroke::new(2.0, MEASURE_COLOUR)));
        }
        Some(Drag::Stroke { points, erase }) => {
            let r = (input.brush_radius_px * t.zoom * t.grid.spacing[0]) as f32;
            let colour = if *erase {
                Color32::from_white_alpha(90)
            } else {
                input.colour.gamma_multiply(0.6)
            };
            for p in points {
                painter.circle_filled(to_screen(t, rect, [p[0] + 0.5, p[1] + 0.5]), r, colour);
            }
        }
        None => {}
    }
    if matches!(input.tool, Tool::Brush | Tool::Eraser) {
        if let Some(p) = pointer {
            let r = (input.brush_radius_px * t.zoom * t.grid.spacing[0]) as f32;
            painter.circle_stroke(p, r, Stroke::new(1.0, Color32::WHITE));
        }
    }
    if let (Tool::Read, None) = (input.tool, drag.as_ref()) {
        // Grips on the measurements' points (an outline's one, at its centre).
        for (_, shape, points) in &input.measurements {
            for c in grips(*shape, points) {
                let p = pixel_to_screen(t, rect, c);
                painter.rect_stroke(
                    Rect::from_center_size(p, egui::vec2(7.0, 7.0)),
                    1.0,
                    Stroke::new(1.0, MEASURE_COLOUR),
                    egui::StrokeKind::Middle,
                );
            }
        }
    }
    if let (Tool::Read, Some(b), None) = (input.tool, input.selected_box, drag.as_ref()) {
        // Grips on the selected box.
        let s = screen_rect(t, rect, b);
        for c in [
            s.left_top(),
            s.right_top(),
            s.left_bottom(),
            s.right_bottom(),
        ] {
            painter.rect_filled(
                Rect::from_center_size(c, egui::vec2(7.0, 7.0)),
                1.0,
                input.colour,
            );
        }
    }
    (drag.is_some() || event.is_some(), event)
}

/// The measurement grip under the pointer (within 6 points), as a drag of it.
fn measurement_handle(
    t: &ViewTransform,
    rect: Rect,
    measurements: &[(String, MeasureShape, Vec<[f64; 2]>)],
    origin: Pos2,
    at: [f64; 2],
) -> Option<Drag> {
    measurements.iter().find_map(|(id, shape, points)| {
        let near = |c: [f64; 2]| pixel_to_screen(t, rect, c).distance(origin) <= 6.0;
        let grip = match shape {
            MeasureShape::Freehand if near(centroid(points)) => Grip::Whole,
            MeasureShape::Freehand => {
                // The nearest vertex (they are a pixel apart: several are within reach).
                let distance = |c: [f64; 2]| pixel_to_screen(t, rect, c).distance(origin);
                let (i, _) = points
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| near(c))
                    .min_by(|a, b| distance(*a.1).total_cmp(&distance(*b.1)))?;
                Grip::Sculpt(i)
            }
            _ => Grip::Point(points.iter().position(|&c| near(c))?),
        };
        Some(Drag::MeasureHandle {
            id: id.clone(),
            shape: *shape,
            grip,
            points: points.clone(),
            start: at,
            now: at,
        })
    })
}

/// Where a measurement's grips are: on each of its points, or for a freehand outline (whose
/// vertices are a pixel apart) one at its centre that moves it all; its line, grip-less, is
/// held anywhere to reshape it (`Grip::Sculpt`).
pub fn grips(shape: MeasureShape, points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    match shape {
        MeasureShape::Freehand => vec![centroid(points)],
        _ => points.to_vec(),
    }
}

/// The mean of the vertices (pixel centres).
pub fn centroid(points: &[[f64; 2]]) -> [f64; 2] {
    let n = points.len().max(1) as f64;
    let sum = points
        .iter()
        .fold([0.0, 0.0], |s, p| [s[0] + p[0], s[1] + p[1]]);
    [sum[0] / n, sum[1] / n]
}

/// The area a closed outline encloses (shoelace formula, pixels²).
fn polygon_area(points: &[[f64; 2]]) -> f64 {
    let twice: f64 = (0..points.len())
        .map(|i| {
            let (a, b) = (points[i], points[(i + 1) % points.len()]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum();
    twice.abs() / 2.0
}

/// `points` after the drag of `grip` from `start` to `now` (pixel edges; the points are pixel
/// centres): the point held goes to the pointer, or all move by the pointer's travel.
fn moved_points(points: &[[f64; 2]], grip: Grip, start: [f64; 2], now: [f64; 2]) -> Vec<[f64; 2]> {
    let mut moved = points.to_vec();
    match grip {
        Grip::Point(i) => {
            if let Some(p) = moved.get_mut(i) {
                *p = centre(now);
            }
        }
        Grip::Whole => {
            let d = [now[0] - start[0], now[1] - start[1]];
            for p in &mut moved {
                *p = [p[0] + d[0], p[1] + d[1]];
            }
        }
        Grip::Sculpt(i) => {
            let d = [now[0] - start[0], now[1] - start[1]];
            let n = moved.len();
            let reach = sculpt_reach(n);
            for (j, p) in moved.iter_mut().enumerate() {
                // Steps along the closed outline from the vertex held, either way round.
                let along = j.abs_diff(i).min(n - j.abs_diff(i));
                if along < reach {
                    let w =
                        0.5 * (1.0 + (std::f64::consts::PI * along as f64 / reach as f64).cos());
                    *p = [p[0] + w * d[0], p[1] + w * d[1]];
                }
            }
        }
    }
    moved
}

/// How many vertices either side of the one held a sculpting drag moves (a raised cosine from
/// 1 at the vertex to 0 there): an eighth of the outline, at least 3 and at most 40 vertices
/// (pixels) each way.
pub fn sculpt_reach(vertices: usize) -> usize {
    (vertices / 8).clamp(3, 40)
}

/// A pixel edge coordinate as the pixel centre grid's coordinate (the store's points).
fn centre(e: [f64; 2]) -> [f64; 2] {
    [e[0] - 0.5, e[1] - 0.5]
}

/// A pixel centre (the store's points) on screen.
fn pixel_to_screen(t: &ViewTransform, rect: Rect, c: [f64; 2]) -> Pos2 {
    to_screen(t, rect, [c[0] + 0.5, c[1] + 0.5])
}

/// A measurement's outline through its points on screen: a line's ends, a box's corners, an
/// angle's three points (vertex second), a freehand outline's vertices (closed), a point.
pub fn measurement_outline(painter: &egui::Painter, shape: MeasureShape, points: &[Pos2]) {
    let stroke = Stroke::new(2.0, MEASURE_COLOUR);
    match (shape, points) {
        (MeasureShape::Line, &[a, b]) => {
            painter.line_segment([a, b], stroke);
        }
        (MeasureShape::Rectangle, &[a, b]) => {
            painter.rect_stroke(
                Rect::from_two_pos(a, b),
                0.0,
                stroke,
                egui::StrokeKind::Middle,
            );
        }
        (MeasureShape::Ellipse, &[a, b]) => ellipse(painter, Rect::from_two_pos(a, b), stroke),
        (MeasureShape::Angle, &[a, v, b]) => {
            painter.line_segment([a, v], stroke);
            painter.line_segment([v, b], stroke);
            // An arc at the vertex marks which angle is meant.
            let (ua, ub) = ((a - v).normalized(), (b - v).normalized());
            let r = 18.0_f32.min((a - v).length()).min((b - v).length());
            let (start, end) = (ua.y.atan2(ua.x), ub.y.atan2(ub.x));
            let mut sweep = end - start;
            if sweep > std::f32::consts::PI {
                sweep -= std::f32::consts::TAU;
            } else if sweep < -std::f32::consts::PI {
                sweep += std::f32::consts::TAU;
            }
            let arc: Vec<Pos2> = (0..=16)
                .map(|i| {
                    let angle = start + sweep * i as f32 / 16.0;
                    v + egui::vec2(angle.cos(), angle.sin()) * r
                })
                .collect();
            painter.add(egui::Shape::line(arc, Stroke::new(1.0, MEASURE_COLOUR)));
        }
        (MeasureShape::Freehand, _) => {
            painter.add(egui::Shape::closed_line(points.to_vec(), stroke));
        }
        (MeasureShape::Point, &[p]) => {
            painter.circle_stroke(p, 4.0, stroke);
            painter.line_segment([p - egui::vec2(7.0, 0.0), p + egui::vec2(7.0, 0.0)], stroke);
            painter.line_segment([p - egui::vec2(0.0, 7.0), p + egui::vec2(0.0, 7.0)], stroke);
        }
        // Points the store did not check: nothing to draw.
        _ => {}
    }
}

/// Measurements' colour: apart from the classes' palette.
pub const MEASURE_COLOUR: Color32 = Color32::from_rgb(120, 230, 255);

/// The outline of the ellipse inscribed in `r` (screen points).
pub fn ellipse(painter: &egui::Painter, r: Rect, stroke: Stroke) {
    let points: Vec<Pos2> = (0..=64)
        .map(|i| {
            let a = i as f32 / 64.0 * std::f32::consts::TAU;
            Pos2::new(
                r.center().x + r.width() / 2.0 * a.cos(),
                r.center().y + r.height() / 2.0 * a.sin(),
            )
        })
        .collect();
    painter.add(egui::Shape::line(points, stroke));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_drags() {
        let r = Rect::from_min_max(Pos2::new(10.0, 10.0), Pos2::new(110.0, 60.0));
        assert_eq!(
            handle_at(r, Pos2::new(10.0, 10.0), 4.0),
            Some(Handle::TopLeft)
        );
        assert_eq!(
            handle_at(r, Pos2::new(60.0, 60.0), 4.0),
            Some(Handle::Bottom)
        );
        assert_eq!(handle_at(r, Pos2::new(60.0, 30.0), 4.0), Some(Handle::Move));
        assert_eq!(handle_at(r, Pos2::new(200.0, 30.0), 4.0), None);
        let b = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(
            dragged(b, Handle::Move, [5.0, -5.0]),
            [15.0, 15.0, 35.0, 35.0]
        );
        assert_eq!(
            dragged(b, Handle::BottomRight, [5.0, 5.0]),
            [10.0, 20.0, 35.0, 45.0]
        );
        // Dragging an edge past the opposite one flips the box rather than inverting it.
        assert_eq!(
            dragged(b, Handle::Left, [30.0, 0.0]),
            [30.0, 20.0, 40.0, 40.0]
        );
    }

    #[test]
    fn a_sculpting_drag_moves_the_vertex_held_most_and_leaves_the_far_side() {
        // A 100-vertex circle of radius 20; vertex 0 held and pulled 10 pixels outwards (+x).
        let n = 100;
        let circle: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let a = i as f64 / n as f64 * std::f64::consts::TAU;
                [50.0 + 20.0 * a.cos(), 50.0 + 20.0 * a.sin()]
            })
            .collect();
        let moved = moved_points(&circle, Grip::Sculpt(0), [70.5, 50.5], [80.5, 50.5]);
        assert_eq!(moved.len(), n);
        let shift = |j: usize| moved[j][0] - circle[j][0];
        assert!(
            (shift(0) - 10.0).abs() < 1e-9,
            "the vertex held goes with the pointer"
        );
        let reach = sculpt_reach(n);
        assert_eq!(reach, 12);
        // Neighbours either way round, symmetric, less the farther along.
        for j in 1..reach {
            assert!((shift(j) - shift(n - j)).abs() < 1e-9);
            assert!(
                shift(j) < shift(j - 1) && shift(j) > 0.0,
                "{j}: {}",
                shift(j)
            );
        }
        for j in reach..=n - reach {
            assert_eq!(moved[j], circle[j], "vertex {j} out of reach stays");
        }
        // Tiny outlines: the reach never wraps past the vertex itself.
        let three = [[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]];
        let moved = moved_points(&three, Grip::Sculpt(1), [4.5, 0.5], [6.5, 0.5]);
        assert_eq!(moved[1], [6.0, 0.0]);
        assert!(moved[0][0] > 0.0 && moved[0][0] < 2.0);
    }
}
