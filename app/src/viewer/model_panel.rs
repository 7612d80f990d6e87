//! The model panel: which checkpoint, what to ask about the current slice, the answer streaming in,
//! the annotations of the slice with their verdicts and corrections (class picker, keyword,
//! delete, tools, undo), and the answers already given on this slice and study. The panel holds
//! only what the screen needs; answers and corrections live in the engine's store.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use eframe::egui::{self, Color32, RichText};
use groundglass_feedback::{finding_id, AskRecord, Corrections, Edit, Origin, SliceRef, Verdict};
use groundglass_grounding::parse::RadGrounder;
use groundglass_grounding::{LabelMap, Language};
use groundglass_model::prompt::{Lang, Task};
use groundglass_model::{ModelSummary, Precision};

use super::editing::{EditState, Tool};
use super::overlay::class_colour;

/// An answer being generated.
pub struct Running {
    pub id: u64,
    pub task: Task,
    pub lang: Lang,
    pub slice: SliceRef,
    pub question: Option<String>,
    pub clinical: Option<String>,
    pub semsam: bool,
    pub mark: Option<groundglass_model::visual_prompt::VisualPrompt>,
    pub text: String,
    pub cancel: Arc<AtomicBool>,
    pub started: Instant,
}

impl Running {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

pub struct ModelPanel {
    pub dir: Option<PathBuf>,
    pub summary: Option<ModelSummary>,
    pub loading: Option<PathBuf>,
    pub error: Option<String>,
    pub lang: Lang,
    pub clinical: String,
    /// The "Question:" (Fragestellung) line of a report request.
    pub report_question: String,
    /// The question of a VQA request.
    pub question: String,
    pub semsam: bool,
    /// The precision asked for; `None` is the checkpoint's default on the device.
    pub dtype: Option<Precision>,
    /// MIS-SemSam's neighbour table: the fraction built while it is being built.
    pub semsam_progress: Option<f32>,
    pub running: Option<Running>,
    /// The model server being typed in, and its bearer token (kept for this run only).
    pub server_url: String,
    pub server_token: String,
    /// The server speaks OpenAI's API (vLLM), not Groundglass': its model's name and picture
    /// size.
    pub server_openai: bool,
    pub server_model: String,
    pub server_image_size: usize,
    /// The server the model runs on, once connected; `None`: this machine.
    pub remote: Option<String>,
    /// Where the last answer was made, and how long it took.
    pub origin: Option<String>,
}

impl Default for ModelPanel {
    fn default() -> Self {
        ModelPanel {
            dir: None,
            summary: None,
            loading: None,
            error: None,
            lang: Lang::En,
            clinical: String::new(),
            report_question: String::new(),
            question: String::new(),
            semsam: false,
            dtype: None,
            semsam_progress: None,
            running: None,
            server_url: String::new(),
            server_token: String::new(),
            server_openai: false,
            server_model: "radgrounder".into(),
            server_image_size: 224,
            remote: None,
            origin: None,
        }
    }
}

/// What the user did in the panel this frame.
#[derive(Clone, Debug, PartialEq)]
pub enum PanelAction {
    LoadModel(PathBuf),
    /// Use a model server (`groundglass serve`) instead.
    ConnectServer {
        url: String,
        token: Option<String>,
        api: groundglass_serve::RemoteApi,
    },
    /// Load the current checkpoint again (the precision changed).
    ReloadModel,
    /// SemSam was switched on: build its neighbour table now, in the background.
    PrepareSemSam,
    Ask(Task),
    /// Ask "what is the marked structure?" about the marked region.
    AskMarked,
    /// Forget the marked region.
    ClearRegion,
    /// Mark the mask painted on this slice (in the brush's class).
    MarkPainted,
    Cancel,
    /// Show an answer (and go to its slice).
    Show(u64),
    /// Centre and zoom on an annotation.
    Focus(String),
    Select(String),
    /// A correction to record.
    Edit(Edit),
    Undo,
    Redo,
    /// Send the series' SEG and SR to configured PACS server N.
    SendToPacs(usize),
}

/// What the panel shows besides its own state.
pub struct PanelView<'a> {
    /// The measurements of the series on screen: id and figure.
    pub measurements: Vec<(String, String)>,
    pub corrections: &'a Corrections,
    pub shown: Option<u64>,
    pub current_slice: Option<SliceRef>,
    /// The annotation hovered (on the image or in the panel) and the one selected.
    pub lit: Option<String>,
    pub selected: Option<String>,
    pub can_ask: bool,
    pub can_undo: bool,
    pub can_redo: bool,
    pub store: Option<PathBuf>,
    /// The kind of region marked on this slice for the next question (box, point).
    pub region: Option<&'static str>,
    /// The description of the series in view (its series or NIfTI description).
    pub study_description: Option<String>,
    /// The PACS servers configured (File > Open from PACS), by name.
    pub pacs_servers: Vec<String>,
    /// The server a send is under way to.
    pub sending: Option<String>,
}

