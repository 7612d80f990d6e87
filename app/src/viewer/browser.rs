//! The series browser: one row per series with its thumbnail, modality, description, size and
//! warnings. Double-click loads a series.

use eframe::egui::{self, Color32, RichText};
use groundglass_study::Series;

/// Shows the list; returns the series to load, if one was double-clicked.
pub fn show(
    ui: &mut egui::Ui,
    series: &[Series],
    thumbnails: &[Option<egui::TextureHandle>],
    current: Option<usize>,
) -> Option<usize> {
    let mut chosen = None;
    ui.heading("Series");
    egui::ScrollArea::vertical().show(ui, |ui| {
        for (i, s) in series.iter().enumerate() {
            let selected = current == Some(i);
            let response = ui
                .horizontal(|ui| {
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
                                RichText::new(format!("⚠ {} warning(s)", s.warnings.len()))
                                    .color(Color32::from_rgb(230, 200, 90)),
                            )
                            .on_hover_text(s.warnings.join("\n"));
                        }
                    });
                })
                .response
                .interact(egui::Sense::click());
            if response.double_clicked() {
                chosen = Some(i);
            }
            ui.separator();
        }
    });
    chosen
}
