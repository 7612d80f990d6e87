//! The viewer's side of the model: loading a checkpoint, asking about the current slice (the
//! engine's slice, never the screen), receiving the streamed answer, keeping it in the study's
//! history, drawing its findings (boxes over the viewports, masks through the label texture), and
//! verdicts on them.

use std::path::PathBuf;
use std::time::Instant;

use eframe::egui;
use groundglass_feedback::{AskRecord, SliceRef, Verdict};
use groundglass_model::prompt::{Request, Task};
use groundglass_model::semsam::SemSamConfig;
use groundglass_study::{Dirty, LabelVolume, PlaneGrid};

use super::inference::{AskJob, ModelMessage};
use super::model_panel::{self, PanelAction, PanelView, Running};
use super::overlay::{finding_colour, finding_label, FindingOverlay};
use super::view::ViewTransform;
use super::{Layout, ViewerApp};
use crate::render::{Palette, RenderContext, PALETTE_SIZE};

/// The bundled demo model, relative to the working directory or the executable.
pub const DEMO_MODEL: &str = "assets/models/demo";

/// Opacity of mask overlays.
pub const MASK_OPACITY: f32 = 0.45;

/// The label palette: label i + 1 has finding colour i.
pub fn label_palette() -> Palette {
    let mut colours = [[0.0f32; 4]; PALETTE_SIZE];
    for (label, c) in colours.iter_mut().enumerate().skip(1) {
        let f = finding_colour(label - 1);
        *c = [
            f32::from(f.r()) / 255.0,
            f32::from(f.g()) / 255.0,
            f32::from(f.b()) / 255.0,
            1.0,
        ];
    }
    Palette { colours }
}

fn demo_model() -> Option<PathBuf> {
    let here = PathBuf::from(DEMO_MODEL);
    let beside_exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|p| p.join(DEMO_MODEL)));
    [Some(here), beside_exe]
        .into_iter()
        .flatten()
        .find(|p| p.join("config.json").exists())
}

impl ViewerApp {
    /// The model to load at start: the one asked for, the last one used, or the bundled demo.
    pub(super) fn initial_model(&self) -> Option<PathBuf> {
        self.options
            .model
            .clone()
            .or_else(|| {
                self.settings
                    .model_dir
                    .clone()
                    .filter(|d| d.join("config.json").exists())
            })
            .or_else(demo_model)
    }

    pub fn load_model(&mut self, dir: PathBuf) {
        self.model_panel.loading = Some(dir.clone());
        self.model_panel.error = None;
        self.model_panel.summary = None;
        self.model_panel.dir = Some(dir.clone());
        self.model_worker.load(dir);
    }

    /// True while a checkpoint is loading or an answer is being generated.
    pub fn model_busy(&self) -> bool {
        self.model_panel.loading.is_some() || self.model_panel.running.is_some()
    }

    pub fn model_ready(&self) -> bool {
        self.model_panel.summary.is_some() && self.model_panel.loading.is_none()
    }

    pub(super) fn pump_model(&mut self) {
        while let Ok(message) = self.model_worker.rx.try_recv() {
            match message {
                ModelMessage::Loaded(summary) => {
                    self.model_panel.loading = None;
                    self.settings.model_dir = Some(summary.dir.clone());
                    self.save_settings();
                    self.model_panel.summary = Some(*summary);
                }
                ModelMessage::LoadFailed { error, .. } => {
                    self.model_panel.loading = None;
                    self.model_panel.error = Some(error.clone());
                    self.notice(true, error);
                }
                ModelMessage::Token { id, text } => {
                    if let Some(r) = self.model_panel.running.as_mut().filter(|r| r.id == id) {
                        r.text = text;
                    }
                }
                ModelMessage::Done { id, answer } => {
                    let Some(r) = self.model_panel.running.take().filter(|r| r.id == id) else {
                        continue;
                    };
                    let record = AskRecord::new(
                        id,
                        r.slice,
                        r.task,
                        self.model_panel.lang,
                        r.question,
                        r.clinical,
                        r.semsam,
                        self.model_panel
                            .dir
                            .as_ref()
                            .map(|d| d.display().to_string())
                            .unwrap_or_default(),
                        *answer,
                    );
                    self.history.push(record);
                    self.shown = Some(id);
                    self.selected_finding = None;
                }
                ModelMessage::Failed { id, error } => {
                    if self
                        .model_panel
                        .running
                        .as_ref()
                        .is_some_and(|r| r.id == id)
                    {
                        self.model_panel.running = None;
                    }
                    self.notice(true, format!("the model failed: {error}"));
                }
            }
        }
    }

    pub(super) fn save_settings(&mut self) {
        if let Some(p) = self.options.settings_path.clone() {
            if let Err(e) = self.settings.save(&p) {
                self.notice(
                    true,
                    format!("cannot save settings to {}: {e}", p.display()),
                );
            }
        }
    }

