#![no_main]
// The corrections' two readers of untrusted bytes: the JSON-lines edit records `review apply`
// takes, and the store's journal as a crash, a full disk or a bad sector may leave it. Whatever
// opens is replayed into the corrections state and its label volume.

use groundglass_feedback::{Corrections, Entry, Store};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let layout = layout();
    // As edit records (one JSON object a line).
    let text = String::from_utf8_lossy(data);
    let entries: Vec<Entry> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let state = Corrections::replay(&entries);
    for uid in state.strokes.iter().map(|s| s.slice.series_uid.clone()) {
        let _ = state.label_volume(&uid, &layout);
    }
    // As a store's journal.
    let dir = std::env::temp_dir().join(format!("gg-fuzz-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() || std::fs::write(dir.join("journal.bin"), data).is_err() {
        return;
    }
    if let Ok(store) = Store::open(&dir) {
        let _ = store.recovery_notes();
        let state = Corrections::replay(store.entries());
        for uid in state.strokes.iter().map(|s| s.slice.series_uid.clone()) {
            let _ = state.display_labels(&uid, &layout);
        }
    }
});

/// A small volume's geometry for the label maps.
fn layout() -> groundglass_study::VolumeLayout {
    use groundglass_study::geometry::Affine;
    groundglass_study::VolumeLayout {
        dims: [24, 20, 12],
        affine: Affine::from_axes(
            [0.8, 0.0, 0.0],
            [0.0, 0.8, 0.0],
            [0.0, 0.0, 2.5],
            [-10.0, -8.0, 4.0],
        ),
        kind: groundglass_study::VoxelKind::I16,
        modality: groundglass_study::ModalityTransform::Rescale(groundglass_study::Rescale::IDENTITY),
        photometric: groundglass_study::Photometric::Monochrome2,
        windows: vec![],
        voi_function: Default::default(),
        voi_lut: None,
        padding: None,
    }
}
