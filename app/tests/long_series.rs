//! Series longer than the GPU's 3D-texture limit (app/src/render/fold.rs): the real binary's
//! `screenshot` with the limit lowered (GROUNDGLASS_MAX_TEXTURE_3D) draws exactly what it draws
//! unfolded, on every plane, on both sides of a part boundary; and a 2,100-slice CT shows on every
//! plane at the adapter's own limit.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A folder of the test's own (the tests run at once, and each removes its folder at the end).
fn scratch(test: &str) -> PathBuf {
    let d = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-long-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch");
    d
}

/// A NIfTI-1 int16 volume, 1 mm voxels, RAS+ axes along i, j, k, value `f(i, j, k)`.
fn write_nifti(path: &Path, dims: [usize; 3], f: impl Fn(usize, usize, usize) -> i16) {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    for (n, v) in [3, dims[0], dims[1], dims[2], 1, 1, 1, 1]
        .iter()
        .enumerate()
    {
        h[40 + 2 * n..42 + 2 * n].copy_from_slice(&(*v as i16).to_le_bytes());
    }
    h[70..72].copy_from_slice(&4i16.to_le_bytes()); // DT_INT16
    h[72..74].copy_from_slice(&16i16.to_le_bytes());
    for n in 0..8 {
        h[76 + 4 * n..80 + 4 * n].copy_from_slice(&1f32.to_le_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[112..116].copy_from_slice(&1f32.to_le_bytes()); // scl_slope
    h[254..256].copy_from_slice(&1i16.to_le_bytes()); // sform: scanner
    for (row, offset) in [280, 296, 312].iter().enumerate() {
        for col in 0..4 {
            let v = if col == row { 1f32 } else { 0.0 };
            h[offset + 4 * col..offset + 4 * col + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("nifti"));
    file.write_all(&h).expect("header");
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                file.write_all(&f(i, j, k).to_le_bytes()).expect("voxel");
            }
        }
    }
}

/// `groundglass screenshot`, with the 3D-texture limit lowered when given; the PNG's bytes.
fn screenshot(
    study: &Path,
    plane: &str,
    index: usize,
    limit: Option<usize>,
    out: &Path,
) -> Vec<u8> {
    let setting = Setting {
        limit,
        ..Setting::default()
    };
    shoot(study, plane, index, out, setting).0
}

/// What a screenshot is taken with besides its slice.
#[derive(Clone, Copy, Debug, Default)]
struct Setting<'a> {
    /// GROUNDGLASS_MAX_TEXTURE_3D.
    limit: Option<usize>,
    /// `--store-root`: the corrections (mask strokes among them) of the stores there are drawn.
    stores: Option<&'a Path>,
    /// GROUNDGLASS_GPU_BUDGET_MB.
    budget_mb: Option<&'a str>,
}

/// `groundglass screenshot` of a slice: the PNG's bytes and what it said on stderr (warnings;
/// an error fails the test).
fn shoot(
    study: &Path,
    plane: &str,
    index: usize,
    out: &Path,
    setting: Setting<'_>,
) -> (Vec<u8>, String) {
    // Winit wants a private runtime folder even offscreen (else it prints an error of its own).
    let runtime = out.with_file_name("runtime");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("runtime dir mode");
    let mut c = Command::new(env!("CARGO_BIN_EXE_groundglass"));
    c.env("XDG_RUNTIME_DIR", &runtime);
    c.arg("screenshot")
        .arg(study)
        .args(["--plane", plane, "--index", &index.to_string()])
        .args(["--window", "500,1000", "--size", "900x500", "--out"])
        .arg(out);
    if let Some(stores) = setting.stores {
        c.arg("--store-root").arg(stores);
    }
    match setting.limit {
        Some(l) => c.env("GROUNDGLASS_MAX_TEXTURE_3D", l.to_string()),
        None => c.env_remove("GROUNDGLASS_MAX_TEXTURE_3D"),
    };
    match setting.budget_mb {
        Some(b) => c.env("GROUNDGLASS_GPU_BUDGET_MB", b),
        None => c.env_remove("GROUNDGLASS_GPU_BUDGET_MB"),
    };
    let run = c.output().expect("groundglass runs");
    let err = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{plane} {index} ({setting:?}): {err}");
    assert!(!err.contains("error:"), "{err}");
    (std::fs::read(out).expect("png"), err)
}

