//! Command-line subcommands. Each one is a thin edge over the engine crates.

pub mod ask;
mod batch;
mod bench;
mod bench_agreement;
mod bench_frames;
mod bench_matmul;
mod bench_model;
mod bench_serve;
mod bench_vocab;
mod bench_window;
mod demo;
pub mod export;
mod grounding;
mod info;
mod measure;
pub mod offscreen;
pub mod pacs;
mod phantom;
mod review;
mod screenshot;
mod selection;
mod serve;
mod slice;
mod token;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "groundglass",
    version,
    about = "Radiology viewer with a grounded vision-language model",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// A study to open in the viewer (DICOM file, folder, DICOMDIR or NIfTI).
    pub path: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Describe the series found under a path (DICOM file, folder, DICOMDIR, NIfTI).
    Info(info::InfoArgs),
    /// Write one slice as an 8-bit PNG in radiological display convention.
    Slice(slice::SliceArgs),
    /// Measure on one slice: a line's length, a region's statistics, a pixel's value.
    Measure(measure::MeasureArgs),
    /// PACS: `pacs echo`, `pacs search` and `pacs retrieve` over DICOMweb or DIMSE.
    Pacs(pacs::PacsArgs),
    /// Benchmarks (timings as JSON; `bench/load.sh` sets them against the peers).
    Bench(bench::BenchArgs),
    /// Render the viewer offscreen (software adapter is fine) and write a PNG.
    Screenshot(screenshot::ScreenshotArgs),
    /// Ask the model about one slice: report, grounded report, segmentation or a question.
    Ask(ask::AskArgs),
    /// Serve the model to other machines (`ask --remote`): OpenAI-shaped HTTP.
    Serve(serve::ServeArgs),
    /// Ask the model about every series of an archive folder, answers into each study's store.
    Batch(batch::BatchArgs),
    /// Grounded model output: `grounding parse` reads model text on stdin.
    Grounding(grounding::GroundingArgs),
    /// Corrections: `review apply` applies a JSON-lines file of edits to a study's store.
    Review(review::ReviewArgs),
    /// Export a study's corrections: RadGrounder training data, NIfTI label maps or DICOM SEG.
    Export(export::ExportArgs),
    /// The bundled demo: the viewer on the demo study, or `--headless` its grounded report.
    Demo(demo::DemoArgs),
    /// Write a synthetic phantom study (DICOM series, NIfTI image and label map).
    Phantom(phantom::PhantomArgs),
    /// Train a small grounding model in Candle on synthetic phantoms (and corrections).
    Train(train::TrainArgs),
    /// Evaluate a model: `eval grounding` on fresh phantoms.
    Eval(train::EvalArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Info(args)) => info::run(args),
        Some(Command::Slice(args)) => slice::run(args),
        Some(Command::Measure(args)) => measure::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Pacs(args)) => pacs::run(args),
        Some(Command::Screenshot(args)) => screenshot::run(args),
        Some(Command::Grounding(args)) => grounding::run(args),
        Some(Command::Ask(args)) => ask::run(args),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Batch(args)) => batch::run(args),
        Some(Command::Review(args)) => review::run(args),
        Some(Command::Export(args)) => export::run(args),
        Some(Command::Train(args)) => train::run_train(args),
        Some(Command::Demo(args)) => demo::run(args),
        Some(Command::Phantom(args)) => phantom::run(args),
        Some(Command::Eval(args)) => train::run_eval(args),
        None => crate::run_viewer(cli.path),
    }
}

/// A window preset name or "C,W"; `Ok(None)` when the text is neither (callers add their own
/// keywords such as `auto`).
pub fn preset_or_centre_width(text: &str) -> anyhow::Result<Option<groundglass_study::Window>> {
    use anyhow::{bail, Context as _};
    let t = text.trim();
    if let Some(p) = groundglass_study::WindowPreset::parse(t) {
        return Ok(Some(p.window()));
    }
    let Some((c, w)) = t.split_once(',') else {
        return Ok(None);
    };
    let c: f64 = c
        .trim()
        .parse()
        .with_context(|| format!("window centre {c:?} is not a number"))?;
    let w: f64 = w
        .trim()
        .parse()
        .with_context(|| format!("window width {w:?} is not a number"))?;
    if w.is_nan() || w <= 0.0 {
        bail!("window width must be positive, got {w}");
    }
    Ok(Some(groundglass_study::Window::new(c, w)))
}
