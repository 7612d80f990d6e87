//! The store's entries replayed into what they amount to: the answers, the annotations (model
//! findings and hand-drawn boxes, with their verdicts and corrections) and the mask strokes.
//! Undone entries are skipped; redo brings them back. Replaying from the start keeps undo exact
//! for every kind of edit, strokes included.

use std::collections::{BTreeMap, HashSet};

use groundglass_grounding::LabelMap;
use groundglass_study::{Dirty, LabelVolume, PlaneGrid, VolumeLayout};
use serde::Serialize;

use crate::edit::{finding_id, Edit, Entry};
use crate::record::{AskRecord, MeasureShape, SliceRef, Verdict};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Origin {
    /// Finding `finding` of answer `record`.
    Model {
        record: u64,
        finding: usize,
    },
    Manual,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Annotation {
    pub id: String,
    pub origin: Origin,
    pub slice: SliceRef,
    pub keyword: String,
    pub class_id: Option<u32>,
    pub box_px: Option<[f64; 4]>,
    /// The model's mask (index into its answer's masks), when it has one.
    pub mask: Option<(u64, usize)>,
    pub verdict: Option<Verdict>,
    pub deleted: bool,
    /// Who changed it last, and when.
    pub edited_by: String,
    pub edited_at_unix_ms: u64,
}

/// A measurement drawn by hand (its figures are computed from the slice when shown).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    pub id: String,
    pub slice: SliceRef,
    pub shape: MeasureShape,
    /// Slice pixel centres: a line's ends, two opposite corners of a region's box, an angle's
    /// three points (vertex second), a freehand outline's vertices, or the one point.
    pub points: Vec<[f64; 2]>,
    pub deleted: bool,
    pub edited_by: String,
    pub edited_at_unix_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stroke {
    pub seq: u64,
    pub slice: SliceRef,
    pub class_id: u32,
    pub erase: bool,
    pub radius_px: f64,
    pub points: Vec<[f64; 2]>,
}

#[derive(Clone, Debug, Default)]
pub struct Corrections {
    pub answers: Vec<AskRecord>,
    pub annotations: BTreeMap<String, Annotation>,
    pub strokes: Vec<Stroke>,
    pub measurements: BTreeMap<String, Measurement>,
    /// Entries that could not apply (e.g. an unknown annotation id), with why.
    pub problems: Vec<(u64, String)>,
}

/// Which entries count: those not undone (an undo of an undo is a redo).
fn live(entries: &[Entry]) -> HashSet<u64> {
    let mut undone = HashSet::new();
    for e in entries {
        match e.edit {
            Edit::Undo { entry } => {
                undone.insert(entry);
            }
            Edit::Redo { entry } => {
                undone.remove(&entry);
            }
            _ => {}
        }
    }
    entries
        .iter()
        .map(|e| e.seq)
        .filter(|s| !undone.contains(s))
        .collect()
}

impl Corrections {
    pub fn replay(entries: &[Entry]) -> Corrections {
        let live = live(entries);
        let mut c = Corrections::default();
        let labels = LabelMap::radgrounder();
        for e in entries.iter().filter(|e| live.contains(&e.seq)) {
            if let Err(why) = c.apply(e, &labels) {
                c.problems.push((e.seq, why));
            }
        }
        c
    }

    fn annotation(&mut self, id: &str, e: &Entry) -> Result<&mut Annotation, String> {
        let a = self
            .annotations
            .get_mut(id)
            .ok_or_else(|| format!("no annotation {id:?}"))?;
        a.edited_by = e.reviewer.clone();
        a.edited_at_unix_ms = e.at_unix_ms;
        Ok(a)
    }

    /// As `annotation`, for a correction: correcting a model finding accepts it (unless rejected).
    fn corrected(&mut self, id: &str, e: &Entry) -> Result<&mut Annotation, String> {
        let a = self.annotation(id, e)?;
        if a.verdict.is_none() {
            a.verdict = Some(Verdict::Accepted);
        }
        Ok(a)
    }

    fn apply(&mut self, e: &Entry, labels: &LabelMap) -> Result<(), String> {
        match &e.edit {
            Edit::Answer { record } => {
                for (i, f) in record.findings.iter().enumerate() {
                    // A mask phrase has no class id: the keyword names one when it is a class name.
                    let class_id = f.class_id.or_else(|| labels.find(&f.keyword));
                    self.annotations.insert(
                        finding_id(record.id, i),
                        Annotation {
                            id: finding_id(record.id, i),
                            origin: Origin::Model {
                                record: record.id,
                                finding: i,
                            },
                            slice: record.slice.clone(),
                            keyword: f.keyword.clone(),
                            class_id,
                            box_px: f.box_px,
                            mask: f.mask_index.map(|m| (record.id, m)),
                            verdict: None,
                            deleted: false,
                            edited_by: e.reviewer.clone(),
                            edited_at_unix_ms: e.at_unix_ms,
                        },
                    );
                }
                self.answers.push((**record).clone());
            }
            Edit::Accept { annotation } => {
                self.annotation(annotation, e)?.verdict = Some(Verdict::Accepted)
            }
            Edit::Reject { annotation } => {
                self.annotation(annotation, e)?.verdict = Some(Verdict::Rejected)
            }
            Edit::ClearVerdict { annotation } => self.annotation(annotation, e)?.verdict = None,
            Edit::AddBox {
                id,
                slice,
                keyword,
                class_id,
                box_px,
            } => {
                if self.annotations.contains_key(id) {
                    return Err(format!("annotation {id:?} exists already"));
                }
                self.annotations.insert(
                    id.clone(),
                    Annotation {
                        id: id.clone(),
                        origin: Origin::Manual,
                        slice: slice.clone(),
                        keyword: keyword.clone(),
                        class_id: *class_id,
                        box_px: Some(ordered(*box_px)),
                        mask: None,
                        verdict: None,
                        deleted: false,
                        edited_by: e.reviewer.clone(),
                        edited_at_unix_ms: e.at_unix_ms,
                    },
                );
            }
            Edit::Move { annotation, box_px } => {
                self.corrected(annotation, e)?.box_px = Some(ordered(*box_px))
            }
            Edit::Relabel {
                annotation,
                class_id,
                keyword,
            } => {
                let a = self.corrected(annotation, e)?;
                a.class_id = Some(*class_id);
                if let Some(k) = keyword {
                    a.keyword = k.clone();
                }
            }
            Edit::Keyword {
                annotation,
                keyword,
            } => self.corrected(annotation, e)?.keyword = keyword.clone(),
            Edit::Delete { annotation } => match self.measurements.get_mut(annotation) {
                Some(m) => {
                    m.deleted = true;
                    m.edited_by = e.reviewer.clone();
                    m.edited_at_unix_ms = e.at_unix_ms;
                }
                None => self.annotation(annotation, e)?.deleted = true,
            },
            Edit::MoveMeasurement { id, points } => {
                let m = self
                    .measurements
                    .get_mut(id)
                    .ok_or_else(|| format!("no measurement {id:?}"))?;
                m.shape
                    .check_points(points)
                    .map_err(|why| format!("measurement {id:?}: {why}"))?;
                m.points = points.clone();
                m.edited_by = e.reviewer.clone();
                m.edited_at_unix_ms = e.at_unix_ms;
            }
            Edit::Measure {
                id,
                slice,
                shape,
                points,
            } => {
                if self.measurements.contains_key(id) || self.annotations.contains_key(id) {
                    return Err(format!("annotation {id:?} exists already"));
                }
                shape
                    .check_points(points)
                    .map_err(|why| format!("measurement {id:?}: {why}"))?;
                self.measurements.insert(
                    id.clone(),
                    Measurement {
                        id: id.clone(),
                        slice: slice.clone(),
                        shape: *shape,
                        points: points.clone(),
                        deleted: false,
                        edited_by: e.reviewer.clone(),
                        edited_at_unix_ms: e.at_unix_ms,
                    },
                );
            }
            Edit::MaskStroke {
                slice,
                class_id,
                erase,
                radius_px,
                points,
            } => {
                if *class_id > 255 {
                    return Err(format!("class id {class_id} does not fit a label map"));
                }
                self.strokes.push(Stroke {
                    seq: e.seq,
                    slice: slice.clone(),
                    class_id: *class_id,
                    erase: *erase,
                    radius_px: *radius_px,
                    points: points.clone(),
                })
            }
            Edit::Undo { .. } | Edit::Redo { .. } => {}
        }
        Ok(())
    }

    pub fn answer(&self, id: u64) -> Option<&AskRecord> {
        self.answers.iter().find(|r| r.id == id)
    }

    /// Answers asked on this slice (same series, plane and index), oldest first.
    pub fn answers_on<'a>(
        &'a self,
        slice: &'a SliceRef,
    ) -> impl Iterator<Item = &'a AskRecord> + 'a {
        self.answers
            .iter()
            .filter(move |r| same_slice(&r.slice, slice))
    }

    /// Annotations on this slice that are not deleted, in id order.
    pub fn annotations_on<'a>(
        &'a self,
        slice: &'a SliceRef,
    ) -> impl Iterator<Item = &'a Annotation> + 'a {
        self.annotations
            .values()
            .filter(move |a| !a.deleted && same_slice(&a.slice, slice))
    }

    /// The verdict on finding `finding` of answer `record`.
    pub fn verdict(&self, record: u64, finding: usize) -> Option<Verdict> {
        self.annotations
            .get(&finding_id(record, finding))
            .and_then(|a| a.verdict)
    }

    /// The label map shown in the viewer: as `label_volume`, but model masks count until rejected,
    /// and annotations without a class show as `UNKNOWN_CLASS_LABEL`.
    pub fn display_labels(&self, series_uid: &str, layout: &VolumeLayout) -> LabelVolume {
        self.labels(series_uid, layout, true)
    }

    /// The label map of one series (class ids as labels): confirmed masks, then the strokes in
    /// order (paint sets the class, erase clears it).
    pub fn label_volume(&self, series_uid: &str, layout: &VolumeLayout) -> LabelVolume {
        self.labels(series_uid, layout, false)
    }

    /// Annotations that count as ground truth: hand-drawn ones not deleted or rejected, and model
    /// findings a person accepted (or corrected, which accepts them).
    pub fn confirmed(&self) -> impl Iterator<Item = &Annotation> {
        self.annotations.values().filter(|a| {
            !a.deleted
                && match a.origin {
                    Origin::Manual => a.verdict != Some(Verdict::Rejected),
                    Origin::Model { .. } => a.verdict == Some(Verdict::Accepted),
                }
        })
    }

    fn labels(&self, series_uid: &str, layout: &VolumeLayout, display: bool) -> LabelVolume {
        let mut labels = LabelVolume::new(layout.dims, layout.affine);
        let shown: Vec<&Annotation> = if display {
            self.annotations
                .values()
                .filter(|a| !a.deleted && a.verdict != Some(Verdict::Rejected))
                .collect()
        } else {
            self.confirmed().collect()
        };
        for a in shown
            .into_iter()
            .filter(|a| a.slice.series_uid == series_uid)
        {
            let class = match (a.class_id, display) {
                (Some(c), _) => c,
                (None, true) => u32::from(UNKNOWN_CLASS_LABEL),
                (None, false) => continue,
            };
            let Some((record, m)) = a.mask else {
                continue;
            };
            let Some(mask) = self.answer(record).and_then(|r| r.masks.get(m)) else {
                continue;
            };
            let grid = PlaneGrid::from_layout(layout, a.slice.plane);
            labels.paint_slice_mask(
                &grid,
                a.slice.index,
                mask.width,
                mask.height,
                &mask.pixels(),
                class.min(255) as u8,
            );
        }
        for s in self
            .strokes
            .iter()
            .filter(|s| s.slice.series_uid == series_uid)
        {
            paint_stroke(&mut labels, layout, s);
        }
        labels
    }
}

