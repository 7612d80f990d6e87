//! Upper abdomen and pelvis: liver with the gallbladder under it on the right, stomach and spleen
//! on the left, pancreas across the middle, kidneys behind on both sides, bladder at the bottom.

use crate::canvas::{At, Canvas};
use crate::classes::*;
use crate::rng::Rng;
use crate::shape::{Ellipsoid, Rot, Tube};
use crate::tissue::Tissue;

use super::Limits;

pub struct Abdomen {
    liver: Ellipsoid,
    /// The liver keeps `0.75 x + 0.66 y < cut`: no liver behind the stomach or beside the spine.
    liver_cut: f64,
    gallbladder: Ellipsoid,
    pub stomach: Ellipsoid,
    /// Gas in the stomach lies anterior (supine patient) of this y, if any.
    stomach_gas_below_y: Option<f64>,
    spleen: Ellipsoid,
    pancreas: Tube,
    /// Right then left: the kidney and its renal sinus (fat, unlabelled, at the hilum).
    kidneys: [(Ellipsoid, Ellipsoid); 2],
    bladder: Ellipsoid,
}

impl Abdomen {
    /// `lateral` scales the distance of lateral organs from the midline to the body's width.
    pub fn draw(rng: &mut Rng, lateral: f64) -> Self {
        let liver = Ellipsoid::new(
            [
                rng.jitter(-58.0, 6.0),
                rng.jitter(-2.0, 6.0),
                rng.jitter(-18.0, 8.0),
            ],
            [
                rng.vary(88.0, 0.12),
                rng.vary(82.0, 0.12),
                rng.vary(72.0, 0.12),
            ],
            Rot::zyx(
                rng.jitter(10.0, 8.0),
                rng.jitter(0.0, 5.0),
                rng.jitter(0.0, 5.0),
            ),
        );
        let liver_cut = rng.jitter(25.0, 8.0);
        // Under the liver's inferior surface, fundus pointing anterior and down.
        let gallbladder = Ellipsoid::new(
            [
                rng.jitter(-40.0, 5.0),
                rng.jitter(-50.0, 5.0),
                rng.jitter(-58.0, 6.0),
            ],
            [
                rng.vary(15.0, 0.15),
                rng.vary(13.0, 0.15),
                rng.vary(30.0, 0.15),
            ],
            Rot::zyx(rng.jitter(20.0, 10.0), 0.0, rng.jitter(25.0, 8.0)),
        );
        let stomach = Ellipsoid::new(
            [
                rng.jitter(52.0, 6.0),
                rng.jitter(-28.0, 6.0),
                rng.jitter(-22.0, 8.0),
            ],
            [
                rng.vary(42.0, 0.15),
                rng.vary(30.0, 0.15),
                rng.vary(44.0, 0.15),
            ],
            Rot::zyx(
                rng.jitter(-25.0, 10.0),
                rng.jitter(0.0, 6.0),
                rng.jitter(15.0, 6.0),
            ),
        );
        let stomach_gas_below_y = rng.chance(0.8).then(|| {
            let frac = rng.range(0.2, 0.5);
            stomach.center[1] - stomach.radii[1] * (1.0 - 2.0 * frac)
        });
        let spleen = Ellipsoid::new(
            [
                rng.jitter(92.0, 5.0),
                rng.jitter(50.0, 6.0),
                rng.jitter(-28.0, 8.0),
            ],
            [
                rng.vary(26.0, 0.15),
                rng.vary(46.0, 0.15),
                rng.vary(40.0, 0.15),
            ],
            Rot::zyx(
                rng.jitter(35.0, 10.0),
                rng.jitter(0.0, 6.0),
                rng.jitter(0.0, 6.0),
            ),
        );
        // Head at the right by the liver hilum, tail up toward the splenic hilum.
        let pancreas = Tube::new(
            vec![
                [
                    rng.jitter(-22.0, 4.0),
                    rng.jitter(6.0, 4.0),
                    rng.jitter(-55.0, 6.0),
                ],
                [0.0, rng.jitter(2.0, 3.0), -50.0],
                [rng.jitter(30.0, 4.0), rng.jitter(10.0, 4.0), -45.0],
                [
                    rng.jitter(60.0, 4.0),
                    rng.jitter(24.0, 4.0),
                    rng.jitter(-38.0, 6.0),
                ],
            ],
            vec![rng.vary(16.0, 0.15), 11.0, rng.vary(10.0, 0.15), 9.0],
        );
        // The right kidney sits lower; upper poles lean medially, hila face anteromedially.
        let z_right = rng.jitter(-64.0, 8.0);
        let z_left = z_right + rng.range(4.0, 16.0);
        let mut kidney = |side: f64, z: f64| {
            let e = Ellipsoid::new(
                [
                    side * lateral * rng.jitter(62.0, 5.0),
                    rng.jitter(58.0, 5.0),
                    z,
                ],
                [
                    rng.vary(25.0, 0.12),
                    rng.vary(20.0, 0.12),
                    rng.vary(44.0, 0.12),
                ],
                Rot::zyx(
                    side * rng.jitter(25.0, 8.0),
                    -side * rng.jitter(12.0, 5.0),
                    rng.jitter(0.0, 5.0),
                ),
            );
            // Hilum: medial (toward x = 0) and a little anterior.
            let hilum = [-side * 0.85, -0.5, 0.0];
            let n = (hilum[0] * hilum[0] + hilum[1] * hilum[1]).sqrt();
            let r = e.radii[0].min(e.radii[1]);
            let c = [
                e.center[0] + hilum[0] / n * r * 0.75,
                e.center[1] + hilum[1] / n * r * 0.75,
                e.center[2],
            ];
            let sinus = Ellipsoid::new(c, [r * 0.5, r * 0.5, e.radii[2] * 0.4], Rot::IDENTITY);
            (e, sinus)
        };
        let kidneys = [kidney(-1.0, z_right), kidney(1.0, z_left)];
        let bladder = Ellipsoid::new(
            [
                rng.jitter(0.0, 5.0),
                rng.jitter(-35.0, 5.0),
                rng.jitter(-132.0, 5.0),
            ],
            [
                rng.vary(42.0, 0.2),
                rng.vary(32.0, 0.2),
                rng.vary(32.0, 0.2),
            ],
            Rot::zyx(rng.jitter(0.0, 10.0), 0.0, 0.0),
        );
        Abdomen {
            liver,
            liver_cut,
            gallbladder,
            stomach,
            stomach_gas_below_y,
            spleen,
            pancreas,
            kidneys,
            bladder,
        }
    }

