//! The spine on the posterior midline, L5 at the bottom of the volume to T1 at the top: each
//! vertebra a body (cortical shell and endplates around cancellous bone) with its arch, transverse
//! and spinous processes, discs between them (unlabelled), the canal behind. Also the muscles
//! along it: paraspinal muscles behind, psoas beside the lumbar spine.

use crate::canvas::Canvas;
use crate::classes::VERTEBRAE_L5;
use crate::rng::Rng;
use crate::shape::{Ellipsoid, Rot, Tube};
use crate::tissue::Tissue;

use super::Limits;

/// Vertebrae from L5 to T1.
pub const LEVELS: usize = 17;

struct Vertebra {
    /// Centre of the body in the axial plane.
    x: f64,
    y: f64,
    /// Half widths of the body (x, y).
    a: f64,
    b: f64,
    /// Bottom and top of the body.
    z0: f64,
    z1: f64,
}

impl Vertebra {
    /// Canal centre (y) and half widths: right behind the body.
    fn canal(&self) -> (f64, f64, f64) {
        let (cx, cy) = (self.a * 0.38, self.b * 0.45);
        (self.y + self.b + cy + 1.0, cx, cy)
    }
}

pub struct Spine {
    vertebrae: Vec<Vertebra>,
    paraspinal: [Ellipsoid; 2],
    psoas: [Tube; 2],
}

impl Spine {
    pub fn draw(rng: &mut Rng) -> Self {
        let bottom = rng.jitter(-138.0, 2.0);
        let top = rng.jitter(140.0, 1.5);
        let pitch = (top - bottom) / LEVELS as f64;
        let disc = rng.range(0.18, 0.24);
        let (size, forward) = (rng.vary(1.0, 0.08), rng.jitter(0.0, 3.0));
        let scoliosis = rng.jitter(0.0, 3.0);
        let vertebrae = (0..LEVELS)
            .map(|n| {
                // t: 0 at L5, 1 at T1. Lumbar bodies are larger; the thoracic spine curves back.
                let t = n as f64 / (LEVELS - 1) as f64;
                let bend = (std::f64::consts::PI * t).sin();
                let z0 = bottom + n as f64 * pitch;
                Vertebra {
                    x: scoliosis * bend,
                    y: 55.0 + 7.0 * t + 3.0 * bend + forward,
                    a: (25.0 - 8.0 * t) * size,
                    b: (18.0 - 4.0 * t) * size,
                    z0,
                    z1: z0 + pitch * (1.0 - disc),
                }
            })
            .collect();
        let paraspinal = [-1.0, 1.0].map(|side| {
            Ellipsoid::new(
                [side * rng.jitter(30.0, 2.0), rng.jitter(96.0, 3.0), 0.0],
                [rng.vary(25.0, 0.1), rng.vary(20.0, 0.1), 1e4],
                Rot::IDENTITY,
            )
        });
        let psoas = [-1.0, 1.0].map(|side| {
            Tube::new(
                vec![
                    [side * 28.0, 52.0, -15.0],
                    [side * rng.jitter(40.0, 3.0), 42.0, -145.0],
                ],
                vec![3.0, rng.vary(20.0, 0.15)],
            )
        });
        Spine {
            vertebrae,
            paraspinal,
            psoas,
        }
    }

    /// Unlabelled muscle along the spine, painted early so organs and bone override it.
    pub fn paint_muscles(&self, canvas: &mut Canvas, limits: &Limits) {
        for m in &self.paraspinal {
            canvas.paint(m.bounds(), |at| {
                (m.contains(at.p) && limits.outline.in_inner(at)).then_some((Tissue::Muscle, 0))
            });
        }
        for m in &self.psoas {
            canvas.paint(m.bounds(), |at| {
                (m.level(at.p) <= 1.0 && limits.outline.in_cavity(at))
                    .then_some((Tissue::Muscle, 0))
            });
        }
    }

