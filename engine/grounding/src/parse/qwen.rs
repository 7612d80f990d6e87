//! Qwen2.5-VL and Qwen3-VL answer with JSON: `[{"bbox_2d": [x1, y1, x2, y2], "label": "liver"}]`,
//! often inside a ```json fence. Qwen2.5-VL uses absolute pixels of its resized input; Qwen3-VL uses
//! 0..1000 of the image. Truncated JSON keeps the objects that are complete.

use serde_json::Value;

use super::GroundingParser;
use crate::finding::{BoxNorm, Finding};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QwenCoordinates {
    AbsolutePixels { width: f64, height: f64 },
    Thousandths,
}

pub struct QwenJson {
    pub coordinates: QwenCoordinates,
}

impl GroundingParser for QwenJson {
    fn parse(&self, text: &str) -> Vec<Finding> {
        objects(text)
            .iter()
            .filter_map(|o| self.finding(o))
            .collect()
    }
}

impl QwenJson {
    fn finding(&self, object: &Value) -> Option<Finding> {
        let b = object
            .get("bbox_2d")
            .or_else(|| object.get("bbox"))?
            .as_array()?;
        if b.len() != 4 {
            return None;
        }
        let v: Vec<f64> = b.iter().map(Value::as_f64).collect::<Option<_>>()?;
        let (sx, sy) = match self.coordinates {
            QwenCoordinates::AbsolutePixels { width, height } => (width, height),
            QwenCoordinates::Thousandths => (1000.0, 1000.0),
        };
        if !(sx > 0.0 && sy > 0.0) {
            return None;
        }
        let label = object
            .get("label")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        Some(Finding {
            keyword: label,
            class_id: None,
            class_name: None,
            box_norm: Some(BoxNorm::new(v[0] / sx, v[1] / sy, v[2] / sx, v[3] / sy)),
            mask_index: None,
        })
    }
}

/// Every complete top-level `{…}` object in the text (strings and escapes respected), so a cut-off
/// array still yields the objects before the cut.
fn objects(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut start = None;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => {
                if depth == 0 {
                    start = Some(i);
                }
                depth += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    if let Some(s) = start.take() {
                        if let Ok(v) = serde_json::from_str::<Value>(&text[s..=i]) {
                            out.push(v);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen3_uses_thousandths_and_qwen25_input_pixels() {
        let text = "```json\n[\n  {\"bbox_2d\": [100, 200, 500, 1000], \"label\": \"liver\"},\n  {\"bbox_2d\": [0, 0, 250, 250], \"label\": \"spleen\"}\n]\n```";
        let q3 = QwenJson {
            coordinates: QwenCoordinates::Thousandths,
        }
        .parse(text);
        assert_eq!(q3.len(), 2);
        assert_eq!(q3[0].box_norm, Some(BoxNorm([0.1, 0.2, 0.5, 1.0])));
        let q25 = QwenJson {
            coordinates: QwenCoordinates::AbsolutePixels {
                width: 500.0,
                height: 1000.0,
            },
        }
        .parse(text);
        assert_eq!(q25[0].box_norm, Some(BoxNorm([0.2, 0.2, 1.0, 1.0])));
        assert_eq!(q25[1].keyword, "spleen");
    }

    #[test]
    fn truncated_json_keeps_complete_objects() {
        let text = "[{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"a } b\"}, {\"bbox_2d\": [5, 6, 7";
        let f = QwenJson {
            coordinates: QwenCoordinates::Thousandths,
        }
        .parse(text);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].keyword, "a } b");
        assert!(QwenJson {
            coordinates: QwenCoordinates::Thousandths
        }
        .parse("[{\"bbox_2d\": [1, 2, 3]}]")
        .is_empty());
        assert!(QwenJson {
            coordinates: QwenCoordinates::Thousandths
        }
        .parse("no json at all")
        .is_empty());
    }
}
