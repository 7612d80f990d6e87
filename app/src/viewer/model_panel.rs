//! The model panel: which checkpoint, what to ask about the current slice, the answer streaming in,
//! its findings with their verdicts, and the answers already given on this slice and study. The
//! panel holds only what the screen needs; answers and verdicts live in the engine's `History`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use eframe::egui::{self, Color32, RichText};
use groundglass_feedback::{AskRecord, History, SliceRef, Verdict};
use groundglass_grounding::parse::RadGrounder;
use groundglass_grounding::{LabelMap, Language};
use groundglass_model::prompt::{Lang, Task};
use groundglass_model::ModelSummary;

use super::overlay::finding_colour;

/// An answer being generated.
pub struct Running {
    pub id: u64,
    pub task: Task,
    pub slice: SliceRef,
    pub question: Option<String>,
    pub clinical: Option<String>,
    pub semsam: bool,
    pub text: String,
    pub cancel: Arc<AtomicBool>,
    pub started: Instant,
}

impl Running {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

pub struct ModelPanel {
    pub dir: Option<PathBuf>,
    pub summary: Option<ModelSummary>,
    pub loading: Option<PathBuf>,
    pub error: Option<String>,
    pub lang: Lang,
    pub clinical: String,
    pub question: String,
    pub semsam: bool,
    pub running: Option<Running>,
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
            question: String::new(),
            semsam: false,
            running: None,
        }
    }
}

/// What the user did in the panel this frame.
#[derive(Clone, Debug, PartialEq)]
pub enum PanelAction {
    LoadModel(PathBuf),
    Ask(Task),
    Cancel,
    /// Show an answer (and go to its slice).
    Show(u64),
    /// Centre and zoom on a finding of the shown answer.
    Focus(usize),
    Verdict(usize, Option<Verdict>),
}

/// What the panel shows besides its own state.
pub struct PanelView<'a> {
    pub history: &'a History,
    pub shown: Option<u64>,
    pub current_slice: Option<SliceRef>,
    /// A finding hovered on the image (highlights its keyword).
    pub hovered_on_image: Option<usize>,
    pub selected: Option<usize>,
    pub can_ask: bool,
}

/// Draws the panel; returns the actions and the finding whose keyword is hovered.
pub fn show(
    ui: &mut egui::Ui,
    panel: &mut ModelPanel,
    view: PanelView<'_>,
) -> (Vec<PanelAction>, Option<usize>) {
    let mut actions = Vec::new();
    let mut hovered = None;
    egui::ScrollArea::vertical().show(ui, |ui| {
        model_section(ui, panel, &mut actions);
        ui.separator();
        ask_section(ui, panel, view.can_ask, &mut actions);
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
        if let Some(record) = view.shown.and_then(|id| view.history.get(id)) {
            hovered = answer_section(ui, record, &view, &mut actions);
        }
        history_section(ui, &view, &mut actions);
    });
    (actions, hovered)
}

