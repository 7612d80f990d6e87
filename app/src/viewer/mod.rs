//! The native viewer (eframe with the wgpu backend). The engine owns the data (series, volume);
//! this module keeps only what the screen needs: which series, which slice, window, zoom, flips.

mod browser;
pub mod cine;
pub mod compare;
mod corrections;
pub mod editing;
pub mod inference;
mod keys;
mod loader;
mod measurements;
pub mod model_panel;
mod model_view;
pub mod overlay;
pub mod pacs_secrets;
pub mod pacs_window;
mod send_back;
pub mod settings;
pub mod view;
mod viewport;

use std::path::PathBuf;
use std::sync::Arc;

use eframe::egui::{self, Color32, RichText};
use groundglass_feedback::{Corrections, Store};
use groundglass_study::geometry::Vec3;
use groundglass_study::{
    DisplayImage, LabelVolume, Plane, PlaneGrid, Series, Volume, VolumeLayout,
};

use crate::render::{RenderContext, UploadStats, VolumeSlot};
use inference::ModelWorker;
use loader::{Job, LoadMessage, Loader};
use model_panel::ModelPanel;
pub use model_view::default_reviewer;
use settings::Settings;
use view::{ViewState, ViewTransform};

/// Single plane, axial/coronal/sagittal side by side with a linked crosshair, or the series on
/// screen beside another of the study (`compare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Single,
    Three,
    Compare,
}

/// How the app was started (tests and the screenshot command set these).
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub path: Option<PathBuf>,
    pub layout: Option<Layout>,
    pub plane: Option<Plane>,
    pub index: Option<usize>,
    pub window: Option<groundglass_study::Window>,
    /// Where settings (recent studies) live; `None` keeps them in memory only.
    pub settings_path: Option<PathBuf>,
    /// A checkpoint folder to load at start (else the last one used, else the bundled demo).
    pub model: Option<PathBuf>,
    /// The precision to load it at (`None`: the checkpoint's default on the device).
    pub precision: Option<groundglass_model::Precision>,
    /// Where per-study correction stores live (default: the platform's data directory).
    pub store_root: Option<PathBuf>,
    /// Where series retrieved from a PACS are kept (default: the platform's cache directory).
    pub pacs_cache: Option<PathBuf>,
    /// The GPU memory a volume and its labels may take, in MB (default: GROUNDGLASS_GPU_BUDGET_MB,
    /// else none): beyond it the volume is shown as an overview.
    pub gpu_budget_mb: Option<f64>,
}

/// The PACS cache's size when the settings do not say.
pub const PACS_CACHE_GB: f64 = 20.0;

/// Where series retrieved from a PACS are kept: the platform cache directory (shared by the
/// viewer and `batch --pacs`, so either finds what the other retrieved).
pub fn default_pacs_cache() -> PathBuf {
    directories::ProjectDirs::from("org", "groundglass", "groundglass")
        .map(|d| d.cache_dir().join("pacs"))
        .unwrap_or_else(|| std::env::temp_dir().join("groundglass-pacs"))
}

/// A message in the status area.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub error: bool,
    pub text: String,
}

pub struct ViewerApp {
    loader: Loader,
    open_job: Option<Job>,
    load_job: Option<Job>,
    settings: Settings,
    options: Options,
    pub study_path: Option<PathBuf>,
    pub series: Vec<Series>,
    thumbnails: Vec<Option<egui::TextureHandle>>,
    /// The series on screen.
    pub current: Option<usize>,
    pub layout_info: Option<VolumeLayout>,
    pub volume: Option<Arc<Volume>>,
    pub progress: Option<(usize, usize)>,
    /// Views: [0] for the single layout; [1..4] axial, coronal, sagittal for 1x3.
    pub views: Vec<ViewState>,
    pub layout: Layout,
    pub active: usize,
    pub crosshair: Option<Vec3>,
    /// Each viewport's size in points, as last drawn (tilting keeps the picture in place).
    viewport_sizes: [[f64; 2]; crate::render::MAX_VIEWPORTS],
    pub show_patient: bool,
    pub notices: Vec<Notice>,
    pub readout: Option<(Vec3, Option<f64>)>,
    wheel_accum: f32,
    /// The wgpu device, queue and renderer (whose callback resources hold the render context).
    render_state: Option<eframe::egui_wgpu::RenderState>,
    pending_initial_view: bool,
    model_worker: ModelWorker,
    pub model_panel: ModelPanel,
    /// The study's corrections store (answers, verdicts, edits), and what its entries amount to.
    pub store: Option<Store>,
    pub corrections: Corrections,
    next_answer_id: u64,
    /// This session's edits that Ctrl+Z can take back, and those Ctrl+Y can restore.
    undo_stack: Vec<u64>,
    redo_stack: Vec<u64>,
    /// The answer whose text the panel shows.
    pub shown: Option<u64>,
    /// The annotation under the pointer (image or panel), this frame and the last.
    pub hovered_annotation: Option<String>,
    hovered_last_frame: Option<String>,
    /// The annotation clicked last (edits and `a` / `x` apply to it).
    pub selected_annotation: Option<String>,
    /// A region marked for the next question, on its slice (kept in the answer once asked).
    pub region: Option<(
        groundglass_feedback::SliceRef,
        groundglass_model::visual_prompt::VisualPrompt,
    )>,
    /// Masks and strokes as labels, voxel for voxel with the volume (what the GPU shows).
    pub labels: Option<LabelVolume>,
    labels_stale: bool,
    /// The editing tool and its transient state.
    pub edit: editing::EditState,
    /// DICOM Segmentations opened with the study or over it (File > Open segmentation).
    pub segmentations: Vec<groundglass_study::dicom::seg::Segmentation>,
    /// The slice shown last, to notice a change of slice.
    last_slice: Option<groundglass_feedback::SliceRef>,
    /// Cine playback of the active viewport.
    pub cine: cine::Cine,
    /// The volume (time point) of a 4D series on screen; one is decoded at a time.
    pub volume_index: usize,
    /// The next load is another volume of the same series: keep the views as they are.
    keep_views: bool,
    /// The number of the load in progress or last done (messages of earlier ones are dropped).
    load_number: u64,
    /// The last number given to a load, the compared series' among them.
    loads_started: u64,
    /// The series shown beside the one on screen (Layout::Compare).
    pub compare: Option<compare::Compare>,
    /// Numbers opens as `load_number` numbers loads: a replaced open's answer is dropped.
    open_number: u64,
    /// Measurements' figures by id, with the points they were computed for.
    measure_labels: std::collections::HashMap<String, (Vec<[f64; 2]>, String)>,
    /// File > Open from PACS.
    pub pacs: pacs_window::PacsWindow,
    /// PACS passwords and tokens (their own file, not the settings).
    pub pacs_secrets: pacs_secrets::Secrets,
    /// A send of the SEG and SR to a PACS under way.
    sending: Option<send_back::Sending>,
    /// The path being opened is a preview (what a transfer has brought so far): not a recent
    /// study.
    opening_preview: bool,
    /// The views of a series that is being opened again with more of it (a PACS transfer's
    /// next preview, or the whole series): carried over when its load starts.
    carried: Option<CarriedViews>,
    /// What was last asked to open (it may still be opening).
    last_opened: Option<PathBuf>,
}