/// Draws the panel; returns the actions and the annotation whose keyword or row is hovered.
pub fn show(
    ui: &mut egui::Ui,
    panel: &mut ModelPanel,
    edit: &mut EditState,
    view: PanelView<'_>,
) -> (Vec<PanelAction>, Option<String>) {
    let mut actions = Vec::new();
    let mut hovered = None;
    egui::ScrollArea::vertical().show(ui, |ui| {
        model_section(ui, panel, &mut actions);
        domain_warning(ui, panel, view.study_description.as_deref());
        ui.separator();
        ask_section(ui, panel, view.can_ask, &mut actions);
        region_section(ui, panel, &view, &mut actions);
        ui.separator();
        if let Some(r) = &panel.running {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!(
                    "{} on {} {} … {:.1} s",
                    task_name(r.task),
                    r.slice.plane.name(),
                    r.slice.index + 1,
                    r.started.elapsed().as_secs_f32()
                ));
                if ui.button("Cancel").clicked() {
                    actions.push(PanelAction::Cancel);
                }
            });
            ui.label(RichText::new(&r.text).monospace());
            ui.separator();
        }
        if let Some(record) = view.shown.and_then(|id| view.corrections.answer(id)) {
            if let Some(h) = answer_section(ui, record, &view, &mut actions) {
                hovered = Some(h);
            }
        }
        if let Some(h) = annotations_section(ui, panel.lang, edit, &view, &mut actions) {
            hovered = Some(h);
        }
        history_section(ui, &view, &mut actions);
    });
    (actions, hovered)
}

/// What the model was trained on, and a warning when the study in view is not of that kind: the
/// demo model knows synthetic phantoms only and names a real head's brain "urinary bladder".
fn domain_warning(ui: &mut egui::Ui, panel: &ModelPanel, study: Option<&str>) {
    let Some(summary) = &panel.summary else {
        return;
    };
    match &summary.trained_on {
        Some(t) => {
            ui.label(format!("Trained on: {}", t.description));
            if let Some(study) = study {
                if t.knows(study) == Some(false) {
                    ui.label(
                        RichText::new(format!(
                            "Warning: this model was trained on Groundglass phantoms only; the series \
                             in view ({study}) is not one, so its answers here are not meaningful."
                        ))
                        .color(Color32::from_rgb(255, 190, 80)),
                    );
                }
            }
        }
        None => {
            ui.label("Trained on: not stated by the checkpoint");
        }
    }
}

/// The region marked for the next question: what it is, "What is this?" and clearing it.
fn region_section(
    ui: &mut egui::Ui,
    panel: &ModelPanel,
    view: &PanelView<'_>,
    actions: &mut Vec<PanelAction>,
) {
    let ready = view.can_ask && panel.summary.is_some() && panel.running.is_none();
    match view.region {
        Some(kind) => {
            ui.horizontal_wrapped(|ui| {
                ui.label(format!(
                    "Marked {kind}: questions are about \"the marked structure\""
                ));
                if ui
                    .add_enabled(ready, egui::Button::new("What is this?"))
                    .clicked()
                {
                    actions.push(PanelAction::AskMarked);
                }
                if ui.button("Clear").clicked() {
                    actions.push(PanelAction::ClearRegion);
                }
            });
        }
        None => {
            ui.horizontal_wrapped(|ui| {
                ui.label(
                    RichText::new("Mark a region (q: drag a box or click a point) to ask about it")
                        .weak(),
                );
                if ui
                    .button("Mark the painted mask")
                    .on_hover_text("what the brush painted on this slice in its class")
                    .clicked()
                {
                    actions.push(PanelAction::MarkPainted);
                }
            });
        }
    }
}

