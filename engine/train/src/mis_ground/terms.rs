//! The words of MIS-Ground questions and answers: names and their synonyms, directions and
//! relations, the question templates (some kept for evaluation only), and what an answer means.
//!
//! Held-out wording is built from words the model saw in training, arranged as training never
//! arranged them, plus Latin names seen in one language's questions and held out in the other's.
//! The demo model has no pretraining, so a word it never read has an untrained embedding: asking
//! it with one would measure that, not generalisation.

use groundglass_grounding::LabelMap;
use groundglass_model::prompt::Lang;

use crate::dataset::Rng;
use crate::text::{class_name, words};

/// The structures MIS-Ground questions name: the phantoms' solid organs, the heart and the aorta
/// (not lung lobes, vertebrae, airways or the pancreas, whose slivers make poor questions).
pub const CLASSES: [u32; 9] = [1, 2, 3, 4, 5, 6, 21, 51, 52];

/// Other names of a class: Latin first (the same in both languages), then lay forms of one
/// language.
fn synonyms(class: u32, lang: Lang) -> &'static [&'static str] {
    match (class, lang) {
        (1, _) => &["lien"],
        (2, _) => &["ren dexter"],
        (3, _) => &["ren sinister"],
        (4, _) => &["vesica biliaris"],
        (5, _) => &["hepar"],
        (6, _) => &["gaster"],
        (21, Lang::En) => &["vesica urinaria", "bladder"],
        (21, Lang::De) => &["vesica urinaria", "blase"],
        (51, _) => &["cor"],
        (52, Lang::En) => &["main artery"],
        (52, Lang::De) => &["hauptschlagader"],
        _ => &[],
    }
}

/// Whether synonym `n` of `class` is kept out of training in `lang`: the Latin name of every
/// other class is trained in English questions only, of the rest in German ones only; lay forms
/// are always trained.
fn synonym_held_out(class: u32, n: usize, lang: Lang) -> bool {
    let latin = n == 0 && !matches!(class, 52);
    let english_only = CLASSES.iter().position(|c| *c == class).unwrap_or(0) % 2 == 0;
    latin && (lang == Lang::En) != english_only
}

/// How a structure is named in a question.
#[derive(Clone, Debug, PartialEq)]
pub struct Naming {
    pub text: String,
    pub synonym: bool,
    pub held_out: bool,
}

/// The canonical name, or (when `synonym`) one of the class's synonyms that is seen in training
/// (`held_out` false) or held out (true); `None` when it has none of that kind.
pub fn naming(
    labels: &LabelMap,
    class: u32,
    lang: Lang,
    synonym: bool,
    held_out: bool,
    rng: &mut Rng,
) -> Option<Naming> {
    if !synonym {
        return Some(Naming {
            text: class_name(labels, class, lang),
            synonym: false,
            held_out: false,
        });
    }
    let pool: Vec<&str> = synonyms(class, lang)
        .iter()
        .enumerate()
        .filter(|(n, _)| synonym_held_out(class, *n, lang) == held_out)
        .map(|(_, s)| *s)
        .collect();
    (!pool.is_empty()).then(|| Naming {
        text: pool[rng.below(pool.len())].to_string(),
        synonym: true,
        held_out,
    })
}

/// What an answer means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Concept {
    Yes,
    No,
    Right,
    Left,
    Class(u32),
}

const YES: [(&str, Lang); 4] = [
    ("yes", Lang::En),
    ("correct", Lang::En),
    ("ja", Lang::De),
    ("richtig", Lang::De),
];
const NO: [(&str, Lang); 4] = [
    ("no", Lang::En),
    ("incorrect", Lang::En),
    ("nein", Lang::De),
    ("falsch", Lang::De),
];
const RIGHT: [(&str, Lang); 4] = [
    ("right", Lang::En),
    ("dexter", Lang::En),
    ("rechts", Lang::De),
    ("dexter", Lang::De),
];
const LEFT: [(&str, Lang); 4] = [
    ("left", Lang::En),
    ("sinister", Lang::En),
    ("links", Lang::De),
    ("sinister", Lang::De),
];

/// The ways of saying `concept` in `lang`, the canonical one first.
pub fn wordings(labels: &LabelMap, concept: Concept, lang: Lang) -> Vec<String> {
    let of = |table: &[(&str, Lang)]| -> Vec<String> {
        table
            .iter()
            .filter(|(_, l)| *l == lang)
            .map(|(w, _)| w.to_string())
            .collect()
    };
    match concept {
        Concept::Yes => of(&YES),
        Concept::No => of(&NO),
        Concept::Right => of(&RIGHT),
        Concept::Left => of(&LEFT),
        Concept::Class(c) => {
            let mut out = vec![class_name(labels, c, lang)];
            out.extend(synonyms(c, lang).iter().map(|s| s.to_string()));
            out
        }
    }
}