/// Paints a brush stroke (discs of `radius_px` at the points and along the segments between them)
/// into the label volume.
pub fn paint_stroke(labels: &mut LabelVolume, layout: &VolumeLayout, s: &Stroke) -> Dirty {
    let grid = PlaneGrid::from_layout(layout, s.slice.plane);
    let (w, h) = (grid.width, grid.height);
    let mut inside = vec![false; w * h];
    let r = s.radius_px.max(0.5);
    let mut stamp = |cx: f64, cy: f64| {
        let (x0, x1) = ((cx - r).floor().max(0.0) as usize, (cx + r).ceil() as usize);
        let (y0, y1) = ((cy - r).floor().max(0.0) as usize, (cy + r).ceil() as usize);
        for y in y0..=y1.min(h.saturating_sub(1)) {
            for x in x0..=x1.min(w.saturating_sub(1)) {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                if dx * dx + dy * dy <= r * r {
                    inside[y * w + x] = true;
                }
            }
        }
    };
    let pts = &s.points;
    for (i, p) in pts.iter().enumerate() {
        stamp(p[0], p[1]);
        if let Some(q) = pts.get(i + 1) {
            let steps = ((q[0] - p[0]).hypot(q[1] - p[1]) / (r / 2.0)).ceil() as usize;
            for k in 1..steps {
                let t = k as f64 / steps as f64;
                stamp(p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t);
            }
        }
    }
    // The eraser clears whatever label is under it, as a brush eraser does.
    let label = if s.erase {
        0
    } else {
        s.class_id.min(255) as u8
    };
    labels.paint_slice_mask(&grid, s.slice.index, w, h, &inside, label)
}

