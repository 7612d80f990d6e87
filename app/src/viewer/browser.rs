//! The series browser: one row per series with its thumbnail, modality, description, size and
//! warnings. Double-click loads a series; its Compare button shows it beside the one on screen.

use eframe::egui::{self, Color32, RichText};
use groundglass_study::Series;

/// What the user asked of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Double-clicked: show it.
    Load(usize),
    /// Show it beside the one on screen.
    Compare(usize),
}

/// Shows the list; returns what was asked of it this frame.
pub fn show(
    ui: &mut egui::Ui,
    series: &[Series],
    thumbnails: &[Option<egui::TextureHandle>],
    current: Option<usize>,
    compared: Option<usize>,
) -> Option<Pick> {
    let mut chosen = None;
    ui.heading("Series");
    egui::ScrollArea::vertical().show(ui, |ui| {
        for (i, s) in series.iter().enumerate() {
            let selected = current == Some(i);
            let row = ui.scope(|ui| {
                // Labels must not take the clicks: the whole row is the target.
                ui.style_mut().interaction.selectable_labels = false;
                ui.horizontal(|ui| {
                    match thumbnails.get(i).and_then(|t| t.as_ref()) {
                        Some(t) => {
                            ui.add(egui::Image::new(t).fit_to_exact_size(egui::vec2(64.0, 64.0)));
                        }
                        None => {
                            ui.add_sized([64.0, 64.0], egui::Label::new("…"));
                        }
                    }
                    ui.vertical(|ui| {
                        let title = format!("{} {}", s.modality, s.description);
                        ui.label(if selected {
                            RichText::new(title).strong()
                        } else {
                            RichText::new(title)
                        });
                        ui.label(format!("{:?}", s.dims));
                        if !s.warnings.is_empty() {
                            ui.label(
                                RichText::new(format!("{} warning(s)", s.warnings.len()))
                                    .color(Color32::from_rgb(230, 200, 90)),
                            )
                            .on_hover_text(s.warnings.join("\n"));
                        }
                    });
                })
                .response
            });
            let response = ui
                .interact(
                    row.inner.rect,
                    ui.scope_id().with(("series-row", i)),
                    egui::Sense::click(),
                )
                .on_hover_text("Double-click to load");
            if response.double_clicked() {
                chosen = Some(Pick::Load(i));
            }
            if !selected && compared != Some(i) {
                let compare = ui
                    .small_button("Compare")
                    .on_hover_text("show it beside the series on screen");
                if compare.clicked() {
                    chosen = Some(Pick::Compare(i));
                }
            } else if compared == Some(i) {
                ui.label(RichText::new("compared").color(Color32::GRAY));
            }
            ui.separator();
        }
    });
    chosen
}