/// The answer a training target gives for `concept`: mostly the canonical words, sometimes one of
/// the trained synonyms (the variety of wording a real model's answers have, which spreads its
/// probability over neighbouring tokens, as MIS-SemSam assumes).
pub fn answer_text(labels: &LabelMap, concept: Concept, lang: Lang, rng: &mut Rng) -> String {
    let mut all = wordings(labels, concept, lang);
    if let Concept::Class(c) = concept {
        let kept: Vec<String> = synonyms(c, lang)
            .iter()
            .enumerate()
            .filter(|(n, _)| !synonym_held_out(c, *n, lang))
            .map(|(_, s)| s.to_string())
            .collect();
        all.truncate(1);
        all.extend(kept);
    }
    if all.len() > 1 && rng.unit() < 0.3 {
        all.swap_remove(1 + rng.below(all.len() - 1))
    } else {
        all.swap_remove(0)
    }
}

/// What `answer` says: its words up to the first full stop, read as any wording of any concept in
/// either language (a model may answer a German question in Latin). `classes` are the classes an
/// answer may name.
pub fn concept_of(labels: &LabelMap, answer: &str, classes: &[u32]) -> Option<Concept> {
    let said: Vec<String> = words(answer)
        .into_iter()
        .take_while(|w| w != "." && w != "," && w != "?")
        .collect();
    let said = said.join(" ");
    let mut concepts = vec![Concept::Yes, Concept::No, Concept::Right, Concept::Left];
    concepts.extend(classes.iter().map(|c| Concept::Class(*c)));
    concepts.into_iter().find(|c| {
        [Lang::En, Lang::De].iter().any(|l| {
            wordings(labels, *c, *l)
                .iter()
                .any(|w| words(w).join(" ") == said)
        })
    })
}

/// A direction along one patient axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Left,
    Right,
    Anterior,
    Posterior,
    Superior,
    Inferior,
}

impl Direction {
    /// The LPS axis it runs along and its sign (+1 toward L, P or S).
    pub fn axis(self) -> (usize, f64) {
        match self {
            Direction::Left => (0, 1.0),
            Direction::Right => (0, -1.0),
            Direction::Posterior => (1, 1.0),
            Direction::Anterior => (1, -1.0),
            Direction::Superior => (2, 1.0),
            Direction::Inferior => (2, -1.0),
        }
    }

    /// "{a} is {relation} {b}".
    pub fn relation(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Direction::Left, Lang::En) => "left of",
            (Direction::Right, Lang::En) => "right of",
            (Direction::Anterior, Lang::En) => "anterior to",
            (Direction::Posterior, Lang::En) => "posterior to",
            (Direction::Superior, Lang::En) => "superior to",
            (Direction::Inferior, Lang::En) => "inferior to",
            (Direction::Left, Lang::De) => "links von",
            (Direction::Right, Lang::De) => "rechts von",
            (Direction::Anterior, Lang::De) => "vor",
            (Direction::Posterior, Lang::De) => "hinter",
            (Direction::Superior, Lang::De) => "oberhalb von",
            (Direction::Inferior, Lang::De) => "unterhalb von",
        }
    }

    /// "which is more {comparative}".
    pub fn comparative(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Direction::Left, Lang::En) => "left",
            (Direction::Right, Lang::En) => "right",
            (Direction::Anterior, Lang::En) => "anterior",
            (Direction::Posterior, Lang::En) => "posterior",
            (Direction::Superior, Lang::En) => "superior",
            (Direction::Inferior, Lang::En) => "inferior",
            (Direction::Left, Lang::De) => "links",
            (Direction::Right, Lang::De) => "rechts",
            (Direction::Anterior, Lang::De) => "vorne",
            (Direction::Posterior, Lang::De) => "hinten",
            (Direction::Superior, Lang::De) => "oben",
            (Direction::Inferior, Lang::De) => "unten",
        }
    }
}

/// The question templates: `{x}` a structure (or "the marked structure"), `{a}` `{b}` `{c}`
/// options, `{side}` a side, `{rel}` a relation, `{dir}` a comparative. The first of each pair
/// is trained on, the second kept for evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    PresenceYesNo,
    PresenceChoice,
    Largest,
    MarkedOpen,
    MarkedYesNo,
    MarkedChoice,
    SideOpen,
    SideYesNo,
    SideChoice,
    RelationYesNo,
    RelationChoice,
}