pub fn task_name(task: Task) -> &'static str {
    match task {
        Task::Report => "Report",
        Task::Grounded => "Grounded report (boxes)",
        Task::Segment => "Grounded report (masks)",
        Task::Vqa => "Answer",
    }
}

fn model_section(ui: &mut egui::Ui, panel: &mut ModelPanel, actions: &mut Vec<PanelAction>) {
    ui.heading("Model");
    ui.horizontal(|ui| {
        // The folder's name (the full path on hover), or the server's address.
        let name = match &panel.remote {
            Some(url) => url.clone(),
            None => panel
                .dir
                .as_ref()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "(none)".into()),
        };
        let full = match (&panel.remote, &panel.summary) {
            (Some(_), Some(s)) => format!("on the server: {}", s.dir.display()),
            _ => panel
                .dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        };
        ui.label(RichText::new(name).monospace())
            .on_hover_text(full);
        if ui.button("Choose…").clicked() {
            if let Some(dir) = rfd::FileDialog::new().pick_folder() {
                actions.push(PanelAction::LoadModel(dir));
            }
        }
    });
    egui::CollapsingHeader::new("Model server")
        .default_open(panel.remote.is_some())
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                let label = ui.label("Server URL");
                ui.add(
                    egui::TextEdit::singleline(&mut panel.server_url)
                        .hint_text("http://gpu-host:8080")
                        .desired_width(180.0),
                )
                .labelled_by(label.id);
            });
            ui.horizontal(|ui| {
                let label = ui.label("Server token");
                ui.add(
                    egui::TextEdit::singleline(&mut panel.server_token)
                        .password(true)
                        .desired_width(180.0),
                )
                .labelled_by(label.id)
                .on_hover_text("the server's bearer token; kept for this run only");
            });
            ui.checkbox(&mut panel.server_openai, "OpenAI-compatible (vLLM)")
                .on_hover_text(
                    "the picture is preprocessed here and the boxes read from the answer's text; \
                     such a server has no masks and no SemSam",
                );
            if panel.server_openai {
                ui.horizontal(|ui| {
                    let label = ui.label("Served model");
                    ui.add(
                        egui::TextEdit::singleline(&mut panel.server_model).desired_width(120.0),
                    )
                    .labelled_by(label.id);
                    ui.add(
                        egui::DragValue::new(&mut panel.server_image_size)
                            .range(16..=1024)
                            .suffix(" px"),
                    )
                    .on_hover_text("the picture side the checkpoint takes (224 for RadGrounder)");
                });
            }
            let url = panel.server_url.trim().to_string();
            if ui
                .add_enabled(!url.is_empty(), egui::Button::new("Connect"))
                .clicked()
            {
                let token = panel.server_token.trim();
                let api = if panel.server_openai {
                    groundglass_serve::RemoteApi::OpenAi {
                        model: panel.server_model.trim().to_string(),
                        image_size: panel.server_image_size,
                    }
                } else {
                    groundglass_serve::RemoteApi::Groundglass
                };
                actions.push(PanelAction::ConnectServer {
                    url,
                    token: (!token.is_empty()).then(|| token.to_string()),
                    api,
                });
            }
        });
    if let Some(dir) = &panel.loading {
        ui.add(
            egui::ProgressBar::new(0.0)
                .animate(true)
                .text(format!("loading {}", dir.display())),
        );
    }
    if let Some(origin) = &panel.origin {
        ui.label(RichText::new(origin).weak());
    }
    if let Some(s) = &panel.summary {
        ui.label(&s.architecture);
        // An OpenAI-compatible server says nothing of its weights.
        if s.parameters > 0 {
            ui.label(format!(
                "{:.1} M parameters · {} · {} ({}) · {} weights{}",
                s.parameters as f64 / 1e6,
                s.device,
                s.dtype,
                human_bytes(s.weight_bytes),
                match s.weights {
                    groundglass_model::checkpoint::WeightFormat::Safetensors => "safetensors",
                    groundglass_model::checkpoint::WeightFormat::Pytorch => "PyTorch",
                },
                if s.mask_head { " · mask head" } else { "" }
            ));
        }
        if let Some(ms) = s.ms_per_token_limit {
            // The kernels reach about 80 % of the bandwidth bound (BENCHMARKS.md).
            let per_token = ms / 0.8;
            // A small model's estimate rounds to nothing: say so rather than "0 ms".
            ui.label(if per_token < 1.0 {
                "≈ under 1 ms per token".to_string()
            } else {
                format!(
                    "≈ {:.0} ms per token ({:.0} s for a 100-token report)",
                    per_token,
                    per_token * 100.0 / 1e3
                )
            })
            .on_hover_text(format!(
                "Decoding reads every weight of the text decoder ({:.2} GB) once per token: at \
                 this machine's measured memory bandwidth that takes at least {:.0} ms; a \
                 quantized precision (q8_0, q4_k) reads fewer bytes",
                s.decode_bytes as f64 / 1e9,
                ms
            ));
        }
        ui.label(format!("soft-capping: {}", s.soft_capping.name()))
            .on_hover_text(
                "Gemma 2's attention and final-logit caps as this checkpoint runs them: its \
                 training notes, or for other checkpoints what RadGrounder's evaluation ran (none)",
            );
    }
    ui.horizontal(|ui| {
        let label = ui.label("Precision");
        let name = |d: Option<Precision>| match d {
            None => "auto".to_string(),
            Some(d) => d.name().to_string(),
        };
        let before = panel.dtype;
        egui::ComboBox::from_id_salt("model dtype")
            .selected_text(name(panel.dtype))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut panel.dtype, None, name(None));
                for d in Precision::ALL {
                    ui.selectable_value(&mut panel.dtype, Some(d), name(Some(d)));
                }
            })
            .response
            .labelled_by(label.id)
            .on_hover_text(
                "auto: on the CPU the checkpoint's own (bf16 weights with f32 arithmetic for a \
                 bf16 checkpoint, else f32), bf16 on CUDA. q8_0 and q4_k quantize the text \
                 decoder at load: faster and smaller, slightly different answers. Changing it \
                 loads the checkpoint again",
            );
        if panel.dtype != before {
            actions.push(PanelAction::ReloadModel);
        }
    });
    if let Some(e) = &panel.error {
        ui.label(RichText::new(e).color(Color32::from_rgb(255, 120, 100)));
    }
}

