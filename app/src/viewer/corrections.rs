//! The viewer's link to the study's corrections store: every answer, verdict and correction is
//! appended there (durable before the call returns) and the replayed state is what the screen
//! shows. Undo and redo are entries too, so a crash never loses an acknowledged edit and the store
//! tells the whole story.

use groundglass_feedback::store::default_dir;
use groundglass_feedback::{key::study_key, Corrections, Edit, Store, Verdict};
use groundglass_grounding::{LabelMap, Language};

use super::editing::{EditEvent, EditInput, Tool};
use super::overlay::{class_colour, FindingOverlay};
use super::ViewerApp;
use crate::render::RenderContext;

impl ViewerApp {
    /// Opens (or creates) the store of the study just opened, and shows what it holds.
    pub(super) fn open_store(&mut self) {
        let key = study_key(&self.series);
        let dir = match &self.options.store_root {
            Some(root) => Some(root.join(&key)),
            None => default_dir(&key),
        };
        let Some(dir) = dir else {
            self.notice(
                true,
                "no data directory on this platform: corrections are not saved".into(),
            );
            return;
        };
        match Store::open(&dir) {
            Ok(store) => {
                for (lost, text) in store.recovery_notes() {
                    self.notice(lost, text);
                }
                self.corrections = Corrections::replay(store.entries());
                self.next_answer_id = self
                    .corrections
                    .answers
                    .iter()
                    .map(|r| r.id + 1)
                    .max()
                    .unwrap_or(1);
                self.store = Some(store);
                self.labels_stale = true;
            }
            Err(e) => self.notice(true, format!("corrections are not saved: {e}")),
        }
    }

    pub(super) fn next_answer_id(&mut self) -> u64 {
        let id = self.next_answer_id;
        self.next_answer_id += 1;
        id
    }

    fn reviewer(&self) -> String {
        self.settings
            .reviewer
            .clone()
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(super::default_reviewer)
    }

    /// Appends an edit to the store and replays. `undoable` edits go on the undo stack.
    pub fn record_edit(&mut self, edit: Edit, undoable: bool) {
        let reviewer = self.reviewer();
        let seq = match self.store.as_mut() {
            Some(store) => match store.append(edit.clone(), &reviewer) {
                Ok(entry) => Some(entry.seq),
                Err(e) => {
                    self.notice(true, format!("the correction was NOT saved: {e}"));
                    return;
                }
            },
            None => None,
        };
        match (&self.store, seq) {
            (Some(store), Some(seq)) => {
                self.corrections = Corrections::replay(store.entries());
                if undoable {
                    self.undo_stack.push(seq);
                    self.redo_stack.clear();
                }
            }
            _ => {
                // No store (no data directory): keep working in memory, as the notice said.
                let entries = vec![groundglass_feedback::Entry {
                    seq: 0,
                    at_unix_ms: groundglass_feedback::now_unix_ms(),
                    reviewer,
                    edit,
                }];
                let mut c = std::mem::take(&mut self.corrections);
                let more = Corrections::replay(&entries);
                c.answers.extend(more.answers);
                c.annotations.extend(more.annotations);
                c.strokes.extend(more.strokes);
                self.corrections = c;
            }
        }
        self.labels_stale = true;
    }

    pub fn undo(&mut self) {
        if let Some(seq) = self.undo_stack.pop() {
            self.record_edit(Edit::Undo { entry: seq }, false);
            self.redo_stack.push(seq);
        }
    }

    pub fn redo(&mut self) {
        if let Some(seq) = self.redo_stack.pop() {
            self.record_edit(Edit::Redo { entry: seq }, false);
            self.undo_stack.push(seq);
        }
    }

    pub fn delete_selected(&mut self) {
        if let Some(id) = self.selected_annotation.take() {
            self.record_edit(Edit::Delete { annotation: id }, true);
        }
    }

    /// Sets (or with `None`, clears) the verdict on an annotation.
    pub fn set_verdict(&mut self, annotation: &str, verdict: Option<Verdict>) {
        let annotation = annotation.to_string();
        let edit = match verdict {
            Some(Verdict::Accepted) => Edit::Accept { annotation },
            Some(Verdict::Rejected) => Edit::Reject { annotation },
            None => Edit::ClearVerdict { annotation },
        };
        self.record_edit(edit, true);
    }

    /// `a` / `x`: accept or reject the selected (else the hovered) annotation; again clears it.
    pub(super) fn verdict_key(&mut self, verdict: Verdict) {
        let Some(id) = self
            .selected_annotation
            .clone()
            .or(self.hovered_last_frame.clone())
        else {
            return;
        };
        let current = self
            .corrections
            .annotations
            .get(&id)
            .and_then(|a| a.verdict);
        self.set_verdict(&id, (current != Some(verdict)).then_some(verdict));
    }

