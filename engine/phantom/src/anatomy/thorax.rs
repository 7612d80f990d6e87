//! Chest: lungs split into lobes by their fissures, heart, trachea, esophagus, and the aorta from
//! its root over the arch down to the bifurcation.

use crate::canvas::Canvas;
use crate::classes::*;
use crate::rng::Rng;
use crate::shape::{Ellipsoid, Rot, Tube};
use crate::tissue::Tissue;

use super::abdomen::Abdomen;
use super::Limits;

pub struct Thorax {
    lung_right: Ellipsoid,
    lung_left: Ellipsoid,
    /// Oblique fissures, per side (right, left): height at y = 10 and rise per mm toward
    /// posterior. Below it lies the lower lobe.
    oblique: [(f64, f64); 2],
    /// Height of the right horizontal fissure: the middle lobe lies below it, above the oblique.
    horizontal: f64,
    heart: Ellipsoid,
    trachea: Tube,
    esophagus: Tube,
    esophagus_gas: bool,
    aorta: Tube,
}

impl Thorax {
    pub fn draw(rng: &mut Rng, abdomen: &Abdomen, lateral: f64) -> Self {
        let mut lung = |x: f64, rx: f64, z: f64| {
            Ellipsoid::new(
                [
                    lateral * rng.jitter(x, 5.0),
                    rng.jitter(8.0, 5.0),
                    rng.jitter(z, 8.0),
                ],
                [
                    rng.vary(rx, 0.1),
                    rng.vary(84.0, 0.08),
                    rng.vary(118.0, 0.08),
                ],
                Rot::zyx(
                    rng.jitter(0.0, 6.0),
                    rng.jitter(0.0, 4.0),
                    rng.jitter(0.0, 4.0),
                ),
            )
        };
        let lung_right = lung(-72.0, 58.0, 70.0);
        let lung_left = lung(72.0, 55.0, 68.0);
        let oblique = [
            (rng.jitter(62.0, 8.0), rng.vary(0.95, 0.15)),
            (rng.jitter(60.0, 8.0), rng.vary(0.95, 0.15)),
        ];
        let horizontal = rng.jitter(80.0, 6.0);
        // The apex points left, anterior and down.
        let heart = Ellipsoid::new(
            [
                rng.jitter(22.0, 6.0),
                rng.jitter(-28.0, 5.0),
                rng.jitter(40.0, 6.0),
            ],
            [
                rng.vary(58.0, 0.12),
                rng.vary(46.0, 0.12),
                rng.vary(48.0, 0.12),
            ],
            Rot::zyx(
                rng.jitter(-35.0, 10.0),
                rng.jitter(20.0, 8.0),
                rng.jitter(0.0, 5.0),
            ),
        );
        let carina = [
            rng.jitter(0.0, 2.0),
            rng.jitter(4.0, 3.0),
            rng.jitter(74.0, 5.0),
        ];
        let trachea = Tube::new(
            vec![[rng.jitter(0.0, 2.0), rng.jitter(-2.0, 3.0), 160.0], carina],
            vec![rng.vary(9.0, 0.1); 2],
        );
        // Behind the trachea and the heart, right of the descending aorta, into the cardia.
        let cardia = abdomen.stomach.point([-0.45, 0.35, 0.6]);
        let esophagus = Tube::new(
            vec![
                [rng.jitter(3.0, 2.0), rng.jitter(26.0, 3.0), 160.0],
                [rng.jitter(5.0, 2.0), rng.jitter(30.0, 3.0), 60.0],
                [rng.jitter(12.0, 3.0), rng.jitter(22.0, 3.0), 20.0],
                cardia,
            ],
            vec![7.0; 4],
        );
        let arch = rng.jitter(106.0, 5.0);
        let (root_x, root_y) = (rng.jitter(6.0, 3.0), rng.jitter(-24.0, 3.0));
        let aorta = Tube::new(
            vec![
                [root_x, root_y, 50.0],
                [root_x, root_y, 78.0],
                [root_x + 6.0, -16.0, arch - 6.0],
                [21.0, 2.0, arch],
                [22.0, 24.0, arch - 4.0],
                [rng.jitter(24.0, 3.0), rng.jitter(44.0, 3.0), 78.0],
                [rng.jitter(18.0, 3.0), rng.jitter(40.0, 3.0), 10.0],
                [rng.jitter(12.0, 3.0), rng.jitter(33.0, 3.0), -40.0],
                [rng.jitter(10.0, 3.0), rng.jitter(30.0, 3.0), -102.0],
            ],
            vec![14.0, 14.0, 13.0, 13.0, 12.0, 12.0, 11.0, 10.5, 9.5]
                .into_iter()
                .map(|r| rng.vary(r, 0.08))
                .collect(),
        );
        Thorax {
            lung_right,
            lung_left,
            oblique,
            horizontal,
            heart,
            trachea,
            esophagus,
            esophagus_gas: rng.chance(0.3),
            aorta,
        }
    }

