//! The `groundglass` binary: the viewer (later issues) and its command-line subcommands.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("groundglass: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