impl ViewerApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: Options) -> Self {
        let render_state = cc.wgpu_render_state.clone();
        if let Some(state) = &render_state {
            RenderContext::install(state);
            if let Some(rc) = state
                .renderer
                .write()
                .callback_resources
                .get_mut::<RenderContext>()
            {
                rc.set_palette(&state.queue, &model_view::label_palette());
                if let Some(mb) = options.gpu_budget_mb {
                    rc.set_budget_mb(mb);
                }
            }
        }
        let settings = options
            .settings_path
            .as_deref()
            .map(Settings::load)
            .unwrap_or_default();
        let pacs_secrets = options
            .settings_path
            .as_deref()
            .map(|p| pacs_secrets::Secrets::load(&pacs_secrets::Secrets::path_beside(p)))
            .unwrap_or_default();
        let cache_root = options
            .pacs_cache
            .clone()
            .unwrap_or_else(default_pacs_cache);
        let cache_gb = settings.pacs_cache_gb.unwrap_or(PACS_CACHE_GB);
        let pacs = pacs_window::PacsWindow::new(
            cc.egui_ctx.clone(),
            groundglass_pacs::cache::Cache::new(cache_root, (cache_gb * 1e9) as u64),
        );
        let mut app = ViewerApp {
            pacs,
            pacs_secrets,
            sending: None,
            opening_preview: false,
            carried: None,
            last_opened: None,
            loader: Loader::new(cc.egui_ctx.clone()),
            open_job: None,
            load_job: None,
            settings,
            study_path: None,
            series: Vec::new(),
            thumbnails: Vec::new(),
            current: None,
            layout_info: None,
            volume: None,
            progress: None,
            views: Vec::new(),
            layout: options.layout.unwrap_or(Layout::Single),
            active: 0,
            crosshair: None,
            viewport_sizes: [[0.0; 2]; crate::render::MAX_VIEWPORTS],
            show_patient: false,
            notices: Vec::new(),
            readout: None,
            wheel_accum: 0.0,
            render_state,
            pending_initial_view: true,
            model_worker: ModelWorker::spawn(cc.egui_ctx.clone()),
            model_panel: ModelPanel::default(),
            store: None,
            corrections: Corrections::default(),
            next_answer_id: 1,
            undo_stack: Vec::new(),
            redo_stack: Vec::new(),
            shown: None,
            hovered_annotation: None,
            hovered_last_frame: None,
            selected_annotation: None,
            region: None,
            labels: None,
            labels_stale: true,
            edit: editing::EditState::default(),
            segmentations: Vec::new(),
            last_slice: None,
            cine: cine::Cine::default(),
            volume_index: 0,
            keep_views: false,
            load_number: 0,
            loads_started: 0,
            compare: None,
            open_number: 0,
            measure_labels: Default::default(),
            options,
        };
        if app.render_state.is_none() {
            app.notice(true, "No wgpu device: slices cannot be drawn (start with a GPU or a software Vulkan such as lavapipe).".into());
        }
        if let Some(path) = app.options.path.clone() {
            app.open(path);
        }
        app.edit.reviewer = app.settings.reviewer.clone().unwrap_or_default();
        app.model_panel.dtype = app.options.precision;
        if let Some(dir) = app.initial_model() {
            app.load_model(dir);
        }
        app
    }

    fn notice(&mut self, error: bool, text: String) {
        if !self.notices.iter().any(|n| n.text == text) {
            self.notices.push(Notice { error, text });
        }
    }

    /// Opens a file or folder (headers on a background thread).
    pub fn open(&mut self, path: PathBuf) {
        if let Some(job) = self.open_job.take() {
            job.cancel();
        }
        if let Some(job) = self.load_job.take() {
            job.cancel();
        }
        self.series.clear();
        self.thumbnails.clear();
        self.current = None;
        self.volume = None;
        self.layout_info = None;
        self.progress = Some((0, 0));
        self.notices.clear();
        self.store = None;
        self.segmentations.clear();
        self.corrections = Corrections::default();
        self.undo_stack.clear();
        self.redo_stack.clear();
        self.shown = None;
        self.selected_annotation = None;
        self.labels = None;
        self.labels_stale = true;
        self.open_number += 1;
        self.last_opened = Some(path.clone());
        self.open_job = Some(self.loader.open(self.open_number, path));
    }

    /// Opens `path` (a PACS transfer's preview, or the series it brought): if the series on
    /// screen is the one that comes up, its views carry over (plane, window, zoom, and each view's
    /// slice at the same patient position), so the picture grows instead of starting over.
    /// `remember`: a study for the recent list (a preview is not).
    pub fn open_again(&mut self, path: PathBuf, remember: bool) {
        let carried = match (
            self.current.and_then(|i| self.series.get(i)),
            &self.layout_info,
        ) {
            (Some(series), Some(layout)) if !self.views.is_empty() => Some(CarriedViews {
                series_uid: series.uid.clone(),
                layout: layout.clone(),
                views: self.views.clone(),
                crosshair: self.crosshair,
            }),
            _ => None,
        };
        self.open(path);
        self.opening_preview = !remember;
        self.carried = carried;
    }

    /// Starts loading series `index`; slices show up as they are decoded.
    pub fn load_series(&mut self, index: usize) {
        if self.compare.as_ref().is_some_and(|c| c.series == index) {
            // The compared series comes on screen: nothing left beside it.
            self.stop_compare();
        }
        self.measure_labels.clear();
        self.volume_index = 0;
        self.keep_views = false;
        self.start_loading(index, 0);
    }

    /// Volumes (time points) of the series on screen: 1 unless it is 4D.
    pub fn volume_count(&self) -> usize {
        self.current
            .and_then(|i| self.series.get(i))
            .and_then(|s| s.dims.get(3).copied())
            .unwrap_or(1)
            .max(1)
    }

    /// Shows volume `t` of the 4D series on screen, keeping plane, slice, window and zoom (the
    /// volumes share one geometry). Only that volume is decoded; the one before is let go.
    pub fn load_volume(&mut self, t: usize) {
        let (Some(index), true) = (self.current, t < self.volume_count()) else {
            return;
        };
        if t == self.volume_index && (self.volume.is_some() || self.load_job.is_some()) {
            return;
        }
        self.volume_index = t;
        self.keep_views = true;
        self.start_loading(index, t);
    }

    fn start_loading(&mut self, index: usize, volume_index: usize) {
        let Some(series) = self.series.get(index).cloned() else {
            return;
        };
        if let Some(job) = self.load_job.take() {
            job.cancel();
        }
        if let Some(state) = &self.render_state {
            if let Some(rc) = state
                .renderer
                .write()
                .callback_resources
                .get_mut::<RenderContext>()
            {
                rc.drop_volume(VolumeSlot::Main);
            }
        }
        self.current = Some(index);
        self.volume = None;
        if !self.keep_views {
            // A new series: its geometry and masks come with it. (Another volume of the same
            // series keeps both; the views go on drawing while its slices stream in.)
            self.layout_info = None;
            self.labels = None;
        }
        self.labels_stale = true;
        self.progress = Some((0, series.dims.get(2).copied().unwrap_or(0)));
        if !self.keep_views {
            for w in &series.warnings {
                self.notice(false, format!("{}: {w}", series.description));
            }
        }
        self.load_number = self.next_load_number();
        self.load_job = Some(self.loader.load(self.load_number, series, volume_index));
    }

    /// Runs `f` on the render context, when there is one (there is none headless).
    fn with_render_context(
        &self,
        f: impl FnOnce(&mut RenderContext, &eframe::egui_wgpu::RenderState),
    ) {
        if let Some(state) = &self.render_state {
            let mut renderer = state.renderer.write();
            if let Some(rc) = renderer.callback_resources.get_mut::<RenderContext>() {
                f(rc, state);
            }
        }
    }

    /// The view the keys act on (the one under the pointer), its volume's layout and the file's
    /// window of its series.
    pub(super) fn active_view_mut(
        &mut self,
    ) -> Option<(
        &mut ViewState,
        VolumeLayout,
        Option<groundglass_study::Window>,
    )> {
        if self.active == compare::COMPARE_VIEW && self.layout == Layout::Compare {
            let c = self.compare.as_mut()?;
            let layout = c.layout.clone()?;
            let window = match &c.volume {
                Some(v) => Some(v.default_window()),
                None => layout.windows.first().copied(),
            };
            return Some((c.view.as_mut()?, layout, window));
        }
        let layout = self.layout_info.clone()?;
        let window = self.file_window();
        // The last viewport hovered, among those of the layout on screen (it may have changed).
        let id = match self.layout {
            Layout::Single | Layout::Compare => 0,
            Layout::Three => self.active.clamp(1, 3),
        }
        .min(self.views.len().checked_sub(1)?);
        Some((&mut self.views[id], layout, window))
    }

    /// A number no load had: the series on screen and the compared one draw from it.
    fn next_load_number(&mut self) -> u64 {
        self.loads_started += 1;
        self.loads_started
    }

    /// Recently opened studies, the latest first.
    pub fn recent_studies(&self) -> &[PathBuf] {
        &self.settings.recent
    }

    pub fn is_loaded(&self) -> bool {
        self.volume.is_some()
    }

    /// True once loading is over: the series is in, or nothing is loading and a message says why.
    pub fn loading_stopped(&self) -> bool {
        self.is_loaded() || (self.progress.is_none() && !self.notices.is_empty())
    }

    /// The wgpu adapter in use, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)".
    pub fn adapter_name(&self) -> Option<String> {
        let info = self.render_state.as_ref()?.adapter.get_info();
        Some(format!(
            "{} ({:?}, {:?})",
            info.name, info.backend, info.device_type
        ))
    }

    /// The GPU memory a volume and its labels may take (beyond it: an overview), in bytes, and
    /// where that figure came from.
    pub fn gpu_budget(&self) -> (Option<u64>, String) {
        let Some(state) = self.render_state.as_ref() else {
            return (None, String::new());
        };
        let renderer = state.renderer.read();
        match renderer.callback_resources.get::<RenderContext>() {
            Some(rc) => {
                let (bytes, source) = rc.budget();
                (bytes, source.to_string())
            }
            None => (None, String::new()),
        }
    }

    /// The slices held at full resolution, for a series shown as an overview (once placed).
    pub fn detail_slices(&self) -> Option<std::ops::Range<usize>> {
        let state = self.render_state.as_ref()?;
        let renderer = state.renderer.read();
        renderer
            .callback_resources
            .get::<RenderContext>()?
            .detail_slices(VolumeSlot::Main)
    }

    /// GPU upload counters (texture writes happen once per slice, never per frame).
    pub fn upload_stats(&self) -> Option<UploadStats> {
        let state = self.render_state.as_ref()?;
        let renderer = state.renderer.read();
        renderer
            .callback_resources
            .get::<RenderContext>()
            .map(|rc| rc.stats)
    }

    fn pump(&mut self, ctx: &egui::Context) {
        while let Ok(message) = self.loader.rx.try_recv() {
            // The compared series' slices go to its own texture.
            let Some(message) = self.compare_message(message) else {
                continue;
            };
            match message {
                LoadMessage::Opened { open, .. }
                | LoadMessage::Failed { open, .. }
                | LoadMessage::Thumbnail { open, .. }
                    if open != self.open_number => {}
                LoadMessage::Opened {
                    path,
                    series,
                    errors,
                    segmentations,
                    ..
                } => {
                    self.segmentations = segmentations;
                    self.open_job = None;
                    self.study_path = Some(path.clone());
                    if !std::mem::take(&mut self.opening_preview) {
                        self.settings.remember(&path);
                        self.save_settings();
                    }
                    for e in errors {
                        self.notice(true, e);
                    }
                    self.thumbnails = vec![None; series.len()];
                    // Another study: nothing of the last to compare with.
                    self.stop_compare();
                    self.series = series;
                    self.open_store();
                    // The largest series first; the browser lists the others.
                    let best = (0..self.series.len())
                        .max_by_key(|&i| self.series[i].dims.iter().take(3).product::<usize>());
                    if let Some(i) = best {
                        self.load_series(i);
                    } else {
                        self.progress = None;
                    }
                }
                LoadMessage::Failed { error, .. } => {
                    self.open_job = None;
                    self.progress = None;
                    self.notice(true, error);
                }
                LoadMessage::Thumbnail { series, image, .. } => {
                    if let Some(slot) = self.thumbnails.get_mut(series) {
                        *slot = Some(ctx.load_texture(
                            format!("thumb{series}"),
                            to_color_image(&image),
                            egui::TextureOptions::LINEAR,
                        ));
                    }
                }
                LoadMessage::Started { load, layout } => {
                    if load != self.load_number {
                        continue;
                    }
                    let mut begun = Ok(None);
                    self.with_render_context(|rc, state| {
                        begun =
                            rc.begin_volume(VolumeSlot::Main, &state.device, &state.queue, &layout);
                    });
                    match begun {
                        // Shown as an overview: said, not an error.
                        Ok(Some(overview)) => self.notice(false, overview),
                        Ok(None) => {}
                        Err(e) => self.notice(true, e),
                    }
                    // Another volume of the same series keeps the views unless its grid differs.
                    let same_grid = self
                        .layout_info
                        .as_ref()
                        .is_some_and(|l| l.dims == layout.dims && l.affine == layout.affine);
                    self.pending_initial_view =
                        !(self.keep_views && same_grid) || self.views.is_empty();
                    self.keep_views = false;
                    // The same series opened again with more of it: its views go on.
                    let uid = self
                        .current
                        .and_then(|i| self.series.get(i))
                        .map(|s| &s.uid);
                    if let Some(carried) =
                        self.carried.take().filter(|c| Some(&c.series_uid) == uid)
                    {
                        self.crosshair = carried.crosshair;
                        self.views = carried.views_on(&layout);
                        self.pending_initial_view = false;
                    }
                    self.layout_info = Some(*layout);
                }
                LoadMessage::Slice {
                    load,
                    k,
                    done,
                    total,
                    data,
                } => {
                    if load != self.load_number {
                        continue;
                    }
                    self.progress = Some((done, total));
                    if let (Some(state), Some(layout)) = (&self.render_state, &self.layout_info) {
                        let mut renderer = state.renderer.write();
                        if let Some(rc) = renderer.callback_resources.get_mut::<RenderContext>() {
                            rc.upload_slice(
                                VolumeSlot::Main,
                                &state.queue,
                                k,
                                data.view(0, data.len()),
                                layout,
                            );
                        }
                    }
                }
                LoadMessage::Finished { load, result } => {
                    if load != self.load_number {
                        continue;
                    }
                    self.load_job = None;
                    self.progress = None;
                    match result {
                        Ok(volume) => {
                            for w in &volume.load_warnings {
                                self.notice(true, w.clone());
                            }
                            // Without a window in the file, the automatic one is known only now:
                            // replace the placeholder in views the user has not windowed yet.
                            if volume.windows.is_empty() && self.options.window.is_none() {
                                let auto = volume.default_window();
                                let placeholder = self.series_default_window();
                                for view in &mut self.views {
                                    if view.window == placeholder {
                                        view.window = auto;
                                    }
                                }
                            }
                            self.volume = Some(volume);
                        }
                        Err(e) => self.notice(true, e),
                    }
                }
            }
        }
        if self.pending_initial_view {
            if let Some(layout) = self.layout_info.clone() {
                self.reset_views(&layout);
                self.pending_initial_view = false;
            }
        }
    }

    /// For a volume shown as an overview: the full-resolution slab follows where the user reads
    /// (the centre of the viewport last hovered; the compared series' own viewport for it).
    fn follow_reader(&mut self) {
        let id = match self.layout {
            Layout::Single | Layout::Compare => 0,
            Layout::Three => self.active.clamp(1, 3),
        };
        let main = match (&self.volume, self.views.get(id)) {
            (Some(volume), Some(view)) => {
                reading_slice(volume, view, self.viewport_sizes[id]).map(|k| (volume.clone(), k))
            }
            _ => None,
        };
        let compared = self
            .compare
            .as_ref()
            .filter(|_| self.layout == Layout::Compare)
            .and_then(|c| {
                let (volume, view) = (c.volume.as_ref()?, c.view.as_ref()?);
                let k = reading_slice(volume, view, self.viewport_sizes[compare::COMPARE_VIEW])?;
                Some((volume.clone(), k))
            });
        let labels = self.labels.as_ref();
        self.with_render_context(|rc, state| {
            if let Some((volume, k)) = main {
                rc.follow_reader(VolumeSlot::Main, &state.queue, &volume, labels, k);
            }
            if let Some((volume, k)) = compared {
                rc.follow_reader(VolumeSlot::Compared, &state.queue, &volume, None, k);
            }
        });
    }

    /// Fresh views for a newly loaded series.
    fn reset_views(&mut self, layout: &VolumeLayout) {
        let default = self
            .file_window()
            .unwrap_or_else(|| self.series_default_window());
        let window = self.options.window.unwrap_or(default);
        let plane = self.options.plane.unwrap_or(Plane::Acquired);
        let grid_of = |plane| PlaneGrid::from_layout(layout, plane);
        let mut single = ViewState::new(plane, &grid_of(plane), window);
        if let Some(k) = self.options.index {
            single.index = k.min(grid_of(plane).count.saturating_sub(1));
        }
        self.views = vec![single];
        for plane in [Plane::Axial, Plane::Coronal, Plane::Sagittal] {
            self.views
                .push(ViewState::new(plane, &grid_of(plane), window));
        }
        // The crosshair starts at the centre of the volume, or at the centre of the slice asked
        // for (`--index`), so the three-plane layout shows that slice too.
        let c = layout.dims.map(|d| (d as f64 - 1.0) / 2.0);
        let mut crosshair = layout.affine.apply(c);
        if let Some(k) = self.options.index {
            let grid = grid_of(plane);
            let k = k.min(grid.count.saturating_sub(1));
            crosshair = grid.pixel_to_lps(
                k,
                (grid.width as f64 - 1.0) / 2.0,
                (grid.height as f64 - 1.0) / 2.0,
            );
            for view in self.views.iter_mut().skip(1) {
                view.index = ViewTransform::index_through(&grid_of(view.plane), crosshair);
            }
        }
        self.crosshair = Some(crosshair);
    }

    fn series_default_window(&self) -> groundglass_study::Window {
        // Before the volume is in, fall back to a soft-tissue window; the file's window or the
        // automatic one replaces it when known (key 0).
        groundglass_study::WindowPreset::SoftTissue.window()
    }

    /// The file's window, or the automatic one once the volume is loaded.
    pub fn file_window(&self) -> Option<groundglass_study::Window> {
        if let Some(v) = &self.volume {
            return Some(v.default_window());
        }
        self.layout_info
            .as_ref()
            .and_then(|l| l.windows.first().copied())
    }

    fn set_crosshair(&mut self, p: Vec3) {
        self.crosshair = Some(p);
        let Some(layout) = self.layout_info.clone() else {
            return;
        };
        for view in self.views.iter_mut().skip(1) {
            view.index = ViewTransform::index_through(&view.grid(&layout), p);
        }
    }

    /// Turns the planes of the three-plane layout other than view `from` (Ctrl+drag there), and
    /// moves each to the slice through the crosshair again.
    fn tilt(&mut self, from: usize, angle: f64) {
        if self.views.len() < 4 || !(1..4).contains(&from) {
            return;
        }
        let (Some(layout), Some(p)) = (self.layout_info.clone(), self.crosshair) else {
            return;
        };
        let before: Vec<ViewTransform> = (1..4)
            .map(|i| {
                ViewTransform::new(
                    self.views[i].grid(&layout),
                    &self.views[i],
                    self.viewport_sizes[i],
                )
            })
            .collect();
        view::tilt_others(&mut self.views[1..4], from - 1, angle);
        self.set_crosshair(p);
        // The turned planes keep their zoom and the crosshair its place on screen, so the
        // picture turns under the pointer instead of jumping as the grid's extent changes.
        for (i, old) in (1..4).zip(before) {
            let view = &mut self.views[i];
            view.zoom = Some(old.zoom);
            view.center_px = None;
            let size = self.viewport_sizes[i];
            let new = ViewTransform::new(view.grid(&layout), view, size);
            let (was, now) = (old.lps_to_screen(p), new.lps_to_screen(p));
            view.center_px = Some(new.screen_to_px([
                size[0] / 2.0 + now[0] - was[0],
                size[1] / 2.0 + now[1] - was[1],
            ]));
        }
    }

    /// `t`: the three planes back to the acquisition's axes, through the same crosshair.
    fn reset_tilt(&mut self) {
        for view in self.views.iter_mut().filter(|v| v.is_tilted()) {
            view.axes = None;
            view.zoom = None;
            view.center_px = None;
        }
        if let Some(p) = self.crosshair {
            self.set_crosshair(p);
        }
    }

    fn menu(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open file…").clicked() {
                    if let Some(p) = rfd::FileDialog::new().pick_file() {
                        self.open(p);
                    }
                    ui.close();
                }
                if ui.button("Open folder…").clicked() {
                    if let Some(p) = rfd::FileDialog::new().pick_folder() {
                        self.open(p);
                    }
                    ui.close();
                }
                if ui.button("Open from PACS…").clicked() {
                    self.pacs.open = true;
                    ui.close();
                }
                if ui.button("Open segmentation (DICOM SEG)…").clicked() {
                    if let Some(p) = rfd::FileDialog::new().pick_file() {
                        self.open_segmentation(&p);
                    }
                    ui.close();
                }
                ui.menu_button("Recent", |ui| {
                    if self.settings.recent.is_empty() {
                        ui.label("(none)");
                    }
                    for p in self.settings.recent.clone() {
                        if ui.button(p.display().to_string()).clicked() {
                            self.open(p);
                            ui.close();
                        }
                    }
                });
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                ui.radio_value(&mut self.layout, Layout::Single, "Single plane");
                ui.radio_value(
                    &mut self.layout,
                    Layout::Three,
                    "Axial / coronal / sagittal",
                );
                ui.add_enabled_ui(self.compare.is_some(), |ui| {
                    ui.radio_value(&mut self.layout, Layout::Compare, "Side by side (compare)")
                });
                self.compare_menu(ui);
                let tilted = self.views.iter().any(|v| v.is_tilted());
                if ui
                    .add_enabled(tilted, egui::Button::new("Reset tilted planes"))
                    .on_hover_text("t; Ctrl+drag in the three-plane layout tilts them")
                    .clicked()
                {
                    self.reset_tilt();
                    ui.close();
                }
                ui.separator();
                if let Some(view) = self.views.first_mut() {
                    for plane in [
                        Plane::Acquired,
                        Plane::Axial,
                        Plane::Coronal,
                        Plane::Sagittal,
                    ] {
                        if ui.radio(view.plane == plane, plane.name()).clicked() {
                            view.plane = plane;
                            if let Some(layout) = &self.layout_info {
                                view.index = PlaneGrid::from_layout(layout, plane).count / 2;
                            }
                        }
                    }
                }
                ui.separator();
                // The slab of the viewport the keys act on (`+` / `-`, `m`).
                if let Some((view, _, _)) = self.active_view_mut() {
                    ui.label("Slab (active viewport)");
                    ui.add(
                        egui::Slider::new(&mut view.slab_mm, 0.0..=view::MAX_SLAB_MM)
                            .suffix(" mm")
                            .text("thickness"),
                    );
                    ui.horizontal(|ui| {
                        use groundglass_study::slab::Projection;
                        for p in [Projection::Max, Projection::Min, Projection::Mean] {
                            ui.radio_value(&mut view.projection, p, p.label());
                        }
                    });
                }
                ui.separator();
                ui.horizontal(|ui| {
                    let label = if self.cine.playing {
                        "Stop cine"
                    } else {
                        "Play cine"
                    };
                    if ui.button(label).on_hover_text("Space").clicked() {
                        self.cine.toggle();
                    }
                    ui.radio_value(&mut self.cine.mode, cine::CineMode::Loop, "Loop");
                    ui.radio_value(&mut self.cine.mode, cine::CineMode::Bounce, "Bounce");
                });
                ui.add(
                    egui::Slider::new(&mut self.cine.fps, cine::FPS_RANGE)
                        .suffix(" /s")
                        .text("cine rate"),
                );
                ui.separator();
                ui.checkbox(&mut self.show_patient, "Show patient name and ID");
            });
        });
    }
}

