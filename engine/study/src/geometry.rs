//! Patient-space geometry. The one internal space is DICOM's LPS (x to patient Left, y Posterior,
//! z Superior, millimetres); NIfTI's RAS is converted at load time.

use serde::Serialize;

pub type Vec3 = [f64; 3];

pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub fn add(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub fn scale(a: Vec3, s: f64) -> Vec3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// `a` scaled to unit length, or `None` for a (near) zero vector.
pub fn normalize(a: Vec3) -> Option<Vec3> {
    let n = norm(a);
    (n > 1e-12 && n.is_finite()).then(|| scale(a, 1.0 / n))
}

/// `v` turned by `angle` radians about the unit vector `axis`, right-handed (Rodrigues).
pub fn rotate(v: Vec3, axis: Vec3, angle: f64) -> Vec3 {
    let (sin, cos) = angle.sin_cos();
    let along = scale(axis, dot(axis, v) * (1.0 - cos));
    add(add(scale(v, cos), scale(cross(axis, v), sin)), along)
}

/// Voxel (column i, row j, slice k) to patient LPS millimetres, as a 4x4 row-major matrix whose last
/// row is `[0, 0, 0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Affine(pub [[f64; 4]; 4]);

impl Affine {
    /// Builds the affine from the patient-space step of one voxel along i, j, k and the position of
    /// voxel (0, 0, 0).
    pub fn from_axes(step_i: Vec3, step_j: Vec3, step_k: Vec3, origin: Vec3) -> Self {
        let mut m = [[0.0; 4]; 4];
        for r in 0..3 {
            m[r] = [step_i[r], step_j[r], step_k[r], origin[r]];
        }
        m[3] = [0.0, 0.0, 0.0, 1.0];
        Affine(m)
    }

    /// The patient-space step of one voxel along axis 0 (i), 1 (j) or 2 (k), or the origin for 3.
    pub fn column(&self, c: usize) -> Vec3 {
        [self.0[0][c], self.0[1][c], self.0[2][c]]
    }

    pub fn origin(&self) -> Vec3 {
        self.column(3)
    }

    /// Patient position of a (possibly fractional) voxel index.
    pub fn apply(&self, ijk: Vec3) -> Vec3 {
        let m = &self.0;
        let mut out = [0.0; 3];
        for (r, o) in out.iter_mut().enumerate() {
            *o = m[r][0] * ijk[0] + m[r][1] * ijk[1] + m[r][2] * ijk[2] + m[r][3];
        }
        out
    }

    /// Voxel spacing along i, j, k (lengths of the first three columns).
    pub fn spacing(&self) -> Vec3 {
        [
            norm(self.column(0)),
            norm(self.column(1)),
            norm(self.column(2)),
        ]
    }

    /// The inverse map, patient LPS to voxel index; `None` when the axes are degenerate.
    pub fn inverse(&self) -> Option<Affine> {
        let a = self.column(0);
        let b = self.column(1);
        let c = self.column(2);
        let det = dot(a, cross(b, c));
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        // Rows of the inverse 3x3 are the reciprocal basis vectors.
        let r0 = scale(cross(b, c), 1.0 / det);
        let r1 = scale(cross(c, a), 1.0 / det);
        let r2 = scale(cross(a, b), 1.0 / det);
        let t = self.origin();
        let mut m = [[0.0; 4]; 4];
        for (row, r) in [r0, r1, r2].into_iter().enumerate() {
            m[row] = [r[0], r[1], r[2], -dot(r, t)];
        }
        m[3] = [0.0, 0.0, 0.0, 1.0];
        Some(Affine(m))
    }

    /// Flat row-major copy, for serialisation and uniform buffers.
    pub fn to_rows(&self) -> [[f64; 4]; 4] {
        self.0
    }
}

/// Orientation letters of a patient-space direction, most dominant first (e.g. `L`, `PS`). Only
/// components of at least 10 % of the largest are named, so a slight obliquity stays a single letter
/// while a real oblique gets combined letters as Slicer shows them.
pub fn orientation_letters(direction: Vec3) -> String {
    let letters = [('L', 'R'), ('P', 'A'), ('S', 'I')];
    let mut parts: Vec<(f64, char)> = (0..3)
        .map(|axis| {
            let (pos, neg) = letters[axis];
            let v = direction[axis];
            (v.abs(), if v >= 0.0 { pos } else { neg })
        })
        .collect();
    parts.sort_by(|a, b| b.0.total_cmp(&a.0));
    let largest = parts[0].0;
    if largest <= 0.0 || !largest.is_finite() {
        return String::new();
    }
    parts
        .into_iter()
        .filter(|(magnitude, _)| *magnitude >= 0.1 * largest && *magnitude > 0.1)
        .map(|(_, letter)| letter)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_turns_right_handed_and_keeps_the_axis() {
        let quarter = std::f64::consts::FRAC_PI_2;
        let v = rotate([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], quarter);
        assert!(norm(sub(v, [0.0, 1.0, 0.0])) < 1e-12, "{v:?}");
        let axis = normalize([1.0, 2.0, 3.0]).expect("axis");
        assert!(norm(sub(rotate(axis, axis, 0.7), axis)) < 1e-12);
        let w = rotate([0.3, -0.4, 2.0], axis, 1.1);
        assert!((norm(w) - norm([0.3, -0.4, 2.0])).abs() < 1e-12);
    }

    #[test]
    fn inverse_round_trips_an_oblique_affine() {
        let a = Affine::from_axes(
            [0.859, 0.0, 0.0],
            [0.0, 0.851, 0.115],
            [0.0, -0.94, 7.0],
            [-110.0, -90.0, 20.0],
        );
        let inv = a.inverse().expect("invertible");
        let p = a.apply([10.5, 20.0, 3.0]);
        let back = inv.apply(p);
        for (x, y) in back.iter().zip([10.5, 20.0, 3.0]) {
            assert!((x - y).abs() < 1e-9, "{back:?}");
        }
    }

    #[test]
    fn letters_follow_lps() {
        assert_eq!(orientation_letters([1.0, 0.0, 0.0]), "L");
        assert_eq!(orientation_letters([-1.0, 0.0, 0.0]), "R");
        assert_eq!(orientation_letters([0.0, -1.0, 0.0]), "A");
        assert_eq!(orientation_letters([0.0, 0.0, -1.0]), "I");
        assert_eq!(orientation_letters([0.0, 0.991, 0.134]), "PS");
        assert_eq!(orientation_letters([0.0, 0.999, 0.02]), "P");
    }
}