    /// Both lungs, above the diaphragm and inside the chest wall, labelled by lobe.
    pub fn paint_lungs(&self, canvas: &mut Canvas, limits: &Limits) {
        for (side, lung) in [&self.lung_right, &self.lung_left].into_iter().enumerate() {
            let (z0, rise) = self.oblique[side];
            canvas.paint(lung.bounds(), |at| {
                if !(lung.contains(at.p)
                    && limits.outline.in_cavity(at)
                    && limits.diaphragm.above(at, 3.0))
                {
                    return None;
                }
                let [_, y, z] = at.p;
                let lower = z < z0 + rise * (y - 10.0);
                let label = match (side, lower) {
                    (0, true) => LUNG_LOWER_LOBE_RIGHT,
                    (0, false) if z < self.horizontal => LUNG_MIDDLE_LOBE_RIGHT,
                    (0, false) => LUNG_UPPER_LOBE_RIGHT,
                    (_, true) => LUNG_LOWER_LOBE_LEFT,
                    (_, false) => LUNG_UPPER_LOBE_LEFT,
                };
                Some((Tissue::Lung, label))
            });
        }
    }

    /// Trachea (air inside a soft-tissue wall) down to the carina, and the esophagus.
    pub fn paint_airway_and_esophagus(&self, canvas: &mut Canvas, limits: &Limits) {
        let t = &self.trachea;
        canvas.paint(t.bounds(), |at| {
            let l = t.level(at.p);
            (l <= 1.0 && limits.outline.in_cavity(at)).then(|| {
                let tissue = if l < 0.75 {
                    Tissue::Air
                } else {
                    Tissue::Muscle
                };
                (tissue, TRACHEA)
            })
        });
        let e = &self.esophagus;
        canvas.paint(e.bounds(), |at| {
            let l = e.level(at.p);
            (l <= 1.0 && limits.outline.in_cavity(at)).then(|| {
                let tissue = if self.esophagus_gas && l < 0.35 {
                    Tissue::Air
                } else {
                    Tissue::Muscle
                };
                (tissue, ESOPHAGUS)
            })
        });
    }

    /// The heart on the diaphragm: myocardium around a blood pool.
    pub fn paint_heart(&self, canvas: &mut Canvas, limits: &Limits) {
        let h = &self.heart;
        canvas.paint(h.bounds(), |at| {
            let l = h.level(at.p);
            (l <= 1.0 && limits.outline.in_cavity(at) && limits.diaphragm.above(at, 2.0)).then(
                || {
                    let tissue = if l > 0.55 {
                        Tissue::Myocardium
                    } else {
                        Tissue::Blood
                    };
                    (tissue, HEART)
                },
            )
        });
    }

    pub fn paint_aorta(&self, canvas: &mut Canvas, limits: &Limits) {
        let a = &self.aorta;
        canvas.paint(a.bounds(), |at| {
            (a.level(at.p) <= 1.0 && limits.outline.in_cavity(at)).then_some((Tissue::Blood, AORTA))
        });
    }
}
