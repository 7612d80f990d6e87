//! Prompts in RadGrounder's layout: `<image>` x N, `<bos>`, then `"\n{prefix}\n{prompt} "` and a
//! final `"\n"` (its `dataset_utils.py`). The prefix holds optional clinical information and
//! question lines, each cleaned as the authors clean them (`clean_punctuation`) and written once
//! when both say the same (their `load_prefix`); VQA puts the question (and options) in the prefix
//! and `Answer:` as the prompt.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Report,
    Grounded,
    Segment,
    Vqa,
}

impl Task {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "report" => Some(Task::Report),
            "grounded" | "detect" | "boxes" => Some(Task::Grounded),
            "segment" | "masks" => Some(Task::Segment),
            "vqa" | "ask" | "question" => Some(Task::Vqa),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    De,
}

/// The grounding parser's language for a prompt's.
impl From<Lang> for groundglass_grounding::Language {
    fn from(lang: Lang) -> Self {
        match lang {
            Lang::En => groundglass_grounding::Language::En,
            Lang::De => groundglass_grounding::Language::De,
        }
    }
}

/// What the user asked.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Request {
    pub task: Task,
    pub lang: Lang,
    pub clinical: Option<String>,
    pub question: Option<String>,
    /// Multiple-choice options for VQA, one per line after the question.
    pub options: Vec<String>,
}

fn task_prompt(task: Task, lang: Lang) -> &'static str {
    match (task, lang) {
        (Task::Report, Lang::En) => "Caption this image:",
        (Task::Report, Lang::De) => "Beschreibe dieses Bild:",
        (Task::Grounded, Lang::En) => "Caption this image and detect keywords:",
        (Task::Grounded, Lang::De) => "Beschreibe dieses Bild und detektiere Schlüsselwörter:",
        (Task::Segment, Lang::En) => "Caption this image and segment keywords:",
        (Task::Segment, Lang::De) => "Beschreibe dieses Bild und segmentiere die Schlüsselwörter:",
        (Task::Vqa, Lang::En) => "Answer:",
        (Task::Vqa, Lang::De) => "Antwort:",
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Request {
    /// The text that follows `<bos>`.
    pub fn text(&self) -> String {
        let mut prefix: Vec<String> = Vec::new();
        match self.task {
            Task::Vqa => {
                if let Some(q) = non_empty(&self.question) {
                    prefix.push(q.to_string());
                }
                prefix.extend(
                    self.options
                        .iter()
                        .map(|o| o.trim().to_string())
                        .filter(|o| !o.is_empty()),
                );
            }
            _ => {
                let (ka, fs) = match self.lang {
                    Lang::En => ("Clinical information:", "Question:"),
                    Lang::De => ("Klinische angaben:", "Fragestellung:"),
                };
                let clinical = non_empty(&self.clinical).map(clean_punctuation);
                let question = non_empty(&self.question).map(clean_punctuation);
                if let Some(c) = &clinical {
                    prefix.push(format!("{ka} {c}"));
                }
                match question {
                    Some(q) if clinical.as_ref() != Some(&q) => prefix.push(format!("{fs} {q}")),
                    _ => {}
                }
            }
        }
        format!(
            "\n{}\n{} \n",
            prefix.join("\n"),
            task_prompt(self.task, self.lang)
        )
    }
}

/// Whitespace as Python's `str.isspace` (and so `\s` in its `re`) sees it: Unicode White_Space
/// plus the four information separators U+001C..U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn is_mark(c: char) -> bool {
    matches!(c, '.' | ',' | ':' | ';' | '!' | '?')
}

/// Characters RadGrounder's cleaning replaces after spacing (mis-decoded Windows-1252 bytes,
/// invisible spaces and joiners), in its order.
const REPLACEMENTS: [(char, &str); 29] = [
    ('\u{202f}', " "),
    ('\u{ad}', ""),
    ('\u{200b}', ""),
    ('\u{2009}', " "),
    ('\u{96}', "-"),
    ('\u{84}', "\""),
    ('\u{93}', "\""),
    ('\u{91}', "'"),
    ('\u{92}', "'"),
    ('\u{a0}', " "),
    ('\u{1f}', ""),
    ('\u{85}', "..."),
    ('\u{7f}', ""),
    ('\u{82}', "'"),
    ('\u{94}', "\""),
    ('\u{2}', ""),
    ('\u{b}', " "),
    ('\u{200c}', ""),
    ('\u{2060}', ""),
    ('\u{feff}', ""),
    ('\u{200d}', ""),
    ('\u{2006}', " "),
    ('\u{2003}', " "),
    ('\u{0}', ""),
    ('\u{200e}', ""),
    ('\u{2028}', "\n"),
    ('\u{8f}', ""),
    ('\u{8a}', "S"),
    ('\u{80}', "€"),
];

/// `chars` with each maximal run of whitespace replaced by what `rewrite` makes of it, given the
/// character after the run (if any).
fn rewrite_space_runs(
    chars: &[char],
    rewrite: impl Fn(&[char], Option<char>) -> Vec<char>,
) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if !is_py_space(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let end = chars[i..]
            .iter()
            .position(|&c| !is_py_space(c))
            .map_or(chars.len(), |n| i + n);
        out.extend(rewrite(&chars[i..end], chars.get(end).copied()));
        i = end;
    }
    out
}

