//! Grounding evaluation on fresh phantoms: the model answers through the runtime's own ask path
//! (`ModelSession`) on slices of phantoms it never saw, and its boxes are scored against the label
//! maps. Acc@0.5: the share of large structures present on a slice that the answer boxes with
//! IoU of at least 0.5 under the right class (the headline on axial slices; per plane, class and
//! language too); each lung and the vertebrae count as one structure (the union of their labels).
//! Laterality swaps: left/right structures boxed on the wrong side of the midline, or named as
//! their mirror twin. Yes/no accuracy: one question about a class on the slice, one about a class
//! that is not, per slice and language (also broken down by the class asked about). Open questions:
//! which structures the slice shows, the largest, and which side an organ lies on, scored by exact
//! words (a side or the largest structure in any of its wordings, "dexter" or "hepar" too; yes and
//! no likewise). Everything again with MIS-SemSam decoding.

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::Device;
use groundglass_grounding::LabelMap;
use groundglass_model::prompt::Lang;
use groundglass_model::semsam::SemSamConfig;
use groundglass_model::{AskInput, ModelSession};
use groundglass_phantom::generate;
use groundglass_study::{extract, Plane, PlaneGrid};
use serde::Serialize;

use crate::dataset::{alternating_phantom, open_answer, open_questions, slice_truth, target_boxes};
use crate::mis_ground::terms::{concept_of, Concept};
use crate::text;
use crate::text::OpenQuestion;
use crate::Result;

#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub model: PathBuf,
    pub phantoms: usize,
    pub seed: u64,
    /// Slices per plane and phantom (evenly spread over the slices that show anatomy).
    pub slices: usize,
    /// What the model runs at (f32 for the figures of record).
    pub precision: groundglass_model::Precision,
}

/// The classes Acc@0.5 counts: the large structures of the issue (all lung lobes, every
/// vertebra).
pub fn is_large(class: u32) -> bool {
    matches!(class, 1..=7 | 10..=14 | 21 | 27..=43 | 51 | 52)
}

/// The structure a class belongs to for scoring: the issue names "both lungs" and "vertebrae",
/// so the lobes of each lung and all vertebrae are scored as one structure each (their union box
/// on the slice); every other class stands alone.
pub fn structure(class: u32) -> (u32, &'static str) {
    match class {
        10 | 11 => (1001, "lung_left"),
        12..=14 => (1002, "lung_right"),
        27..=43 => (1003, "vertebrae"),
        _ => (class, ""),
    }
}

/// Union boxes per structure.
fn by_structure(boxes: &[(u32, [f64; 4])]) -> BTreeMap<u32, [f64; 4]> {
    let mut out: BTreeMap<u32, [f64; 4]> = BTreeMap::new();
    for (c, b) in boxes {
        let (s, _) = structure(*c);
        out.entry(s)
            .and_modify(|u| {
                *u = [
                    u[0].min(b[0]),
                    u[1].min(b[1]),
                    u[2].max(b[2]),
                    u[3].max(b[3]),
                ]
            })
            .or_insert(*b);
    }
    out
}

/// Left/right twins (class, mirror).
fn mirror(class: u32) -> Option<u32> {
    match class {
        2 => Some(3),
        3 => Some(2),
        10 | 11 => Some(12),
        12..=14 => Some(10),
        _ => None,
    }
}