fn task_name(task: Task) -> &'static str {
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
        // The folder's name; the full path on hover.
        let name = panel
            .dir
            .as_ref()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "(none)".into());
        let full = panel
            .dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        ui.label(RichText::new(name).monospace())
            .on_hover_text(full);
        if ui.button("Choose…").clicked() {
            if let Some(dir) = rfd::FileDialog::new().pick_folder() {
                actions.push(PanelAction::LoadModel(dir));
            }
        }
    });
    if let Some(dir) = &panel.loading {
        ui.add(
            egui::ProgressBar::new(0.0)
                .animate(true)
                .text(format!("loading {}", dir.display())),
        );
    }
    if let Some(s) = &panel.summary {
        ui.label(&s.architecture);
        ui.label(format!(
            "{:.1} M parameters · {} · {}{}",
            s.parameters as f64 / 1e6,
            s.device,
            s.dtype,
            if s.mask_head { " · mask head" } else { "" }
        ));
    }
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
    ui.checkbox(&mut panel.semsam, "MIS-SemSam decoding");
    ui.horizontal_wrapped(|ui| {
        for task in [Task::Report, Task::Grounded, Task::Segment] {
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

/// The shown answer: its text with coloured keywords, its findings and verdicts. Returns the
/// finding whose keyword or row is hovered.
fn answer_section(
    ui: &mut egui::Ui,
    record: &AskRecord,
    view: &PanelView<'_>,
    actions: &mut Vec<PanelAction>,
) -> Option<usize> {
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
        ui.label(RichText::new(format!("Q: {q}")).italics());
    }
    let language = match record.lang {
        Lang::En => Language::En,
        Lang::De => Language::De,
    };
    let parser = RadGrounder {
        labels: LabelMap::radgrounder(),
        language,
    };
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        for span in parser.spans(&record.text) {
            match span.finding {
                None => {
                    ui.label(span.text);
                }
                Some(i) => {
                    let lit = view.hovered_on_image == Some(i) || view.selected == Some(i);
                    let mut text = RichText::new(span.text).color(finding_colour(i)).strong();
                    if lit {
                        text = text.background_color(Color32::from_gray(70)).underline();
                    }
                    let r = ui.add(egui::Label::new(text).sense(egui::Sense::click()));
                    if r.hovered() {
                        hovered = Some(i);
                    }
                    if r.clicked() {
                        actions.push(PanelAction::Focus(i));
                    }
                }
            }
        }
    });
    if !record.findings.is_empty() {
        ui.add_space(4.0);
        egui::Grid::new("findings").striped(true).show(ui, |ui| {
            for (i, f) in record.findings.iter().enumerate() {
                let verdict = view.history.verdict(record.id, i);
                let lit = view.hovered_on_image == Some(i) || view.selected == Some(i);
                let mut name = RichText::new(&f.keyword).color(finding_colour(i));
                if lit {
                    name = name.strong().background_color(Color32::from_gray(70));
                }
                let r = ui.add(egui::Label::new(name).sense(egui::Sense::click()));
                if r.hovered() {
                    hovered = Some(i);
                }
                if r.clicked() {
                    actions.push(PanelAction::Focus(i));
                }
                ui.label(
                    RichText::new(f.class_name.clone().unwrap_or_default())
                        .small()
                        .color(Color32::GRAY),
                );
                let accepted = verdict == Some(Verdict::Accepted);
                let rejected = verdict == Some(Verdict::Rejected);
                if ui.selectable_label(accepted, "Accept (a)").clicked() {
                    actions.push(PanelAction::Verdict(
                        i,
                        (!accepted).then_some(Verdict::Accepted),
                    ));
                }
                if ui.selectable_label(rejected, "Reject (x)").clicked() {
                    actions.push(PanelAction::Verdict(
                        i,
                        (!rejected).then_some(Verdict::Rejected),
                    ));
                }
                ui.end_row();
            }
        });
    }
    ui.separator();
    hovered
}

fn history_section(ui: &mut egui::Ui, view: &PanelView<'_>, actions: &mut Vec<PanelAction>) {
    let entry = |ui: &mut egui::Ui, r: &AskRecord, actions: &mut Vec<PanelAction>| {
        let label = format!(
            "{} · {} {} · {} · {} finding(s)",
            r.time_of_day(),
            r.slice.plane.name(),
            r.slice.index + 1,
            task_name(r.task),
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
        let here: Vec<&AskRecord> = view.history.for_slice(slice).collect();
        ui.label(RichText::new(format!("On this slice ({})", here.len())).strong());
        for r in here.iter().rev() {
            entry(ui, r, actions);
        }
    }
    egui::CollapsingHeader::new(format!(
        "All answers on this study ({})",
        view.history.records.len()
    ))
    .default_open(false)
    .show(ui, |ui| {
        for r in view.history.records.iter().rev() {
            entry(ui, r, actions);
        }
    });
}
