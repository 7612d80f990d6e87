//! Compare: a second series of the study beside the one on screen (a prior, or the CT beside the
//! MR), in the same plane. Scrolling the series on screen scrolls the compared one to the same
//! patient position when the two share a frame of reference; otherwise their centres are lined
//! up and the user shifts one against the other (scrolling the compared view alone changes the
//! offset, or the panel sets it in mm). Its volume has its own texture (`VolumeSlot::Compared`).

use std::sync::Arc;

use eframe::egui;
use groundglass_study::geometry::{add, dot, scale, Vec3};
use groundglass_study::{Plane, PlaneGrid, Series, Volume, VolumeLayout, WindowPreset};

use super::loader::{Job, LoadMessage};
use super::view::{ViewState, ViewTransform};
use super::{viewport, Layout};
use crate::render::VolumeSlot;

/// The compared series' viewport (its uniform buffer in the render context).
pub const COMPARE_VIEW: usize = 4;

pub struct Compare {
    /// Its index in the study's series.
    pub series: usize,
    /// The number of its load (the loader's messages carry it).
    pub load: u64,
    pub layout: Option<VolumeLayout>,
    pub volume: Option<Arc<Volume>>,
    pub progress: Option<(usize, usize)>,
    /// Both series name the same Frame of Reference: positions match as they are.
    pub same_frame: bool,
    /// Follow the series on screen.
    pub linked: bool,
    /// Millimetres the compared series is shifted along the plane's normal against the one on
    /// screen (0 with a shared frame of reference until the user shifts it).
    pub offset_mm: f64,
    /// Set once the view exists (when its layout is known).
    pub view: Option<ViewState>,
    pub job: Option<Job>,
}

impl Compare {
    pub fn new(series: usize, load: u64, same_frame: bool, job: Job) -> Self {
        Compare {
            series,
            load,
            layout: None,
            volume: None,
            progress: None,
            same_frame,
            linked: true,
            offset_mm: 0.0,
            view: None,
            job: Some(job),
        }
    }

    /// The grid its view shows.
    pub fn grid(&self) -> Option<PlaneGrid> {
        Some(self.view.as_ref()?.grid(self.layout.as_ref()?))
    }
}

/// The centre of slice `index` of `grid` in patient coordinates.
pub fn slice_centre(grid: &PlaneGrid, index: usize) -> Vec3 {
    grid.pixel_to_lps(
        index,
        (grid.width as f64 - 1.0) / 2.0,
        (grid.height as f64 - 1.0) / 2.0,
    )
}

/// The compared grid's slice that shows the main grid's slice `index`: through the same point
/// along the main plane's normal, shifted by `offset_mm`.
pub fn linked_index(main: &PlaneGrid, index: usize, other: &PlaneGrid, offset_mm: f64) -> usize {
    let p = add(slice_centre(main, index), scale(main.normal, offset_mm));
    ViewTransform::index_through(other, p)
}

/// The offset that lines up the two volumes' centres along the main plane's normal (the start
/// when the series share no frame of reference).
pub fn centre_offset(main: &VolumeLayout, other: &VolumeLayout, normal: Vec3) -> f64 {
    let centre = |l: &VolumeLayout| l.affine.apply(l.dims.map(|d| (d as f64 - 1.0) / 2.0));
    dot(centre(other), normal) - dot(centre(main), normal)
}

/// The offset after the user moved the compared view from slice `before` to `after` by itself.
pub fn shifted(
    offset_mm: f64,
    other: &PlaneGrid,
    before: usize,
    after: usize,
    main: &PlaneGrid,
) -> f64 {
    let moved = slice_centre(other, after);
    let was = slice_centre(other, before);
    offset_mm + dot(moved, main.normal) - dot(was, main.normal)
}

impl super::ViewerApp {
    /// Shows series `index` of the study beside the one on screen (Layout::Compare).
    pub fn start_compare(&mut self, index: usize) {
        if Some(index) == self.current || index >= self.series.len() {
            return;
        }
        self.stop_compare();
        let series = self.series[index].clone();
        let frame = |s: &Series| s.frame_of_reference.clone();
        let same_frame = matches!(
            (self.current.and_then(|c| self.series.get(c)).and_then(frame), frame(&series)),
            (Some(a), Some(b)) if a == b
        );
        let load = self.next_load_number();
        let job = self.loader.load(load, series, 0);
        self.compare = Some(Compare::new(index, load, same_frame, job));
        self.layout = Layout::Compare;
    }

