//! PACS keyboard: arrows / PgUp / PgDn / Home / End move through slices, number keys pick window
//! presets (0 = the file's), `i` inverts, `h`/`v` flip, `r` resets, `f` fits, `+` / `-` thicken or
//! thin the slab by 2 mm, `m` switches its projection (MIP, MinIP, mean; a 10 mm MIP from none),
//! space starts and stops cine, `,` / `.` step through the volumes of a 4D series, `t` puts tilted
//! planes (Ctrl+drag in the three-plane layout) back on the acquisition's axes. Keys act on the
//! viewport under the pointer (the last one hovered). Corrections: `a` / `x` accept / reject the
//! selected finding, Delete removes it, `b` box tool, `p` brush, `e` eraser, `l` length, `o`
//! rectangle and `c` ellipse statistics, Esc back to
//! reading, `[` / `]` brush size, Ctrl+Z / Ctrl+Y undo / redo (returned to the caller, which owns
//! the corrections).

use eframe::egui::{self, Key};
use groundglass_study::WindowPreset;

use groundglass_feedback::record::MeasureShape;
use groundglass_feedback::Verdict;

use super::editing::Tool;
use super::ViewerApp;

/// What a key asks of the app beyond the view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    Verdict(Verdict),
    Undo,
    Redo,
    Delete,
    Tool(Tool),
    BrushSize(f64),
    /// Space: start or stop cine.
    Cine,
    /// `,` / `.`: the previous or next volume of a 4D series.
    Volume(i64),
    /// `t`: tilted planes back to the acquisition's axes.
    ResetTilt,
}

pub fn handle(app: &mut ViewerApp, ctx: &egui::Context) -> Option<Action> {
    if ctx.egui_wants_keyboard_input() {
        return None;
    }
    let mut action = None;
    let (view, layout, file_window) = app.active_view_mut()?;
    let count = view.grid(&layout).count;
    ctx.input(|i| {
        for e in &i.events {
            let egui::Event::Key {
                key,
                pressed: true,
                modifiers,
                ..
            } = e
            else {
                continue;
            };
            if modifiers.ctrl || modifiers.command {
                match key {
                    Key::Z if modifiers.shift => action = Some(Action::Redo),
                    Key::Z => action = Some(Action::Undo),
                    Key::Y => action = Some(Action::Redo),
                    _ => {}
                }
                continue;
            }
            if modifiers.alt {
                continue;
            }
            match key {
                Key::ArrowUp | Key::ArrowLeft => view.scroll(-1, count),
                Key::ArrowDown | Key::ArrowRight => view.scroll(1, count),
                Key::PageUp => view.scroll(-10, count),
                Key::PageDown => view.scroll(10, count),
                Key::Home => view.index = 0,
                Key::End => view.index = count.saturating_sub(1),
                Key::Num0 => {
                    if let Some(w) = file_window {
                        view.window = w;
                    }
                }
                Key::Num1 => view.set_preset(WindowPreset::Lung),
                Key::Num2 => view.set_preset(WindowPreset::SoftTissue),
                Key::Num3 => view.set_preset(WindowPreset::Bone),
                Key::Num4 => view.set_preset(WindowPreset::Brain),
                Key::Num5 => view.set_preset(WindowPreset::Liver),
                Key::I => view.invert = !view.invert,
                Key::H => view.flip_h = !view.flip_h,
                Key::V => view.flip_v = !view.flip_v,
                Key::R => {
                    if let Some(w) = file_window {
                        view.reset(w);
                    }
                }
                Key::Plus | Key::Equals => view.change_slab(2.0),
                Key::Minus => view.change_slab(-2.0),
                Key::M => view.next_projection(),
                Key::Space => action = Some(Action::Cine),
                Key::T => action = Some(Action::ResetTilt),
                Key::Comma => action = Some(Action::Volume(-1)),
                Key::Period => action = Some(Action::Volume(1)),
                Key::F => {
                    view.zoom = None;
                    view.center_px = None;
                }
                Key::A => action = Some(Action::Verdict(Verdict::Accepted)),
                Key::X => action = Some(Action::Verdict(Verdict::Rejected)),
                Key::Delete | Key::Backspace => action = Some(Action::Delete),
                Key::B => action = Some(Action::Tool(Tool::Box)),
                Key::P => action = Some(Action::Tool(Tool::Brush)),
                Key::E => action = Some(Action::Tool(Tool::Eraser)),
                Key::L => action = Some(Action::Tool(Tool::Measure(MeasureShape::Line))),
                Key::O => action = Some(Action::Tool(Tool::Measure(MeasureShape::Rectangle))),
                Key::C => action = Some(Action::Tool(Tool::Measure(MeasureShape::Ellipse))),
                Key::G => action = Some(Action::Tool(Tool::Measure(MeasureShape::Angle))),
                Key::D => action = Some(Action::Tool(Tool::Measure(MeasureShape::Freehand))),
                Key::U => action = Some(Action::Tool(Tool::Measure(MeasureShape::Point))),
                Key::Q => action = Some(Action::Tool(Tool::Region)),
                Key::Escape => action = Some(Action::Tool(Tool::Read)),
                Key::OpenBracket => action = Some(Action::BrushSize(-1.0)),
                Key::CloseBracket => action = Some(Action::BrushSize(1.0)),
                _ => {}
            }
        }
    });
    action
}
