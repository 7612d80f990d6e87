//! `groundglass demo [--headless] [--json]`: the bundled demo. Without `--headless` the viewer
//! opens the demo study with the demo model; with it, the demo model's grounded report on an axial
//! slice of the demo study is printed (the `ask` JSON with `--json`). Offline by construction: the
//! app makes no network connection anywhere.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::ask::AskArgs;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Print the grounded report instead of opening the window.
    #[arg(long)]
    pub headless: bool,
    #[arg(long)]
    pub json: bool,
    /// Language of the report.
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// Precision, as `ask --dtype` (auto, f32, bf16, f16, q8_0, q4_k).
    #[arg(long, default_value = "auto")]
    pub dtype: String,
}

/// The demo's axial slice: the middle of the upper abdomen, where the liver, the spleen, the
/// stomach and the kidneys are.
pub const DEMO_SLICE_FRACTION: f64 = 0.45;

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let study = crate::demo::study().context(
        "the demo study is not installed (assets/demo/study beside the program or in ../share/groundglass)",
    )?;
    let model = crate::demo::model().context(
        "the demo model is not installed (assets/models/demo beside the program or in ../share/groundglass)",
    )?;
    if !args.headless {
        let precision = super::ask::parse_precision_choice(&args.dtype)?;
        return crate::run_viewer_with(Some(study), Some(model), precision);
    }
    let opened = groundglass_study::open(&study)?;
    let slices = opened
        .series
        .first()
        .and_then(|s| s.dims.get(2).copied())
        .unwrap_or(1);
    let index = ((slices as f64 - 1.0) * DEMO_SLICE_FRACTION).round() as usize;
    let ask = AskArgs {
        study,
        model: Some(model),
        remote: None,
        remote_token_file: None,
        remote_api: "groundglass".into(),
        remote_model: "radgrounder".into(),
        remote_image_size: 224,
        selection: super::selection::SliceSelection {
            series: 0,
            plane: "axial".into(),
            index: Some(index),
            volume: 0,
        },
        task: "grounded".into(),
        question: None,
        clinical: None,
        lang: args.lang,
        semsam: false,
        semsam_k: 8,
        semsam_m: 10,
        semsam_p: 0.9,
        max_new_tokens: groundglass_model::session::MAX_NEW_TOKENS,
        dtype: args.dtype,
        soft_capping: "auto".into(),
        json: args.json,
        mark: None,
    };
    super::ask::run(ask)
}