    /// Back to the series on screen alone; the compared volume leaves the GPU.
    pub fn stop_compare(&mut self) {
        let Some(c) = self.compare.take() else {
            return;
        };
        if let Some(job) = c.job {
            job.cancel();
        }
        self.with_render_context(|rc, _| rc.drop_volume(VolumeSlot::Compared));
        if self.layout == Layout::Compare {
            self.layout = Layout::Single;
        }
    }

    /// Takes the loader's messages about the compared series (its texture is filled as its
    /// slices arrive); returns any other message.
    pub(super) fn compare_message(&mut self, message: LoadMessage) -> Option<LoadMessage> {
        let load = match &message {
            LoadMessage::Started { load, .. }
            | LoadMessage::Slice { load, .. }
            | LoadMessage::Finished { load, .. } => *load,
            _ => return Some(message),
        };
        if self.compare.as_ref().map(|c| c.load) != Some(load) {
            return Some(message);
        }
        match message {
            LoadMessage::Started { layout, .. } => {
                let mut begun = Ok(None);
                self.with_render_context(|rc, state| {
                    begun =
                        rc.begin_volume(VolumeSlot::Compared, &state.device, &state.queue, &layout);
                });
                match begun {
                    Ok(Some(overview)) => {
                        self.notice(false, format!("the compared series: {overview}"))
                    }
                    Ok(None) => {}
                    Err(e) => self.notice(true, format!("the compared series: {e}")),
                }
                let plane = self.views.first().map_or(Plane::Acquired, |v| v.plane);
                let main = self.layout_info.clone();
                // Stopped meanwhile: the message was its, and nothing is left to do.
                let c = self.compare.as_mut()?;
                let window = layout
                    .windows
                    .first()
                    .copied()
                    .unwrap_or_else(|| WindowPreset::SoftTissue.window());
                c.view = Some(ViewState::new(
                    plane,
                    &PlaneGrid::from_layout(&layout, plane),
                    window,
                ));
                if let (false, Some(main)) = (c.same_frame, main) {
                    let normal = PlaneGrid::from_layout(&main, plane).normal;
                    c.offset_mm = centre_offset(&main, &layout, normal);
                }
                c.layout = Some(*layout);
            }
            LoadMessage::Slice {
                k,
                done,
                total,
                data,
                ..
            } => {
                let layout = self.compare.as_mut().and_then(|c| {
                    c.progress = Some((done, total));
                    c.layout.clone()
                });
                if let Some(layout) = layout {
                    self.with_render_context(|rc, state| {
                        rc.upload_slice(
                            VolumeSlot::Compared,
                            &state.queue,
                            k,
                            data.view(0, data.len()),
                            &layout,
                        );
                    });
                }
            }
            LoadMessage::Finished { result, .. } => match result {
                Ok(volume) => {
                    if let Some(c) = self.compare.as_mut() {
                        c.job = None;
                        c.progress = None;
                        // Without a window in the file, the automatic one is known only now.
                        if let (Some(view), true) = (c.view.as_mut(), volume.windows.is_empty()) {
                            view.window = volume.default_window();
                        }
                        c.volume = Some(volume);
                    }
                }
                Err(e) => {
                    self.notice(true, format!("the compared series: {e}"));
                    self.stop_compare();
                }
            },
            other => return Some(other),
        }
        None
    }

    /// Keeps the compared view in the plane of the one on screen and, linked, at its position.
    pub(super) fn link_compare(&mut self, layout: &VolumeLayout) {
        let Some(main) = self.views.first() else {
            return;
        };
        let (main_grid, index, plane) = (main.grid(layout), main.index, main.plane);
        let Some(c) = self.compare.as_mut() else {
            return;
        };
        let (Some(view), Some(other)) = (c.view.as_mut(), c.layout.as_ref()) else {
            return;
        };
        if view.plane != plane {
            view.plane = plane;
            view.zoom = None;
            view.center_px = None;
        }
        if c.linked {
            view.index = linked_index(&main_grid, index, &view.grid(other), c.offset_mm);
        }
    }

