//! A grounded finding: a keyword, maybe a class, and where it is. Boxes are kept normalised to the
//! model's input image ([0, 1] on both axes); because the slice is resized to the model input without
//! keeping the aspect ratio, they map straight onto the slice's width and height.

use groundglass_study::geometry::Vec3;
use groundglass_study::SliceImage;
use serde::Serialize;

/// A box as fractions of the model input: x0, y0 (top-left) and x1, y1 (bottom-right), each in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct BoxNorm(pub [f64; 4]);

impl BoxNorm {
    /// Orders the corners and clamps them to [0, 1].
    pub fn new(x0: f64, y0: f64, x1: f64, y1: f64) -> Self {
        let c = |v: f64| {
            if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        let (x0, x1) = (c(x0).min(c(x1)), c(x0).max(c(x1)));
        let (y0, y1) = (c(y0).min(c(y1)), c(y0).max(c(y1)));
        BoxNorm([x0, y0, x1, y1])
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Finding {
    pub keyword: String,
    pub class_id: Option<u32>,
    pub class_name: Option<String>,
    /// The box, when the output carried one.
    pub box_norm: Option<BoxNorm>,
    /// For mask output: the index of the mask that belongs to this finding (the i-th `</seg>`).
    pub mask_index: Option<usize>,
}

/// A finding placed on a slice.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct LocatedFinding {
    pub keyword: String,
    pub class_id: Option<u32>,
    pub class_name: Option<String>,
    /// [x0, y0, x1, y1] in slice pixels, pixel edges: the slice spans [0, width] x [0, height].
    pub box_px: Option<[f64; 4]>,
    /// The box's corners in patient LPS mm: top-left, top-right, bottom-right, bottom-left.
    pub box_lps: Option<[Vec3; 4]>,
    pub mask_index: Option<usize>,
}

impl Finding {
    /// Slice pixels of the box, for a slice of `width` x `height` pixels.
    pub fn box_px(&self, width: usize, height: usize) -> Option<[f64; 4]> {
        let b = self.box_norm?.0;
        let (w, h) = (width as f64, height as f64);
        Some([b[0] * w, b[1] * h, b[2] * w, b[3] * h])
    }

    /// Places the finding on `slice`: pixels and patient positions of the box corners.
    pub fn locate(&self, slice: &SliceImage) -> LocatedFinding {
        let box_px = self.box_px(slice.width, slice.height);
        // Pixel centres sit at integer coordinates in the engine; an edge coordinate e is centre e - 0.5.
        let lps = |x: f64, y: f64| slice.pixel_to_lps(x - 0.5, y - 0.5);
        let box_lps =
            box_px.map(|[x0, y0, x1, y1]| [lps(x0, y0), lps(x1, y0), lps(x1, y1), lps(x0, y1)]);
        self.located(box_px, box_lps)
    }

    /// The finding with pixel boxes only (no slice geometry known, e.g. `grounding parse`).
    pub fn located_in(&self, width: usize, height: usize) -> LocatedFinding {
        self.located(self.box_px(width, height), None)
    }

    fn located(&self, box_px: Option<[f64; 4]>, box_lps: Option<[Vec3; 4]>) -> LocatedFinding {
        LocatedFinding {
            keyword: self.keyword.clone(),
            class_id: self.class_id,
            class_name: self.class_name.clone(),
            box_px,
            box_lps,
            mask_index: self.mask_index,
        }
    }
}