impl Template {
    pub fn text(self, lang: Lang, held_out: bool) -> &'static str {
        use Template::*;
        let (seen, out) = match (self, lang) {
            (PresenceYesNo, Lang::En) => (
                "is there a {x} on this slice ?",
                "is a {x} visible on this slice ?",
            ),
            (PresenceYesNo, Lang::De) => (
                "gibt es {x} auf diesem schnitt ?",
                "ist auf diesem schnitt {x} zu sehen ?",
            ),
            (PresenceChoice, Lang::En) => (
                "which of these is visible : {a} , {b} or {c} ?",
                "which is visible on this slice : {a} , {b} or {c} ?",
            ),
            (PresenceChoice, Lang::De) => (
                "was davon ist zu sehen : {a} , {b} oder {c} ?",
                "was ist auf diesem schnitt zu sehen : {a} , {b} oder {c} ?",
            ),
            (Largest, Lang::En) => (
                "which is the largest structure on this slice ?",
                "what is the largest on this slice ?",
            ),
            (Largest, Lang::De) => (
                "was ist auf diesem schnitt die größte struktur ?",
                "was ist die größte auf diesem schnitt ?",
            ),
            (MarkedOpen, Lang::En) => (
                "what is the marked structure ?",
                "which is the marked structure ?",
            ),
            (MarkedOpen, Lang::De) => (
                "was ist die markierte struktur ?",
                "welche ist die markierte struktur ?",
            ),
            (MarkedYesNo, Lang::En) => (
                "is the marked structure the {x} ?",
                "is the {x} the marked structure ?",
            ),
            (MarkedYesNo, Lang::De) => (
                "ist die markierte struktur {x} ?",
                "ist {x} die markierte struktur ?",
            ),
            (MarkedChoice, Lang::En) => (
                "is the marked structure {a} , {b} or {c} ?",
                "which is the marked structure : {a} , {b} or {c} ?",
            ),
            (MarkedChoice, Lang::De) => (
                "ist die markierte struktur {a} , {b} oder {c} ?",
                "welche ist die markierte struktur : {a} , {b} oder {c} ?",
            ),
            (SideOpen, Lang::En) => (
                "on which side is {x} ?",
                "on this slice , on which side is {x} ?",
            ),
            (SideOpen, Lang::De) => (
                "auf welcher seite ist {x} ?",
                "auf welcher seite ist auf diesem schnitt {x} ?",
            ),
            (SideYesNo, Lang::En) => (
                "is {x} on the {side} side ?",
                "is {x} on the {side} side on this slice ?",
            ),
            (SideYesNo, Lang::De) => (
                "liegt {x} {side} ?",
                "liegt auf diesem schnitt {x} {side} ?",
            ),
            (SideChoice, Lang::En) => (
                "is {x} on the left or the right side ?",
                "is {x} on the right or the left side ?",
            ),
            (SideChoice, Lang::De) => (
                "liegt {x} links oder rechts ?",
                "liegt {x} rechts oder links ?",
            ),
            (RelationYesNo, Lang::En) => (
                "is the {a} {rel} the {b} ?",
                "is the {a} {rel} the {b} on this slice ?",
            ),
            (RelationYesNo, Lang::De) => (
                "liegt {a} {rel} {b} ?",
                "liegt auf diesem schnitt {a} {rel} {b} ?",
            ),
            (RelationChoice, Lang::En) => (
                "which is more {dir} : the {a} or the {b} ?",
                "which is more {dir} on this slice : the {a} or the {b} ?",
            ),
            (RelationChoice, Lang::De) => (
                "was liegt weiter {dir} : {a} oder {b} ?",
                "was liegt auf diesem schnitt weiter {dir} : {a} oder {b} ?",
            ),
        };
        if held_out {
            out
        } else {
            seen
        }
    }

    /// The families the demo model stayed near chance on when every question of a slice was
    /// drawn alike (each a few per cent of its samples): relations, a side asked as yes/no (the
    /// side compared with the one asked), and naming a marked structure.
    pub fn is_slow_to_learn(self) -> bool {
        matches!(
            self,
            Template::RelationYesNo
                | Template::RelationChoice
                | Template::SideYesNo
                | Template::MarkedOpen
                | Template::MarkedChoice
        )
    }

    pub const ALL: [Template; 11] = [
        Template::PresenceYesNo,
        Template::PresenceChoice,
        Template::Largest,
        Template::MarkedOpen,
        Template::MarkedYesNo,
        Template::MarkedChoice,
        Template::SideOpen,
        Template::SideYesNo,
        Template::SideChoice,
        Template::RelationYesNo,
        Template::RelationChoice,
    ];
}