    /// The view whose slice the model is asked about: the single view, or the active one of 1x3.
    fn asked_view(&self) -> usize {
        match self.layout {
            Layout::Single => 0,
            Layout::Three => self.active.clamp(1, 3),
        }
    }

    /// The slice the asked view shows.
    pub fn current_slice(&self) -> Option<SliceRef> {
        let layout = self.layout_info.as_ref()?;
        let series = self.series.get(self.current?)?;
        let view = self.views.get(self.asked_view())?;
        let grid = PlaneGrid::from_layout(layout, view.plane);
        Some(SliceRef {
            series_uid: series.uid.clone(),
            plane: view.plane,
            index: view.index.min(grid.count.saturating_sub(1)),
            size: [grid.width, grid.height],
        })
    }

    /// Asks the model about the current slice.
    pub fn ask(&mut self, task: Task) {
        if self.model_panel.running.is_some() || !self.model_ready() {
            return;
        }
        let (Some(volume), Some(slice_ref), Some(series)) = (
            self.volume.clone(),
            self.current_slice(),
            self.current.and_then(|i| self.series.get(i)),
        ) else {
            return;
        };
        let panel = &self.model_panel;
        let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let question = if task == Task::Vqa {
            non_empty(&panel.question)
        } else {
            None
        };
        if task == Task::Vqa && question.is_none() {
            return;
        }
        let request = Request {
            task,
            lang: panel.lang,
            clinical: non_empty(&panel.clinical),
            question: question.clone(),
            options: vec![],
        };
        let slice = groundglass_study::extract(&volume, slice_ref.plane, slice_ref.index);
        let id = self.history.next_id();
        let semsam = panel.semsam;
        let job = AskJob {
            id,
            slice,
            modality: series.modality.clone(),
            photometric: volume.photometric,
            request: request.clone(),
            semsam: semsam.then(SemSamConfig::default),
        };
        let cancel = self.model_worker.ask(job);
        self.model_panel.running = Some(Running {
            id,
            task,
            slice: slice_ref,
            question,
            clinical: request.clinical,
            semsam,
            text: String::new(),
            cancel,
            started: Instant::now(),
        });
    }

    pub fn cancel_ask(&mut self) {
        if let Some(r) = &self.model_panel.running {
            r.cancel();
        }
    }

    /// When the slice changes and answers exist for the new one, the latest of them is shown;
    /// otherwise the shown answer stays (its boxes appear as lines where they cross other slices).
    pub(super) fn follow_slice(&mut self) {
        let current = self.current_slice();
        if current == self.last_slice {
            return;
        }
        self.last_slice = current.clone();
        let Some(slice) = current else {
            return;
        };
        let shown_here = self
            .shown
            .and_then(|id| self.history.get(id))
            .is_some_and(|r| r.slice == slice);
        if !shown_here {
            if let Some(latest) = self.history.for_slice(&slice).last() {
                self.shown = Some(latest.id);
                self.selected_finding = None;
            }
        }
    }

    /// Rebuilds the label volume from the shown answer's masks when the shown answer changes, and
    /// copies it to the GPU.
    pub(super) fn sync_labels(&mut self) {
        if self.labels_of == self.shown && (self.labels.is_some() || self.shown.is_none()) {
            return;
        }
        let Some(layout) = self.layout_info.clone() else {
            return;
        };
        let labels = self
            .labels
            .get_or_insert_with(|| LabelVolume::new(layout.dims, layout.affine));
        let mut dirty = labels.clear();
        if let Some(record) = self.shown.and_then(|id| self.history.get(id)) {
            let grid = PlaneGrid::from_layout(&layout, record.slice.plane);
            for (i, f) in record.findings.iter().enumerate() {
                let Some(mask) = f.mask_index.and_then(|m| record.masks.get(m)) else {
                    continue;
                };
                let d = labels.paint_slice_mask(
                    &grid,
                    record.slice.index,
                    mask.width,
                    mask.height,
                    &mask.pixels(),
                    finding_label(i),
                );
                dirty.merge(d);
            }
        }
        self.labels_of = self.shown;
        self.upload_labels(dirty);
    }

    fn upload_labels(&mut self, dirty: Dirty) {
        let (Some(state), Some(labels)) = (&self.render_state, &self.labels) else {
            return;
        };
        let mut renderer = state.renderer.write();
        if let Some(rc) = renderer.callback_resources.get_mut::<RenderContext>() {
            rc.upload_labels(&state.queue, labels, dirty);
        }
    }

    /// Whether the label texture has anything to show.
    pub fn mask_opacity(&self) -> f32 {
        let any = self
            .shown
            .and_then(|id| self.history.get(id))
            .is_some_and(|r| r.findings.iter().any(|f| f.mask_index.is_some()));
        if any {
            MASK_OPACITY
        } else {
            0.0
        }
    }

