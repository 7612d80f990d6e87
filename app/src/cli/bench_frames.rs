//! `groundglass bench frames STUDY`: the real viewer rendered offscreen through wgpu, one frame per
//! step, while the wheel scrolls and the left button drags the window. Prints frame-time
//! statistics and the GPU upload counters (texture writes during interaction must be zero).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use eframe::egui::{self, Event, PointerButton, Pos2};
use serde::Serialize;

use crate::viewer::{Options, ViewerApp};

#[derive(Serialize)]
struct Phase {
    frames: usize,
    mean_ms: f64,
    p95_ms: f64,
    max_ms: f64,
}

#[derive(Serialize)]
struct Report {
    adapter: String,
    size: [f32; 2],
    scroll: Phase,
    window_drag: Phase,
    texture_writes_during_interaction: u64,
    texture_writes_while_loading: u64,
    uniform_writes_during_interaction: u64,
}

fn phase(mut times: Vec<f64>) -> Phase {
    times.sort_by(f64::total_cmp);
    let n = times.len().max(1);
    Phase {
        frames: times.len(),
        mean_ms: times.iter().sum::<f64>() / n as f64,
        p95_ms: times.get((n * 95 / 100).min(n - 1)).copied().unwrap_or(0.0),
        max_ms: times.last().copied().unwrap_or(0.0),
    }
}

pub fn run(path: &Path, frames: usize, size: &str) -> anyhow::Result<ExitCode> {
    let (w, h) = super::offscreen::parse_size(size, "--size")?;
    let options = Options {
        path: Some(path.to_path_buf()),
        ..Default::default()
    };
    let mut harness = egui_kittest::Harness::builder()
        .with_size(egui::vec2(w, h))
        .with_step_dt(1.0 / 60.0)
        .wgpu()
        .build_eframe(|cc| ViewerApp::new(cc, options));
    super::offscreen::wait_until_loaded(&mut harness, path, Duration::from_secs(300))?;
    if !harness.state().is_loaded() {
        bail!(
            "{}: did not load: {:?}",
            path.display(),
            harness.state().notices
        );
    }
    harness.set_render_every_step(true);
    harness.run_steps(3);
    let before = harness
        .state()
        .upload_stats()
        .context("no render context")?;
    let centre = Pos2::new(w / 2.0, h / 2.0);
    harness.hover_at(centre);

    let mut scroll = Vec::with_capacity(frames);
    for i in 0..frames {
        let down = (i / 20) % 2 == 0;
        harness.event(Event::MouseWheel {
            unit: egui::MouseWheelUnit::Line,
            delta: egui::vec2(0.0, if down { -1.0 } else { 1.0 }),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        });
        let t = Instant::now();
        harness.step();
        scroll.push(t.elapsed().as_secs_f64() * 1e3);
    }

    let mut drag = Vec::with_capacity(frames);
    harness.event(Event::PointerButton {
        pos: centre,
        button: PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    for i in 0..frames {
        let offset = ((i % 40) as f32 - 20.0) * 3.0;
        harness.hover_at(centre + egui::vec2(offset, -offset));
        let t = Instant::now();
        harness.step();
        drag.push(t.elapsed().as_secs_f64() * 1e3);
    }
    harness.event(Event::PointerButton {
        pos: centre,
        button: PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    harness.step();

    let after = harness
        .state()
        .upload_stats()
        .context("no render context")?;
    let report = Report {
        adapter: harness.state().adapter_name().unwrap_or_default(),
        size: [w, h],
        scroll: phase(scroll),
        window_drag: phase(drag),
        texture_writes_during_interaction: after.texture_writes - before.texture_writes,
        texture_writes_while_loading: before.texture_writes,
        uniform_writes_during_interaction: after.uniform_writes - before.uniform_writes,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
