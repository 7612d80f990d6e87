//! The `groundglass` binary: the viewer, or a subcommand (see `groundglass --help`).

use clap::Parser;
use groundglass_app::cli;

fn main() -> std::process::ExitCode {
    groundglass_app::process_tuning::apply();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("groundglass: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
