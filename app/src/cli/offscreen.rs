//! Shared by the commands that run the viewer offscreen (`screenshot`, `bench frames`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

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
