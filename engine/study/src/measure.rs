//! Measurements on a slice: lengths and angles in patient space, point values, and region
//! statistics (rectangle, ellipse, freehand polygon) in modality units.
//!
//! Coordinates are the slice's pixels: pixel (i, j) has its centre at (i, j). A region holds the
//! pixels whose centres fall inside it (on the edge counts as inside), the rule 3D Slicer's and
//! OHIF's rectangle statistics use; pixels where the plane leaves the volume (NaN) are not counted.
//! Lengths go through each endpoint's LPS position, so they are exact on oblique and anisotropic
//! grids.

use crate::geometry::{dot, norm, sub};
use crate::mpr::SliceImage;

/// A region on a slice (slice pixels): a rectangle or the ellipse inscribed in it, given by two
/// opposite corners of the box, or a polygon (a freehand outline) given by its vertices.
#[derive(Clone, Debug, PartialEq)]
pub enum Region {
    Rectangle {
        a: [f64; 2],
        b: [f64; 2],
    },
    /// The ellipse inscribed in the box.
    Ellipse {
        a: [f64; 2],
        b: [f64; 2],
    },
    /// A closed outline through these vertices (the last joins the first); where it crosses
    /// itself, the even-odd rule decides what is inside.
    Polygon(Vec<[f64; 2]>),
}

/// Statistics of the pixels inside a region. `sd` is the population standard deviation (numpy's
/// default, `ddof=0`); `area_mm2` is the pixel count times one pixel's area.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RegionStats {
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
    pub area_mm2: f64,
    pub voxels: usize,
}

/// Distance in mm between two points of the slice.
pub fn length_mm(slice: &SliceImage, a: [f64; 2], b: [f64; 2]) -> f64 {
    norm(sub(
        slice.pixel_to_lps(a[0], a[1]),
        slice.pixel_to_lps(b[0], b[1]),
    ))
}

/// The angle at `vertex` between the rays to `a` and `b`, in degrees (0..=180), measured in
/// patient space; `None` when a ray has no length.
pub fn angle_deg(slice: &SliceImage, a: [f64; 2], vertex: [f64; 2], b: [f64; 2]) -> Option<f64> {
    let v = slice.pixel_to_lps(vertex[0], vertex[1]);
    let ra = sub(slice.pixel_to_lps(a[0], a[1]), v);
    let rb = sub(slice.pixel_to_lps(b[0], b[1]), v);
    let lengths = norm(ra) * norm(rb);
    if lengths <= 0.0 {
        return None;
    }
    Some((dot(ra, rb) / lengths).clamp(-1.0, 1.0).acos().to_degrees())
}

/// The value of the pixel nearest `p` (first channel), `None` outside the slice or the volume.
pub fn value_at(slice: &SliceImage, p: [f64; 2]) -> Option<f64> {
    let (x, y) = (p[0].round(), p[1].round());
    if x < 0.0 || y < 0.0 || x >= slice.width as f64 || y >= slice.height as f64 {
        return None;
    }
    let v = slice.values[(y as usize * slice.width + x as usize) * slice.channels];
    v.is_finite().then_some(f64::from(v))
}

/// Statistics of `region` on a greyscale slice; `None` when it holds no pixel with a value, or
/// the slice is colour (a region's mean of RGB means nothing clinically).
pub fn region_stats(slice: &SliceImage, region: Region) -> Option<RegionStats> {
    if slice.channels != 1 {
        return None;
    }
    let [x0, y0, x1, y1] = match &region {
        Region::Rectangle { a, b } | Region::Ellipse { a, b } => [
            a[0].min(b[0]),
            a[1].min(b[1]),
            a[0].max(b[0]),
            a[1].max(b[1]),
        ],
        Region::Polygon(points) => {
            if points.len() < 3 || points.iter().flatten().any(|v| !v.is_finite()) {
                return None;
            }
            points.iter().fold(
                [
                    f64::INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NEG_INFINITY,
                ],
                |b, p| {
                    [
                        b[0].min(p[0]),
                        b[1].min(p[1]),
                        b[2].max(p[0]),
                        b[3].max(p[1]),
                    ]
                },
            )
        }
    };
    let (cx, cy, rx, ry) = (
        (x0 + x1) / 2.0,
        (y0 + y1) / 2.0,
        (x1 - x0) / 2.0,
        (y1 - y0) / 2.0,
    );
    let inside = |x: f64, y: f64| match &region {
        Region::Rectangle { .. } => true,
        Region::Polygon(points) => in_polygon(points, [x, y]),
        // A degenerate ellipse (zero width or height) holds the pixels on its segment.
        Region::Ellipse { .. } => {
            let term = |d: f64, r: f64| {
                if r > 0.0 {
                    (d / r).powi(2)
                } else if d == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            };
            term(x - cx, rx) + term(y - cy, ry) <= 1.0 + 1e-12
        }
    };
    // Pixel centres inside the box, clipped to the slice.
    let centres = |lo: f64, hi: f64, size: usize| {
        let first = lo.ceil().max(0.0);
        let last = hi.floor().min(size as f64 - 1.0);
        (first <= last).then_some(first as usize..=last as usize)
    };
    let (Some(xs), Some(ys)) = (centres(x0, x1, slice.width), centres(y0, y1, slice.height)) else {
        return None;
    };
    let mut values = Vec::new();
    for y in ys {
        for x in xs.clone() {
            let v = slice.values[y * slice.width + x];
            if inside(x as f64, y as f64) && v.is_finite() {
                values.push(f64::from(v));
            }
        }
    }
    let count = values.len();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = values.iter().sum();
    if count == 0 {
        return None;
    }
    let mean = sum / count as f64;
    // Two passes: the variance from deviations, not from sums of squares (HU values near 1000
    // lose digits otherwise).
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count as f64;
    let [sx, sy] = slice.pixel_spacing();
    Some(RegionStats {
        mean,
        sd: variance.sqrt(),
        min,
        max,
        area_mm2: count as f64 * sx * sy,
        voxels: count,
    })
}

