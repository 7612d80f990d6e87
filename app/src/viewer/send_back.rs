//! Sends the series' corrections and measurements back to a PACS from the panel: the same DICOM
//! SEG and SR `export --send` writes (identifiers kept, so the PACS files them with the source
//! study), made and sent on a background thread (STOW-RS or C-STORE); the outcome is a notice.
//! The files stay in the store's `sent/` folder, so nothing is lost when the PACS refuses them.

use std::sync::mpsc;

use groundglass_feedback::export::Deidentify;

use super::pacs_window::PacsWindow;
use super::ViewerApp;
use crate::cli::export::{write_seg, write_sr};

/// A send under way: its answer (what was sent, or why not).
pub struct Sending {
    pub server: String,
    rx: mpsc::Receiver<Result<String, String>>,
}

impl ViewerApp {
    /// Starts sending the SEG and SR of the series in view to configured PACS server `index`.
    pub fn send_to_pacs(&mut self, ctx: &eframe::egui::Context, index: usize) {
        let Some(entry) = self.settings.pacs_servers.get(index).cloned() else {
            return;
        };
        let server = match PacsWindow::server(&entry, &self.pacs_secrets) {
            Ok(s) => s,
            Err(e) => return self.notice(true, format!("Send to {}: {e}", entry.name)),
        };
        let (Some(series), Some(store)) = (
            self.current.and_then(|i| self.series.get(i)).cloned(),
            self.store.as_ref().map(|s| s.dir().to_path_buf()),
        ) else {
            return self.notice(
                true,
                "Send: no series with a corrections store is open".into(),
            );
        };
        let corrections = self.corrections.clone();
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        let name = entry.name.clone();
        std::thread::spawn(move || {
            let outcome = (|| -> anyhow::Result<String> {
                let out = store.join("sent");
                std::fs::create_dir_all(&out)?;
                let label = store.display().to_string();
                let written: Vec<_> = [
                    (
                        "SEG",
                        write_seg(&series, &corrections, &out, Deidentify::No, &label)?,
                    ),
                    (
                        "SR",
                        write_sr(&series, &corrections, &out, Deidentify::No, &label)?,
                    ),
                ]
                .into_iter()
                .filter_map(|(kind, w)| Some((kind, w?)))
                .collect();
                if written.is_empty() {
                    anyhow::bail!("this series has no boxes, masks or measurements to send");
                }
                let files: Vec<_> = written.iter().map(|(_, w)| w.path.clone()).collect();
                let stored = groundglass_pacs::store(&server, &files)?;
                let what: Vec<&str> = written.iter().map(|(kind, _)| *kind).collect();
                Ok(format!(
                    "Sent {} to {} ({} instance(s) stored)",
                    what.join(" and "),
                    server.name(),
                    stored.stored
                ))
            })()
            .map_err(|e| format!("Send to {}: {e:#}", server.name()));
            let _ = tx.send(outcome);
            ctx.request_repaint();
        });
        self.sending = Some(Sending { server: name, rx });
    }

    /// Takes a finished send's outcome into the notices.
    pub fn pump_send(&mut self) {
        let Some(sending) = &self.sending else {
            return;
        };
        match sending.rx.try_recv() {
            Ok(Ok(done)) => {
                self.sending = None;
                self.notice(false, done);
            }
            Ok(Err(why)) => {
                self.sending = None;
                self.notice(true, why);
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => {
                let server = sending.server.clone();
                self.sending = None;
                self.notice(true, format!("Send to {server}: stopped without an answer"));
            }
        }
    }
}
