//! The torso: every organ's shape and position for one seed, and the order they are painted in.
//! Coordinates are canonical millimetres (see `canvas`): x toward patient left, y posterior,
//! z superior, the grid centre at 0; the volume spans about -176..176 in x and y and -144..144
//! in z. Patient right is negative x, so the liver sits at negative x and the spleen at positive.

mod abdomen;
mod body;
mod spine;
mod thorax;

use crate::canvas::{At, Canvas};
use crate::rng::Rng;

pub use body::Outline;

/// The diaphragm as a height field: two domes (the right one higher, pushed up by the liver)
/// that fall off toward the body wall. Lungs and heart lie above it, abdominal organs below.
pub struct Diaphragm {
    right: f64,
    left: f64,
    dome_x: f64,
    /// Fall of the height 100 mm from a dome's top.
    drop: f64,
}

impl Diaphragm {
    fn draw(rng: &mut Rng) -> Self {
        let right = rng.jitter(20.0, 7.0);
        Diaphragm {
            right,
            left: right - rng.range(5.0, 14.0),
            dome_x: rng.jitter(60.0, 6.0),
            drop: rng.range(32.0, 45.0),
        }
    }

    /// Height (z) of the diaphragm above the point (x, y).
    #[inline]
    pub fn height(&self, x: f64, y: f64) -> f64 {
        // Right dome at -x, left at +x, blended over the central tendon.
        let t = ((x + 20.0) / 40.0).clamp(0.0, 1.0);
        let top = self.right + (self.left - self.right) * t * t * (3.0 - 2.0 * t);
        let dx = x.abs() - self.dome_x;
        let r2 = (dx * dx + y * y) / 10_000.0;
        top - self.drop * r2
    }

    /// Above the diaphragm by at least `gap` mm.
    #[inline]
    pub fn above(&self, at: &At, gap: f64) -> bool {
        at.p[2] > self.height(at.p[0], at.p[1]) + gap
    }

    /// Below the diaphragm by at least `gap` mm.
    #[inline]
    pub fn below(&self, at: &At, gap: f64) -> bool {
        at.p[2] < self.height(at.p[0], at.p[1]) - gap
    }
}

/// Everything painters need to keep organs inside the body and on their side of the diaphragm.
pub struct Limits<'a> {
    pub outline: &'a Outline,
    pub diaphragm: &'a Diaphragm,
}

/// One seed's torso.
pub struct Anatomy {
    body: body::Body,
    bowel: body::Bowel,
    diaphragm: Diaphragm,
    thorax: thorax::Thorax,
    abdomen: abdomen::Abdomen,
    spine: spine::Spine,
}

impl Anatomy {
    /// Draws every shape from the seed's anatomy stream.
    pub fn draw(seed: u64) -> Self {
        let mut rng = Rng::stream(seed, "anatomy");
        let body = body::Body::draw(&mut rng);
        let diaphragm = Diaphragm::draw(&mut rng);
        let spine = spine::Spine::draw(&mut rng);
        let lateral = body.lateral_factor();
        let abdomen = abdomen::Abdomen::draw(&mut rng, lateral);
        let thorax = thorax::Thorax::draw(&mut rng, &abdomen, lateral);
        let bowel = body::Bowel::draw(&mut rng);
        Anatomy {
            body,
            bowel,
            diaphragm,
            thorax,
            abdomen,
            spine,
        }
    }

    /// Paints the torso, lowest precedence first: body wall, muscles and bowel (unlabelled), then
    /// the labelled organs, the aorta, and the spine last.
    pub fn paint(&self, canvas: &mut Canvas) {
        let outline = self.body.paint(canvas);
        let b = Limits {
            outline: &outline,
            diaphragm: &self.diaphragm,
        };
        self.spine.paint_muscles(canvas, &b);
        self.bowel.paint(canvas, &b);
        self.thorax.paint_lungs(canvas, &b);
        self.thorax.paint_airway_and_esophagus(canvas, &b);
        self.thorax.paint_heart(canvas, &b);
        self.abdomen.paint(canvas, &b);
        self.thorax.paint_aorta(canvas, &b);
        self.spine.paint(canvas, &b);
    }
}
