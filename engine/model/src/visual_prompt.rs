//! Visual prompts: a mark drawn into the image the model sees (a box, a mask overlay, a point, an
//! arrow or a letter label), so a question can ask about "the marked structure". The mark is burned
//! into the preprocessed input, after windowing and resizing, in one colour no tissue has: full
//! brightness on the first two channels and none on the third. For a CT that is above 1025 HU in
//! the wide window and below 0 HU in the narrow one at once; for an MR, whose three channels are
//! equal, it is no grey. The MIS-Ground benchmark, the trainer and the viewer's region questions
//! all draw through [`VisualPrompt::burn`], so the model sees the same mark wherever it is asked.
//!
//! Places are fractions of the slice (x right, y down, 0..1). Preprocessing squashes the slice to
//! the model's square without keeping the aspect ratio, so a fraction of the slice is the same
//! fraction of the input.

use serde::{Deserialize, Serialize};

use crate::preprocess::ModelImage;

/// The mark's colour, channel by channel, in the model's [-1, 1] range.
pub const MARK: [f32; 3] = [1.0, 1.0, -1.0];

/// A mark on the slice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VisualPrompt {
    /// The outline of `[x0, y0, x1, y1]`.
    Box { rect: [f64; 4] },
    /// A mask, row-major on a `width` x `height` grid over the slice, overlaid half-transparent
    /// with its outline drawn in full.
    Mask {
        width: usize,
        height: usize,
        inside: Vec<bool>,
    },
    /// A filled dot at `at`.
    Point { at: [f64; 2] },
    /// An arrow from the upper left whose tip is at `tip`.
    Arrow { tip: [f64; 2] },
    /// The letter `A` beside `at`, with a dot at `at` itself (a label, as a radiologist writes on
    /// a key image).
    Label { at: [f64; 2] },
}

impl VisualPrompt {
    /// The kind's name, as the benchmark reports it.
    pub fn kind(&self) -> &'static str {
        match self {
            VisualPrompt::Box { .. } => "box",
            VisualPrompt::Mask { .. } => "mask",
            VisualPrompt::Point { .. } => "point",
            VisualPrompt::Arrow { .. } => "arrow",
            VisualPrompt::Label { .. } => "label",
        }
    }

    /// The same mark on the slice flipped left to right.
    pub fn mirrored(&self) -> VisualPrompt {
        let fx = |x: f64| 1.0 - x;
        match self {
            VisualPrompt::Box { rect } => VisualPrompt::Box {
                rect: [fx(rect[2]), rect[1], fx(rect[0]), rect[3]],
            },
            VisualPrompt::Mask {
                width,
                height,
                inside,
            } => VisualPrompt::Mask {
                width: *width,
                height: *height,
                inside: (0..width * height)
                    .map(|i| inside[(i / width) * width + (width - 1 - i % width)])
                    .collect(),
            },
            VisualPrompt::Point { at } => VisualPrompt::Point {
                at: [fx(at[0]), at[1]],
            },
            VisualPrompt::Arrow { tip } => VisualPrompt::Arrow {
                tip: [fx(tip[0]), tip[1]],
            },
            VisualPrompt::Label { at } => VisualPrompt::Label {
                at: [fx(at[0]), at[1]],
            },
        }
    }

    /// Draws the mark into `image` (channel-first, `size` x `size`).
    pub fn burn(&self, image: &mut ModelImage) {
        let size = image.size;
        let mut canvas = Canvas {
            pixels: &mut image.pixels,
            size,
        };
        // Strokes one pixel wide at 96 px, two at RadGrounder's 224.
        let stroke = (size / 112).max(1) as i64;
        let px = |f: f64| (f * size as f64).floor() as i64;
        match self {
            VisualPrompt::Box { rect } => {
                let (x0, y0) = (px(rect[0]), px(rect[1]));
                let (x1, y1) = (px(rect[2]).max(x0 + 1) - 1, px(rect[3]).max(y0 + 1) - 1);
                for t in 0..stroke {
                    for x in x0..=x1 {
                        canvas.set(x, y0 + t, 1.0);
                        canvas.set(x, y1 - t, 1.0);
                    }
                    for y in y0..=y1 {
                        canvas.set(x0 + t, y, 1.0);
                        canvas.set(x1 - t, y, 1.0);
                    }
                }
            }
            VisualPrompt::Mask {
                width,
                height,
                inside,
            } => {
                if *width == 0 || *height == 0 || inside.len() != width * height {
                    return;
                }
                let at = |x: i64, y: i64| -> bool {
                    if x < 0 || y < 0 || x >= size as i64 || y >= size as i64 {
                        return false;
                    }
                    // The mask cell under the input pixel's centre.
                    let mx = ((x as f64 + 0.5) / size as f64 * *width as f64) as usize;
                    let my = ((y as f64 + 0.5) / size as f64 * *height as f64) as usize;
                    inside[my.min(height - 1) * width + mx.min(width - 1)]
                };
                for y in 0..size as i64 {
                    for x in 0..size as i64 {
                        if !at(x, y) {
                            continue;
                        }
                        let edge = !(at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1));
                        canvas.set(x, y, if edge { 1.0 } else { 0.5 });
                    }
                }
            }
            VisualPrompt::Point { at } => canvas.dot(px(at[0]), px(at[1]), stroke + 1),
            VisualPrompt::Arrow { tip } => {
                let (tx, ty) = (px(tip[0]), px(tip[1]));
                let length = (size / 6) as i64;
                // The shaft comes from the upper left, or from the lower right where the upper
                // left is off the image.
                let dir = if tx - length >= 0 && ty - length >= 0 {
                    -1
                } else {
                    1
                };
                for s in 0..=length {
                    for t in 0..stroke {
                        canvas.set(tx + dir * s + t, ty + dir * s, 1.0);
                    }
                }
                // The head: two short strokes back from the tip.
                let head = (length / 3).max(2);
                for s in 0..=head {
                    canvas.set(tx + dir * s, ty, 1.0);
                    canvas.set(tx, ty + dir * s, 1.0);
                }
            }
            VisualPrompt::Label { at } => {
                let (x, y) = (px(at[0]), px(at[1]));
                canvas.dot(x, y, stroke);
                let scale = stroke;
                // Above and to the right of the dot, or below where the top is too near.
                let gy = if y - 9 * scale >= 0 {
                    y - 9 * scale
                } else {
                    y + 3 * scale
                };
                let gx = if x + 8 * scale < size as i64 {
                    x + 3 * scale
                } else {
                    x - 8 * scale
                };
                canvas.glyph_a(gx, gy, scale);
            }
        }
    }
}