fn to_color_image(image: &DisplayImage) -> egui::ColorImage {
    let size = [image.width, image.height];
    if image.channels == 3 {
        egui::ColorImage::from_rgb(size, &image.pixels)
    } else {
        egui::ColorImage::from_gray(size, &image.pixels)
    }
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.pump(&ctx);
        self.pump_model();
        self.pump_send();
        self.follow_slice();
        self.sync_labels();
        self.follow_reader();
        self.hovered_last_frame = self.hovered_annotation.take();
        // Files dropped on the window open like File > Open.
        let dropped: Option<PathBuf> =
            ctx.input(|i| i.raw.dropped_files.first().map(|f| f.path().to_path_buf()));
        if let Some(p) = dropped {
            self.open(p);
        }

        egui::Panel::top("menu").show(ui, |ui| self.menu(ui));
        self.pacs_ui(&ctx);
        egui::Panel::bottom("status").show(ui, |ui| self.status(ui));
        egui::Panel::right("model")
            .resizable(true)
            .default_size(340.0)
            .show(ui, |ui| self.model_panel_ui(ui));
        if self.series.len() > 1 {
            let mut chosen = None;
            egui::Panel::left("series")
                .resizable(true)
                .default_size(230.0)
                .show(ui, |ui| {
                    let compared = self.compare.as_ref().map(|c| c.series);
                    chosen =
                        browser::show(ui, &self.series, &self.thumbnails, self.current, compared);
                });
            match chosen {
                Some(browser::Pick::Load(i)) => self.load_series(i),
                Some(browser::Pick::Compare(i)) => self.start_compare(i),
                None => {}
            }
        }
        // No fill: the viewports' own passes cover the panel (their gaps are filled), and a
        // full-window fill under them cost a software adapter a sixth of a frame (BENCHMARKS.md).
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE)
            .show(ui, |ui| self.viewports(ui));
        if !self.views.is_empty() {
            match keys::handle(self, &ctx) {
                Some(keys::Action::Verdict(v)) => self.verdict_key(v),
                Some(keys::Action::Undo) => self.undo(),
                Some(keys::Action::Redo) => self.redo(),
                Some(keys::Action::Delete) => self.delete_selected(),
                Some(keys::Action::Tool(t)) => self.edit.tool = t,
                Some(keys::Action::BrushSize(d)) => self.edit.change_brush(d),
                Some(keys::Action::Cine) => self.cine.toggle(),
                Some(keys::Action::ResetTilt) => self.reset_tilt(),
                Some(keys::Action::Volume(step)) => {
                    let last = self.volume_count() as i64 - 1;
                    let t = (self.volume_index as i64 + step).clamp(0, last.max(0));
                    self.load_volume(t as usize);
                }
                None => {}
            }
            self.play_cine(&ctx);
        }
    }
}

