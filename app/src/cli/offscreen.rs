//! Shared by the commands that run the viewer offscreen (`screenshot`, `bench frames`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use groundglass_feedback::AskRecord;
use groundglass_model::prompt::Task;

use crate::viewer::ViewerApp;

/// `WxH`, e.g. `1280x800`, for the flag `flag`.
pub fn parse_size(text: &str, flag: &str) -> anyhow::Result<(f32, f32)> {
    text.split_once('x')
        .and_then(|(w, h)| Some((w.parse::<f32>().ok()?, h.parse::<f32>().ok()?)))
        .with_context(|| format!("{flag} {text:?}: expected WxH"))
}

/// Steps the harness until the study has loaded or loading stopped with a message. Loading runs on
/// background threads; `timeout` bounds the wait.
pub fn wait_until_loaded(
    harness: &mut egui_kittest::Harness<'_, ViewerApp>,
    study: &Path,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        harness.step();
        if harness.state().loading_stopped() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{}: loading did not finish within {} s",
                study.display(),
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for the model to load, asks the viewer's model panel `task` about the shown slice, and
/// steps until the answer is in; returns it.
pub fn ask_and_wait(
    harness: &mut egui_kittest::Harness<'_, ViewerApp>,
    task: Task,
    timeout: Duration,
) -> anyhow::Result<AskRecord> {
    let deadline = Instant::now() + timeout;
    while harness.state().model_panel.loading.is_some() {
        harness.step();
        if Instant::now() > deadline {
            bail!("the model did not load within {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Some(e) = &harness.state().model_panel.error {
        bail!("{e}");
    }
    if !harness.state().model_ready() {
        bail!("no model loaded");
    }
    let before = harness.state().corrections.answers.len();
    harness.state_mut().ask(task);
    if harness.state().model_panel.running.is_none() {
        bail!("the viewer could not ask (no slice loaded?)");
    }
    loop {
        harness.step();
        let app = harness.state();
        if app.model_panel.running.is_none() {
            if app.corrections.answers.len() > before {
                return Ok(app.corrections.answers[before].clone());
            }
            let why = app
                .notices
                .last()
                .map(|n| n.text.clone())
                .unwrap_or_default();
            bail!("the model gave no answer: {why}");
        }
        if Instant::now() > deadline {
            bail!("no answer within {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