fn ask_section(
    ui: &mut egui::Ui,
    panel: &mut ModelPanel,
    can_ask: bool,
    actions: &mut Vec<PanelAction>,
) {
    let ready = can_ask && panel.summary.is_some() && panel.running.is_none();
    ui.horizontal(|ui| {
        ui.label("Language");
        ui.radio_value(&mut panel.lang, Lang::En, "English");
        ui.radio_value(&mut panel.lang, Lang::De, "Deutsch");
    });
    ui.horizontal(|ui| {
        let label = ui.label("Clinical information");
        ui.add(egui::TextEdit::singleline(&mut panel.clinical).desired_width(f32::INFINITY))
            .labelled_by(label.id);
    });
    ui.horizontal(|ui| {
        let label = ui.label("Clinical question");
        ui.add(
            egui::TextEdit::singleline(&mut panel.report_question)
                .hint_text("for reports")
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
    });
    if ui
        .checkbox(&mut panel.semsam, "MIS-SemSam decoding")
        .changed()
        && panel.semsam
    {
        actions.push(PanelAction::PrepareSemSam);
    }
    if let Some(f) = panel.semsam_progress {
        ui.add(
            egui::ProgressBar::new(f)
                .show_percentage()
                .text(format!("SemSam neighbour table {:.0} %", f * 100.0)),
        )
        .on_hover_text("built once per model, then cached beside it");
    }
    // Only what the checkpoint was trained for: boxes or masks, never both.
    let tasks: Vec<Task> = panel
        .summary
        .as_ref()
        .map(|s| {
            s.tasks
                .iter()
                .copied()
                .filter(|t| *t != Task::Vqa)
                .collect()
        })
        .unwrap_or_else(|| vec![Task::Report]);
    ui.horizontal_wrapped(|ui| {
        for task in tasks {
            if ui
                .add_enabled(ready, egui::Button::new(task_name(task)))
                .clicked()
            {
                actions.push(PanelAction::Ask(task));
            }
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label("Question");
        let edit = ui
            .add(
                egui::TextEdit::singleline(&mut panel.question)
                    .hint_text("about this slice")
                    .desired_width(ui.available_width() - 50.0),
            )
            .labelled_by(label.id);
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let has_question = !panel.question.trim().is_empty();
        if (ui
            .add_enabled(ready && has_question, egui::Button::new("Ask"))
            .clicked()
            || (enter && ready && has_question))
            && !actions.contains(&PanelAction::Ask(Task::Vqa))
        {
            actions.push(PanelAction::Ask(Task::Vqa));
        }
    });
}

/// The shown answer's text, keywords coloured like their boxes and tied to their annotations.
fn answer_section(
    ui: &mut egui::Ui,
    record: &AskRecord,
    view: &PanelView<'_>,
    actions: &mut Vec<PanelAction>,
) -> Option<String> {
    let mut hovered = None;
    ui.heading(task_name(record.task));
    ui.label(
        RichText::new(format!(
            "{} {} · {} · {} tokens · first after {:.0} ms · {:.1} tok/s{}{}",
            record.slice.plane.name(),
            record.slice.index + 1,
            record.time_of_day(),
            record.tokens,
            record.ttft_ms,
            record.tok_per_s,
            if record.semsam { " · SemSam" } else { "" },
            if record.cancelled {
                " · cancelled"
            } else {
                ""
            },
        ))
        .small(),
    );
    if let Some(q) = &record.question {
        let about = record
            .mark
            .as_ref()
            .map(|m| format!(" (the marked {}, shown in yellow)", m.kind()))
            .unwrap_or_default();
        ui.label(RichText::new(format!("Q: {q}{about}")).italics());
    }
    let parser = RadGrounder {
        labels: LabelMap::radgrounder(),
        language: Language::from(record.lang),
    };
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        for span in parser.spans(&record.text) {
            match span.finding {
                None => {
                    ui.label(span.text);
                }
                Some(i) => {
                    let id = finding_id(record.id, i);
                    let a = view.corrections.annotations.get(&id);
                    let colour = class_colour(a.and_then(|a| a.class_id), i);
                    let lit = view.lit.as_deref() == Some(id.as_str())
                        || view.selected.as_deref() == Some(id.as_str());
                    let mut text = RichText::new(span.text).color(colour).strong();
                    if lit {
                        text = text.background_color(Color32::from_gray(70)).underline();
                    }
                    if a.is_some_and(|a| a.deleted || a.verdict == Some(Verdict::Rejected)) {
                        text = text.strikethrough();
                    }
                    let r = ui.add(egui::Label::new(text).sense(egui::Sense::click()));
                    if r.hovered() {
                        hovered = Some(id.clone());
                    }
                    if r.clicked() {
                        actions.push(PanelAction::Focus(id));
                    }
                }
            }
        }
    });
    ui.separator();
    hovered
}