/// The label the viewer shows masks without a class as.
pub const UNKNOWN_CLASS_LABEL: u8 = 250;

fn same_slice(a: &SliceRef, b: &SliceRef) -> bool {
    a.series_uid == b.series_uid && a.plane == b.plane && a.index == b.index
}

fn ordered(b: [f64; 4]) -> [f64; 4] {
    [
        b[0].min(b[2]),
        b[1].min(b[3]),
        b[0].max(b[2]),
        b[1].max(b[3]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, line: &str) -> Entry {
        let mut e: Entry = serde_json::from_str(line).expect("an edit record");
        e.seq = seq;
        e.reviewer = "dr a".into();
        e
    }

    #[test]
    fn measurements_replay_delete_and_undo_like_annotations() {
        let slice =
            r#""slice": {"series_uid": "1.2", "plane": "axial", "index": 3, "size": [8, 8]}"#;
        let measure = |id: &str, shape: &str| {
            format!(
                r#"{{"op": "measure", "id": "{id}", {slice}, "shape": "{shape}", "points": [[1, 2], [5, 6.5]]}}"#
            )
        };
        let entries = vec![
            entry(1, &measure("ms1", "line")),
            entry(2, &measure("ms2", "ellipse")),
            entry(3, r#"{"op": "delete", "annotation": "ms1"}"#),
            entry(4, &measure("ms2", "rectangle")),
            entry(
                5,
                r#"{"op": "move_measurement", "id": "ms2", "points": [[0, 0], [3, 4]]}"#,
            ),
            entry(
                6,
                r#"{"op": "move_measurement", "id": "nope", "points": [[0, 0], [3, 4]]}"#,
            ),
        ];
        let c = Corrections::replay(&entries);
        assert_eq!(c.measurements.len(), 2);
        assert!(c.measurements["ms1"].deleted);
        assert_eq!(c.measurements["ms2"].shape, MeasureShape::Ellipse);
        assert_eq!(
            c.measurements["ms2"].points,
            [[0.0, 0.0], [3.0, 4.0]],
            "moved"
        );
        assert_eq!(c.measurements["ms2"].slice.index, 3);
        assert_eq!(
            c.problems.len(),
            2,
            "a second ms2 and a move of nothing are refused: {:?}",
            c.problems
        );
        // Undoing the delete brings the line back; undoing the move, the ellipse's points.
        let mut undone = entries.clone();
        undone.push(entry(7, r#"{"op": "undo", "entry": 3}"#));
        undone.push(entry(8, r#"{"op": "undo", "entry": 5}"#));
        let c = Corrections::replay(&undone);
        assert!(!c.measurements["ms1"].deleted);
        assert_eq!(c.measurements["ms2"].points, [[1.0, 2.0], [5.0, 6.5]]);
    }

    #[test]
    fn angles_outlines_and_points_keep_their_point_counts() {
        let slice =
            r#""slice": {"series_uid": "1.2", "plane": "axial", "index": 3, "size": [8, 8]}"#;
        let measure = |id: &str, shape: &str, points: &str| {
            format!(
                r#"{{"op": "measure", "id": "{id}", {slice}, "shape": "{shape}", "points": {points}}}"#
            )
        };
        let entries = vec![
            entry(1, &measure("a", "angle", "[[0, 0], [2, 2], [4, 0]]")),
            entry(
                2,
                &measure("f", "freehand", "[[0, 0], [4, 0], [4, 4], [0, 4]]"),
            ),
            entry(3, &measure("p", "point", "[[3, 3]]")),
            // Wrong counts are refused, named.
            entry(4, &measure("a2", "angle", "[[0, 0], [2, 2]]")),
            entry(5, &measure("f2", "freehand", "[[0, 0], [4, 0]]")),
            entry(6, &measure("p2", "point", "[]")),
            // A move keeps the count: an angle cannot lose its vertex.
            entry(
                7,
                r#"{"op": "move_measurement", "id": "a", "points": [[1, 1], [2, 2]]}"#,
            ),
            entry(
                8,
                r#"{"op": "move_measurement", "id": "f", "points": [[1, 1], [5, 1], [5, 5]]}"#,
            ),
        ];
        let c = Corrections::replay(&entries);
        assert_eq!(
            c.measurements.keys().collect::<Vec<_>>(),
            ["a", "f", "p"],
            "{:?}",
            c.problems
        );
        assert_eq!(c.measurements["a"].points.len(), 3);
        assert_eq!(
            c.measurements["f"].points,
            [[1.0, 1.0], [5.0, 1.0], [5.0, 5.0]]
        );
        assert_eq!(c.problems.len(), 4, "{:?}", c.problems);
        assert!(
            c.problems[0]
                .1
                .contains("angle measurements have 3 points, not 2"),
            "{:?}",
            c.problems
        );
    }
}