impl ViewerApp {
    /// The PACS window, and what it asks: open a preview or a retrieved series, save servers.
    fn pacs_ui(&mut self, ctx: &egui::Context) {
        let requests = self
            .pacs
            .show(ctx, &mut self.settings.pacs_servers, &mut self.pacs_secrets);
        for request in requests {
            match request {
                pacs_window::Request::Preview(path) => {
                    if pacs_window::preview_applies(&path, self.last_opened.as_deref()) {
                        self.open_again(path, false);
                    }
                }
                pacs_window::Request::Open(path) => self.open_again(path, true),
                pacs_window::Request::SaveSettings => {
                    self.save_settings();
                    if let Some(p) = self.options.settings_path.clone() {
                        let path = pacs_secrets::Secrets::path_beside(&p);
                        if let Err(e) = self.pacs_secrets.save(&path) {
                            self.notice(
                                true,
                                format!("cannot save PACS credentials to {}: {e}", path.display()),
                            );
                        }
                    }
                }
            }
        }
    }

    /// Moves the active viewport on while cine plays (and keeps frames coming).
    fn play_cine(&mut self, ctx: &egui::Context) {
        if !self.cine.playing {
            return;
        }
        let now = ctx.input(|i| i.time);
        let mut cine = std::mem::take(&mut self.cine);
        if let Some((view, layout, _)) = self.active_view_mut() {
            let count = view.grid(&layout).count;
            view.index = cine.advance(now, view.index, count);
        }
        self.cine = cine;
        ctx.request_repaint();
    }