/// Whether a class lies on the patient's left.
fn is_left(class: u32) -> bool {
    matches!(class, 1 | 3 | 10 | 11)
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Ratio {
    pub hits: usize,
    pub total: usize,
    pub value: Option<f64>,
}

impl Ratio {
    fn add(&mut self, hit: bool) {
        self.total += 1;
        self.hits += usize::from(hit);
        self.value = Some(self.hits as f64 / self.total as f64);
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Mean {
    pub total: usize,
    pub value: Option<f64>,
    #[serde(skip)]
    sum: f64,
}

impl Mean {
    fn add(&mut self, v: f64) {
        self.total += 1;
        self.sum += v;
        self.value = Some(self.sum / self.total as f64);
    }
}

/// F1 of the names in two comma-separated lists of words (as `text::words` splits them).
fn name_f1(said: &[String], truth: &[String]) -> f64 {
    let names = |w: &[String]| -> std::collections::BTreeSet<String> {
        w.split(|t| t == "," || t == ".")
            .filter(|n| !n.is_empty())
            .map(|n| n.join(" "))
            .collect()
    };
    let (a, b) = (names(said), names(truth));
    let common = a.intersection(&b).count() as f64;
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    2.0 * common / (a.len() + b.len()) as f64
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Scores {
    /// Axial slices, large organs.
    pub acc_at_0_5: Option<f64>,
    pub laterality_swap_rate: Option<f64>,
    pub yes_no_accuracy: Option<f64>,
    pub open_vqa_accuracy: Option<f64>,
    pub per_plane: BTreeMap<String, Ratio>,
    pub per_class: BTreeMap<String, Ratio>,
    pub per_language: BTreeMap<String, Ratio>,
    pub laterality: Ratio,
    pub yes_no: Ratio,
    /// Yes/no by the class asked about, and whether it was on the slice ("liver present").
    pub yes_no_per_class: BTreeMap<String, Ratio>,
    pub open_vqa: Ratio,
    /// Open questions by kind (side, structures, largest).
    pub open_vqa_per_kind: BTreeMap<String, Ratio>,
    /// "Which structures are visible?": the mean F1 of the names listed against the true list
    /// (exact lists are rare; this says how close they come).
    pub structures_f1: Mean,
    pub answers: usize,
    pub unparsed_answers: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub model: PathBuf,
    pub phantoms: usize,
    pub seed: u64,
    pub slices_per_plane: usize,
    #[serde(flatten)]
    pub greedy: Scores,
    pub semsam: Scores,
}

/// Evaluates `opts.model` on `opts.phantoms` fresh phantoms from `opts.seed`.
pub fn evaluate(opts: &EvalOptions, mut progress: impl FnMut(&str)) -> Result<Report> {
    let mut session = ModelSession::load(&opts.model, opts.precision, &Device::Cpu)?;
    let labels = LabelMap::radgrounder();
    let mut greedy = Scores::default();
    let mut semsam = Scores::default();
    for n in 0..opts.phantoms as u64 {
        let seed = opts.seed + n;
        let phantom = generate(&alternating_phantom(opts.seed, n));
        let volume = phantom.to_volume();
        for plane in [Plane::Axial, Plane::Coronal, Plane::Sagittal] {
            let grid = PlaneGrid::from_geometry(phantom.dims, &phantom.affine, plane);
            let with_anatomy: Vec<usize> = (0..grid.count)
                .filter(|&k| !slice_truth(&phantom, plane, k).boxes.is_empty())
                .collect();
            let picks: Vec<usize> = (0..opts.slices)
                .filter_map(|i| {
                    let at = (i * 2 + 1) * with_anatomy.len() / (2 * opts.slices.max(1));
                    with_anatomy.get(at).copied()
                })
                .collect();
            for k in picks {
                let truth = slice_truth(&phantom, plane, k);
                let slice = extract(&volume, plane, k);
                for lang in [Lang::En, Lang::De] {
                    for (scores, config) in [
                        (&mut greedy, None),
                        (&mut semsam, Some(SemSamConfig::default())),
                    ] {
                        let mut ask = |request: &groundglass_model::prompt::Request| {
                            session.ask(
                                &AskInput {
                                    slice: &slice,
                                    modality: phantom.modality.code(),
                                    request,
                                    semsam: config,
                                    max_new_tokens: 120,
                                    visual_prompt: None,
                                },
                                |_| true,
                            )
                        };
                        // Grounded report.
                        let answer = ask(&text::grounded_request(lang))?;
                        scores.answers += 1;
                        if answer.findings.is_empty() {
                            scores.unparsed_answers += 1;
                        }
                        let predicted: Vec<(u32, [f64; 4])> = answer
                            .findings
                            .iter()
                            .filter_map(|f| {
                                let b = f.box_px?;
                                let (w, h) = (slice.width as f64, slice.height as f64);
                                Some((f.class_id?, [b[0] / w, b[1] / h, b[2] / w, b[3] / h]))
                            })
                            .collect();
                        let truth_large: Vec<(u32, [f64; 4])> = target_boxes(&truth)
                            .into_iter()
                            .filter(|(c, _)| is_large(*c))
                            .collect();
                        let predicted_by = by_structure(&predicted);
                        for (class, gt) in by_structure(&truth_large) {
                            let hit = predicted_by.get(&class).is_some_and(|b| iou(*b, gt) >= 0.5);
                            scores
                                .per_plane
                                .entry(plane.name().into())
                                .or_default()
                                .add(hit);
                            if plane == Plane::Axial {
                                let name = match class {
                                    1001 => "lung_left".to_string(),
                                    1002 => "lung_right".to_string(),
                                    1003 => "vertebrae".to_string(),
                                    c => labels
                                        .get(c)
                                        .map(|c| c.name.clone())
                                        .unwrap_or_else(|| c.to_string()),
                                };
                                scores.per_class.entry(name).or_default().add(hit);
                                let l = if lang == Lang::En { "en" } else { "de" };
                                scores.per_language.entry(l.into()).or_default().add(hit);
                            }
                        }
                        // Laterality (sagittal slices have no left and right in the picture).
                        if plane != Plane::Sagittal {
                            for (class, b) in &predicted {
                                let Some(twin) = mirror(*class) else { continue };
                                let cx = (b[0] + b[2]) / 2.0;
                                // Patient left is on the image's right in axial and coronal views.
                                let boxed_wrong = (cx > 0.5) != is_left(*class);
                                let own = truth.boxes.iter().any(|t| t.0 == *class);
                                let named_wrong = !own
                                    && truth
                                        .boxes
                                        .iter()
                                        .any(|t| t.0 == twin && iou(t.1, *b) >= 0.3);
                                scores.laterality.add(boxed_wrong || named_wrong);
                            }
                        }
                        // Yes/no: one class on the slice, one not.
                        let present: Vec<u32> = truth.boxes.iter().map(|t| t.0).collect();
                        let absent = groundglass_phantom::classes::CLASSES
                            .iter()
                            .map(|(c, _)| u32::from(*c))
                            .find(|c| {
                                !present.contains(c)
                                    && (*c as u64 + seed + k as u64).is_multiple_of(3)
                            })
                            .or_else(|| {
                                groundglass_phantom::classes::CLASSES
                                    .iter()
                                    .map(|(c, _)| u32::from(*c))
                                    .find(|c| !present.contains(c))
                            });
                        let asked_present = present.get((seed as usize + k) % present.len().max(1));
                        for (class, yes) in [(asked_present.copied(), true), (absent, false)] {
                            let Some(class) = class else { continue };
                            let q = text::yes_no_question(&labels, class, lang);
                            let answer = ask(&text::vqa_request(q, lang))?;
                            // Any wording of yes or no ("correct", "richtig", ...).
                            let said = concept_of(&labels, &answer.text, &[]);
                            let said_yes = said == Some(Concept::Yes);
                            let said_no = said == Some(Concept::No);
                            let hit = if yes { said_yes } else { said_no };
                            scores.yes_no.add(hit);
                            let name = labels.get(class).map_or("?", |c| c.name.as_str());
                            let asked = if yes { "present" } else { "absent" };
                            scores
                                .yes_no_per_class
                                .entry(format!("{name} {asked}"))
                                .or_default()
                                .add(hit);
                        }
                        // Open questions: the list, the largest, and one organ's side.
                        let pick = seed as usize + k;
                        score_open_questions(scores, &labels, &truth, lang, pick, &mut ask)?;
                    }
                }
            }
            progress(&format!(
                "phantom {} ({}) {} done",
                seed,
                phantom.modality.code(),
                plane.name()
            ));
        }
    }
    for s in [&mut greedy, &mut semsam] {
        s.acc_at_0_5 = s.per_plane.get("axial").and_then(|r| r.value);
        s.laterality_swap_rate = s.laterality.value;
        s.yes_no_accuracy = s.yes_no.value;
        s.open_vqa_accuracy = s.open_vqa.value;
    }
    Ok(Report {
        model: opts.model.clone(),
        phantoms: opts.phantoms,
        seed: opts.seed,
        slices_per_plane: opts.slices,
        greedy,
        semsam,
    })
}

/// Asks the open questions of a slice (which structures, the largest, and one organ's side, the
/// `pick`-th of those on it) and scores the answers by their words.
fn score_open_questions(
    scores: &mut Scores,
    labels: &LabelMap,
    truth: &crate::dataset::SliceTruth,
    lang: Lang,
    pick: usize,
    ask: &mut impl FnMut(
        &groundglass_model::prompt::Request,
    ) -> groundglass_model::Result<groundglass_model::Answer>,
) -> Result<()> {
    let open = open_questions(truth);
    let is_side = |q: &OpenQuestion| matches!(q, OpenQuestion::Side(_));
    let sides: Vec<OpenQuestion> = open.iter().copied().filter(is_side).collect();
    let mut asked: Vec<OpenQuestion> = open.iter().copied().filter(|q| !is_side(q)).collect();
    if !sides.is_empty() {
        asked.push(sides[pick % sides.len()]);
    }
    for q in asked {
        let question = text::open_question(labels, q, lang);
        let answer = ask(&text::vqa_request(question, lang))?;
        let expected = open_answer(labels, truth, q, lang);
        let (said, truth_words) = (text::words(&answer.text), text::words(&expected));
        // A side or the largest structure counts in any wording of it ("dexter", "hepar"); the
        // list of structures must be word for word.
        let classes: Vec<u32> = groundglass_phantom::classes::CLASSES
            .iter()
            .map(|(c, _)| u32::from(*c))
            .collect();
        let hit = said == truth_words
            || (q != OpenQuestion::Structures
                && concept_of(labels, &expected, &classes).is_some()
                && concept_of(labels, &answer.text, &classes)
                    == concept_of(labels, &expected, &classes));
        scores.open_vqa.add(hit);
        if q == OpenQuestion::Structures {
            scores.structures_f1.add(name_f1(&said, &truth_words));
        }
        scores
            .open_vqa_per_kind
            .entry(q.kind().into())
            .or_default()
            .add(hit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_and_sides() {
        assert!((iou([0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 1.0]) - 0.5).abs() < 1e-12);
        assert_eq!(iou([0.0, 0.0, 0.1, 0.1], [0.5, 0.5, 0.6, 0.6]), 0.0);
        assert_eq!(mirror(2), Some(3));
        assert!(is_left(3) && !is_left(2));
    }

    #[test]
    fn list_f1_counts_names_not_words() {
        let w = |s: &str| text::words(s);
        let truth = w("right kidney , liver , spleen .");
        assert_eq!(name_f1(&truth, &truth), 1.0);
        // Two of three names, no wrong one: F1 = 2·2 / (2 + 3).
        assert!((name_f1(&w("liver , spleen ."), &truth) - 0.8).abs() < 1e-12);
        // "left kidney" shares a word with "right kidney" but is not the same name.
        assert!((name_f1(&w("left kidney ."), &w("right kidney .")) - 0.0).abs() < 1e-12);
    }
}
