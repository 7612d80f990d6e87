//! MIS-Ground questions about one scene, each with its answer and the level it takes of every
//! factor: presence (yes/no, choice, the largest structure), a marked structure (box, mask,
//! point, arrow, label), the side a structure is on, and how two structures lie to each other.

use groundglass_grounding::LabelMap;
use groundglass_model::prompt::Lang;
use groundglass_model::visual_prompt::VisualPrompt;
use groundglass_study::Plane;

use crate::dataset::Rng;
use crate::mis_ground::scene::{Scene, Structure};
use crate::mis_ground::terms::{
    answer_text, fill, marked_structure, naming, with_article, Concept, Direction, Template,
    CLASSES,
};
use crate::text::class_name;

/// The level of each factor a question takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Factors {
    pub modality: &'static str,
    pub plane: &'static str,
    pub convention: &'static str,
    pub visual_prompt: &'static str,
    pub terminology: &'static str,
    pub question_form: &'static str,
    pub wording: &'static str,
}

impl Factors {
    /// (factor, level) pairs in the report's order.
    pub fn pairs(&self) -> [(&'static str, &'static str); 7] {
        [
            ("modality", self.modality),
            ("plane", self.plane),
            ("convention", self.convention),
            ("visual_prompt", self.visual_prompt),
            ("terminology", self.terminology),
            ("question_form", self.question_form),
            ("wording", self.wording),
        ]
    }
}

/// One question.
#[derive(Clone, Debug)]
pub struct Item {
    pub lang: Lang,
    pub template: Template,
    pub question: String,
    pub answer: Concept,
    /// The answer as a training target writes it.
    pub target: String,
    pub mark: Option<VisualPrompt>,
    pub factors: Factors,
}

/// Centroids this far apart (mm) along an axis make a relation worth asking.
pub const RELATION_MARGIN_MM: f64 = 15.0;

