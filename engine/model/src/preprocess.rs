//! The slice as RadGrounder sees it (its inference code, `radgrounder/dataset`): from modality
//! values at full resolution, CT is clipped below -1000 HU and split into three windows (W2250/L-100,
//! W350/L40, W80/L40), each mapped to [-1, 1]; anything else is min-max scaled to [-1, 1] on one
//! channel. Then a bilinear resize to the model's size (torch `interpolate`, align_corners=False, no
//! antialias, aspect ratio not kept) and the single channel repeated to three.
//!
//! Two things the authors never meet and we must: MONOCHROME1 is not inverted (their reader never
//! inverts, and Hounsfield units do not depend on the photometric tag, so inverting would break
//! the CT windows); and a reformatted plane whose pixels are not square (a coronal or sagittal cut
//! through thick slices) is first resampled to square pixels over the same extent, since the
//! model was trained on native slices with square pixels. Fractions of the model input still mean
//! the same place on the slice, so findings map back unchanged.

use groundglass_study::{square_values, SliceImage};

const CT_WINDOWS: [(f32, f32); 3] = [(2250.0, -100.0), (350.0, 40.0), (80.0, 40.0)];

/// Channel-first pixels (3, size, size) in [-1, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct ModelImage {
    pub size: usize,
    pub pixels: Vec<f32>,
    /// Pixel spacing (x, y) in mm of the image handed to the resize (after squaring); `None`
    /// for raw values whose spacing is not known.
    pub input_spacing_mm: Option<[f64; 2]>,
}

/// Preprocesses an engine slice (modality values; NaN outside the volume counts as the lowest value).
pub fn preprocess_slice(slice: &SliceImage, modality: &str, size: usize) -> ModelImage {
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
    let values: Vec<f32> = grey
        .iter()
        .map(|v| if v.is_finite() { *v } else { lowest })
        .collect();
    let spacing = [slice.grid.spacing[0], slice.grid.spacing[1]];
    let square = square_values(&values, slice.width, slice.height, 1, spacing);
    let mut image = preprocess_values(
        &square.values,
        square.width,
        square.height,
        modality == "CT",
        size,
    );
    image.input_spacing_mm = Some(square.spacing);
    image
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
    ModelImage {
        size,
        pixels,
        input_spacing_mm: None,
    }
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