    fn status(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if let Some((done, total)) = self.progress {
                let fraction = if total > 0 {
                    done as f32 / total as f32
                } else {
                    0.0
                };
                ui.add(
                    egui::ProgressBar::new(fraction)
                        .desired_width(200.0)
                        .text(format!("loading {done}/{total}")),
                );
            }
            let volumes = self.volume_count();
            if volumes > 1 {
                let mut t = self.volume_index;
                let slider = egui::Slider::new(&mut t, 0..=volumes - 1)
                    .text(format!("volume (of {volumes}; , and .)"));
                if ui.add(slider).changed() {
                    self.load_volume(t);
                }
            }
            if let Some((p, value)) = self.readout {
                let unit = match self
                    .series
                    .get(self.current.unwrap_or(0))
                    .map(|s| s.modality.as_str())
                {
                    Some("CT") => " HU",
                    _ => "",
                };
                let v = value
                    .map(|v| format!("{v:.1}{unit}"))
                    .unwrap_or_else(|| "—".into());
                ui.monospace(format!(
                    "{v}   L/R {:+.1}  A/P {:+.1}  S/I {:+.1} mm (LPS)",
                    p[0], p[1], p[2]
                ));
            }
        });
        for n in self.notices.iter().rev().take(4) {
            let color = if n.error {
                Color32::from_rgb(255, 120, 100)
            } else {
                Color32::from_rgb(230, 200, 90)
            };
            ui.label(RichText::new(&n.text).color(color));
        }
    }

    fn viewports(&mut self, ui: &mut egui::Ui) {
        let Some(layout) = self.layout_info.clone() else {
            let msg = if self.progress.is_some() {
                "Opening…"
            } else {
                "File > Open, or drop a DICOM file, folder, DICOMDIR or NIfTI here."
            };
            ui.centered_and_justified(|ui| ui.label(RichText::new(msg).color(Color32::GRAY)));
            return;
        };
        let full = ui.available_rect_before_wrap();
        let ids: Vec<usize> = match self.layout {
            Layout::Single => vec![0],
            Layout::Three => vec![1, 2, 3],
            Layout::Compare => vec![0, compare::COMPARE_VIEW],
        };
        self.link_compare(&layout);
        let n = ids.len() as f32;
        let gap = 2.0;
        let width = (full.width() - gap * (n - 1.0)) / n;
        let series = self.current.and_then(|i| self.series.get(i)).cloned();
        let mut readout = None;
        let mut crosshair = None;
        let mut tilt = None;
        let findings = self.finding_overlays();
        let measurements = self.measurement_overlays();
        let mask_opacity = self.mask_opacity();
        let mut clicked_finding = None;
        let mut edit_events = Vec::new();
        let asked = self.asked_view_id();
        let edit_input = self.edit_input(&findings);
        for (slot, &id) in ids.iter().enumerate() {
            let min = egui::pos2(full.min.x + slot as f32 * (width + gap), full.min.y);
            let rect = egui::Rect::from_min_size(min, egui::vec2(width, full.height()));
            if slot > 0 {
                // The gap before this viewport (the panel itself is not filled).
                let gap_rect = egui::Rect::from_min_size(
                    egui::pos2(min.x - gap, min.y),
                    egui::vec2(gap, full.height()),
                );
                ui.painter().rect_filled(gap_rect, 0.0, Color32::BLACK);
            }
            if let Some(size) = self.viewport_sizes.get_mut(id) {
                *size = [f64::from(rect.width()), f64::from(rect.height())];
            }
            if id == compare::COMPARE_VIEW {
                if let Some(hovered) = self.compared_viewport(ui, rect, &layout) {
                    self.active = id;
                    readout = hovered;
                }
                continue;
            }
            let grid = self.views[id].grid(&layout);
            let tilted = self.views[id].is_tilted();
            let crosshair_here = match (self.layout, self.crosshair) {
                (Layout::Three, Some(point)) => {
                    let mut others = (1..4)
                        .filter(|&o| o != id)
                        .map(|o| self.views[o].current_axes()[2]);
                    match (others.next(), others.next()) {
                        (Some(a), Some(b)) => Some(viewport::Crosshair {
                            point,
                            others: [a, b],
                        }),
                        _ => None,
                    }
                }
                _ => None,
            };
            let corner = viewport::CornerText {
                top_left: series
                    .as_ref()
                    .map(|s| {
                        let who = if self.show_patient {
                            format!("{} {}\n", s.patient_name, s.patient_id)
                        } else {
                            String::new()
                        };
                        format!("{who}{} {}", s.modality, s.description)
                    })
                    .unwrap_or_default(),
                top_right: series
                    .as_ref()
                    .map(|s| format!("{:?}", s.dims))
                    .unwrap_or_default(),
            };
            let volume = self.volume.clone();
            let outcome = viewport::show(
                ui,
                rect,
                viewport::ViewportInput {
                    id,
                    slot: VolumeSlot::Main,
                    layout: &layout,
                    volume: volume.as_deref(),
                    grid,
                    view: &mut self.views[id],
                    crosshair: crosshair_here,
                    corner_text: corner,
                    wheel_accum: &mut self.wheel_accum,
                    findings: &findings,
                    measurements: &measurements,
                    mask_opacity,
                    // Drawing and asking read the acquisition's axes: not on a tilted plane.
                    edit: (id == asked && !tilted).then(|| edit_input.clone()),
                    drag: &mut self.edit.drag,
                },
            );
            if outcome.hovered {
                self.active = id;
                readout = outcome.readout;
            }
            if let Some(i) = outcome.hovered_finding {
                self.hovered_annotation = findings.get(i).map(|f| f.id.clone());
            }
            if let Some(i) = outcome.clicked_finding {
                clicked_finding = findings.get(i).map(|f| f.id.clone());
            }
            if let Some(event) = outcome.edit {
                edit_events.push((id, event));
            }
            if outcome.crosshair.is_some() {
                crosshair = outcome.crosshair;
            }
            if let Some(angle) = outcome.tilt {
                tilt = Some((id, angle));
            }
        }
        if let Some((id, angle)) = tilt {
            self.tilt(id, angle);
        }
        self.readout = readout;
        if let Some(p) = crosshair {
            self.set_crosshair(p);
        }
        if clicked_finding.is_some() {
            self.selected_annotation = clicked_finding;
        }
        for (view, event) in edit_events {
            self.apply_edit_event(view, event);
        }
        ui.allocate_rect(full, egui::Sense::hover());
    }
}