/// The questions a scene answers, in `lang`. Each question's wording is held out with probability
/// `held_out` (0 for training) and names a structure by a synonym with probability `synonyms`.
pub fn items(
    scene: &Scene,
    labels: &LabelMap,
    lang: Lang,
    held_out: f64,
    synonyms: f64,
    rng: &mut Rng,
) -> Vec<Item> {
    let mut out = Vec::new();
    let present = scene.named();
    let absent: Vec<u32> = CLASSES
        .iter()
        .copied()
        .filter(|c| !scene.labels.iter().any(|l| u32::from(*l) == *c))
        .collect();
    let mut q = Question {
        scene,
        labels,
        lang,
        rng,
        held_out,
        synonyms,
    };

    // Presence, by name.
    if !present.is_empty() || !absent.is_empty() {
        let yes = absent.is_empty() || (!present.is_empty() && q.rng.below(2) == 0);
        let class = if yes {
            present[q.rng.below(present.len())].class
        } else {
            absent[q.rng.below(absent.len())]
        };
        let (wording, synonym) = q.wording();
        if let Some(name) = q.name(class, synonym, wording) {
            let text = Template::PresenceYesNo.text(lang, wording);
            let answer = if yes { Concept::Yes } else { Concept::No };
            out.push(q.item(
                Template::PresenceYesNo,
                fill(text, &[("x", &name.text)]),
                answer,
                None,
                term(name.synonym),
                "yes_no",
                wording,
            ));
        }
    }
    if !present.is_empty() && absent.len() >= 2 {
        let class = present[q.rng.below(present.len())].class;
        let mut options = vec![class];
        options.extend(q.pick(&absent, 2));
        let (wording, synonym) = q.wording();
        if let Some(item) = q.choice(
            Template::PresenceChoice,
            &options,
            class,
            synonym,
            wording,
            None,
        ) {
            out.push(item);
        }
    }
    let mut by_size: Vec<&Structure> = scene.structures.iter().collect();
    by_size.sort_by_key(|s| std::cmp::Reverse(s.pixels));
    if let [first, second, ..] = by_size.as_slice() {
        // Only where the largest is clearly the largest.
        if first.pixels as f64 >= 1.15 * second.pixels as f64 {
            let wording = q.held_out();
            let concept = Concept::Class(first.class);
            out.push(q.item(
                Template::Largest,
                Template::Largest.text(lang, wording).to_string(),
                concept,
                None,
                "anatomical",
                "open",
                wording,
            ));
        }
    }

    // A marked structure.
    if !present.is_empty() {
        let target = present[q.rng.below(present.len())];
        let others: Vec<u32> = CLASSES
            .iter()
            .copied()
            .filter(|c| *c != target.class)
            .collect();
        let wording = q.held_out();
        let mark = q.mark(target);
        out.push(q.item(
            Template::MarkedOpen,
            Template::MarkedOpen.text(lang, wording).to_string(),
            Concept::Class(target.class),
            Some(mark),
            "anatomical",
            "open",
            wording,
        ));
        let yes = q.rng.below(2) == 0;
        let asked = if yes {
            target.class
        } else {
            others[q.rng.below(others.len())]
        };
        let (wording, synonym) = q.wording();
        if let Some(name) = q.name(asked, synonym, wording) {
            let mark = q.mark(target);
            let text = Template::MarkedYesNo.text(lang, wording);
            out.push(q.item(
                Template::MarkedYesNo,
                fill(text, &[("x", &name.text)]),
                if yes { Concept::Yes } else { Concept::No },
                Some(mark),
                term(name.synonym),
                "yes_no",
                wording,
            ));
        }
        // Distractors: other structures on the slice where there are, so the choice is not
        // made by what is visible.
        let on_slice: Vec<u32> = present
            .iter()
            .map(|s| s.class)
            .filter(|c| *c != target.class)
            .collect();
        let mut options = vec![target.class];
        let from_slice = q.pick(&on_slice, 2);
        options.extend(&from_slice);
        let rest: Vec<u32> = others
            .iter()
            .copied()
            .filter(|c| !options.contains(c))
            .collect();
        let more = q.pick(&rest, 3 - options.len());
        options.extend(more);
        let (wording, synonym) = q.wording();
        let mark = q.mark(target);
        if let Some(item) = q.choice(
            Template::MarkedChoice,
            &options,
            target.class,
            synonym,
            wording,
            Some(mark),
        ) {
            out.push(item);
        }
    }

    // Sides: a named structure whose name does not give its side away, or a marked one.
    let sided: Vec<&Structure> = present
        .iter()
        .copied()
        .filter(|s| s.side.is_some())
        .collect();
    if !sided.is_empty() {
        let s = sided[q.rng.below(sided.len())];
        let named = !matches!(s.class, 2 | 3) && q.rng.below(2) == 0;
        let side = s.side.unwrap_or(Concept::Right);
        for template in [
            Template::SideOpen,
            Template::SideYesNo,
            Template::SideChoice,
        ] {
            let wording = q.held_out();
            let (x, mark) = if named {
                (with_article(&class_name(labels, s.class, lang), lang), None)
            } else {
                (marked_structure(lang).to_string(), Some(q.mark(s)))
            };
            let text = template.text(lang, wording);
            let (question, answer, form) = match template {
                Template::SideYesNo => {
                    let asked = if q.rng.below(2) == 0 {
                        side
                    } else {
                        other_side(side)
                    };
                    let word = side_word(asked, lang);
                    let answer = if asked == side {
                        Concept::Yes
                    } else {
                        Concept::No
                    };
                    (fill(text, &[("x", &x), ("side", word)]), answer, "yes_no")
                }
                Template::SideChoice => (fill(text, &[("x", &x)]), side, "multiple_choice"),
                _ => (fill(text, &[("x", &x)]), side, "open"),
            };
            out.push(q.item(
                template,
                question,
                answer,
                mark,
                "directional",
                form,
                wording,
            ));
        }
    }

    // Relations between two named structures, along the axes the plane shows.
    let axes: [Direction; 2] = match scene.plane {
        Plane::Coronal => [Direction::Left, Direction::Superior],
        Plane::Sagittal => [Direction::Posterior, Direction::Superior],
        _ => [Direction::Left, Direction::Posterior],
    };
    let mut pairs = Vec::new();
    for (n, a) in present.iter().enumerate() {
        for b in &present[n + 1..] {
            for d in axes {
                let (axis, _) = d.axis();
                if (a.centroid_lps[axis] - b.centroid_lps[axis]).abs() >= RELATION_MARGIN_MM {
                    pairs.push((*a, *b, d));
                }
            }
        }
    }
    if !pairs.is_empty() {
        for template in [Template::RelationYesNo, Template::RelationChoice] {
            let (a, b, axis) = pairs[q.rng.below(pairs.len())];
            let (a, b) = if q.rng.below(2) == 0 { (a, b) } else { (b, a) };
            let d = if q.rng.below(2) == 0 {
                axis
            } else {
                opposite(axis)
            };
            let (ax, sign) = d.axis();
            let a_is = sign * (a.centroid_lps[ax] - b.centroid_lps[ax]) > 0.0;
            let wording = q.held_out();
            let text = template.text(lang, wording);
            let (na, nb) = (
                class_name(labels, a.class, lang),
                class_name(labels, b.class, lang),
            );
            let (question, answer, form) = if template == Template::RelationYesNo {
                (
                    fill(text, &[("a", &na), ("b", &nb), ("rel", d.relation(lang))]),
                    if a_is { Concept::Yes } else { Concept::No },
                    "yes_no",
                )
            } else {
                (
                    fill(
                        text,
                        &[("a", &na), ("b", &nb), ("dir", d.comparative(lang))],
                    ),
                    Concept::Class(if a_is { a.class } else { b.class }),
                    "multiple_choice",
                )
            };
            out.push(q.item(
                template,
                question,
                answer,
                None,
                "relational",
                form,
                wording,
            ));
        }
    }
    out
}

