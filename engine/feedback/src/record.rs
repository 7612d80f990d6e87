//! One answer of the model, kept with everything needed to show it again on its slice.

use groundglass_grounding::LocatedFinding;
use groundglass_model::prompt::{Lang, Task};
use groundglass_model::{Answer, SliceMask};
use groundglass_study::Plane;
use serde::{Deserialize, Serialize};

/// Which slice: a series (by UID), a volume of it (a 4D series' time point), a plane and an index
/// along it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceRef {
    pub series_uid: String,
    /// 0 for 3D series; absent in stores written before 4D series had volumes (read as 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub volume: usize,
    pub plane: Plane,
    pub index: usize,
    /// Slice size in pixels (width, height).
    pub size: [usize; 2],
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AskRecord {
    pub id: u64,
    pub slice: SliceRef,
    pub task: Task,
    pub lang: Lang,
    pub question: Option<String>,
    pub clinical: Option<String>,
    pub semsam: bool,
    /// The checkpoint folder that answered.
    pub model: String,
    pub created_unix_ms: u64,
    pub text: String,
    pub findings: Vec<LocatedFinding>,
    pub masks: Vec<SliceMask>,
    pub tokens: usize,
    pub ttft_ms: f64,
    pub tok_per_s: f64,
    pub cancelled: bool,
    /// The model input's pixel spacing (records from before it was kept have none).
    #[serde(default)]
    pub input_spacing_mm: Option<[f64; 2]>,
    /// The mark drawn into the model's input for a question about "the marked structure".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<groundglass_model::visual_prompt::VisualPrompt>,
}

impl AskRecord {
    /// A record of `answer` (the rest of the fields describe the question).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        slice: SliceRef,
        task: Task,
        lang: Lang,
        question: Option<String>,
        clinical: Option<String>,
        semsam: bool,
        model: String,
        answer: Answer,
    ) -> Self {
        AskRecord {
            id,
            slice,
            task,
            lang,
            question,
            clinical,
            semsam,
            model,
            created_unix_ms: now_unix_ms(),
            text: answer.text,
            findings: answer.findings,
            masks: answer.masks,
            tokens: answer.tokens,
            ttft_ms: answer.ttft_ms,
            tok_per_s: answer.tok_per_s,
            cancelled: answer.cancelled,
            input_spacing_mm: answer.input_spacing_mm,
            mark: None,
        }
    }

    /// The answer as the model gave it (the `ask` JSON's fields).
    pub fn answer(&self) -> Answer {
        Answer {
            text: self.text.clone(),
            findings: self.findings.clone(),
            masks: self.masks.clone(),
            tokens: self.tokens,
            ttft_ms: self.ttft_ms,
            tok_per_s: self.tok_per_s,
            cancelled: self.cancelled,
            input_spacing_mm: self.input_spacing_mm,
        }
    }

    /// "HH:MM:SS UTC" of the time it was asked.
    pub fn time_of_day(&self) -> String {
        let s = self.created_unix_ms / 1000 % 86_400;
        format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accepted,
    Rejected,
}

/// A verdict on one finding of one answer, with who gave it and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerdictEntry {
    pub record: u64,
    pub finding: usize,
    pub verdict: Verdict,
    pub reviewer: String,
    pub at_unix_ms: u64,
}

pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What a hand-drawn measurement measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureShape {
    /// A length between two points.
    Line,
    /// Statistics of the pixels inside the box with these two corners.
    Rectangle,
    /// Statistics of the pixels inside the ellipse inscribed in that box.
    Ellipse,
    /// The angle at the second of three points, between the rays to the first and the third.
    Angle,
    /// Statistics of the pixels inside a closed outline drawn by hand (its vertices).
    Freehand,
    /// The value of the pixel at one point.
    Point,
}

/// The most vertices a freehand outline keeps (a long drag is thinned to this).
pub const MAX_FREEHAND_POINTS: usize = 2048;

impl MeasureShape {
    /// How many points a measurement of this shape has.
    pub fn point_count(self) -> std::ops::RangeInclusive<usize> {
        match self {
            MeasureShape::Line | MeasureShape::Rectangle | MeasureShape::Ellipse => 2..=2,
            MeasureShape::Angle => 3..=3,
            MeasureShape::Freehand => 3..=MAX_FREEHAND_POINTS,
            MeasureShape::Point => 1..=1,
        }
    }

    /// `points` checked for this shape: their count, and each a number.
    pub fn check_points(self, points: &[[f64; 2]]) -> Result<(), String> {
        let range = self.point_count();
        if !range.contains(&points.len()) {
            let wanted = if range.start() == range.end() {
                range.start().to_string()
            } else {
                format!("{} to {}", range.start(), range.end())
            };
            return Err(format!(
                "{} measurements have {wanted} points, not {}",
                self.name(),
                points.len()
            ));
        }
        if points.iter().flatten().any(|v| !v.is_finite()) {
            return Err("points must be numbers".to_string());
        }
        Ok(())
    }

    /// The word the store and the exports use for it.
    pub fn name(self) -> &'static str {
        match self {
            MeasureShape::Line => "line",
            MeasureShape::Rectangle => "rectangle",
            MeasureShape::Ellipse => "ellipse",
            MeasureShape::Angle => "angle",
            MeasureShape::Freehand => "freehand",
            MeasureShape::Point => "point",
        }
    }
}
