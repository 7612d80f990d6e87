//! Turning a [`SliceImage`] into display pixels: VOI (window or VOI LUT), MONOCHROME1 inversion,
//! 8 bits, and square pixels so the image keeps its physical aspect ratio (for the screen and for
//! the model's input alike).

use crate::mpr::SliceImage;
use crate::pixel::{Lut, Photometric, VoiFunction, Window};

/// How modality values become grey levels.
#[derive(Clone, Debug)]
pub enum VoiMapping {
    Window(Window, VoiFunction),
    /// The file's VOI LUT, scaled by its output range.
    Lut(Lut),
}

/// An 8-bit image, 1 (grey) or 3 (RGB) channels, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct DisplayImage {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub pixels: Vec<u8>,
}

/// Applies VOI and photometric interpretation. Pixels outside the volume are black.
pub fn to_display(
    slice: &SliceImage,
    mapping: &VoiMapping,
    photometric: Photometric,
) -> DisplayImage {
    let invert = photometric == Photometric::Monochrome1;
    let pixels = if slice.channels == 3 {
        slice
            .values
            .iter()
            .map(|v| {
                if v.is_nan() {
                    0
                } else {
                    v.round().clamp(0.0, 255.0) as u8
                }
            })
            .collect()
    } else {
        let lut_range = match mapping {
            VoiMapping::Lut(lut) => Some(lut.output_range()),
            VoiMapping::Window(..) => None,
        };
        slice
            .values
            .iter()
            .map(|&v| {
                if v.is_nan() {
                    return 0;
                }
                let v = f64::from(v);
                let unit = match mapping {
                    VoiMapping::Window(w, f) => w.apply(v, *f),
                    VoiMapping::Lut(lut) => {
                        let (lo, hi) = lut_range.unwrap_or((0.0, 1.0));
                        (lut.lookup(v) - lo) / (hi - lo).max(1.0)
                    }
                };
                let unit = if invert { 1.0 - unit } else { unit };
                (unit * 255.0).round().clamp(0.0, 255.0) as u8
            })
            .collect()
    };
    DisplayImage {
        width: slice.width,
        height: slice.height,
        channels: slice.channels,
        pixels,
    }
}

/// Resamples so one pixel is the same size in x and y (the smaller of the two spacings), with
/// bilinear interpolation. Returns the image unchanged when pixels are already square.
pub fn square_pixels(image: &DisplayImage, spacing: [f64; 2]) -> DisplayImage {
    let values: Vec<f32> = image.pixels.iter().map(|&p| f32::from(p)).collect();
    let square = square_values(&values, image.width, image.height, image.channels, spacing);
    DisplayImage {
        width: square.width,
        height: square.height,
        channels: square.channels,
        pixels: square
            .values
            .iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect(),
    }
}

/// A row-major image of 1 or 3 channels of values, and its pixel spacing (x, y) in mm.
#[derive(Clone, Debug, PartialEq)]
pub struct SquareImage {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub values: Vec<f32>,
    pub spacing: [f64; 2],
}

/// The size [`square_values`] gives an image of `width` × `height` pixels of `spacing` (x, y):
/// the same size when the pixels are square already or the spacing is unknown.
pub fn square_size(width: usize, height: usize, spacing: [f64; 2]) -> [usize; 2] {
    let [sx, sy] = spacing;
    if !(sx > 0.0 && sy > 0.0) || (sx - sy).abs() < 1e-6 * sx.max(sy) {
        return [width, height];
    }
    let unit = sx.min(sy);
    [
        ((width as f64 * sx / unit).round() as usize).clamp(1, 16384),
        ((height as f64 * sy / unit).round() as usize).clamp(1, 16384),
    ]
}

/// Resamples values to square pixels of the smaller spacing, covering the same physical extent
/// (so fractions of the image mean the same place before and after), bilinear between pixel
/// centres. The new spacing of each axis is the extent over the rounded pixel count: equal within
/// half a pixel. Unchanged when the pixels are square already or the spacing is unknown.
pub fn square_values(
    values: &[f32],
    width: usize,
    height: usize,
    channels: usize,
    spacing: [f64; 2],
) -> SquareImage {
    let [sx, sy] = spacing;
    let [out_w, out_h] = square_size(width, height, spacing);
    if [out_w, out_h] == [width, height] || width * height == 0 {
        return SquareImage {
            width,
            height,
            channels,
            values: values.to_vec(),
            spacing,
        };
    }
    let ch = channels;
    // Output pixel centres onto input pixel centres: (index, next index, weight of next).
    let taps = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32)> {
        (0..n_out)
            .map(|o| {
                let f = ((o as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5)
                    .clamp(0.0, (n_in - 1) as f64);
                let i0 = f.floor() as usize;
                (i0, (i0 + 1).min(n_in - 1), (f - i0 as f64) as f32)
            })
            .collect()
    };
    let (xs, ys) = (taps(width, out_w), taps(height, out_h));
    let mut out = Vec::with_capacity(out_w * out_h * ch);
    for &(y0, y1, ty) in &ys {
        for &(x0, x1, tx) in &xs {
            for c in 0..ch {
                let p = |x: usize, y: usize| values[(y * width + x) * ch + c];
                let top = p(x0, y0) + (p(x1, y0) - p(x0, y0)) * tx;
                let bottom = p(x0, y1) + (p(x1, y1) - p(x0, y1)) * tx;
                out.push(top + (bottom - top) * ty);
            }
        }
    }
    SquareImage {
        width: out_w,
        height: out_h,
        channels: ch,
        values: out,
        spacing: [
            width as f64 * sx / out_w as f64,
            height as f64 * sy / out_h as f64,
        ],
    }
}

