//! Parsers for the grounding formats a viewer meets, behind one trait. Broken or truncated output
//! yields the findings that are complete; nothing here panics on model text.

mod paligemma;
mod qwen;
mod radgrounder;

pub use paligemma::PaliGemmaDetect;
pub use qwen::{QwenCoordinates, QwenJson};
pub use radgrounder::{RadGrounder, Span};

use crate::finding::Finding;
use crate::labels::{LabelMap, Language};

pub trait GroundingParser {
    fn parse(&self, text: &str) -> Vec<Finding>;
}

/// The output conventions supported.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Format {
    /// `<p bbox=<loc>x4 id=<segNNN>>keyword</p>`, 512 bins, x first; or `<seg>keyword</seg>`.
    RadGrounder,
    /// Stock PaliGemma `detect`: `<loc>`x4 (y first, 1024 bins) then the label, `;`-separated.
    PaliGemma,
    /// Qwen2.5-VL JSON `bbox_2d` in absolute pixels of the resized input image.
    Qwen25 { input_width: f64, input_height: f64 },
    /// Qwen3-VL JSON `bbox_2d` in 0..1000, x first.
    Qwen3,
}

impl Format {
    /// `radgrounder`, `paligemma`, `qwen2.5` (needs the input size), `qwen3`.
    pub fn parse(name: &str, input_size: Option<(f64, f64)>) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "radgrounder" => Some(Format::RadGrounder),
            "paligemma" => Some(Format::PaliGemma),
            "qwen3" | "qwen3-vl" => Some(Format::Qwen3),
            "qwen2.5" | "qwen2.5-vl" | "qwen25" => input_size.map(|(w, h)| Format::Qwen25 {
                input_width: w,
                input_height: h,
            }),
            _ => None,
        }
    }
}

pub fn parser_for(
    format: Format,
    labels: LabelMap,
    language: Language,
) -> Box<dyn GroundingParser> {
    match format {
        Format::RadGrounder => Box::new(RadGrounder { labels, language }),
        Format::PaliGemma => Box::new(PaliGemmaDetect),
        Format::Qwen25 {
            input_width,
            input_height,
        } => Box::new(QwenJson {
            coordinates: QwenCoordinates::AbsolutePixels {
                width: input_width,
                height: input_height,
            },
        }),
        Format::Qwen3 => Box::new(QwenJson {
            coordinates: QwenCoordinates::Thousandths,
        }),
    }
}

/// Reads `<{prefix}NNNN>` at the start of `s` (after whitespace): the number and the rest.
pub(crate) fn take_token<'a>(s: &'a str, prefix: &str) -> Option<(u32, &'a str)> {
    let s = s.trim_start();
    let rest = s.strip_prefix('<')?.strip_prefix(prefix)?;
    let end = rest.find('>')?;
    let digits = &rest[..end];
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, &rest[end + 1..]))
}

/// Reads four `<locNNNN>` tokens: their values and the rest of the text.
pub(crate) fn take_four_locs(s: &str) -> Option<([u32; 4], &str)> {
    let mut coords = [0u32; 4];
    let mut rest = s;
    for c in &mut coords {
        let (v, r) = take_token(rest, "loc")?;
        *c = v;
        rest = r;
    }
    Some((coords, rest))
}
