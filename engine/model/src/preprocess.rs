//! The slice as RadGrounder sees it (its inference code, `radgrounder/dataset`): from modality
//! values at full resolution, CT is clipped below -1000 HU and split into three windows (W2250/L-100,
//! W350/L40, W80/L40), each mapped to [-1, 1]; anything else is min-max scaled to [-1, 1] on one
//! channel. Then a bilinear resize to the model's size (torch `interpolate`, align_corners=False, no
//! antialias, aspect ratio not kept) and the single channel repeated to three. MONOCHROME1 images
//! are inverted first, so bright means dense as the model was trained.

use groundglass_study::{Photometric, SliceImage};

const CT_WINDOWS: [(f32, f32); 3] = [(2250.0, -100.0), (350.0, 40.0), (80.0, 40.0)];

/// Channel-first pixels (3, size, size) in [-1, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct ModelImage {
    pub size: usize,
    pub pixels: Vec<f32>,
}

/// Preprocesses an engine slice (modality values; NaN outside the volume counts as the lowest value).
pub fn preprocess_slice(
    slice: &SliceImage,
    modality: &str,
    photometric: Photometric,
    size: usize,
) -> ModelImage {
    let grey: Vec<f32> = if slice.channels == 3 {
        slice
            .values
            .chunks_exact(3)
            .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
            .collect()
    } else {
        slice.values.clone()
    };
    let lowest = grey
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f32::INFINITY, f32::min);
    let mut values: Vec<f32> = grey
        .iter()
        .map(|v| if v.is_finite() { *v } else { lowest })
        .collect();
    if photometric == Photometric::Monochrome1 {
        let highest = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        values.iter_mut().for_each(|v| *v = highest + lowest - *v);
    }
    preprocess_values(&values, slice.width, slice.height, modality == "CT", size)
}

/// The same on a raw row-major array of modality values.
pub fn preprocess_values(
    values: &[f32],
    width: usize,
    height: usize,
    is_ct: bool,
    size: usize,
) -> ModelImage {
    let mut pixels = Vec::with_capacity(3 * size * size);
    if is_ct {
        for (w, l) in CT_WINDOWS {
            let (lo, hi) = (l - w / 2.0, l + w / 2.0);
            let channel: Vec<f32> = values
                .iter()
                .map(|v| (v.max(-1000.0).clamp(lo, hi) - lo) / (hi - lo + 1e-5) * 2.0 - 1.0)
                .collect();
            pixels.extend(resize_bilinear(&channel, width, height, size));
        }
    } else {
        let (min, max) = values
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let scaled: Vec<f32> = values
            .iter()
            .map(|v| (v - min) / (max - min + 1e-5) * 2.0 - 1.0)
            .collect();
        let one = resize_bilinear(&scaled, width, height, size);
        for _ in 0..3 {
            pixels.extend_from_slice(&one);
        }
    }
    ModelImage { size, pixels }
}

/// torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False).
fn resize_bilinear(src: &[f32], width: usize, height: usize, size: usize) -> Vec<f32> {
    let taps = |n_in: usize| -> Vec<(usize, usize, f32)> {
        let scale = n_in as f32 / size as f32;
        (0..size)
            .map(|o| {
                let s = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (s as usize).min(n_in - 1);
                let i1 = (i0 + 1).min(n_in - 1);
                (i0, i1, s - i0 as f32)
            })
            .collect()
    };
    let (xs, ys) = (taps(width), taps(height));
    let mut out = Vec::with_capacity(size * size);
    for &(y0, y1, ly) in &ys {
        for &(x0, x1, lx) in &xs {
            let p = |x: usize, y: usize| src[y * width + x];
            let top = (1.0 - lx) * p(x0, y0) + lx * p(x1, y0);
            let bottom = (1.0 - lx) * p(x0, y1) + lx * p(x1, y1);
            out.push((1.0 - ly) * top + ly * bottom);
        }
    }
    out
}