/// The annotations of the current slice, the selected one's editor, the tools.
fn annotations_section(
    ui: &mut egui::Ui,
    lang: Lang,
    edit: &mut EditState,
    view: &PanelView<'_>,
    actions: &mut Vec<PanelAction>,
) -> Option<String> {
    let mut hovered = None;
    let Some(slice) = &view.current_slice else {
        return None;
    };
    let labels = LabelMap::radgrounder();
    let here: Vec<_> = view.corrections.annotations_on(slice).collect();
    ui.label(RichText::new(format!("Findings on this slice ({})", here.len())).strong());
    egui::Grid::new("annotations").striped(true).show(ui, |ui| {
        for (i, a) in here.iter().enumerate() {
            let lit = view.lit.as_deref() == Some(a.id.as_str())
                || view.selected.as_deref() == Some(a.id.as_str());
            let mut name = RichText::new(&a.keyword).color(class_colour(a.class_id, i));
            if lit {
                name = name.strong().background_color(Color32::from_gray(70));
            }
            let r = ui.add(egui::Label::new(name).sense(egui::Sense::click()));
            if r.hovered() {
                hovered = Some(a.id.clone());
            }
            if r.clicked() {
                actions.push(PanelAction::Focus(a.id.clone()));
            }
            let class = a
                .class_id
                .and_then(|c| labels.display_name(c, Language::from(lang)))
                .unwrap_or("(no class)");
            let origin = match a.origin {
                Origin::Model { .. } => "model",
                Origin::Manual => "drawn",
            };
            ui.label(
                RichText::new(format!("{class} · {origin}"))
                    .small()
                    .color(Color32::GRAY),
            );
            let accepted = a.verdict == Some(Verdict::Accepted);
            let rejected = a.verdict == Some(Verdict::Rejected);
            let annotation = a.id.clone();
            if ui.selectable_label(accepted, "Accept (a)").clicked() {
                let annotation = annotation.clone();
                actions.push(PanelAction::Edit(if accepted {
                    Edit::ClearVerdict { annotation }
                } else {
                    Edit::Accept { annotation }
                }));
            }
            // Both buttons are drawn every frame, so the layout does not move under the pointer.
            if ui.selectable_label(rejected, "Reject (x)").clicked() {
                actions.push(PanelAction::Edit(if rejected {
                    Edit::ClearVerdict { annotation }
                } else {
                    Edit::Reject { annotation }
                }));
            }
            ui.end_row();
        }
    });
    if let Some(a) = view
        .selected
        .as_ref()
        .and_then(|id| view.corrections.annotations.get(id))
        .filter(|a| !a.deleted)
    {
        ui.add_space(4.0);
        ui.label(RichText::new(format!("Selected: {}", a.keyword)).strong());
        ui.horizontal(|ui| {
            let label = ui.label("Keyword");
            ui.add(egui::TextEdit::singleline(&mut edit.keyword).desired_width(140.0))
                .labelled_by(label.id);
            if ui.button("Set keyword").clicked() && !edit.keyword.trim().is_empty() {
                actions.push(PanelAction::Edit(Edit::Keyword {
                    annotation: a.id.clone(),
                    keyword: edit.keyword.trim().to_string(),
                }));
            }
            if ui.button("Delete (Del)").clicked() {
                actions.push(PanelAction::Edit(Edit::Delete {
                    annotation: a.id.clone(),
                }));
            }
        });
        if let Some(class_id) = class_picker(ui, "relabel", &labels, lang, &mut edit.filter) {
            actions.push(PanelAction::Edit(Edit::Relabel {
                annotation: a.id.clone(),
                class_id,
                keyword: labels
                    .display_name(class_id, Language::from(lang))
                    .map(str::to_string),
            }));
        }
    }
    ui.add_space(4.0);
    ui.label(RichText::new("Tools").strong());
    ui.horizontal(|ui| {
        let label = ui.label("Reviewer");
        ui.add(egui::TextEdit::singleline(&mut edit.reviewer).desired_width(160.0))
            .labelled_by(label.id);
    });
    ui.horizontal_wrapped(|ui| {
        for tool in [Tool::Read, Tool::Box, Tool::Brush, Tool::Eraser] {
            ui.radio_value(&mut edit.tool, tool, tool.name());
        }
    });
    ui.horizontal_wrapped(|ui| {
        use groundglass_feedback::record::MeasureShape;
        for shape in [
            MeasureShape::Line,
            MeasureShape::Angle,
            MeasureShape::Point,
            MeasureShape::Rectangle,
            MeasureShape::Ellipse,
            MeasureShape::Freehand,
        ] {
            let tool = Tool::Measure(shape);
            ui.radio_value(&mut edit.tool, tool, tool.name());
        }
    });
    if !view.measurements.is_empty() {
        ui.label(format!("Measurements ({})", view.measurements.len()));
        for (id, figure) in &view.measurements {
            ui.horizontal(|ui| {
                if ui.small_button("Delete").clicked() {
                    actions.push(PanelAction::Edit(Edit::Delete {
                        annotation: id.clone(),
                    }));
                }
                // Clicking the figure goes to the measurement's slice.
                let go = ui
                    .add(
                        egui::Label::new(RichText::new(figure).monospace())
                            .sense(egui::Sense::click()),
                    )
                    .on_hover_text("Go to its slice");
                if go.clicked() {
                    actions.push(PanelAction::Focus(id.clone()));
                }
            });
        }
    }
    send_row(ui, edit, view, actions);
    ui.horizontal(|ui| {
        let label = ui.label("Brush radius (px, [ ])");
        ui.add(egui::Slider::new(&mut edit.brush_radius_px, 0.5..=64.0))
            .labelled_by(label.id);
    });
    ui.label(format!(
        "New boxes and strokes: {}",
        labels
            .display_name(edit.class_id, Language::from(lang))
            .unwrap_or("?")
    ));
    egui::CollapsingHeader::new("Class for new boxes and strokes")
        .default_open(false)
        .show(ui, |ui| {
            let mut filter = edit.filter.clone();
            if let Some(c) = class_picker(ui, "new", &labels, lang, &mut filter) {
                edit.class_id = c;
            }
            edit.filter = filter;
        });
    ui.horizontal(|ui| {
        if ui
            .add_enabled(view.can_undo, egui::Button::new("Undo (Ctrl+Z)"))
            .clicked()
        {
            actions.push(PanelAction::Undo);
        }
        if ui
            .add_enabled(view.can_redo, egui::Button::new("Redo (Ctrl+Y)"))
            .clicked()
        {
            actions.push(PanelAction::Redo);
        }
    });
    if let Some(dir) = &view.store {
        // The store's name (the study key); the full path on hover.
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        ui.label(
            RichText::new(format!("saved in store {name}"))
                .small()
                .color(Color32::GRAY),
        )
        .on_hover_text(dir.display().to_string());
    }
    ui.separator();
    hovered
}

