// Shared by the fuzz targets: the loaders take paths, so each input is written to a file in
// memory-backed storage, opened, and every series loaded and sliced in all planes.

use std::path::PathBuf;

use groundglass_study::{extract, open, NoProgress, Plane, PlaneGrid};

pub fn run(bytes: &[u8], name: &str) {
    // The engine catches panics inside third-party decoders and reports them as errors; keep the
    // panic hook from aborting on those. A panic that escapes the engine still aborts the run
    // (libfuzzer-sys catches it at the boundary).
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let dir = std::env::temp_dir().join(format!("gg-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path: PathBuf = dir.join(name);
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    let Ok(study) = open(&path) else { return };
    for series in &study.series {
        let Ok(volume) = series.load(0, &NoProgress) else { continue };
        let _ = volume.value_range();
        let _ = volume.default_window();
        for plane in [Plane::Acquired, Plane::Axial, Plane::Coronal, Plane::Sagittal] {
            let grid = PlaneGrid::new(&volume, plane);
            // Reformatting huge sparse grids is legal but slow; the fuzzer looks for crashes.
            if grid.width * grid.height <= 1 << 20 {
                let _ = extract(&volume, plane, grid.count / 2);
            }
        }
    }
}