    /// Paints the organs in order of precedence (a later organ wins where two overlap).
    pub fn paint(&self, canvas: &mut Canvas, limits: &Limits) {
        let abdominal = |at: &At| limits.outline.in_cavity(at) && limits.diaphragm.below(at, 3.0);

        let liver = &self.liver;
        canvas.paint(liver.bounds(), |at| {
            let [x, y, _] = at.p;
            (liver.contains(at.p) && 0.75 * x + 0.66 * y < self.liver_cut && abdominal(at))
                .then_some((Tissue::Liver, LIVER))
        });
        solid(
            canvas,
            &self.gallbladder,
            &abdominal,
            Tissue::Bile,
            GALLBLADDER,
        );
        let stomach = &self.stomach;
        canvas.paint(stomach.bounds(), |at| {
            (stomach.contains(at.p) && abdominal(at)).then(|| {
                let gas = self.stomach_gas_below_y.is_some_and(|y| at.p[1] < y);
                let tissue = if gas {
                    Tissue::Air
                } else {
                    Tissue::StomachContent
                };
                (tissue, STOMACH)
            })
        });
        solid(canvas, &self.spleen, &abdominal, Tissue::Spleen, SPLEEN);
        let pancreas = &self.pancreas;
        canvas.paint(pancreas.bounds(), |at| {
            (pancreas.level(at.p) <= 1.0 && abdominal(at)).then_some((Tissue::Pancreas, PANCREAS))
        });
        for ((kidney, sinus), label) in self.kidneys.iter().zip([KIDNEY_RIGHT, KIDNEY_LEFT]) {
            solid(canvas, kidney, &abdominal, Tissue::Kidney, label);
            // The sinus only hollows the kidney itself.
            canvas.paint(sinus.bounds(), |at| {
                (at.label == label && sinus.contains(at.p)).then_some((Tissue::Fat, 0))
            });
        }
        let in_body = |at: &At| limits.outline.in_cavity(at);
        solid(
            canvas,
            &self.bladder,
            &in_body,
            Tissue::Urine,
            URINARY_BLADDER,
        );
    }
}

/// An organ that is one ellipsoid of one tissue, where `allowed` says so.
fn solid(
    canvas: &mut Canvas,
    e: &Ellipsoid,
    allowed: &dyn Fn(&At) -> bool,
    tissue: Tissue,
    label: u8,
) {
    canvas.paint(e.bounds(), |at| {
        (e.contains(at.p) && allowed(at)).then_some((tissue, label))
    });
}