/// A mark of a random kind on `s`.
pub fn mark_of(scene: &Scene, s: &Structure, rng: &mut Rng) -> VisualPrompt {
    match rng.below(5) {
        0 => VisualPrompt::Box { rect: s.rect },
        1 => VisualPrompt::Mask {
            width: scene.slice.width,
            height: scene.slice.height,
            inside: scene.mask(s.class),
        },
        2 => VisualPrompt::Point { at: s.inside },
        3 => VisualPrompt::Arrow { tip: s.inside },
        _ => VisualPrompt::Label { at: s.inside },
    }
}

fn term(synonym: bool) -> &'static str {
    if synonym {
        "synonym"
    } else {
        "anatomical"
    }
}

fn other_side(side: Concept) -> Concept {
    if side == Concept::Left {
        Concept::Right
    } else {
        Concept::Left
    }
}

fn side_word(side: Concept, lang: Lang) -> &'static str {
    match (side == Concept::Left, lang) {
        (true, Lang::En) => "left",
        (false, Lang::En) => "right",
        (true, Lang::De) => "links",
        (false, Lang::De) => "rechts",
    }
}

fn opposite(d: Direction) -> Direction {
    match d {
        Direction::Left => Direction::Right,
        Direction::Right => Direction::Left,
        Direction::Anterior => Direction::Posterior,
        Direction::Posterior => Direction::Anterior,
        Direction::Superior => Direction::Inferior,
        Direction::Inferior => Direction::Superior,
    }
}

/// What the builders of one scene's questions share.
struct Question<'a, 'r> {
    scene: &'a Scene,
    labels: &'a LabelMap,
    lang: Lang,
    rng: &'r mut Rng,
    held_out: f64,
    synonyms: f64,
}

impl Question<'_, '_> {
    fn held_out(&mut self) -> bool {
        self.rng.unit() < self.held_out
    }

