//! Command-line subcommands. Each one is a thin edge over the engine crates.

mod bench;
mod info;
mod slice;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "groundglass",
    version,
    about = "Radiology viewer with a grounded vision-language model"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Describe the series found under a path (DICOM file, folder, DICOMDIR, NIfTI).
    Info(info::InfoArgs),
    /// Write one slice as an 8-bit PNG in radiological display convention.
    Slice(slice::SliceArgs),
    /// Benchmarks (timings as JSON; `bench/load.sh` sets them against the peers).
    Bench(bench::BenchArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Info(args) => info::run(args),
        Command::Slice(args) => slice::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