/// Whether `p` lies inside the closed polygon `points` or on its outline (the even-odd rule: a
/// ray to the right crosses the outline an odd number of times).
fn in_polygon(points: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut inside = false;
    for (i, a) in points.iter().enumerate() {
        let b = points[(i + 1) % points.len()];
        // On the edge counts as inside, as for the rectangle and the ellipse.
        let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
        let cross = ex * (p[1] - a[1]) - ey * (p[0] - a[0]);
        let within = (p[0] - a[0]) * (p[0] - b[0]) <= 0.0 && (p[1] - a[1]) * (p[1] - b[1]) <= 0.0;
        if cross.abs() <= 1e-9 * ex.hypot(ey).max(1.0) && within {
            return true;
        }
        // Half-open in y, so a vertex on the ray is counted once.
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) / (b[1] - a[1]) * ex;
            if x > p[0] {
                inside = !inside;
            }
        }
    }
    inside
}

/// The unit region statistics are in, for a series' modality: Hounsfield units for CT; other
/// modalities store values without a physical unit ("a.u.", arbitrary units).
pub fn modality_unit(modality: &str) -> &'static str {
    if modality.eq_ignore_ascii_case("CT") {
        "HU"
    } else {
        "a.u."
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mpr::{EdgeLetters, Plane, PlaneGrid};

    /// A 6 × 4 slice with values x + 10·y, 0.5 mm × 2 mm pixels, tilted in patient space.
    fn slice() -> SliceImage {
        let (w, h) = (6, 4);
        let c = std::f64::consts::FRAC_1_SQRT_2;
        let grid = PlaneGrid {
            plane: Plane::Acquired,
            right: [c, c, 0.0],
            down: [0.0, 0.0, -1.0],
            normal: [c, -c, 0.0],
            spacing: [0.5, 2.0, 3.0],
            origin: [10.0, -4.0, 7.0],
            width: w,
            height: h,
            count: 1,
        };
        SliceImage {
            grid,
            index: 0,
            width: w,
            height: h,
            channels: 1,
            values: (0..w * h).map(|i| (i % w + 10 * (i / w)) as f32).collect(),
            letters: EdgeLetters::from_axes(grid.right, grid.down),
        }
    }

    #[test]
    fn lengths_and_angles_follow_the_spacing_on_a_tilted_grid() {
        let s = slice();
        assert!((length_mm(&s, [0.0, 0.0], [4.0, 0.0]) - 2.0).abs() < 1e-12);
        assert!((length_mm(&s, [1.0, 0.0], [1.0, 3.0]) - 6.0).abs() < 1e-12);
        // 3-4-5 in millimetres: 6 pixels of 0.5 mm across, 2 of 2 mm down.
        assert!((length_mm(&s, [0.0, 0.0], [6.0, 2.0]) - 5.0).abs() < 1e-12);
        let right_angle = angle_deg(&s, [4.0, 0.0], [0.0, 0.0], [0.0, 1.0]).expect("a measurement");
        assert!((right_angle - 90.0).abs() < 1e-9);
        // 2 mm across and 2 mm down: 45 degrees in millimetres, not in pixels.
        let diagonal = angle_deg(&s, [4.0, 0.0], [0.0, 0.0], [4.0, 1.0]).expect("a measurement");
        assert!((diagonal - 45.0).abs() < 1e-9, "{diagonal}");
        assert_eq!(angle_deg(&s, [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]), None);
    }

    #[test]
    fn regions_hold_the_pixels_whose_centres_are_inside() {
        let s = slice();
        // Centres x 1..=3, y 1..=2: values 11, 12, 13, 21, 22, 23.
        let r = region_stats(
            &s,
            Region::Rectangle {
                a: [3.4, 2.0],
                b: [0.6, 0.5],
            },
        )
        .expect("a measurement");
        assert_eq!(r.voxels, 6);
        assert_eq!((r.min, r.max, r.mean), (11.0, 23.0, 17.0));
        let direct = {
            let v = [11.0f64, 12.0, 13.0, 21.0, 22.0, 23.0];
            (v.iter().map(|x| (x - 17.0).powi(2)).sum::<f64>() / 6.0).sqrt()
        };
        assert!((r.sd - direct).abs() < 1e-12, "{} vs {direct}", r.sd);
        assert!((r.area_mm2 - 6.0).abs() < 1e-12);
        // The ellipse in the box (1,0)-(3,2): centre (2,1), radii 1 and 1: a plus sign.
        let e = region_stats(
            &s,
            Region::Ellipse {
                a: [1.0, 0.0],
                b: [3.0, 2.0],
            },
        )
        .expect("a measurement");
        assert_eq!(e.voxels, 5);
        assert_eq!(e.mean, (2.0 + 11.0 + 12.0 + 13.0 + 22.0) / 5.0);
        // Off the slice, or around no pixel centre: nothing.
        assert_eq!(
            region_stats(
                &s,
                Region::Rectangle {
                    a: [7.0, 0.0],
                    b: [9.0, 3.0]
                }
            ),
            None
        );
        assert_eq!(
            region_stats(
                &s,
                Region::Rectangle {
                    a: [0.2, 0.2],
                    b: [0.8, 0.8]
                }
            ),
            None
        );
        // Clipped at the edge: the part on the slice.
        let clipped = region_stats(
            &s,
            Region::Rectangle {
                a: [-5.0, -5.0],
                b: [0.0, 0.0],
            },
        )
        .expect("a measurement");
        assert_eq!((clipped.voxels, clipped.mean), (1, 0.0));
    }

    #[test]
    fn a_polygon_holds_the_pixel_centres_inside_or_on_its_outline() {
        let s = slice();
        // A right triangle (1,0), (4,0), (1,3): centres with x >= 1, y >= 0, x + y <= 4.
        let triangle = vec![[1.0, 0.0], [4.0, 0.0], [1.0, 3.0]];
        let r = region_stats(&s, Region::Polygon(triangle)).expect("a measurement");
        let expected: Vec<f64> = (0..4)
            .flat_map(|y| {
                (1..6)
                    .filter(move |x| x + y <= 4)
                    .map(move |x| (x + 10 * y) as f64)
            })
            .collect();
        assert_eq!(r.voxels, expected.len());
        assert_eq!(r.mean, expected.iter().sum::<f64>() / expected.len() as f64);
        // A square drawn as a polygon holds what the rectangle holds.
        let square = vec![[0.6, 0.5], [3.4, 0.5], [3.4, 2.0], [0.6, 2.0]];
        let rect = Region::Rectangle {
            a: [0.6, 0.5],
            b: [3.4, 2.0],
        };
        assert_eq!(
            region_stats(&s, Region::Polygon(square)),
            region_stats(&s, rect)
        );
        // A bow tie (crossing itself): the even-odd rule, both wings in.
        let bow = vec![[0.0, 0.0], [4.0, 3.0], [4.0, 0.0], [0.0, 3.0]];
        let b = region_stats(&s, Region::Polygon(bow)).expect("a measurement");
        assert!(b.voxels > 0 && b.voxels < 20, "{}", b.voxels);
        // Fewer than three points, or one that is not a number: nothing.
        assert_eq!(
            region_stats(&s, Region::Polygon(vec![[0.0, 0.0], [3.0, 3.0]])),
            None
        );
        assert_eq!(
            region_stats(
                &s,
                Region::Polygon(vec![[0.0, 0.0], [3.0, f64::NAN], [0.0, 3.0]])
            ),
            None
        );
    }

    #[test]
    fn pixels_outside_the_volume_do_not_count_and_points_read_the_nearest_pixel() {
        let mut s = slice();
        s.values[7] = f32::NAN;
        let r = region_stats(
            &s,
            Region::Rectangle {
                a: [0.0, 0.0],
                b: [1.0, 1.0],
            },
        )
        .expect("a measurement");
        assert_eq!((r.voxels, r.mean), (3, (0.0 + 1.0 + 10.0) / 3.0));
        assert_eq!(value_at(&s, [2.4, 2.6]), Some(32.0));
        assert_eq!(value_at(&s, [1.0, 1.0]), None);
        assert_eq!(value_at(&s, [-1.0, 0.0]), None);
        assert_eq!(modality_unit("ct"), "HU");
        assert_eq!(modality_unit("MR"), "a.u.");
    }
}