/// The slice (voxel k, fractional) at the centre of a viewport of `size` points showing `view`
/// of `volume`: where the user reads.
fn reading_slice(
    volume: &groundglass_study::Volume,
    view: &ViewState,
    size: [f64; 2],
) -> Option<f64> {
    let to_voxel = volume.layout.affine.inverse()?;
    let centre = ViewTransform::new(view.grid(&volume.layout), view, size)
        .screen_to_lps([size[0] / 2.0, size[1] / 2.0]);
    Some(to_voxel.apply(centre)[2])
}

/// The views of a series on screen, to go on when it is opened again with more slices.
struct CarriedViews {
    series_uid: String,
    layout: VolumeLayout,
    views: Vec<ViewState>,
    crosshair: Option<Vec3>,
}

impl CarriedViews {
    /// The views on the series' new layout: each at the slice through the patient position its
    /// slice's centre had.
    fn views_on(self, layout: &VolumeLayout) -> Vec<ViewState> {
        self.views
            .into_iter()
            .map(|mut view| {
                let old = view.grid(&self.layout);
                let centre = old.pixel_to_lps(
                    view.index,
                    (old.width as f64 - 1.0) / 2.0,
                    (old.height as f64 - 1.0) / 2.0,
                );
                view.index = ViewTransform::index_through(&view.grid(layout), centre);
                view
            })
            .collect()
    }
}