impl VisualPrompt {
    /// Parses `box:X0,Y0,X1,Y1`, `point:X,Y`, `arrow:X,Y` or `label:X,Y` in pixels of a slice
    /// `width` x `height` (pixel edges, as the viewer's tools give them).
    pub fn parse_pixels(text: &str, width: usize, height: usize) -> Result<VisualPrompt, String> {
        let (kind, numbers) = text.split_once(':').ok_or_else(|| {
            format!("{text:?}: expected box:X0,Y0,X1,Y1, point:X,Y, arrow:X,Y or label:X,Y")
        })?;
        let values: Vec<f64> = numbers
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("{text:?}: the coordinates must be numbers"))?;
        let (w, h) = (width.max(1) as f64, height.max(1) as f64);
        let inside = |x: f64, y: f64| {
            x.is_finite() && y.is_finite() && (0.0..=w).contains(&x) && (0.0..=h).contains(&y)
        };
        let point = |v: &[f64]| -> Result<[f64; 2], String> {
            match v {
                [x, y] if inside(*x, *y) => Ok([x / w, y / h]),
                [_, _] => Err(format!("{text:?}: outside the {width} x {height} slice")),
                _ => Err(format!("{text:?}: a point takes two numbers, X,Y")),
            }
        };
        match kind.trim() {
            "box" => match values.as_slice() {
                [x0, y0, x1, y1] if inside(*x0, *y0) && inside(*x1, *y1) => {
                    let rect = [
                        x0.min(*x1) / w,
                        y0.min(*y1) / h,
                        x0.max(*x1) / w,
                        y0.max(*y1) / h,
                    ];
                    if rect[2] - rect[0] <= 0.0 || rect[3] - rect[1] <= 0.0 {
                        return Err(format!("{text:?}: the box has no area"));
                    }
                    Ok(VisualPrompt::Box { rect })
                }
                [_, _, _, _] => Err(format!("{text:?}: outside the {width} x {height} slice")),
                _ => Err(format!("{text:?}: a box takes four numbers, X0,Y0,X1,Y1")),
            },
            "point" => Ok(VisualPrompt::Point {
                at: point(&values)?,
            }),
            "arrow" => Ok(VisualPrompt::Arrow {
                tip: point(&values)?,
            }),
            "label" => Ok(VisualPrompt::Label {
                at: point(&values)?,
            }),
            other => Err(format!(
                "{other:?}: the mark is box, point, arrow or label (masks come from the viewer)"
            )),
        }
    }
}

struct Canvas<'a> {
    pixels: &'a mut [f32],
    size: usize,
}

