//! The bundled demo: a phantom study (`assets/demo/study`) and the small model trained on phantoms
//! (`assets/models/demo`). Found beside the working directory (a source checkout), beside the
//! executable, or in the installed share folder (`../share/groundglass` from the executable, as
//! the .deb and the AppImage lay it out).

use std::path::{Path, PathBuf};

pub const STUDY: &str = "assets/demo/study";
pub const MODEL: &str = "assets/models/demo";

/// Folders that may hold `assets/`, most specific first.
fn roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Ok(dir) = std::env::var("GROUNDGLASS_ASSETS") {
        roots.push(PathBuf::from(dir));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        roots.push(exe_dir.join("../share/groundglass"));
        roots.push(exe_dir.clone());
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    roots
}

fn find(rel: &str, marker: &str) -> Option<PathBuf> {
    roots()
        .into_iter()
        .map(|r| r.join(rel))
        .find(|p| p.join(marker).exists() || (marker.is_empty() && p.exists()))
}

/// The bundled demo study, when installed.
pub fn study() -> Option<PathBuf> {
    find(STUDY, "")
}

/// The bundled demo model, when installed.
pub fn model() -> Option<PathBuf> {
    find(MODEL, "config.json")
}