    /// Draws the compared series in `rect`; `Some` (with the cursor readout) while the pointer
    /// is over it. Scrolling it by itself while linked shifts the offset.
    pub(super) fn compared_viewport(
        &mut self,
        ui: &mut egui::Ui,
        rect: egui::Rect,
        layout: &VolumeLayout,
    ) -> Option<Option<(Vec3, Option<f64>)>> {
        let main_grid = self.views.first()?.grid(layout);
        let series = self
            .compare
            .as_ref()
            .and_then(|c| self.series.get(c.series))
            .cloned()?;
        let c = self.compare.as_mut()?;
        let (Some(other), Some(view)) = (c.layout.clone(), c.view.as_mut()) else {
            ui.painter_at(rect).text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                format!("opening {} {}…", series.modality, series.description),
                egui::FontId::proportional(14.0),
                egui::Color32::GRAY,
            );
            return None;
        };
        let grid = view.grid(&other);
        let before = view.index;
        let link = match (c.linked, c.same_frame) {
            (false, _) => "not linked".to_string(),
            (true, true) if c.offset_mm.abs() < 0.05 => "linked (same frame of reference)".into(),
            (true, _) => format!("linked, offset {:+.1} mm", c.offset_mm),
        };
        let loading = c
            .progress
            .map(|(done, total)| format!("\nloading {done}/{total}"))
            .unwrap_or_default();
        let corner = viewport::CornerText {
            top_left: format!(
                "{} {}\n{link}{loading}",
                series.modality, series.description
            ),
            top_right: format!("{:?}", series.dims),
        };
        let mut no_drag = None;
        let outcome = viewport::show(
            ui,
            rect,
            viewport::ViewportInput {
                id: COMPARE_VIEW,
                slot: VolumeSlot::Compared,
                layout: &other,
                volume: c.volume.as_deref(),
                grid,
                view,
                crosshair: None,
                corner_text: corner,
                wheel_accum: &mut self.wheel_accum,
                findings: &[],
                measurements: &[],
                mask_opacity: 0.0,
                edit: None,
                drag: &mut no_drag,
            },
        );
        let after = c.view.as_ref().map_or(before, |v| v.index);
        if c.linked && after != before {
            c.offset_mm = shifted(c.offset_mm, &grid, before, after, &main_grid);
        }
        outcome.hovered.then_some(outcome.readout)
    }

    /// View menu: which series to compare with, the link and the offset.
    pub(super) fn compare_menu(&mut self, ui: &mut egui::Ui) {
        let choices: Vec<(usize, String)> = self
            .series
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.current)
            .map(|(i, s)| (i, format!("{} {} {:?}", s.modality, s.description, s.dims)))
            .collect();
        ui.menu_button("Compare with", |ui| {
            if choices.is_empty() {
                ui.label("(no other series in this study)");
            }
            for (i, name) in choices {
                if ui.button(name).clicked() {
                    self.start_compare(i);
                    ui.close();
                }
            }
        });
        let mut stop = false;
        if let Some(c) = self.compare.as_mut() {
            ui.checkbox(&mut c.linked, "Scroll the compared series with this one");
            ui.add(
                egui::DragValue::new(&mut c.offset_mm)
                    .speed(0.5)
                    .prefix("offset ")
                    .suffix(" mm"),
            )
            .on_hover_text("scrolling the compared view by itself shifts it too");
            stop = ui.button("Stop comparing").clicked();
        }
        if stop {
            self.stop_compare();
            ui.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundglass_study::geometry::Affine;
    use groundglass_study::Plane;

    fn grid(z0: f64, dz: f64, n: usize) -> PlaneGrid {
        PlaneGrid::from_geometry(
            [64, 64, n],
            &Affine::from_axes(
                [0.5, 0.0, 0.0],
                [0.0, 0.5, 0.0],
                [0.0, 0.0, dz],
                [0.0, 0.0, z0],
            ),
            Plane::Axial,
        )
    }

    #[test]
    fn linked_slices_meet_at_the_same_position_and_follow_the_offset() {
        // The one on screen: 2 mm slices from z = 0; the other: 5 mm slices from z = -50.
        let (main, other) = (grid(0.0, 2.0, 100), grid(-50.0, 5.0, 60));
        // Slice 25 of the first is at z = 50; z = 50 is slice 20 of the other.
        assert_eq!(linked_index(&main, 25, &other, 0.0), 20);
        // 10 mm up in the other: slice 22.
        assert_eq!(linked_index(&main, 25, &other, 10.0), 22);
        // Outside the other: its last slice, not a panic.
        assert_eq!(linked_index(&main, 99, &other, 500.0), 59);
        // Scrolling the compared view by itself from 20 to 23 shifts the offset by 15 mm, and
        // the link then keeps it there.
        let offset = shifted(0.0, &other, 20, 23, &main);
        assert!((offset - 15.0).abs() < 1e-9);
        assert_eq!(linked_index(&main, 25, &other, offset), 23);
    }
}
