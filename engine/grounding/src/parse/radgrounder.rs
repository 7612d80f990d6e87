//! RadGrounder: `The <p bbox=<loc0100><loc0200><loc0300><loc0400> id=<seg005>>liver</p> is enlarged.`
//! Four `<loc>` tokens x_min, y_min, x_max, y_max in 512 bins (bin / 512, clamped: `<loc0512>` is
//! 1.0), `id=<segNNN>` a class id of the label map. The mask checkpoint writes `<seg>liver</seg>`;
//! the i-th `</seg>` pairs with the i-th mask.

use super::{take_four_locs, take_token, GroundingParser};
use crate::finding::{BoxNorm, Finding};
use crate::labels::{LabelMap, Language};

const BINS: f64 = 512.0;

pub struct RadGrounder {
    pub labels: LabelMap,
    pub language: Language,
}

impl GroundingParser for RadGrounder {
    fn parse(&self, text: &str) -> Vec<Finding> {
        let mut findings = Vec::new();
        // Box phrases.
        let mut rest = text;
        while let Some(start) = rest.find("<p bbox=") {
            let after = &rest[start + "<p bbox=".len()..];
            match self.box_phrase(after) {
                Some((finding, tail)) => {
                    findings.push(finding);
                    rest = tail;
                }
                None => rest = after,
            }
        }
        // Mask phrases: only complete `<seg>…</seg>` pairs count, in order.
        let mut rest = text;
        let mut index = 0;
        while let Some(start) = rest.find("<seg>") {
            let after = &rest[start + "<seg>".len()..];
            let Some(end) = after.find("</seg>") else {
                break;
            };
            let keyword = after[..end].trim();
            if !keyword.is_empty() && !keyword.contains("<seg>") {
                findings.push(Finding {
                    keyword: keyword.to_string(),
                    class_id: None,
                    class_name: None,
                    box_norm: None,
                    mask_index: Some(index),
                });
            }
            index += 1;
            rest = &after[end + "</seg>".len()..];
        }
        findings
    }
}

/// A piece of the answer as a reader sees it: plain text, or a finding's keyword (its index in
/// what `parse` returns).
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub text: String,
    pub finding: Option<usize>,
}

