//! The texts the demo model reads and writes: class names, grounded targets in RadGrounder's
//! format, and yes/no questions, in English and German.

use groundglass_grounding::{LabelMap, Language};
use groundglass_model::prompt::{Lang, Request, Task};

/// `int(v * 512)` clamped to 0..=512, RadGrounder's box bins.
pub fn bin(v: f64) -> u32 {
    ((v.clamp(0.0, 1.0) * 512.0) as u32).min(512)
}

pub fn language(lang: Lang) -> Language {
    match lang {
        Lang::En => Language::En,
        Lang::De => Language::De,
    }
}

/// The class's display name, lowercased as the tokenizer sees it.
pub fn class_name(labels: &LabelMap, class: u32, lang: Lang) -> String {
    labels
        .display_name(class, language(lang))
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