/// Shrinks an image so neither side exceeds `max_side` (nearest pixel; for thumbnails).
pub fn downsample(image: &DisplayImage, max_side: usize) -> DisplayImage {
    let longest = image.width.max(image.height);
    if longest <= max_side || max_side == 0 {
        return image.clone();
    }
    let scale = max_side as f64 / longest as f64;
    let width = ((image.width as f64 * scale).round() as usize).max(1);
    let height = ((image.height as f64 * scale).round() as usize).max(1);
    let ch = image.channels;
    let mut pixels = Vec::with_capacity(width * height * ch);
    for y in 0..height {
        let sy = ((y as f64 + 0.5) / scale) as usize;
        for x in 0..width {
            let sx = ((x as f64 + 0.5) / scale) as usize;
            let at = (sy.min(image.height - 1) * image.width + sx.min(image.width - 1)) * ch;
            pixels.extend_from_slice(&image.pixels[at..at + ch]);
        }
    }
    DisplayImage {
        width,
        height,
        channels: ch,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mpr::{EdgeLetters, Plane, PlaneGrid};
    use crate::pixel::Lut;

    fn slice(values: Vec<f32>) -> SliceImage {
        let width = values.len();
        SliceImage {
            grid: PlaneGrid {
                plane: Plane::Acquired,
                right: [1.0, 0.0, 0.0],
                down: [0.0, 1.0, 0.0],
                normal: [0.0, 0.0, 1.0],
                spacing: [1.0, 1.0, 1.0],
                origin: [0.0; 3],
                width,
                height: 1,
                count: 1,
            },
            index: 0,
            width,
            height: 1,
            channels: 1,
            values,
            letters: EdgeLetters::from_axes([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
        }
    }

    #[test]
    fn voi_lut_maps_through_the_table_scaled_to_its_output_range() {
        // A LUT for inputs 100..103 with outputs 1000..4000 (12-bit style): first and last entries
        // clamp the inputs outside the table.
        let lut = Lut {
            first_mapped: 100,
            entries: vec![1000, 2000, 3000, 4000],
            bits: 12,
        };
        let image = to_display(
            &slice(vec![0.0, 100.0, 101.0, 102.0, 103.0, 500.0, f32::NAN]),
            &VoiMapping::Lut(lut),
            Photometric::Monochrome2,
        );
        assert_eq!(image.pixels, vec![0, 0, 85, 170, 255, 255, 0]);
    }

    #[test]
    fn monochrome1_inverts_after_the_voi_lut() {
        let lut = Lut {
            first_mapped: 0,
            entries: vec![0, 10],
            bits: 8,
        };
        let image = to_display(
            &slice(vec![0.0, 1.0]),
            &VoiMapping::Lut(lut),
            Photometric::Monochrome1,
        );
        assert_eq!(image.pixels, vec![255, 0]);
    }

    #[test]
    fn square_pixels_keep_the_physical_aspect() {
        let image = DisplayImage {
            width: 4,
            height: 2,
            channels: 1,
            pixels: vec![10; 8],
        };
        let out = square_pixels(&image, [0.5, 1.5]);
        assert_eq!((out.width, out.height), (4, 6));
        assert!(out.pixels.iter().all(|p| *p == 10));
    }

    #[test]
    fn square_values_keep_the_extent_and_interpolate_between_centres() {
        // Two rows 7 mm apart, 0.86 mm columns: 16 rows of 0.875 mm (14 mm / 16, within half a
        // pixel of square), the extent kept.
        let values = [0.0f32, 0.0, 100.0, 100.0];
        let out = square_values(&values, 2, 2, 1, [0.86, 7.0]);
        assert_eq!((out.width, out.height), (2, 16));
        assert_eq!(out.spacing, [0.86, 0.875]);
        // Rows up to the first centre keep its value; rows 7 and 8 straddle the middle.
        assert_eq!(out.values[0], 0.0);
        assert_eq!(out.values[2 * 7], 43.75);
        assert_eq!(out.values[2 * 8], 56.25);
        assert_eq!(out.values[31], 100.0);
        let same = square_values(&values, 2, 2, 1, [1.0, 1.0]);
        assert_eq!(same.values, values.to_vec());
    }
}
