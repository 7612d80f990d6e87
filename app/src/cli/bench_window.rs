//! `groundglass bench frames STUDY --window`: the viewer in a real window (eframe, winit, the
//! wgpu surface; no read-back), driven by scripted input (wheel scrolling, then a left-button
//! window drag, injected into each frame's raw input), presenting without vsync so a frame takes
//! what it costs. Per phase: the interval between frames, and where it goes: the app's own `ui`
//! (layout, input, the engine calls), the rest of eframe's CPU work (tessellation, the paint
//! callbacks' uniform writes, command encoding), and what is left (the GPU, or the software
//! adapter's rasteriser, and presenting). Needs a display (X11 or Wayland; Xvfb is fine).

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use eframe::egui::{self, Event, PointerButton, Pos2};
use serde::Serialize;

use crate::viewer::{Options, ViewerApp};

#[derive(Serialize, Default, Clone)]
struct Phase {
    frames: usize,
    /// Wall time from one frame to the next.
    interval_mean_ms: f64,
    interval_p95_ms: f64,
    /// The viewer's `ui` (egui layout, input, the viewer's own work).
    ui_mean_ms: f64,
    /// eframe's CPU time for the frame, `ui` included (tessellation, paint callbacks, encoding).
    cpu_mean_ms: f64,
    /// The interval less the CPU time: the adapter drawing and presenting.
    gpu_and_present_mean_ms: f64,
}

#[derive(Serialize, Default, Clone)]
struct Report {
    adapter: String,
    size: [f32; 2],
    present_mode: &'static str,
    scroll: Phase,
    window_drag: Phase,
    texture_writes_during_interaction: u64,
}

#[derive(Default)]
struct Samples {
    interval: Vec<f64>,
    ui: Vec<f64>,
    cpu: Vec<f64>,
}

impl Samples {
    fn phase(&self) -> Phase {
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let mut sorted = self.interval.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let (interval, cpu) = (mean(&self.interval), mean(&self.cpu));
        Phase {
            frames: n,
            interval_mean_ms: interval,
            interval_p95_ms: sorted
                .get((n * 95 / 100).min(n.max(1) - 1))
                .copied()
                .unwrap_or(0.0),
            ui_mean_ms: mean(&self.ui),
            cpu_mean_ms: cpu,
            gpu_and_present_mean_ms: (interval - cpu).max(0.0),
        }
    }
}

/// The viewer with a script: warm-up frames once loaded, then `frames` of scrolling and `frames`
/// of window dragging, then it closes the window.
struct Scripted {
    app: ViewerApp,
    frames: usize,
    /// Frames run since the series was in (-1: not yet).
    step: i64,
    last_frame: Option<Instant>,
    scroll: Samples,
    drag: Samples,
    texture_writes_before: u64,
    size: [f32; 2],
    out: Arc<Mutex<Option<Report>>>,
}

const WARM_UP: i64 = 10;

impl Scripted {
    fn centre(&self) -> Pos2 {
        // The viewport's middle (the model panel takes the right).
        Pos2::new((self.size[0] - 340.0) / 2.0, self.size[1] / 2.0)
    }

    fn phase_of(&self, step: i64) -> Option<(bool, usize)> {
        let i = step - WARM_UP;
        let n = self.frames as i64;
        if i < 0 || i >= 2 * n {
            return None;
        }
        Some((i < n, (i % n) as usize))
    }
}

