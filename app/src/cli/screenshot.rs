//! `groundglass screenshot STUDY [--layout 1x1|1x3] [--plane P] [--index K] [--window C,W|preset]
//! [--size WxH] [--model DIR --task report|grounded|segment|vqa [--question TEXT] [--clinical TEXT]
//! [--lang en|de] [--semsam] [--result-json FILE]] [--store-root DIR] --out FILE.png`: the real
//! viewer UI, rendered offscreen through the same wgpu path (egui_kittest's wgpu renderer; a
//! software adapter such as lavapipe is fine). With `--model`, the viewer's own model panel asks
//! about the shown slice first, and the picture shows the answer with its overlays.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use eframe::egui;
use groundglass_study::{Plane, Window};

use crate::viewer::{Layout, Options, ViewerApp};

#[derive(Args, Debug)]
pub struct ScreenshotArgs {
    pub study: PathBuf,
    #[arg(long, default_value = "1x1")]
    pub layout: String,
    #[arg(long)]
    pub plane: Option<String>,
    #[arg(long)]
    pub index: Option<usize>,
    // A negative level is typed as users type it: `--window -600,1500`.
    #[arg(long, allow_hyphen_values = true)]
    pub window: Option<String>,
    #[arg(long, default_value = "1280x800")]
    pub size: String,
    #[arg(long)]
    pub out: PathBuf,
    /// A checkpoint folder: ask about the shown slice before rendering.
    #[arg(long, requires = "task")]
    pub model: Option<PathBuf>,
    /// report, grounded, segment or vqa.
    #[arg(long, requires = "model")]
    pub task: Option<String>,
    #[arg(long)]
    pub question: Option<String>,
    #[arg(long)]
    pub clinical: Option<String>,
    #[arg(long, default_value = "en")]
    pub lang: String,
    #[arg(long)]
    pub semsam: bool,
    /// Where to write the answer (the `ask --json` shape).
    #[arg(long)]
    pub result_json: Option<PathBuf>,
    /// Show the corrections (masks, boxes, measurements) of the study's store under this folder
    /// (the viewer's is `~/.local/share/groundglass/studies` on Linux); `--model`'s answer is
    /// then saved there too. Without it, a scratch store removed at the end.
    #[arg(long)]
    pub store_root: Option<PathBuf>,
}

pub fn parse_window(text: &str) -> anyhow::Result<Window> {
    match super::preset_or_centre_width(text)? {
        Some(w) => Ok(w),
        None => bail!(
            "--window {text:?}: expected a preset (lung, soft_tissue, bone, brain, liver) or C,W"
        ),
    }
}

pub fn run(args: ScreenshotArgs) -> anyhow::Result<ExitCode> {
    let layout = match args.layout.as_str() {
        "1x1" => Layout::Single,
        "1x3" => Layout::Three,
        other => bail!("--layout {other:?}: expected 1x1 or 1x3"),
    };
    let plane = args
        .plane
        .as_deref()
        .map(|p| {
            Plane::parse(p).with_context(|| {
                format!("--plane {p:?}: expected acquired, axial, coronal or sagittal")
            })
        })
        .transpose()?;
    let window = args.window.as_deref().map(parse_window).transpose()?;
    let task = args
        .task
        .as_deref()
        .map(super::ask::parse_task)
        .transpose()?;
    let lang = super::ask::parse_lang(&args.lang)?;
    if let Some(task) = task {
        super::ask::check_question(task, args.question.as_deref())?;
    }
    let (w, h) = super::offscreen::parse_size(&args.size, "--size")?;
    let scratch = RemovedOnDrop(
        std::env::temp_dir().join(format!("groundglass-screenshot-{}", std::process::id())),
    );
    let options = Options {
        path: Some(args.study.clone()),
        layout: Some(layout),
        plane,
        index: args.index,
        window,
        settings_path: None,
        model: args.model.clone(),
        precision: None,
        // A screenshot's answer is not the user's work: unless told where the stores are, keep
        // it out of their corrections, in a folder removed when the command ends.
        store_root: Some(args.store_root.clone().unwrap_or_else(|| scratch.0.clone())),
        pacs_cache: None,
        gpu_budget_mb: None,
    };
    let mut harness = egui_kittest::Harness::builder()
        .with_size(egui::vec2(w, h))
        .wgpu()
        .build_eframe(|cc| ViewerApp::new(cc, options));
    super::offscreen::wait_until_loaded(&mut harness, &args.study, Duration::from_secs(120))?;
    harness.run_steps(3);
    if let Some(task) = task {
        {
            let app = harness.state_mut();
            app.model_panel.lang = lang;
            app.model_panel.semsam = args.semsam;
            app.model_panel.question = args.question.clone().unwrap_or_default();
            app.model_panel.clinical = args.clinical.clone().unwrap_or_default();
        }
        let record = super::offscreen::ask_and_wait(&mut harness, task, Duration::from_secs(600))?;
        harness.run_steps(3);
        if let Some(path) = &args.result_json {
            let json = super::ask::AskJson {
                answer: record.answer(),
                plane: record.slice.plane,
                index: record.slice.index,
                slice_size: record.slice.size,
                mark: record.mark.clone(),
            };
            std::fs::write(path, serde_json::to_string_pretty(&json)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    let image = harness
        .render()
        .map_err(|e| anyhow::anyhow!("offscreen rendering failed: {e}"))?;
    image
        .save(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let app = harness.state();
    for n in &app.notices {
        eprintln!("{}: {}", if n.error { "error" } else { "warning" }, n.text);
    }
    // A picture with an error in the status line (a volume the GPU could not take) is a failure.
    Ok(if app.is_loaded() && !app.notices.iter().any(|n| n.error) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A scratch folder removed when dropped (on success and on error alike).
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