/// A searchable list of the 121 classes (English and German names); returns the one clicked.
fn class_picker(
    ui: &mut egui::Ui,
    id: &str,
    labels: &LabelMap,
    lang: Lang,
    filter: &mut String,
) -> Option<u32> {
    let mut chosen = None;
    ui.horizontal(|ui| {
        let label = ui.label("Class");
        ui.add(
            egui::TextEdit::singleline(filter)
                .hint_text("search English or German")
                .desired_width(180.0),
        )
        .labelled_by(label.id);
    });
    let needle = filter.trim().to_lowercase();
    egui::ScrollArea::vertical()
        .id_salt(("classes", id))
        .max_height(120.0)
        .show(ui, |ui| {
            for c in labels.classes() {
                if !needle.is_empty()
                    && !c.english.to_lowercase().contains(&needle)
                    && !c.german.to_lowercase().contains(&needle)
                {
                    continue;
                }
                let name = match lang {
                    Lang::En => format!("{} ({})", c.english, c.german),
                    Lang::De => format!("{} ({})", c.german, c.english),
                };
                if ui
                    .selectable_label(false, format!("{:03} {name}", c.id))
                    .clicked()
                {
                    chosen = Some(c.id);
                }
            }
        });
    chosen
}

fn history_section(ui: &mut egui::Ui, view: &PanelView<'_>, actions: &mut Vec<PanelAction>) {
    let entry = |ui: &mut egui::Ui, r: &AskRecord, actions: &mut Vec<PanelAction>| {
        let label = format!(
            "{} · {} {} · {}{} · {} finding(s)",
            r.time_of_day(),
            r.slice.plane.name(),
            r.slice.index + 1,
            task_name(r.task),
            r.mark
                .as_ref()
                .map(|m| format!(" (marked {})", m.kind()))
                .unwrap_or_default(),
            r.findings.len()
        );
        if ui
            .selectable_label(view.shown == Some(r.id), label)
            .clicked()
        {
            actions.push(PanelAction::Show(r.id));
        }
    };
    if let Some(slice) = &view.current_slice {
        let here: Vec<&AskRecord> = view.corrections.answers_on(slice).collect();
        ui.label(RichText::new(format!("Answers on this slice ({})", here.len())).strong());
        for r in here.iter().rev() {
            entry(ui, r, actions);
        }
    }
    egui::CollapsingHeader::new(format!(
        "All answers on this study ({})",
        view.corrections.answers.len()
    ))
    .default_open(false)
    .show(ui, |ui| {
        for r in view.corrections.answers.iter().rev() {
            entry(ui, r, actions);
        }
    });
}

/// "6.1 GB", "427 MB", "6.6 MB".
fn human_bytes(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.1} MB", b / 1e6)
    }
}

/// "Send SEG and SR to [server] [Send]": the corrections and measurements of the series in view
/// go back to a configured PACS.
fn send_row(
    ui: &mut egui::Ui,
    edit: &mut EditState,
    view: &PanelView<'_>,
    actions: &mut Vec<PanelAction>,
) {
    if view.pacs_servers.is_empty() || view.store.is_none() {
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label("Send SEG and SR to");
        let chosen = edit.send_to.min(view.pacs_servers.len() - 1);
        egui::ComboBox::from_id_salt("send-to")
            .selected_text(view.pacs_servers[chosen].as_str())
            .show_ui(ui, |ui| {
                for (i, name) in view.pacs_servers.iter().enumerate() {
                    ui.selectable_value(&mut edit.send_to, i, name);
                }
            });
        match &view.sending {
            Some(server) => {
                ui.spinner();
                ui.label(format!("sending to {server}…"));
            }
            None => {
                if ui.button("Send").clicked() {
                    actions.push(PanelAction::SendToPacs(chosen));
                }
            }
        }
    });
}