/// Whether two RGBA frames `width` pixels wide show the same viewports: every pixel left of the
/// model panel (the rightmost `PANEL` pixels, whose speed estimate and loading spinner depend on
/// the moment), exactly but for egui's text, which may differ by two levels in at most 0.1 % of
/// them. (Its glyph atlas is packed in the order texts first appear, which depends on timing; the
/// same glyph can then be sampled a level apart.)
fn same_rgba(a: &[u8], b: &[u8], width: usize) -> bool {
    const PANEL: usize = 360;
    if a.len() != b.len() || width <= PANEL {
        return false;
    }
    let (mut slight, mut compared) = (0, 0);
    for (row_a, row_b) in a.chunks_exact(4 * width).zip(b.chunks_exact(4 * width)) {
        let left = 4 * (width - PANEL);
        for (x, y) in row_a[..left]
            .chunks_exact(4)
            .zip(row_b[..left].chunks_exact(4))
        {
            let d = x
                .iter()
                .zip(y)
                .map(|(p, q)| p.abs_diff(*q))
                .max()
                .unwrap_or(0);
            if d > 2 {
                return false;
            }
            slight += usize::from(d > 0);
            compared += 1;
        }
    }
    slight * 1000 <= compared
}

/// [`same_rgba`] for two screenshots' PNG bytes.
fn same_png(a: &[u8], b: &[u8]) -> bool {
    let rgba = |bytes: &[u8]| {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::ALPHA | png::Transformations::EXPAND);
        let mut reader = decoder.read_info().expect("png");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("frame");
        buf.truncate(info.buffer_size());
        (buf, info.width as usize)
    };
    let ((a, width), (b, _)) = (rgba(a), rgba(b));
    same_rgba(&a, &b, width)
}

/// The brightest red level along the middle row of the viewport (left of the model panel, clear of
/// the orientation letters at its edges).
fn centre_grey(png_bytes: &[u8]) -> u8 {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("frame");
    let channels = buf.len() / (info.width * info.height) as usize;
    let (w, y) = (info.width as usize, info.height as usize / 2);
    (w / 10..w * 2 / 5)
        .map(|x| buf[(y * w + x) * channels])
        .max()
        .unwrap_or(0)
}