impl Canvas<'_> {
    /// Blends pixel (x, y) toward the mark's colour by `alpha`; outside the image does nothing.
    fn set(&mut self, x: i64, y: i64, alpha: f32) {
        let n = self.size as i64;
        if x < 0 || y < 0 || x >= n || y >= n {
            return;
        }
        let plane = self.size * self.size;
        let at = y as usize * self.size + x as usize;
        for (c, mark) in MARK.iter().enumerate() {
            let p = &mut self.pixels[c * plane + at];
            *p = (1.0 - alpha) * *p + alpha * mark;
        }
    }

    fn dot(&mut self, cx: i64, cy: i64, radius: i64) {
        for y in -radius..=radius {
            for x in -radius..=radius {
                if x * x + y * y <= radius * radius {
                    self.set(cx + x, cy + y, 1.0);
                }
            }
        }
    }

    /// The letter A, 5 x 7 cells of `scale` pixels, its top left at (x, y).
    fn glyph_a(&mut self, x: i64, y: i64, scale: i64) {
        const ROWS: [u8; 7] = [
            0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ];
        for (r, bits) in ROWS.iter().enumerate() {
            for c in 0..5 {
                if bits & (0b10000 >> c) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            self.set(x + c * scale + dx, y + r as i64 * scale + dy, 1.0);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(size: usize) -> ModelImage {
        ModelImage {
            size,
            pixels: vec![0.0; 3 * size * size],
            input_spacing_mm: None,
        }
    }

    fn marked(image: &ModelImage) -> Vec<(usize, usize)> {
        let plane = image.size * image.size;
        (0..plane)
            .filter(|&i| image.pixels[i] == MARK[0] && image.pixels[2 * plane + i] == MARK[2])
            .map(|i| (i % image.size, i / image.size))
            .collect()
    }

    #[test]
    fn a_box_outlines_its_rectangle_and_nothing_else() {
        let mut image = grey(96);
        VisualPrompt::Box {
            rect: [0.25, 0.5, 0.5, 0.75],
        }
        .burn(&mut image);
        let px = marked(&image);
        assert!(px.contains(&(24, 48)) && px.contains(&(47, 71)));
        assert!(px
            .iter()
            .all(|&(x, y)| (24..=47).contains(&x) && (48..=71).contains(&y)));
        // An outline: the inside keeps its grey.
        assert!(!px.contains(&(36, 60)));
        // 24 x 24 pixels, one wide: 4 * 24 - 4.
        assert_eq!(px.len(), 92);
    }

    #[test]
    fn a_mask_is_overlaid_with_its_outline_full() {
        let mut image = grey(8);
        let inside: Vec<bool> = (0..16).map(|i| (i % 4) >= 1 && (i / 4) >= 1).collect();
        VisualPrompt::Mask {
            width: 4,
            height: 4,
            inside,
        }
        .burn(&mut image);
        // The mask's lower right 3 x 3 cells cover input pixels 2..8; its inside is half-blended.
        let plane = 64;
        assert_eq!(image.pixels[0], 0.0);
        assert_eq!(image.pixels[2 * 8 + 2], MARK[0]);
        assert_eq!(image.pixels[4 * 8 + 4], 0.5);
        assert_eq!(image.pixels[2 * plane + 4 * 8 + 4], -0.5);
    }

    #[test]
    fn marks_mirror_with_the_slice() {
        let flip = |p: &VisualPrompt| {
            let mut a = grey(32);
            p.burn(&mut a);
            let mut b = grey(32);
            p.mirrored().burn(&mut b);
            let mut a: Vec<(usize, usize)> = marked(&a).iter().map(|&(x, y)| (31 - x, y)).collect();
            a.sort();
            let mut b = marked(&b);
            b.sort();
            (a, b)
        };
        let b = VisualPrompt::Box {
            rect: [0.125, 0.25, 0.5, 0.625],
        };
        let (a, m) = flip(&b);
        assert_eq!(a, m);
        let (a, m) = flip(&VisualPrompt::Point { at: [0.3, 0.6] });
        assert!(!a.is_empty());
        assert_eq!(a.len(), m.len());
    }

    #[test]
    fn marks_parse_from_slice_pixels_and_wrong_ones_say_why() {
        assert_eq!(
            VisualPrompt::parse_pixels("box:40,20,10,60", 80, 80),
            Ok(VisualPrompt::Box {
                rect: [0.125, 0.25, 0.5, 0.75]
            })
        );
        assert_eq!(
            VisualPrompt::parse_pixels("point:20,40", 80, 160),
            Ok(VisualPrompt::Point { at: [0.25, 0.25] })
        );
        for (bad, says) in [
            ("box:1,2,3", "four numbers"),
            ("box:1,1,1,9", "no area"),
            ("point:500,2", "outside"),
            ("circle:1,2", "box, point"),
            ("point:a,b", "numbers"),
            ("40,40", "expected"),
        ] {
            let e = VisualPrompt::parse_pixels(bad, 80, 80).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn every_kind_marks_near_its_place_even_at_the_edge() {
        for p in [
            VisualPrompt::Point { at: [0.5, 0.5] },
            VisualPrompt::Arrow { tip: [0.05, 0.05] },
            VisualPrompt::Arrow { tip: [0.6, 0.6] },
            VisualPrompt::Label { at: [0.98, 0.02] },
            VisualPrompt::Label { at: [0.5, 0.5] },
        ] {
            let mut image = grey(96);
            p.burn(&mut image);
            let px = marked(&image);
            assert!(px.len() >= 5, "{} drew {} pixels", p.kind(), px.len());
        }
    }
}
