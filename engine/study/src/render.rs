//! Turning a [`SliceImage`] into display pixels: VOI (window or VOI LUT), MONOCHROME1 inversion,
//! 8 bits, and square pixels so the image keeps its physical aspect ratio.

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
    let [sx, sy] = spacing;
    if !(sx > 0.0 && sy > 0.0) || (sx - sy).abs() < 1e-6 * sx.max(sy) {
        return image.clone();
    }
    let unit = sx.min(sy);
    let width = ((image.width as f64 * sx / unit).round() as usize).clamp(1, 16384);
    let height = ((image.height as f64 * sy / unit).round() as usize).clamp(1, 16384);
    let ch = image.channels;
    let mut pixels = vec![0u8; width * height * ch];
    for y in 0..height {
        // Map output pixel centres onto input pixel centres.
        let fy = ((y as f64 + 0.5) * image.height as f64 / height as f64 - 0.5)
            .clamp(0.0, (image.height - 1) as f64);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(image.height - 1);
        let ty = fy - y0 as f64;
        for x in 0..width {
            let fx = ((x as f64 + 0.5) * image.width as f64 / width as f64 - 0.5)
                .clamp(0.0, (image.width - 1) as f64);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(image.width - 1);
            let tx = fx - x0 as f64;
            for c in 0..ch {
                let p = |xx: usize, yy: usize| {
                    f64::from(image.pixels[(yy * image.width + xx) * ch + c])
                };
                let top = p(x0, y0) + (p(x1, y0) - p(x0, y0)) * tx;
                let bottom = p(x0, y1) + (p(x1, y1) - p(x0, y1)) * tx;
                pixels[(y * width + x) * ch + c] = (top + (bottom - top) * ty).round() as u8;
            }
        }
    }
    DisplayImage {
        width,
        height,
        channels: ch,
        pixels,
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
}