#[test]
fn a_folded_volume_draws_what_an_unfolded_one_draws() {
    let dir = scratch("folded");
    // Long along k (a long series) and long along i; every voxel's value says where it is.
    let cases = [
        ("long-k.nii", [16, 12, 100], 32, 2usize),
        ("long-i.nii", [100, 12, 16], 32, 0usize),
    ];
    for (name, dims, limit, axis) in cases {
        let study = dir.join(name);
        write_nifti(&study, dims, |i, j, k| {
            (10 * [i, j, k][axis] + i + j + k) as i16
        });
        for (plane, index) in [
            ("axial", 24),
            ("axial", 25),
            ("coronal", 5),
            ("sagittal", 7),
        ] {
            let plain = screenshot(&study, plane, index, None, &dir.join("plain.png"));
            let folded = screenshot(&study, plane, index, Some(limit), &dir.join("folded.png"));
            assert!(
                same_png(&plain, &folded),
                "{name} {plane} {index}: the folded volume draws something else"
            );
        }
    }
    // Axial slices 24 and 25 of the long-k volume sit in different parts (25 per part): each
    // shows its own value, not its neighbour part's.
    let study = dir.join("long-k.nii");
    let before = centre_grey(&screenshot(
        &study,
        "axial",
        24,
        Some(32),
        &dir.join("a.png"),
    ));
    let after = centre_grey(&screenshot(
        &study,
        "axial",
        25,
        Some(32),
        &dir.join("b.png"),
    ));
    assert!(
        after > before,
        "slice 25 ({after}) is brighter than 24 ({before})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where the viewer finds `study`'s corrections after an annotator's painted discs (radius 3
/// px at the centre of a 16 x 12 axial slice; `(slice, class id)` each) went into its store by
/// `review apply`: the store root to give the viewer.
fn painted_store(dir: &Path, study: &Path, discs: &[(usize, u32)]) -> PathBuf {
    let info = Command::new(env!("CARGO_BIN_EXE_groundglass"))
        .args(["info", "--json"])
        .arg(study)
        .output()
        .expect("info runs");
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).expect("info json");
    let uid = v["series"][0]["uid"]
        .as_str()
        .expect("series uid")
        .to_string();
    let edits: String = discs
        .iter()
        .map(|&(index, class_id)| {
            serde_json::json!({
                "op": "mask_stroke",
                "slice": {"series_uid": uid, "plane": "axial", "index": index, "size": [16, 12]},
                "class_id": class_id, "radius_px": 3.0, "points": [[8.0, 6.0]],
                "reviewer": "test"
            })
            .to_string()
                + "\n"
        })
        .collect();
    let path = dir.join("strokes.jsonl");
    std::fs::write(&path, edits).expect("edits");
    // `review apply` puts the study's store in the platform data directory.
    let home = dir.join("data");
    let applied = Command::new(env!("CARGO_BIN_EXE_groundglass"))
        .env("XDG_DATA_HOME", &home)
        .args(["review", "apply", "--study"])
        .arg(study)
        .arg("--edits")
        .arg(&path)
        .output()
        .expect("review runs");
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    home.join("groundglass/studies")
}

#[test]
fn mask_labels_on_a_folded_volume_draw_as_on_an_unfolded_one() {
    let dir = scratch("labels");
    let study = dir.join("long-k.nii");
    write_nifti(&study, [16, 12, 100], |i, j, k| (i + j + k) as i16);
    // Two painted discs of different classes on the axial slices either side of the boundary
    // between the folded parts (25 slices a part at a limit of 32).
    let stores = painted_store(&dir, &study, &[(24, 3), (25, 7)]);
    let empty = dir.join("no-stores");
    // Axial on each side of the boundary, and the coronal and sagittal planes that cross both.
    for (plane, index) in [
        ("axial", 24),
        ("axial", 25),
        ("coronal", 6),
        ("sagittal", 8),
    ] {
        let shot = |limit, data: &Path, name: &str| {
            let setting = Setting {
                limit,
                stores: Some(data),
                ..Setting::default()
            };
            shoot(&study, plane, index, &dir.join(name), setting).0
        };
        let plain = shot(None, &stores, "plain.png");
        let folded = shot(Some(32), &stores, "folded.png");
        assert!(
            same_png(&plain, &folded),
            "{plane} {index}: the folded labels draw something else"
        );
        let bare = shot(None, &empty, "bare.png");
        assert!(
            !same_png(&plain, &bare),
            "{plane} {index}: the mask is not drawn"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_volume_over_the_gpu_budget_shows_as_an_overview_folded_or_not() {
    let dir = scratch("overview");
    let study = dir.join("long-k.nii");
    write_nifti(&study, [16, 12, 100], |i, j, k| (10 * k + i + j) as i16);
    // 16 x 12 x 100 int16 and its labels take 56 KB; a budget of 20 KB keeps every 2nd voxel.
    let shot = |plane: &str, index: usize, limit: Option<usize>, budget_mb: Option<&str>| {
        let setting = Setting {
            limit,
            budget_mb,
            ..Setting::default()
        };
        shoot(&study, plane, index, &dir.join("shot.png"), setting)
    };
    let budget = Some("0.02");
    for (plane, index) in [
        ("axial", 24),
        ("axial", 50),
        ("coronal", 5),
        ("sagittal", 7),
    ] {
        let (full, said) = shot(plane, index, None, None);
        assert!(!said.contains("overview"), "{said}");
        let (overview, said) = shot(plane, index, None, budget);
        assert!(
            said.contains("shown as an overview, every 2nd voxel")
                && said.contains("at full resolution in the 9 slices around where you read"),
            "{plane}: {said}"
        );
        // (The pictures differ in their status lines too: what the pixels hold is
        // `an_overview_is_at_full_resolution_where_one_reads`.)
        assert!(!same_png(&overview, &full), "{plane} {index}");
        // Folded as well (25 of the overview's 50 slices a part at a limit of 26):
        // the same picture as unfolded.
        let (folded, _) = shot(plane, index, Some(26), budget);
        assert!(
            same_png(&folded, &overview),
            "{plane} {index}: the folded overview differs"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The viewer in-process on the software adapter, with a GPU memory budget or none, on
/// `study`, one plane at a slice; notices cleared, so that the pictures compare pixel for pixel.
fn viewer(
    study: &Path,
    (plane, index): (groundglass_study::Plane, usize),
    budget_mb: Option<f64>,
    stores: &Path,
) -> egui_kittest::Harness<'static, groundglass_app::viewer::ViewerApp> {
    use eframe::egui;
    let options = groundglass_app::viewer::Options {
        path: Some(study.to_path_buf()),
        plane: Some(plane),
        index: Some(index),
        window: Some(groundglass_study::Window::new(500.0, 1000.0)),
        gpu_budget_mb: budget_mb,
        store_root: Some(stores.to_path_buf()),
        ..Default::default()
    };
    let mut h = egui_kittest::Harness::builder()
        .with_size(egui::vec2(700.0, 500.0))
        .wgpu()
        .build_eframe(move |cc| groundglass_app::viewer::ViewerApp::new(cc, options));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !h.state().loading_stopped() {
        h.step();
        assert!(
            std::time::Instant::now() < deadline,
            "loading did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    h.state_mut().notices.clear();
    h.run_steps(2);
    h
}

/// Red levels of row `y`, `x0..x1`, of an RGBA frame `width` pixels wide.
fn row(rgba: &[u8], width: u32, y: u32, x0: u32, x1: u32) -> Vec<u8> {
    (x0..x1)
        .map(|x| rgba[((y * width + x) * 4) as usize])
        .collect()
}

#[test]
fn an_overview_is_at_full_resolution_where_one_reads() {
    use groundglass_study::Plane;
    let dir = scratch("detail");
    let study = dir.join("long-k.nii");
    write_nifti(&study, [16, 12, 100], |i, j, k| (10 * k + i + j) as i16);
    // 20 KB: every 2nd voxel (7.2 KB) and a slab of 9 whole slices (576 bytes each with labels).
    let budget = Some(0.02);

    // The slice read: every voxel of it, as without a budget, and of the mask painted on it.
    let stores = painted_store(&dir, &study, &[(24, 3), (60, 7)]);
    let mut full = viewer(&study, (Plane::Axial, 24), None, &stores);
    let mut reduced = viewer(&study, (Plane::Axial, 24), budget, &stores);
    assert_eq!(full.state().detail_slices(), None, "no overview, no slab");
    assert_eq!(
        reduced.state().gpu_budget(),
        (Some(20971), "as asked".to_string())
    );
    assert_eq!(reduced.state().detail_slices(), Some(20..29));
    let expected = full.render().expect("render");
    let frame = reduced.render().expect("render");
    assert!(
        same_rgba(frame.as_raw(), expected.as_raw(), 700),
        "slice 24"
    );
    let bare = viewer(&study, (Plane::Axial, 24), budget, &dir.join("no-stores")).render();
    let bare = bare.expect("render");
    assert!(
        !same_rgba(bare.as_raw(), expected.as_raw(), 700),
        "the mask is not drawn"
    );

    // Scrolling on: the slab follows once the slice leaves its middle half, and only the
    // slices that come in are written.
    for (index, held) in [(26, 20..29), (27, 23..32), (60, 56..65)] {
        let writes = reduced
            .state()
            .upload_stats()
            .expect("stats")
            .texture_writes;
        reduced.state_mut().views[0].index = index;
        full.state_mut().views[0].index = index;
        reduced.run_steps(2);
        full.run_steps(2);
        assert_eq!(
            reduced.state().detail_slices(),
            Some(held.clone()),
            "{index}"
        );
        let written = reduced
            .state()
            .upload_stats()
            .expect("stats")
            .texture_writes
            - writes;
        let expected_writes = match index {
            26 => 0,
            27 => 3,
            _ => 9,
        };
        assert_eq!(written, expected_writes, "slices written for {index}");
        let expected = full.render().expect("render");
        assert!(
            same_rgba(
                reduced.render().expect("render").as_raw(),
                expected.as_raw(),
                700
            ),
            "slice {index} is not at full resolution"
        );
    }

    // Across the slices: the slab's band (the middle of the viewport, where it centres) is the
    // full volume's, the rest the overview.
    let mut full = viewer(&study, (Plane::Coronal, 5), None, &stores);
    let mut reduced = viewer(&study, (Plane::Coronal, 5), budget, &stores);
    let (a, b) = (
        full.render().expect("render"),
        reduced.render().expect("render"),
    );
    assert!(
        !same_rgba(a.as_raw(), b.as_raw(), 700),
        "the overview draws the full volume"
    );
    let middle = a.height() / 2;
    assert_eq!(
        row(a.as_raw(), a.width(), middle, 20, 300),
        row(b.as_raw(), b.width(), middle, 20, 300),
        "the middle row"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_budget_from_the_user_the_adapter_sets_one() {
    let dir = scratch("adapter-budget");
    let study = dir.join("small.nii");
    write_nifti(&study, [16, 12, 10], |i, j, k| (i + j + k) as i16);
    let h = viewer(
        &study,
        (groundglass_study::Plane::Axial, 5),
        None,
        &dir.join("stores"),
    );
    let adapter = h.state().adapter_name().unwrap_or_default();
    let (budget, source) = h.state().gpu_budget();
    if adapter.contains("Vulkan") {
        // Half the device-local heap (on llvmpipe, the host's memory).
        let budget = budget.unwrap_or(0);
        assert!(budget > 64 << 20, "{adapter}: {budget} bytes");
        assert!(source.starts_with("half of the adapter's"), "{source}");
    } else {
        // Other backends tell no memory size: no budget unless the user sets one.
        assert_eq!(budget, None, "{adapter}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_2100_slice_ct_shows_on_every_plane() {
    let dir = scratch("ct2100");
    let study = dir.join("ct2100.nii");
    // A body of 600 HU in air, its brightness rising with k, so every plane has something on it.
    write_nifti(&study, [128, 128, 2100], |i, j, k| {
        let inside = (i as i32 - 64).pow(2) + (j as i32 - 64).pow(2) < 50 * 50;
        if inside {
            200 + (k / 5) as i16
        } else {
            -1000
        }
    });
    // At 2,048, wgpu's guaranteed 3D-texture side (an adapter that takes more is held to it).
    for (plane, index) in [("axial", 1500), ("coronal", 64), ("sagittal", 64)] {
        let png = screenshot(
            &study,
            plane,
            index,
            Some(2048),
            &dir.join(format!("{plane}.png")),
        );
        assert!(centre_grey(&png) > 0, "{plane}: the viewport is black");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