    /// Whether the wording is held out, and whether names are synonyms.
    fn wording(&mut self) -> (bool, bool) {
        let held_out = self.held_out();
        (held_out, self.rng.unit() < self.synonyms)
    }

    /// A name for `class`: a synonym of the wording's kind (trained, or held out) where asked and
    /// one exists, else the canonical name.
    fn name(
        &mut self,
        class: u32,
        synonym: bool,
        held_out: bool,
    ) -> Option<crate::mis_ground::terms::Naming> {
        if synonym {
            naming(self.labels, class, self.lang, true, held_out, self.rng)
                .or_else(|| naming(self.labels, class, self.lang, false, false, self.rng))
        } else {
            naming(self.labels, class, self.lang, false, false, self.rng)
        }
    }

    fn pick(&mut self, from: &[u32], n: usize) -> Vec<u32> {
        let mut pool = from.to_vec();
        let mut out = Vec::new();
        while out.len() < n && !pool.is_empty() {
            out.push(pool.swap_remove(self.rng.below(pool.len())));
        }
        out
    }

    fn mark(&mut self, s: &Structure) -> VisualPrompt {
        mark_of(self.scene, s, self.rng)
    }

    /// A multiple-choice question over `options` (shuffled), the answer written as its option.
    fn choice(
        &mut self,
        template: Template,
        options: &[u32],
        answer: u32,
        synonym: bool,
        held_out: bool,
        mark: Option<VisualPrompt>,
    ) -> Option<Item> {
        if options.len() != 3 {
            return None;
        }
        let mut shuffled = options.to_vec();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, self.rng.below(i + 1));
        }
        let mut names = Vec::new();
        let mut any_synonym = false;
        let mut target = String::new();
        for c in &shuffled {
            let n = self.name(*c, synonym, held_out)?;
            any_synonym |= n.synonym;
            if *c == answer {
                target = n.text.clone();
            }
            names.push(n.text);
        }
        let text = template.text(self.lang, held_out);
        let question = fill(
            text,
            &[("a", &names[0]), ("b", &names[1]), ("c", &names[2])],
        );
        let mut item = self.item(
            template,
            question,
            Concept::Class(answer),
            mark,
            term(any_synonym),
            "multiple_choice",
            held_out,
        );
        item.target = target;
        Some(item)
    }

    #[allow(clippy::too_many_arguments)]
    fn item(
        &mut self,
        template: Template,
        question: String,
        answer: Concept,
        mark: Option<VisualPrompt>,
        terminology: &'static str,
        form: &'static str,
        held_out: bool,
    ) -> Item {
        let target = answer_text(self.labels, answer, self.lang, self.rng);
        Item {
            lang: self.lang,
            template,
            question,
            answer,
            target,
            factors: Factors {
                modality: self.scene.modality,
                plane: self.scene.plane.name(),
                convention: self.scene.convention.name(),
                visual_prompt: mark.as_ref().map_or("none", VisualPrompt::kind),
                terminology,
                question_form: form,
                wording: if held_out { "held_out" } else { "seen" },
            },
            mark,
        }
    }
}