    /// What the tools need for the asked viewport.
    pub(super) fn edit_input(&self, findings: &[FindingOverlay]) -> EditInput {
        let selected_box = self
            .selected_annotation
            .as_ref()
            .filter(|id| findings.iter().any(|f| &f.id == *id))
            .and_then(|id| self.corrections.annotations.get(id))
            .and_then(|a| a.box_px);
        let slice = self.current_slice();
        let measurements = self
            .corrections
            .measurements
            .values()
            .filter(|m| !m.deleted && Some(&m.slice) == slice.as_ref())
            .map(|m| (m.id.clone(), m.shape, m.points.clone()))
            .collect();
        EditInput {
            tool: self.edit.tool,
            selected_box,
            brush_radius_px: self.edit.brush_radius_px,
            colour: class_colour(Some(self.edit.class_id), 0),
            measurements,
            // The region for the next question, else the one the shown answer was asked about.
            region: self.region_on_slice().cloned().or_else(|| {
                self.shown
                    .and_then(|id| self.corrections.answer(id))
                    .filter(|r| Some(&r.slice) == slice.as_ref())
                    .and_then(|r| r.mark.clone())
            }),
        }
    }

    /// Turns a finished gesture on the asked view into a store entry.
    pub(super) fn apply_edit_event(&mut self, _view: usize, event: EditEvent) {
        let Some(slice) = self.current_slice() else {
            return;
        };
        let class_id = self.edit.class_id;
        let language = Language::from(self.model_panel.lang);
        let keyword = LabelMap::radgrounder()
            .display_name(class_id, language)
            .unwrap_or("finding")
            .to_string();
        let edit = match event {
            EditEvent::Region(mark) => {
                // Not a correction: the mark the next question about this slice is asked with.
                self.region = Some((slice, mark));
                return;
            }
            EditEvent::AddBox(box_px) => {
                let id = format!("m{}", groundglass_feedback::now_unix_ms());
                self.selected_annotation = Some(id.clone());
                self.edit.tool = Tool::Read;
                Edit::AddBox {
                    id,
                    slice,
                    keyword,
                    class_id: Some(class_id),
                    box_px,
                }
            }
            EditEvent::MoveBox(box_px) => {
                let Some(annotation) = self.selected_annotation.clone() else {
                    return;
                };
                Edit::Move { annotation, box_px }
            }
            EditEvent::MoveMeasurement { id, points } => Edit::MoveMeasurement { id, points },
            // The tool stays on for the next measurement (Esc goes back to reading).
            EditEvent::Measure { shape, points } => Edit::Measure {
                id: format!(
                    "ms{}-{}",
                    groundglass_feedback::now_unix_ms(),
                    self.corrections.measurements.len()
                ),
                slice,
                shape,
                points,
            },
            EditEvent::Stroke { points, erase } => Edit::MaskStroke {
                slice,
                class_id,
                erase,
                radius_px: self.edit.brush_radius_px,
                points,
            },
        };
        self.record_edit(edit, true);
    }

    /// Reads a DICOM SEG and shows it over the current series (where its frames fit).
    pub fn open_segmentation(&mut self, path: &std::path::Path) {
        match groundglass_study::dicom::seg::read_seg(path) {
            Ok(seg) => {
                if let Some(layout) = &self.layout_info {
                    let mut scratch =
                        groundglass_study::LabelVolume::new(layout.dims, layout.affine);
                    let (landed, _) = seg.paint(layout, &mut scratch);
                    if landed == 0 {
                        self.notice(
                            true,
                            format!(
                                "{}: none of its {} frames lies on the series shown",
                                path.display(),
                                seg.frames.len()
                            ),
                        );
                    }
                }
                self.segmentations.push(seg);
                self.labels_stale = true;
            }
            Err(e) => self.notice(true, e.to_string()),
        }
    }

    /// Rebuilds the shown label map (masks of the annotations and the strokes) after a change,
    /// and copies it to the GPU.
    pub(super) fn sync_labels(&mut self) {
        if !self.labels_stale {
            return;
        }
        let (Some(layout), Some(series)) = (
            self.layout_info.clone(),
            self.current.and_then(|i| self.series.get(i)).cloned(),
        ) else {
            return;
        };
        let mut labels = self.corrections.display_labels(&series.uid, &layout);
        // Segmentation overlays under the corrections: painted first, then the corrections' labels
        // on top.
        if !self.segmentations.is_empty() {
            let mut seg = groundglass_study::LabelVolume::new(layout.dims, layout.affine);
            for s in &self.segmentations {
                s.paint(&layout, &mut seg);
            }
            for (l, s) in labels.labels.iter_mut().zip(&seg.labels) {
                if *l == 0 {
                    *l = *s;
                }
            }
        }
        let any = labels.labels.iter().any(|&l| l > 0);
        self.labels_stale = false;
        if let Some(state) = &self.render_state {
            let mut renderer = state.renderer.write();
            if let Some(rc) = renderer.callback_resources.get_mut::<RenderContext>() {
                let all = groundglass_study::Dirty {
                    z0: 0,
                    z1: layout.dims[2],
                };
                rc.upload_labels(&state.queue, &labels, all);
            }
        }
        self.labels = any.then_some(labels);
    }
}