    /// Discs, then the vertebrae (labelled one by one), then the canal.
    pub fn paint(&self, canvas: &mut Canvas, limits: &Limits) {
        for w in self.vertebrae.windows(2) {
            let (v, u) = (&w[0], &w[1]);
            let (a, b) = ((v.a + u.a) / 2.0, (v.b + u.b) / 2.0);
            let (x, y) = ((v.x + u.x) / 2.0, (v.y + u.y) / 2.0);
            let bounds = ([x - a, y - b, v.z1], [x + a, y + b, u.z0]);
            canvas.paint(bounds, |at| {
                let (dx, dy) = ((at.p[0] - x) / a, (at.p[1] - y) / b);
                (dx * dx + dy * dy <= 1.0 && limits.outline.in_inner(at))
                    .then_some((Tissue::Disc, 0))
            });
        }
        for (n, v) in self.vertebrae.iter().enumerate() {
            self.paint_vertebra(canvas, limits, v, VERTEBRAE_L5 + n as u8);
        }
        // The canal runs through the arches and past the discs, following the curve.
        let mut points = Vec::with_capacity(LEVELS + 2);
        let mut radii = Vec::with_capacity(LEVELS + 2);
        for v in &self.vertebrae {
            let (cy, _, r) = v.canal();
            points.push([v.x, cy, (v.z0 + v.z1) / 2.0]);
            radii.push(r);
        }
        let (first, last) = (points[0], points[LEVELS - 1]);
        points.insert(0, [first[0], first[1], first[2] - 100.0]);
        radii.insert(0, radii[0]);
        points.push([last[0], last[1], last[2] + 100.0]);
        radii.push(radii[LEVELS]);
        let tube = Tube::new(points, radii);
        canvas.paint(tube.bounds(), |at| {
            (tube.level(at.p) <= 1.0 && limits.outline.in_inner(at)).then_some((Tissue::Csf, 0))
        });
    }

    fn paint_vertebra(&self, canvas: &mut Canvas, limits: &Limits, v: &Vertebra, label: u8) {
        const SHELL: f64 = 2.5;
        let (canal_y, canal_a, canal_b) = v.canal();
        let arch = 4.5;
        let spinous_y = canal_y + canal_b + 14.0;
        let spinous_len = 15.0;
        let transverse_x = canal_a + 13.0;
        let bounds = (
            [v.x - transverse_x - 13.0, v.y - v.b, v.z0],
            [v.x + transverse_x + 13.0, spinous_y + spinous_len, v.z1],
        );
        // Cortical shell: the outer SHELL mm of the body, and the endplates.
        let shell = |r: f64| ((r - SHELL) / r).max(0.0).powi(2);
        let (inner_a, inner_b) = (shell(v.a), shell(v.b));
        canvas.paint(bounds, |at| {
            if !limits.outline.in_inner(at) {
                return None;
            }
            let [x, y, z] = at.p;
            let dx = x - v.x;
            let (ex, ey) = (dx / v.a, (y - v.y) / v.b);
            let body = ex * ex + ey * ey;
            if body <= 1.0 {
                let endplate = z - v.z0 < SHELL * 0.6 || v.z1 - z < SHELL * 0.6;
                let cortex = endplate || body > inner_a.min(inner_b);
                let tissue = if cortex {
                    Tissue::Cortical
                } else {
                    Tissue::Cancellous
                };
                return Some((tissue, label));
            }
            // Arch: a ring around the canal.
            let (cx, cy) = (dx / (canal_a + arch), (y - canal_y) / (canal_b + arch));
            let ring = cx * cx + cy * cy <= 1.0;
            let (sx, sy) = (dx / 3.5, (y - spinous_y) / spinous_len);
            let spinous = sx * sx + sy * sy <= 1.0;
            let (tx, ty) = ((dx.abs() - transverse_x) / 13.0, (y - canal_y + 2.0) / 4.5);
            let transverse = tx * tx + ty * ty <= 1.0;
            (ring || spinous || transverse).then_some((Tissue::Cortical, label))
        });
    }
}
