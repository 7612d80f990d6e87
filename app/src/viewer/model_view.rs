//! The viewer's side of the model: loading a checkpoint, asking about the current slice (the
//! engine's slice, never the screen), receiving the streamed answer, recording it in the study's
//! corrections store, and showing it (its text in the panel, its findings over the viewports).

use std::path::PathBuf;
use std::time::Instant;

use eframe::egui;
use groundglass_feedback::{finding_id, AskRecord, Edit, SliceRef};
use groundglass_model::prompt::{Request, Task};
use groundglass_model::semsam::SemSamConfig;

use super::inference::{AskJob, ModelMessage};
use super::model_panel::{self, PanelAction, PanelView, Running};
use super::overlay::{class_colour, FindingOverlay, FINDING_COLOURS};
use super::{Layout, ViewerApp};
use crate::render::{Palette, PALETTE_SIZE};

/// Opacity of mask overlays.
pub const MASK_OPACITY: f32 = 0.45;

/// The label palette: label id `l` has the colour of class `l` (ids wrap around the palette).
pub fn label_palette() -> Palette {
    let mut colours = [[0.0f32; 4]; PALETTE_SIZE];
    for (i, c) in colours.iter_mut().enumerate() {
        let f = FINDING_COLOURS[i % FINDING_COLOURS.len()];
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
    crate::demo::model()
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

    /// Asks a model server from now on: its checkpoint's summary replaces the local one.
    pub fn connect_model_server(&mut self, url: String, token: Option<String>) {
        self.connect_model_server_with(url, token, groundglass_serve::RemoteApi::Groundglass);
    }

    /// As `connect_model_server`, to a server speaking `api`.
    pub fn connect_model_server_with(
        &mut self,
        url: String,
        token: Option<String>,
        api: groundglass_serve::RemoteApi,
    ) {
        self.model_panel.loading = Some(PathBuf::from(&url));
        self.model_panel.error = None;
        self.model_panel.summary = None;
        self.model_panel.remote = Some(url.clone());
        self.model_worker.connect(url, token, api);
    }

    pub fn load_model(&mut self, dir: PathBuf) {
        self.model_panel.remote = None;
        self.model_panel.loading = Some(dir.clone());
        self.model_panel.error = None;
        self.model_panel.summary = None;
        self.model_panel.dir = Some(dir.clone());
        self.model_worker.load(dir, self.model_panel.dtype);
    }

    /// Starts building SemSam's neighbour table on the model thread (it reports its progress).
    pub fn prepare_semsam(&mut self) {
        if self.model_ready() {
            self.model_panel.semsam_progress = Some(0.0);
            self.model_worker.prepare_semsam(SemSamConfig::default().k);
        }
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
                    if self.model_panel.semsam {
                        self.prepare_semsam();
                    }
                }
                ModelMessage::Connected { url, summary } => {
                    self.model_panel.loading = None;
                    self.model_panel.remote = Some(url);
                    // The server's folder is not this machine's: the local choice stays saved.
                    self.model_panel.summary = Some(*summary);
                }
                ModelMessage::AnsweredBy {
                    id,
                    url,
                    round_trip_ms,
                } => {
                    if self
                        .model_panel
                        .running
                        .as_ref()
                        .is_some_and(|r| r.id == id)
                    {
                        self.model_panel.origin =
                            Some(format!("answered by {url} in {round_trip_ms:.0} ms"));
                    }
                }
                ModelMessage::SemSamProgress(f) => self.model_panel.semsam_progress = Some(f),
                ModelMessage::SemSamReady => self.model_panel.semsam_progress = None,
                ModelMessage::SemSamFailed(error) => {
                    self.model_panel.semsam_progress = None;
                    self.notice(true, format!("MIS-SemSam: {error}"));
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
                    let mark = r.mark.clone();
                    // (Its timings are on the answer's own line.)
                    if self.model_panel.remote.is_none() {
                        self.model_panel.origin = Some("answered on this machine".into());
                    }
                    let model_name = match (&self.model_panel.remote, &self.model_panel.summary) {
                        (Some(url), Some(s)) => format!("{url} ({})", s.dir.display()),
                        _ => self
                            .model_panel
                            .dir
                            .as_ref()
                            .map(|d| d.display().to_string())
                            .unwrap_or_default(),
                    };
                    let mut record = AskRecord::new(
                        id, r.slice, r.task, r.lang, r.question, r.clinical, r.semsam, model_name,
                        *answer,
                    );
                    record.mark = mark;
                    self.record_edit(
                        Edit::Answer {
                            record: Box::new(record),
                        },
                        false,
                    );
                    self.shown = Some(id);
                    self.selected_annotation = None;
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

    /// The view whose slice the model is asked about and the tools edit: the single view, or the
    /// active one of 1x3.
    pub(super) fn asked_view_id(&self) -> usize {
        match self.layout {
            Layout::Single | Layout::Compare => 0,
            Layout::Three => self.active.clamp(1, 3),
        }
    }

    /// The slice the asked view shows.
    pub fn current_slice(&self) -> Option<SliceRef> {
        let layout = self.layout_info.as_ref()?;
        let series = self.series.get(self.current?)?;
        let view = self.views.get(self.asked_view_id())?;
        // Slices are referred to by plane and index on the acquisition's axes (the model, the
        // corrections and the exports): a tilted plane is not one of them.
        if view.is_tilted() {
            return None;
        }
        let grid = groundglass_study::PlaneGrid::from_layout(layout, view.plane);
        Some(SliceRef {
            series_uid: series.uid.clone(),
            volume: self.volume_index,
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
        let known = self
            .model_panel
            .summary
            .as_ref()
            .is_some_and(|s| s.tasks.contains(&task));
        if !known {
            self.notice(
                true,
                format!(
                    "{}: the loaded checkpoint was not trained for this task",
                    model_panel::task_name(task)
                ),
            );
            return;
        }
        if self
            .views
            .get(self.asked_view_id())
            .is_some_and(|v| v.is_tilted())
        {
            self.notice(
                true,
                "the model reads slices on the acquisition's axes: press t to reset the tilted \
                 planes, then ask"
                    .to_string(),
            );
            return;
        }
        let (Some(volume), Some(slice_ref), Some(modality)) = (
            self.volume.clone(),
            self.current_slice(),
            self.current
                .and_then(|i| self.series.get(i))
                .map(|s| s.modality.clone()),
        ) else {
            return;
        };
        let id = self.next_answer_id();
        let panel = &self.model_panel;
        let non_empty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        // A question asks the model (VQA); for a report it is the "Question:" line beside the
        // clinical information, as the authors' prompts carry it.
        let question = if task == Task::Vqa {
            non_empty(&panel.question)
        } else {
            non_empty(&panel.report_question)
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
        // A question is asked with the region marked on its slice (burned into the model's
        // input as MIS-Ground draws it); reports are not.
        let mark = (task == Task::Vqa)
            .then(|| self.region_on_slice().cloned())
            .flatten();
        let panel = &self.model_panel;
        let semsam = panel.semsam;
        let lang = panel.lang;
        let job = AskJob {
            id,
            slice,
            modality,
            request: request.clone(),
            semsam: semsam.then(SemSamConfig::default),
            visual_prompt: mark.clone(),
        };
        let cancel = self.model_worker.ask(job);
        self.model_panel.running = Some(Running {
            id,
            task,
            lang,
            slice: slice_ref,
            question,
            clinical: request.clinical,
            semsam,
            mark,
            text: String::new(),
            cancel,
            started: Instant::now(),
        });
    }

    /// The region marked on the slice the model is asked about, if any.
    pub fn region_on_slice(&self) -> Option<&groundglass_model::visual_prompt::VisualPrompt> {
        let slice = self.current_slice()?;
        self.region
            .as_ref()
            .filter(|(on, _)| *on == slice)
            .map(|(_, mark)| mark)
    }

    /// Marks what is painted on this slice in the brush's class (the annotator's mask) as the
    /// region for the next question.
    pub fn mark_painted(&mut self) {
        let (Some(slice), Some(layout)) = (self.current_slice(), self.layout_info.as_ref()) else {
            return;
        };
        let grid = groundglass_study::PlaneGrid::from_layout(layout, slice.plane);
        let class = u8::try_from(self.edit.class_id).unwrap_or(0);
        let inside = self
            .labels
            .as_ref()
            .map(|l| l.slice_mask(&grid, slice.index, class))
            .unwrap_or_default();
        if !inside.iter().any(|p| *p) {
            self.notice(
                false,
                format!(
                    "nothing is painted in class {:03} on this slice: paint it with the brush (p) first",
                    self.edit.class_id
                ),
            );
            return;
        }
        self.region = Some((
            slice,
            groundglass_model::visual_prompt::VisualPrompt::Mask {
                width: grid.width,
                height: grid.height,
                inside,
            },
        ));
    }

    /// Asks "what is the marked structure?" about the marked region.
    pub fn ask_marked(&mut self) {
        if self.region_on_slice().is_none() {
            return;
        }
        self.model_panel.question = match self.model_panel.lang {
            groundglass_model::prompt::Lang::En => "what is the marked structure ?",
            groundglass_model::prompt::Lang::De => "was ist die markierte struktur ?",
        }
        .into();
        self.ask(Task::Vqa);
    }

    pub fn cancel_ask(&mut self) {
        if let Some(r) = &self.model_panel.running {
            r.cancel();
        }
    }

    /// When the slice changes and answers exist for the new one, the latest of them is shown.
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
            .and_then(|id| self.corrections.answer(id))
            .is_some_and(|r| r.slice == slice);
        if !shown_here {
            if let Some(latest) = self.corrections.answers_on(&slice).last() {
                self.shown = Some(latest.id);
            }
        }
    }

    /// Whether the label texture has anything to show.
    pub fn mask_opacity(&self) -> f32 {
        if self.labels.is_some() {
            MASK_OPACITY
        } else {
            0.0
        }
    }

    /// The annotations of the current slice, as the viewports draw them (boxes there, lines where
    /// they cross the other views).
    pub fn finding_overlays(&self) -> Vec<FindingOverlay> {
        let Some(slice) = self.current_slice() else {
            return Vec::new();
        };
        let Some(layout) = self.layout_info.as_ref() else {
            return Vec::new();
        };
        let grid = groundglass_study::PlaneGrid::from_layout(layout, slice.plane);
        let lit = self
            .hovered_annotation
            .clone()
            .or(self.hovered_last_frame.clone());
        self.corrections
            .annotations_on(&slice)
            .enumerate()
            .filter_map(|(i, a)| {
                let [x0, y0, x1, y1] = a.box_px?;
                let lps = |x: f64, y: f64| grid.pixel_to_lps(slice.index, x - 0.5, y - 0.5);
                Some(FindingOverlay {
                    id: a.id.clone(),
                    corners: [lps(x0, y0), lps(x1, y0), lps(x1, y1), lps(x0, y1)],
                    keyword: a.keyword.clone(),
                    colour: class_colour(a.class_id, i),
                    highlighted: lit.as_deref() == Some(a.id.as_str())
                        || self.selected_annotation.as_deref() == Some(a.id.as_str()),
                    rejected: a.verdict == Some(groundglass_feedback::Verdict::Rejected),
                })
            })
            .collect()
    }

    /// Centres and zooms the asked view on an annotation, on its own slice.
    pub fn focus_annotation(&mut self, id: &str) {
        if let Some(m) = self.corrections.measurements.get(id).cloned() {
            self.go_to_measurement(&m);
            return;
        }
        self.selected_annotation = Some(id.to_string());
        let Some(a) = self.corrections.annotations.get(id).cloned() else {
            return;
        };
        let Some(layout) = self.layout_info.clone() else {
            return;
        };
        let view_id = self.asked_view_id();
        let Some(view) = self.views.get_mut(view_id) else {
            return;
        };
        view.plane = a.slice.plane;
        view.index = a.slice.index;
        if let Some([x0, y0, x1, y1]) = a.box_px {
            let grid = groundglass_study::PlaneGrid::from_layout(&layout, a.slice.plane);
            // Box edges to pixel-centre coordinates; zoom so the box fills about half the view.
            view.center_px = Some([(x0 + x1) / 2.0 - 0.5, (y0 + y1) / 2.0 - 0.5]);
            let w_mm = ((x1 - x0) * grid.spacing[0]).max(5.0);
            let h_mm = ((y1 - y0) * grid.spacing[1]).max(5.0);
            let fit = super::view::ViewTransform::new(grid, view, [512.0, 512.0]);
            let full =
                (grid.width as f64 * grid.spacing[0]).max(grid.height as f64 * grid.spacing[1]);
            let zoom = fit.zoom * full / (2.0 * w_mm.max(h_mm));
            view.zoom = Some(zoom.max(fit.zoom).min(200.0));
            let centre =
                grid.pixel_to_lps(a.slice.index, (x0 + x1) / 2.0 - 0.5, (y0 + y1) / 2.0 - 0.5);
            self.set_crosshair(centre);
        }
        self.last_slice = self.current_slice();
    }

    /// Shows a measurement's slice in the asked viewport, the crosshair on its centre (the other
    /// planes then show where it lies).
    fn go_to_measurement(&mut self, m: &groundglass_feedback::state::Measurement) {
        let Some(layout) = self.layout_info.clone() else {
            return;
        };
        let view_id = self.asked_view_id();
        let Some(view) = self.views.get_mut(view_id) else {
            return;
        };
        view.plane = m.slice.plane;
        view.index = m.slice.index;
        let [x, y] = super::editing::centroid(&m.points);
        let grid = groundglass_study::PlaneGrid::from_layout(&layout, m.slice.plane);
        self.set_crosshair(grid.pixel_to_lps(m.slice.index, x, y));
        self.last_slice = self.current_slice();
    }

    pub(super) fn model_panel_ui(&mut self, ui: &mut egui::Ui) {
        let measurements = self
            .measurement_overlays()
            .into_iter()
            .map(|m| (m.id, m.label))
            .collect();
        let view = PanelView {
            measurements,
            corrections: &self.corrections,
            shown: self.shown,
            current_slice: self.current_slice(),
            lit: self
                .hovered_annotation
                .clone()
                .or(self.hovered_last_frame.clone()),
            selected: self.selected_annotation.clone(),
            can_ask: self.volume.is_some(),
            can_undo: !self.undo_stack.is_empty(),
            can_redo: !self.redo_stack.is_empty(),
            store: self.store.as_ref().map(|s| s.dir().to_path_buf()),
            region: self.region_on_slice().map(|m| m.kind()),
            study_description: self
                .current
                .and_then(|i| self.series.get(i))
                .map(|s| s.description.clone()),
            pacs_servers: self
                .settings
                .pacs_servers
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            sending: self.sending.as_ref().map(|s| s.server.clone()),
        };
        let (actions, hovered) = model_panel::show(ui, &mut self.model_panel, &mut self.edit, view);
        if hovered.is_some() {
            self.hovered_annotation = hovered;
        }
        for action in actions {
            match action {
                PanelAction::LoadModel(dir) => self.load_model(dir),
                PanelAction::ConnectServer { url, token, api } => {
                    self.connect_model_server_with(url, token, api)
                }
                PanelAction::PrepareSemSam => self.prepare_semsam(),
                PanelAction::ReloadModel => {
                    if let Some(dir) = self.model_panel.dir.clone() {
                        self.load_model(dir);
                    }
                }
                PanelAction::Ask(task) => self.ask(task),
                PanelAction::Cancel => self.cancel_ask(),
                PanelAction::SendToPacs(index) => self.send_to_pacs(&ui.ctx().clone(), index),
                PanelAction::AskMarked => self.ask_marked(),
                PanelAction::ClearRegion => self.region = None,
                PanelAction::MarkPainted => self.mark_painted(),
                PanelAction::Show(id) => {
                    self.shown = Some(id);
                    if let Some(r) = self.corrections.answer(id).cloned() {
                        let asked = self.asked_view_id();
                        if let Some(view) = self.views.get_mut(asked) {
                            view.plane = r.slice.plane;
                            view.index = r.slice.index;
                        }
                        self.last_slice = self.current_slice();
                    }
                }
                PanelAction::Focus(id) => self.focus_annotation(&id),
                PanelAction::Select(id) => self.selected_annotation = Some(id),
                PanelAction::Edit(edit) => self.record_edit(edit, true),
                PanelAction::Undo => self.undo(),
                PanelAction::Redo => self.redo(),
            }
        }
    }

    /// The id of finding `i` of the shown answer.
    pub fn shown_finding_id(&self, i: usize) -> Option<String> {
        self.shown.map(|r| finding_id(r, i))
    }
}

/// The reviewer recorded when settings name none: the login name.
pub fn default_reviewer() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