/// "the marked structure", for templates whose `{x}` is a structure.
pub fn marked_structure(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "the marked structure",
        Lang::De => "die markierte struktur",
    }
}

/// A named structure where a template's `{x}` wants it with its article (English side
/// questions read "is the liver on ...").
pub fn with_article(name: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("the {name}"),
        Lang::De => name.to_string(),
    }
}

/// Filler phrases for training only: no benchmark wording uses them, so a model that learns to
/// read past them has learnt something about wording, not the held-out templates.
fn filler(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "in this image",
        Lang::De => "in diesem bild",
    }
}

/// A training-only question: where the marked structure is, answered with its box and name as a
/// grounded report writes them (the benchmark never asks it).
pub fn locate_marked(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "where is the marked structure ?",
        Lang::De => "wo ist die markierte struktur ?",
    }
}

/// `question` (ending in " ?") with a filler phrase at its start or before its question mark.
pub fn with_filler(question: &str, lang: Lang, rng: &mut Rng) -> String {
    let phrase = filler(lang);
    match question.strip_suffix(" ?") {
        Some(body) if rng.below(2) == 0 => format!("{body} {phrase} ?"),
        _ => format!("{phrase} , {question}"),
    }
}

/// Fills a template.
pub fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in slots {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Every text the trainer may write in MIS-Ground samples (seen templates, trained synonyms,
/// answers, relation words), for the tokenizer.
pub fn training_texts(labels: &LabelMap) -> Vec<String> {
    let mut out = Vec::new();
    for lang in [Lang::En, Lang::De] {
        for t in Template::ALL {
            // The template's own words, not its slots' names.
            let slots = ["x", "a", "b", "c", "side", "rel", "dir"].map(|k| (k, ""));
            out.push(fill(t.text(lang, false), &slots));
        }
        out.push(marked_structure(lang).into());
        for c in CLASSES {
            out.extend(wordings(labels, Concept::Class(c), lang));
        }
        for c in [Concept::Yes, Concept::No, Concept::Right, Concept::Left] {
            out.extend(wordings(labels, c, lang));
        }
        for d in [
            Direction::Left,
            Direction::Right,
            Direction::Anterior,
            Direction::Posterior,
            Direction::Superior,
            Direction::Inferior,
        ] {
            out.push(d.relation(lang).into());
            out.push(d.comparative(lang).into());
        }
        out.push("the".into());
        out.push(filler(lang).into());
        out.push(locate_marked(lang).into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_in_any_wording() {
        let labels = LabelMap::radgrounder();
        let classes = &CLASSES;
        let c = |a: &str| concept_of(&labels, a, classes);
        assert_eq!(c("yes"), Some(Concept::Yes));
        assert_eq!(c("richtig ."), Some(Concept::Yes));
        assert_eq!(c("incorrect"), Some(Concept::No));
        assert_eq!(c("dexter"), Some(Concept::Right));
        assert_eq!(c("links"), Some(Concept::Left));
        assert_eq!(c("hepar ."), Some(Concept::Class(5)));
        assert_eq!(c("the liver"), None);
        assert_eq!(c("leber"), Some(Concept::Class(5)));
        assert_eq!(c("ren sinister"), Some(Concept::Class(3)));
        assert_eq!(c("left kidney"), Some(Concept::Class(3)));
        assert_eq!(c("hauptschlagader"), Some(Concept::Class(52)));
        assert_eq!(c("left kidney , liver"), Some(Concept::Class(3)));
        assert_eq!(c(""), None);
    }

    #[test]
    fn every_latin_name_is_trained_in_one_language_and_held_out_in_the_other() {
        for c in CLASSES {
            if c == 52 {
                continue;
            }
            assert_ne!(
                synonym_held_out(c, 0, Lang::En),
                synonym_held_out(c, 0, Lang::De),
                "class {c}"
            );
        }
        let labels = LabelMap::radgrounder();
        let mut rng = Rng::new(1);
        // Liver's Latin name is trained in one language only.
        let seen_en = naming(&labels, 5, Lang::En, true, false, &mut rng);
        let seen_de = naming(&labels, 5, Lang::De, true, false, &mut rng);
        assert!(seen_en.is_some() != seen_de.is_some());
    }
}
