//! Stock PaliGemma `detect`: `<loc0256><loc0100><loc0768><loc0900> cat ; <loc…>… dog`: four `<loc>`
//! tokens y_min, x_min, y_max, x_max in 1024 bins, then the label; detections separated by `;`.
//! `segment` output adds 16 `<segNNN>` codes after the boxes; they are skipped (no VQ-VAE here).

use super::{take_four_locs, take_token, GroundingParser};
use crate::finding::{BoxNorm, Finding};

const BINS: f64 = 1024.0;

pub struct PaliGemmaDetect;

impl GroundingParser for PaliGemmaDetect {
    fn parse(&self, text: &str) -> Vec<Finding> {
        text.split(';').filter_map(parse_one).collect()
    }
}

fn parse_one(part: &str) -> Option<Finding> {
    let (coords, mut rest) = take_four_locs(part)?;
    while let Some((_, r)) = take_token(rest, "seg") {
        rest = r;
    }
    let label = rest.trim();
    if label.is_empty() || label.contains('<') {
        return None;
    }
    let n = |v: u32| f64::from(v) / BINS;
    Some(Finding {
        keyword: label.to_string(),
        class_id: None,
        class_name: None,
        box_norm: Some(BoxNorm::new(
            n(coords[1]),
            n(coords[0]),
            n(coords[3]),
            n(coords[2]),
        )),
        mask_index: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_first_1024_bins_semicolon_separated() {
        let f = PaliGemmaDetect.parse("<loc0256><loc0128><loc0768><loc0512> liver ; <loc0000><loc0000><loc1024><loc1024> body");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].keyword, "liver");
        assert_eq!(f[0].box_norm, Some(BoxNorm([0.125, 0.25, 0.5, 0.75])));
        assert_eq!(f[1].box_norm, Some(BoxNorm([0.0, 0.0, 1.0, 1.0])));
    }

    #[test]
    fn segment_codes_are_skipped_and_cut_output_is_dropped() {
        let seg: String = (0..16).map(|i| format!("<seg{i:03}>")).collect();
        let text = format!("<loc0256><loc0128><loc0768><loc0512>{seg} kidney ; <loc0001><loc0002>");
        let f = PaliGemmaDetect.parse(&text);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].keyword, "kidney");
    }
}