/// Removes leftover grounding tokens (`<loc0123>`, `<seg005>`, stray `<p bbox=`, `</p>`, `<seg>`,
/// `</seg>`, `id=`) from plain text, e.g. of a truncated phrase.
fn strip_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let tokens = ["<p bbox=", "</p>", "<seg>", "</seg>", "id="];
        if let Some(t) = tokens.iter().find(|t| rest.starts_with(**t)) {
            rest = &rest[t.len()..];
            continue;
        }
        if let Some(after) = rest
            .strip_prefix("<loc")
            .or_else(|| rest.strip_prefix("<seg"))
        {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && after[digits..].starts_with('>') {
                rest = &after[digits + 1..];
                continue;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

impl RadGrounder {
    /// The answer as a person reads it: each finding's keyword in place of its markup.
    pub fn plain_text(&self, text: &str) -> String {
        self.spans(text).into_iter().map(|s| s.text).collect()
    }

    /// The answer as text with each keyword tied to its finding, in the order of `parse`.
    pub fn spans(&self, text: &str) -> Vec<Span> {
        let boxes = self
            .parse(text)
            .iter()
            .filter(|f| f.mask_index.is_none())
            .count();
        let mut spans = Vec::new();
        let mut plain = String::new();
        let (mut next_box, mut next_mask) = (0, boxes);
        let mut rest = text;
        let flush = |plain: &mut String, spans: &mut Vec<Span>| {
            let t = strip_markup(plain);
            if !t.is_empty() {
                spans.push(Span {
                    text: t,
                    finding: None,
                });
            }
            plain.clear();
        };
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("<p bbox=") {
                if let Some((finding, tail)) = self.box_phrase(after) {
                    flush(&mut plain, &mut spans);
                    spans.push(Span {
                        text: finding.keyword,
                        finding: Some(next_box),
                    });
                    next_box += 1;
                    rest = tail;
                    continue;
                }
            }
            if let Some(after) = rest.strip_prefix("<seg>") {
                if let Some(end) = after.find("</seg>") {
                    let keyword = after[..end].trim();
                    if !keyword.is_empty() && !keyword.contains("<seg>") {
                        flush(&mut plain, &mut spans);
                        spans.push(Span {
                            text: keyword.to_string(),
                            finding: Some(next_mask),
                        });
                        next_mask += 1;
                        rest = &after[end + "</seg>".len()..];
                        continue;
                    }
                }
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                plain.push(c);
            }
            rest = chars.as_str();
        }
        flush(&mut plain, &mut spans);
        spans
    }

    /// Parses `<loc>x4 id=<segNNN>>keyword</p>`; `None` when any part is missing or cut off.
    fn box_phrase<'a>(&self, s: &'a str) -> Option<(Finding, &'a str)> {
        let (coords, mut rest) = take_four_locs(s)?;
        let mut class_id = None;
        let trimmed = rest.trim_start();
        if let Some(after_id) = trimmed.strip_prefix("id=") {
            let (id, r) = take_token(after_id, "seg")?;
            class_id = Some(id);
            rest = r;
        }
        let rest = rest.trim_start().strip_prefix('>')?;
        let end = rest.find("</p>")?;
        let keyword = rest[..end].trim();
        if keyword.is_empty() || keyword.contains('<') {
            return None;
        }
        let n = |v: u32| f64::from(v) / BINS;
        let finding = Finding {
            keyword: keyword.to_string(),
            class_id,
            class_name: class_id
                .and_then(|id| self.labels.display_name(id, self.language))
                .map(str::to_string),
            box_norm: Some(BoxNorm::new(
                n(coords[0]),
                n(coords[1]),
                n(coords[2]),
                n(coords[3]),
            )),
            mask_index: None,
        };
        Some((finding, &rest[end + "</p>".len()..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(language: Language) -> RadGrounder {
        RadGrounder {
            labels: LabelMap::radgrounder(),
            language,
        }
    }

    #[test]
    fn boxes_are_x_first_in_512_bins_with_class_names() {
        let text = "The <p bbox=<loc0100><loc0200><loc0300><loc0400> id=<seg005>>liver</p> is enlarged; \
                    the <p bbox=<loc0000><loc0256><loc0512><loc0512> id=<seg002>>right kidney</p> is normal.";
        let f = parser(Language::En).parse(text);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].keyword, "liver");
        assert_eq!(f[0].class_id, Some(5));
        assert_eq!(f[0].class_name.as_deref(), Some("liver"));
        assert_eq!(
            f[0].box_norm,
            Some(BoxNorm([
                100.0 / 512.0,
                200.0 / 512.0,
                300.0 / 512.0,
                400.0 / 512.0
            ]))
        );
        assert_eq!(f[1].box_norm, Some(BoxNorm([0.0, 0.5, 1.0, 1.0])));
        assert_eq!(f[0].box_px(512, 256), Some([100.0, 100.0, 300.0, 200.0]));
        let de = parser(Language::De).parse(text);
        assert_eq!(de[1].class_name.as_deref(), Some("rechte Niere"));
    }

    #[test]
    fn truncated_or_broken_output_keeps_only_complete_findings() {
        let full = "The <p bbox=<loc0100><loc0200><loc0300><loc0400> id=<seg005>>liver</p> and the <p bbox=<loc0010><loc0020><loc0030><loc0040> id=<seg001>>spleen</p>.";
        for cut in 0..full.len() {
            if !full.is_char_boundary(cut) {
                continue;
            }
            let f = parser(Language::En).parse(&full[..cut]);
            let complete = full[..cut].matches("</p>").count();
            assert_eq!(f.len(), complete, "cut at {cut}: {f:?}");
        }
        let broken = "<p bbox=<loc01x0><loc0200><loc0300><loc0400> id=<seg005>>liver</p> <p bbox=<loc0001><loc0002><loc0003> id=<seg005>>x</p>";
        assert!(parser(Language::En).parse(broken).is_empty());
    }

    #[test]
    fn boxes_without_a_class_id_still_parse() {
        let f = parser(Language::En).parse("<p bbox=<loc0100><loc0200><loc0300><loc0400>>mass</p>");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].class_id, None);
        assert_eq!(f[0].keyword, "mass");
    }

    #[test]
    fn spans_tie_keywords_to_findings_and_drop_markup() {
        let p = parser(Language::En);
        let text = "The <p bbox=<loc0100><loc0200><loc0300><loc0400> id=<seg005>>liver</p> is enlarged; \
                    the <p bbox=<loc0000><loc0256><loc0512><loc0512> id=<seg002>>right kidney</p> is normal <p bbox=<loc0001>";
        let spans = p.spans(text);
        let findings = p.parse(text);
        let tied: Vec<(&str, usize)> = spans
            .iter()
            .filter_map(|s| s.finding.map(|f| (s.text.as_str(), f)))
            .collect();
        assert_eq!(tied, vec![("liver", 0), ("right kidney", 1)]);
        for (keyword, i) in tied {
            assert_eq!(findings[i].keyword, keyword);
        }
        let plain: String = spans.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(plain, "The liver is enlarged; the right kidney is normal ");
        let masks = p.spans("a <seg>liver</seg> and <seg>spleen</seg>.");
        assert_eq!(
            p.plain_text("a <seg>liver</seg> and <seg>spleen</seg>."),
            "a liver and spleen."
        );
        assert_eq!(
            masks[1],
            Span {
                text: "liver".into(),
                finding: Some(0)
            }
        );
        assert_eq!(
            masks[3],
            Span {
                text: "spleen".into(),
                finding: Some(1)
            }
        );
    }

    #[test]
    fn mask_phrases_pair_with_masks_in_order() {
        let f = parser(Language::En).parse(
            "The <seg>liver</seg> is enlarged and the <seg>spleen</seg> is infarcted, the <seg>kid",
        );
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].keyword.as_str(), f[0].mask_index), ("liver", Some(0)));
        assert_eq!(
            (f[1].keyword.as_str(), f[1].mask_index),
            ("spleen", Some(1))
        );
    }
}
