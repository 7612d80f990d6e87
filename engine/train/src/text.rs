//! The texts the demo model reads and writes: class names, grounded targets in RadGrounder's
//! format, yes/no and open questions and their answers, in English and German.

use groundglass_grounding::{LabelMap, Language};
use groundglass_model::prompt::{Lang, Request, Task};

/// `int(v * 512)` clamped to 0..=512, RadGrounder's box bins.
pub fn bin(v: f64) -> u32 {
    ((v.clamp(0.0, 1.0) * 512.0) as u32).min(512)
}

/// The class's display name, lowercased as the tokenizer sees it.
pub fn class_name(labels: &LabelMap, class: u32, lang: Lang) -> String {
    labels
        .display_name(class, Language::from(lang))
        .unwrap_or("structure")
        .to_lowercase()
}

/// One union box per class: `<p bbox=<loc>x4 id=<segNNN>>name</p>` phrases joined by ", ".
pub fn grounded_target(labels: &LabelMap, boxes: &[(u32, [f64; 4])], lang: Lang) -> String {
    let phrases: Vec<String> = boxes
        .iter()
        .map(|(class, b)| {
            format!(
                "<p bbox=<loc{:04}><loc{:04}><loc{:04}><loc{:04}> id=<seg{class:03}>>{}</p>",
                bin(b[0]),
                bin(b[1]),
                bin(b[2]),
                bin(b[3]),
                class_name(labels, *class, lang)
            )
        })
        .collect();
    if phrases.is_empty() {
        match lang {
            Lang::En => "no structures .".into(),
            Lang::De => "keine strukturen .".into(),
        }
    } else {
        format!("{} .", phrases.join(" , "))
    }
}

pub fn yes_no_question(labels: &LabelMap, class: u32, lang: Lang) -> String {
    let name = class_name(labels, class, lang);
    match lang {
        Lang::En => format!("is the {name} visible ?"),
        Lang::De => format!("ist {name} zu sehen ?"),
    }
}

pub fn yes_no_answer(yes: bool, lang: Lang) -> &'static str {
    match (yes, lang) {
        (true, Lang::En) => "yes",
        (false, Lang::En) => "no",
        (true, Lang::De) => "ja",
        (false, Lang::De) => "nein",
    }
}

pub fn grounded_request(lang: Lang) -> Request {
    Request {
        task: Task::Grounded,
        lang,
        clinical: None,
        question: None,
        options: vec![],
    }
}

pub fn vqa_request(question: String, lang: Lang) -> Request {
    Request {
        task: Task::Vqa,
        lang,
        clinical: None,
        question: Some(question),
        options: vec![],
    }
}

/// Lowercased words and punctuation as the demo tokenizer splits them.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in text.to_lowercase().split_whitespace() {
        let mut word = String::new();
        for c in piece.chars() {
            if c.is_alphanumeric() {
                word.push(c);
            } else {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                out.push(c.to_string());
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
    }
    out
}

/// The open questions of the dataset, answered from the label map of the slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenQuestion {
    /// Which side of the patient a midline-named organ lies on (axial and coronal slices).
    Side(u32),
    /// Which structures the slice shows (the grounded report's classes, without boxes).
    Structures,
    /// The structure with the most pixels.
    Largest,
}

impl OpenQuestion {
    pub fn kind(self) -> &'static str {
        match self {
            OpenQuestion::Side(_) => "side",
            OpenQuestion::Structures => "structures",
            OpenQuestion::Largest => "largest",
        }
    }
}

/// Organs whose name does not give their side away (asking where "the left kidney" is would
/// teach reading, not looking).
pub fn is_side_question_class(class: u32) -> bool {
    matches!(class, 1 | 4..=7 | 15 | 16 | 21 | 51 | 52)
}

pub fn open_question(labels: &LabelMap, q: OpenQuestion, lang: Lang) -> String {
    match (q, lang) {
        (OpenQuestion::Side(c), Lang::En) => {
            format!("which side is the {} on ?", class_name(labels, c, lang))
        }
        (OpenQuestion::Side(c), Lang::De) => {
            format!("auf welcher seite liegt {} ?", class_name(labels, c, lang))
        }
        (OpenQuestion::Structures, Lang::En) => "which structures are visible ?".into(),
        (OpenQuestion::Structures, Lang::De) => "welche strukturen sind zu sehen ?".into(),
        (OpenQuestion::Largest, Lang::En) => "what is the largest structure ?".into(),
        (OpenQuestion::Largest, Lang::De) => "was ist die größte struktur ?".into(),
    }
}

/// The patient side of a box's centre (fractions of the slice width): patient right is on the
/// image's left in axial and coronal views; the middle fifth counts as the midline.
pub fn side_word(center_x: f64, lang: Lang) -> &'static str {
    let side = if center_x < 0.4 {
        0
    } else if center_x > 0.6 {
        2
    } else {
        1
    };
    match (side, lang) {
        (0, Lang::En) => "right",
        (2, Lang::En) => "left",
        (_, Lang::En) => "middle",
        (0, Lang::De) => "rechts",
        (2, Lang::De) => "links",
        (_, Lang::De) => "mittig",
    }
}

/// A list of class names in the grounded report's order, joined as its phrases are.
pub fn structures_answer(labels: &LabelMap, classes: &[u32], lang: Lang) -> String {
    if classes.is_empty() {
        return match lang {
            Lang::En => "no structures .".into(),
            Lang::De => "keine strukturen .".into(),
        };
    }
    let names: Vec<String> = classes
        .iter()
        .map(|c| class_name(labels, *c, lang))
        .collect();
    format!("{} .", names.join(" , "))
}
