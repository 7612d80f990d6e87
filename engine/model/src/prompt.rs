//! Prompts in RadGrounder's layout: `<image>` x N, `<bos>`, then `"\n{prefix}\n{prompt} "` and a
//! final `"\n"` (its `dataset_utils.py`). The prefix holds optional clinical information and
//! question lines; VQA puts the question (and options) in the prefix and `Answer:` as the prompt.

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

/// What the user asked.
#[derive(Clone, Debug, PartialEq)]
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
                if let Some(c) = non_empty(&self.clinical) {
                    prefix.push(format!("{ka} {c}"));
                }
                if let Some(q) = non_empty(&self.question) {
                    prefix.push(format!("{fs} {q}"));
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