    /// The shown answer's boxes, as the viewports draw them.
    pub fn finding_overlays(&self) -> Vec<FindingOverlay> {
        let Some(record) = self.shown.and_then(|id| self.history.get(id)) else {
            return Vec::new();
        };
        record
            .findings
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                Some(FindingOverlay {
                    corners: f.box_lps?,
                    keyword: f.keyword.clone(),
                    colour: finding_colour(i),
                    highlighted: self.hovered_finding.or(self.hovered_last_frame) == Some(i)
                        || self.selected_finding == Some(i),
                    rejected: self.history.verdict(record.id, i) == Some(Verdict::Rejected),
                })
            })
            .collect()
    }

    /// Centres and zooms the view on a finding of the shown answer, on its own slice.
    pub fn focus_finding(&mut self, i: usize) {
        self.selected_finding = Some(i);
        let Some(record) = self.shown.and_then(|id| self.history.get(id)).cloned() else {
            return;
        };
        let Some(layout) = self.layout_info.clone() else {
            return;
        };
        let Some(f) = record.findings.get(i) else {
            return;
        };
        let view_id = self.asked_view();
        let Some(view) = self.views.get_mut(view_id) else {
            return;
        };
        view.plane = record.slice.plane;
        view.index = record.slice.index;
        if let Some([x0, y0, x1, y1]) = f.box_px {
            let grid = PlaneGrid::from_layout(&layout, record.slice.plane);
            // Box edges to pixel-centre coordinates; zoom so the box fills about half the view.
            view.center_px = Some([(x0 + x1) / 2.0 - 0.5, (y0 + y1) / 2.0 - 0.5]);
            let w_mm = ((x1 - x0) * grid.spacing[0]).max(5.0);
            let h_mm = ((y1 - y0) * grid.spacing[1]).max(5.0);
            let fit = ViewTransform::new(grid, view, [512.0, 512.0]);
            let full =
                (grid.width as f64 * grid.spacing[0]).max(grid.height as f64 * grid.spacing[1]);
            let fit_zoom = fit.zoom * full / (2.0 * w_mm.max(h_mm));
            view.zoom = Some(fit_zoom.max(fit.zoom).min(200.0));
            if let Some(lps) = f.box_lps {
                let c = groundglass_study::geometry::scale(
                    groundglass_study::geometry::add(lps[0], lps[2]),
                    0.5,
                );
                self.set_crosshair(c);
            }
        }
        self.last_slice = self.current_slice();
    }

    pub fn set_verdict(&mut self, i: usize, verdict: Option<Verdict>) {
        let Some(id) = self.shown else {
            return;
        };
        let reviewer = self
            .settings
            .reviewer
            .clone()
            .unwrap_or_else(default_reviewer);
        self.history.set_verdict(id, i, verdict, &reviewer);
    }

    /// `a` / `x`: accept or reject the selected (else the hovered) finding; again clears it.
    pub(super) fn verdict_key(&mut self, verdict: Verdict) {
        let (Some(id), Some(i)) = (
            self.shown,
            self.selected_finding.or(self.hovered_last_frame),
        ) else {
            return;
        };
        let same = self.history.verdict(id, i) == Some(verdict);
        self.set_verdict(i, (!same).then_some(verdict));
    }

    pub(super) fn model_panel_ui(&mut self, ui: &mut egui::Ui) {
        let view = PanelView {
            history: &self.history,
            shown: self.shown,
            current_slice: self.current_slice(),
            hovered_on_image: self.hovered_finding.or(self.hovered_last_frame),
            selected: self.selected_finding,
            can_ask: self.volume.is_some(),
        };
        let (actions, hovered) = model_panel::show(ui, &mut self.model_panel, view);
        if hovered.is_some() {
            self.hovered_finding = hovered;
        }
        for action in actions {
            match action {
                PanelAction::LoadModel(dir) => self.load_model(dir),
                PanelAction::Ask(task) => self.ask(task),
                PanelAction::Cancel => self.cancel_ask(),
                PanelAction::Show(id) => {
                    self.shown = Some(id);
                    self.selected_finding = None;
                    if let Some(r) = self.history.get(id).cloned() {
                        let asked = self.asked_view();
                        if let Some(view) = self.views.get_mut(asked) {
                            view.plane = r.slice.plane;
                            view.index = r.slice.index;
                        }
                        self.last_slice = self.current_slice();
                    }
                }
                PanelAction::Focus(i) => self.focus_finding(i),
                PanelAction::Verdict(i, v) => {
                    self.selected_finding = Some(i);
                    self.set_verdict(i, v);
                }
            }
        }
    }
}

/// The reviewer recorded when settings name none: the login name.
pub fn default_reviewer() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
