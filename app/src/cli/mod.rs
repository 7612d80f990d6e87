//! Command-line subcommands. Each one is a thin edge over the engine crates.

mod ask;
mod bench;
mod bench_frames;
mod grounding;
mod info;
mod screenshot;
mod slice;

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
    /// Benchmarks (timings as JSON; `bench/load.sh` sets them against the peers).
    Bench(bench::BenchArgs),
    /// Render the viewer offscreen (software adapter is fine) and write a PNG.
    Screenshot(screenshot::ScreenshotArgs),
    /// Ask the model about one slice: report, grounded report, segmentation or a question.
    Ask(ask::AskArgs),
    /// Grounded model output: `grounding parse` reads model text on stdin.
    Grounding(grounding::GroundingArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Info(args)) => info::run(args),
        Some(Command::Slice(args)) => slice::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Screenshot(args)) => screenshot::run(args),
        Some(Command::Grounding(args)) => grounding::run(args),
        Some(Command::Ask(args)) => ask::run(args),
        None => crate::run_viewer(cli.path),
    }
}