/// RadGrounder's `clean_punctuation` for clinical text, step by step as its regular expressions
/// do it: no whitespace before `.,:;!?`; one space after each of them unless whitespace or another
/// mark follows (so "3.5" becomes "3. 5", as in their training data); no whitespace before a line
/// break; trimmed; a final "." unless the text ends in `.`, `!` or `?`; then the replacements.
pub fn clean_punctuation(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    // 1. Drop whitespace runs that stand before a mark.
    let step1 = rewrite_space_runs(&chars, |run, next| {
        if next.is_some_and(is_mark) {
            Vec::new()
        } else {
            run.to_vec()
        }
    });
    // 2. A space after a mark that is followed by neither whitespace nor a mark (nor nothing:
    //    the regex adds one at the end too, which the trim removes).
    let mut step2: Vec<char> = Vec::with_capacity(step1.len() + 8);
    for (k, &c) in step1.iter().enumerate() {
        step2.push(c);
        if is_mark(c) {
            match step1.get(k + 1) {
                Some(&n) if is_py_space(n) || is_mark(n) => {}
                _ => step2.push(' '),
            }
        }
    }
    // 3. Whitespace runs ending in a line break become the line break alone. The regex is greedy
    //    with backtracking: the run up to its last '\n' collapses, if anything stands before it.
    let step3: String = rewrite_space_runs(&step2, |run, _| {
        match run.iter().rposition(|&c| c == '\n') {
            Some(last) if last > 0 => std::iter::once('\n')
                .chain(run[last + 1..].iter().copied())
                .collect(),
            _ => run.to_vec(),
        }
    })
    .into_iter()
    .collect();
    // 4. Trim, 5. end with a sentence mark.
    let mut text: String = step3.trim_matches(is_py_space).to_string();
    if !matches!(text.chars().last(), Some('.' | '!' | '?')) {
        text.push('.');
    }
    // 6. Replacements.
    for (from, to) in REPLACEMENTS {
        if text.contains(from) {
            text = text.replace(from, to);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(task: Task, lang: Lang) -> Request {
        Request {
            task,
            lang,
            clinical: None,
            question: None,
            options: vec![],
        }
    }

    /// Expected outputs computed with RadGrounder's `clean_punctuation` (its regular expressions
    /// and replacement table, Python 3.11) on these inputs.
    #[test]
    fn clinical_text_is_cleaned_as_the_authors_clean_it() {
        for (input, expected) in [
            ("Sturz auf den Kopf", "Sturz auf den Kopf."),
            ("Z.n. Sturz ,Kopfschmerzen", "Z. n. Sturz, Kopfschmerzen."),
            ("Fever  ;  cough?", "Fever;  cough?"),
            ("Tumour 3.5 cm", "Tumour 3. 5 cm."),
            ("a\u{a0}b\u{202f}c", "a b c."),
            ("Line one   \nLine two", "Line one\nLine two."),
            ("x \n\n y", "x\n y."),
            ("\n lead", "lead."),
            ("Dyspnoe!!", "Dyspnoe!!"),
            ("ends with colon:", "ends with colon:."),
            ("tab\tand\u{1f}sep", "tab\tandsep."),
            ("Weird\u{96}dash\u{85}", "Weird-dash."),
            ("  Blutung?  ", "Blutung?"),
        ] {
            assert_eq!(clean_punctuation(input), expected, "{input:?}");
        }
    }

    #[test]
    fn identical_clinical_and_question_lines_are_written_once() {
        let r = Request {
            clinical: Some("Sturz".into()),
            question: Some("Sturz.".into()),
            ..req(Task::Grounded, Lang::De)
        };
        assert_eq!(
            r.text(),
            "\nKlinische angaben: Sturz.\nBeschreibe dieses Bild und detektiere Schlüsselwörter: \n"
        );
        let only_question = Request {
            question: Some("Blutung ?".into()),
            ..req(Task::Report, Lang::En)
        };
        assert_eq!(
            only_question.text(),
            "\nQuestion: Blutung?\nCaption this image: \n"
        );
    }

    #[test]
    fn layouts_follow_radgrounder() {
        assert_eq!(
            req(Task::Grounded, Lang::En).text(),
            "\n\nCaption this image and detect keywords: \n"
        );
        let r = Request {
            clinical: Some("Sturz.".into()),
            question: Some("Blutung?".into()),
            ..req(Task::Segment, Lang::De)
        };
        assert_eq!(r.text(), "\nKlinische angaben: Sturz.\nFragestellung: Blutung?\nBeschreibe dieses Bild und segmentiere die Schlüsselwörter: \n");
        let v = Request {
            question: Some("Is the liver enlarged?".into()),
            options: vec!["yes".into(), "no".into()],
            ..req(Task::Vqa, Lang::En)
        };
        assert_eq!(v.text(), "\nIs the liver enlarged?\nyes\nno\nAnswer: \n");
    }
}
