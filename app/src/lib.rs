//! The `groundglass` application: the viewer (one render context owning every GPU resource) and the
//! command-line subcommands. A library so the UI can be driven by tests (egui_kittest).

pub mod cli;
pub mod demo;
pub mod process_tuning;
pub mod render;
pub mod viewer;

/// Opens the viewer window; with no study given, the bundled demo study and model.
pub fn run_viewer(path: Option<std::path::PathBuf>) -> anyhow::Result<std::process::ExitCode> {
    match path {
        Some(p) => run_viewer_with(Some(p), None, None),
        None => run_viewer_with(demo::study(), demo::model(), None),
    }
}

/// Opens the viewer on `path` with `model` preselected (else the last used one).
pub fn run_viewer_with(
    path: Option<std::path::PathBuf>,
    model: Option<std::path::PathBuf>,
    precision: Option<groundglass_model::Precision>,
) -> anyhow::Result<std::process::ExitCode> {
    let options = viewer::Options {
        path,
        model,
        precision,
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