impl eframe::App for Scripted {
    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw: &mut egui::RawInput) {
        if self.step < 0 {
            return;
        }
        let centre = self.centre();
        match self.phase_of(self.step) {
            Some((true, i)) => {
                let down = (i / 20) % 2 == 0;
                raw.events.push(Event::PointerMoved(centre));
                raw.events.push(Event::MouseWheel {
                    unit: egui::MouseWheelUnit::Line,
                    delta: egui::vec2(0.0, if down { -1.0 } else { 1.0 }),
                    phase: egui::TouchPhase::Move,
                    source: egui::MouseWheelSource::Unknown,
                    modifiers: egui::Modifiers::NONE,
                });
            }
            Some((false, i)) => {
                if i == 0 {
                    raw.events.push(Event::PointerButton {
                        pos: centre,
                        button: PointerButton::Primary,
                        pressed: true,
                        modifiers: egui::Modifiers::NONE,
                    });
                }
                let offset = ((i % 40) as f32 - 20.0) * 3.0;
                raw.events
                    .push(Event::PointerMoved(centre + egui::vec2(offset, -offset)));
            }
            None => {}
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let now = Instant::now();
        let interval = self
            .last_frame
            .map(|t| now.duration_since(t).as_secs_f64() * 1e3);
        self.last_frame = Some(now);
        let cpu = frame.info().cpu_usage.map(|s| f64::from(s) * 1e3);
        let t = Instant::now();
        self.app.ui(ui, frame);
        let ui_ms = t.elapsed().as_secs_f64() * 1e3;
        let ctx = ui.ctx().clone();
        ctx.request_repaint();
        if self.step < 0 {
            if self.app.is_loaded() {
                self.step = 0;
                self.texture_writes_before =
                    self.app.upload_stats().map_or(0, |s| s.texture_writes);
            } else if !self.app.loading_stopped() {
                return;
            } else {
                // Loading failed: said below, nothing to time.
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                return;
            }
        }
        // This frame's interval and the previous frame's CPU time belong to the step before.
        if let (Some((scrolling, _)), Some(interval), Some(cpu)) =
            (self.phase_of(self.step - 1), interval, cpu)
        {
            let samples = if scrolling {
                &mut self.scroll
            } else {
                &mut self.drag
            };
            samples.interval.push(interval);
            samples.cpu.push(cpu);
        }
        if let Some((scrolling, _)) = self.phase_of(self.step) {
            let samples = if scrolling {
                &mut self.scroll
            } else {
                &mut self.drag
            };
            samples.ui.push(ui_ms);
        }
        self.step += 1;
        if self.step > WARM_UP + 2 * self.frames as i64 + 1 {
            let writes = self.app.upload_stats().map_or(0, |s| s.texture_writes);
            let report = Report {
                adapter: self.app.adapter_name().unwrap_or_default(),
                size: self.size,
                present_mode: "AutoNoVsync",
                scroll: self.scroll.phase(),
                window_drag: self.drag.phase(),
                texture_writes_during_interaction: writes - self.texture_writes_before,
            };
            if let Ok(mut out) = self.out.lock() {
                *out = Some(report);
            }
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

pub fn run(path: &Path, frames: usize, size: &str) -> anyhow::Result<ExitCode> {
    let (w, h) = super::offscreen::parse_size(size, "--size")?;
    let out = Arc::new(Mutex::new(None));
    let options = Options {
        path: Some(path.to_path_buf()),
        // Nothing of the user's: no settings file, corrections in a scratch folder.
        store_root: Some(
            std::env::temp_dir().join(format!("groundglass-bench-window-{}", std::process::id())),
        ),
        ..Default::default()
    };
    let mut wgpu_options = eframe::egui_wgpu::WgpuConfiguration::default();
    wgpu_options.surface.present_mode = eframe::wgpu::PresentMode::AutoNoVsync;
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Groundglass bench")
            .with_inner_size([w, h])
            .with_resizable(false),
        wgpu_options,
        ..Default::default()
    };
    let sink = out.clone();
    eframe::run_native(
        "Groundglass bench",
        native,
        Box::new(move |cc| {
            Ok(Box::new(Scripted {
                app: ViewerApp::new(cc, options),
                frames: frames.max(1),
                step: -1,
                last_frame: None,
                scroll: Samples::default(),
                drag: Samples::default(),
                texture_writes_before: 0,
                size: [w, h],
                out: sink,
            }))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open a window (is there a display?): {e}"))?;
    let report = out.lock().ok().and_then(|r| r.clone()).with_context(|| {
        format!(
            "{}: the series did not load, or the window closed early",
            path.display()
        )
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
