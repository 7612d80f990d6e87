//! The body wall and the unlabelled filling: an elliptical-to-squarish torso outline
//! (subcutaneous fat, a muscle wall, fat inside), and bowel loops in the lower abdomen.

use crate::canvas::{At, Canvas};
use crate::rng::Rng;
use crate::shape::{Ellipsoid, Rot};
use crate::tissue::Tissue;

use super::Limits;

pub struct Body {
    half_width: f64,
    anterior: f64,
    posterior: f64,
    /// Superellipse exponent: 2 is an ellipse, larger is squarer.
    exponent: f64,
    /// Relative widening per 144 mm toward superior (negative: narrower chest).
    taper: f64,
    fat: f64,
    wall: f64,
}

/// Half widths of the outline per row (j, k), so painters test "inside the body" with one lookup.
pub struct Outline {
    ny: usize,
    /// Inside the subcutaneous fat (where muscle starts).
    inner: Vec<f64>,
    /// Inside the muscle wall: where organs may lie.
    cavity: Vec<f64>,
}

impl Outline {
    #[inline]
    pub fn in_cavity(&self, at: &At) -> bool {
        at.p[0].abs() <= self.cavity[at.j + self.ny * at.k]
    }

    #[inline]
    pub fn in_inner(&self, at: &At) -> bool {
        at.p[0].abs() <= self.inner[at.j + self.ny * at.k]
    }
}

impl Body {
    pub fn draw(rng: &mut Rng) -> Self {
        Body {
            half_width: rng.vary(150.0, 0.07),
            anterior: rng.vary(112.0, 0.06),
            posterior: rng.vary(120.0, 0.04),
            exponent: rng.range(2.2, 2.8),
            taper: rng.range(-0.05, 0.04),
            fat: rng.range(9.0, 24.0),
            wall: rng.range(8.0, 13.0),
        }
    }

    /// How much wider than the canonical body this one's cavity is (about 0.85 to 1.1): lateral
    /// organs move out with the wall, so a narrow body does not crush the spleen.
    pub fn lateral_factor(&self) -> f64 {
        (self.half_width - self.fat - self.wall) / 123.5
    }

    /// Half width of the outline shrunk by `inset` mm at (y, z), `None` past its front or back.
    fn half_width(&self, y: f64, z: f64, inset: f64) -> Option<f64> {
        let s = 1.0 + self.taper * z / 144.0;
        let a = self.half_width * s - inset;
        let b = if y < 0.0 {
            self.anterior
        } else {
            self.posterior
        } * s
            - inset;
        let t = y.abs() / b;
        (a > 0.0 && t < 1.0).then(|| a * (1.0 - t.powf(self.exponent)).powf(1.0 / self.exponent))
    }

    /// Fills air's complement: fat under the skin, the muscle wall, fat inside. Returns the
    /// outline for the painters that follow.
    pub fn paint(&self, canvas: &mut Canvas) -> Outline {
        let [_, ny, nz] = canvas.dims;
        let mut outline = Outline {
            ny,
            inner: vec![-1.0; ny * nz],
            cavity: vec![-1.0; ny * nz],
        };
        for k in 0..nz {
            let z = canvas.coord(2, k);
            for j in 0..ny {
                let y = canvas.coord(1, j);
                let layers = [
                    (0.0, Tissue::Fat),
                    (self.fat, Tissue::Muscle),
                    (self.fat + self.wall, Tissue::Fat),
                ];
                for (n, (inset, tissue)) in layers.into_iter().enumerate() {
                    let Some(hw) = self.half_width(y, z, inset) else {
                        break;
                    };
                    match n {
                        1 => outline.inner[j + ny * k] = hw,
                        2 => outline.cavity[j + ny * k] = hw,
                        _ => {}
                    }
                    if let Some(r) = canvas.x_range(-hw, hw) {
                        canvas.span(j, k, *r.start(), *r.end(), tissue, 0);
                    }
                }
            }
        }
        outline
    }
}

/// Loops of small bowel in the lower abdomen: soft tissue, some holding gas. Unlabelled
/// distractors between the organs.
pub struct Bowel {
    loops: Vec<(Ellipsoid, bool)>,
}

impl Bowel {
    pub fn draw(rng: &mut Rng) -> Self {
        let n = rng.int(8, 14);
        let loops = (0..n)
            .map(|_| {
                let r = rng.range(10.0, 19.0);
                let e = Ellipsoid::new(
                    [
                        rng.range(-85.0, 85.0),
                        rng.range(-80.0, 20.0),
                        rng.range(-125.0, -65.0),
                    ],
                    [r, rng.vary(r, 0.2), r * rng.range(1.0, 1.6)],
                    Rot::zyx(rng.range(0.0, 180.0), rng.range(-40.0, 40.0), 0.0),
                );
                (e, rng.chance(0.4))
            })
            .collect();
        Bowel { loops }
    }

    pub fn paint(&self, canvas: &mut Canvas, limits: &Limits) {
        for (e, gas) in &self.loops {
            canvas.paint(e.bounds(), |at| {
                let l = e.level(at.p);
                (l <= 1.0 && limits.outline.in_cavity(at) && limits.diaphragm.below(at, 3.0)).then(
                    || {
                        let t = if *gas && l < 0.3 {
                            Tissue::Air
                        } else {
                            Tissue::Bowel
                        };
                        (t, 0)
                    },
                )
            });
        }
    }
}