/// Whether `answer` says the item's answer (in any wording of either language).
pub fn is_correct(labels: &LabelMap, item: &Item, answer: &str) -> bool {
    let classes: Vec<u32> = groundglass_phantom::classes::CLASSES
        .iter()
        .map(|(c, _)| u32::from(*c))
        .collect();
    crate::mis_ground::terms::concept_of(labels, answer, &classes) == Some(item.answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::label_raster;
    use crate::mis_ground::scene::{scene, Convention};
    use crate::mis_ground::terms::wordings;
    use crate::text::words;
    use crate::tokenizer::dataset_words;
    use groundglass_phantom::{generate, PhantomConfig};
    use groundglass_study::PlaneGrid;

    fn liver_slice(phantom: &groundglass_phantom::Phantom) -> usize {
        let grid = PlaneGrid::from_geometry(phantom.dims, &phantom.affine, Plane::Axial);
        (0..grid.count)
            .find(|&k| {
                let (_, _, r) = label_raster(phantom, Plane::Axial, k);
                [5u8, 1, 51]
                    .iter()
                    .all(|c| r.iter().filter(|l| *l == c).count() > 200)
            })
            .or_else(|| {
                (0..grid.count).find(|&k| {
                    let (_, _, r) = label_raster(phantom, Plane::Axial, k);
                    r.iter().filter(|l| **l == 5).count() > 500
                })
            })
            .expect("a slice through the liver")
    }

    /// Over many draws every family and form appears, and the answers follow the patient: the
    /// liver is on the right in both conventions, and relations agree with the centroids.
    #[test]
    fn questions_cover_every_family_and_follow_the_patient() {
        let phantom = generate(&PhantomConfig::ct(11));
        let volume = phantom.to_volume();
        let labels = LabelMap::radgrounder();
        let k = liver_slice(&phantom);
        let mut templates = std::collections::BTreeSet::new();
        let mut kinds = std::collections::BTreeSet::new();
        for convention in [Convention::Radiological, Convention::Neurological] {
            let s = scene(&phantom, &volume, None, Plane::Axial, k, convention).expect("scene");
            let mut rng = Rng::new(4);
            for round in 0..60 {
                let lang = if round % 2 == 0 { Lang::En } else { Lang::De };
                for item in items(&s, &labels, lang, 0.5, 0.4, &mut rng) {
                    templates.insert(format!("{:?}", item.template));
                    kinds.insert(item.factors.visual_prompt);
                    assert!(is_correct(&labels, &item, &item.target), "{item:?}");
                    if item.template == Template::SideOpen && item.question.contains("liver") {
                        assert_eq!(item.answer, Concept::Right, "{}", convention.name());
                    }
                    if item.template == Template::RelationChoice {
                        assert!(matches!(item.answer, Concept::Class(_)));
                    }
                    if item.factors.visual_prompt != "none" {
                        assert!(item.mark.is_some());
                    }
                }
            }
        }
        assert_eq!(templates.len(), Template::ALL.len(), "{templates:?}");
        assert_eq!(kinds.len(), 6, "{kinds:?}");
    }

    /// Held-out wording recombines words the model was trained on (a word it never read would
    /// have an untrained embedding), and no held-out question is a trained one.
    #[test]
    fn held_out_wording_uses_trained_words_only() {
        let classes: Vec<u32> = groundglass_phantom::classes::CLASSES
            .iter()
            .map(|(c, _)| u32::from(*c))
            .collect();
        let vocabulary = dataset_words(&classes);
        for lang in [Lang::En, Lang::De] {
            for t in Template::ALL {
                let (seen, held) = (t.text(lang, false), t.text(lang, true));
                assert_ne!(seen, held);
                // Fillers are training wording only: no question the benchmark asks has one.
                let mut rng = Rng::new(3);
                let filler = crate::mis_ground::terms::with_filler("?", lang, &mut rng);
                let filler = filler.trim_end_matches(" , ?").trim_end_matches(" ?");
                assert!(!held.contains(filler) && !seen.contains(filler), "{held:?}");
                for w in words(held) {
                    let slot = w.starts_with('{')
                        || ["x", "a", "b", "c", "side", "rel", "dir", "}"].contains(&w.as_str());
                    assert!(slot || vocabulary.contains(&w), "{w:?} of {held:?}");
                }
            }
        }
        // Every held-out synonym is a trained word too (seen in the other language).
        let labels = LabelMap::radgrounder();
        for c in crate::mis_ground::terms::CLASSES {
            for lang in [Lang::En, Lang::De] {
                for w in wordings(&labels, Concept::Class(c), lang) {
                    for w in words(&w) {
                        assert!(vocabulary.contains(&w), "{w}");
                    }
                }
            }
        }
    }
}
