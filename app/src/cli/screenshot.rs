//! `groundglass screenshot STUDY [--layout 1x1|1x3] [--plane P] [--index K] [--window C,W|preset]
//! [--size WxH] --out FILE.png`: the real viewer UI, rendered offscreen through the same wgpu path
//! (egui_kittest's wgpu renderer; a software adapter such as lavapipe is fine).

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
    #[arg(long)]
    pub window: Option<String>,
    #[arg(long, default_value = "1280x800")]
    pub size: String,
    #[arg(long)]
    pub out: PathBuf,
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
    let (w, h) = super::offscreen::parse_size(&args.size, "--size")?;
    let options = Options {
        path: Some(args.study.clone()),
        layout: Some(layout),
        plane,
        index: args.index,
        window,
        settings_path: None,
    };
    let mut harness = egui_kittest::Harness::builder()
        .with_size(egui::vec2(w, h))
        .wgpu()
        .build_eframe(|cc| ViewerApp::new(cc, options));
    super::offscreen::wait_until_loaded(&mut harness, &args.study, Duration::from_secs(120))?;
    harness.run_steps(3);
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
    Ok(if app.is_loaded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
