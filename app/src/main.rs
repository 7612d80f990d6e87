//! The `groundglass` binary: the viewer (later issues) and its command-line subcommands.

mod cli;
mod render;
mod viewer;

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

/// Opens the viewer window.
fn run_viewer(path: Option<std::path::PathBuf>) -> anyhow::Result<std::process::ExitCode> {
    let options = viewer::Options {
        path,
        settings_path: viewer::settings::Settings::default_path(),
        ..Default::default()
    };
    let native = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("Groundglass")
            .with_inner_size([1280.0, 800.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "Groundglass",
        native,
        Box::new(|cc| Ok(Box::new(viewer::ViewerApp::new(cc, options)))),
    )
    .map_err(|e| anyhow::anyhow!("cannot start the viewer: {e}"))?;
    Ok(std::process::ExitCode::SUCCESS)
}
