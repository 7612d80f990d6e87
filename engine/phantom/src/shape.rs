//! The solids organs are made of: rotated ellipsoids and tubes (chains of capsules with a radius
//! that varies along them). Each knows its axis-aligned bounds, so painting visits only the
//! voxels that can be inside.

pub type V3 = [f64; 3];

/// A rotation as a 3x3 matrix whose columns are the body axes in patient space.
#[derive(Clone, Copy, Debug)]
pub struct Rot([[f64; 3]; 3]);

impl Rot {
    pub const IDENTITY: Rot = Rot([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);

    /// Rotation about z (in the axial plane), then y, then x; degrees, applied as Rz * Ry * Rx.
    pub fn zyx(z_deg: f64, y_deg: f64, x_deg: f64) -> Rot {
        let (sz, cz) = z_deg.to_radians().sin_cos();
        let (sy, cy) = y_deg.to_radians().sin_cos();
        let (sx, cx) = x_deg.to_radians().sin_cos();
        Rot([
            [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
            [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
            [-sy, cy * sx, cy * cx],
        ])
    }

    /// Patient-space vector `d` in body coordinates (R transposed times d).
    #[inline]
    pub fn to_body(self, d: V3) -> V3 {
        let m = &self.0;
        [
            m[0][0] * d[0] + m[1][0] * d[1] + m[2][0] * d[2],
            m[0][1] * d[0] + m[1][1] * d[1] + m[2][1] * d[2],
            m[0][2] * d[0] + m[1][2] * d[1] + m[2][2] * d[2],
        ]
    }

    /// Body-space vector `d` in patient coordinates.
    #[inline]
    pub fn to_patient(self, d: V3) -> V3 {
        let m = &self.0;
        [
            m[0][0] * d[0] + m[0][1] * d[1] + m[0][2] * d[2],
            m[1][0] * d[0] + m[1][1] * d[1] + m[1][2] * d[2],
            m[2][0] * d[0] + m[2][1] * d[1] + m[2][2] * d[2],
        ]
    }
}

/// Axis-aligned bounds, low and high corner.
pub type Bounds = (V3, V3);

#[derive(Clone, Copy, Debug)]
pub struct Ellipsoid {
    pub center: V3,
    pub radii: V3,
    pub rot: Rot,
}

impl Ellipsoid {
    pub fn new(center: V3, radii: V3, rot: Rot) -> Self {
        Ellipsoid { center, radii, rot }
    }

    /// `p` in the ellipsoid's unit-sphere coordinates.
    #[inline]
    pub fn unit(&self, p: V3) -> V3 {
        let q = self.rot.to_body([
            p[0] - self.center[0],
            p[1] - self.center[1],
            p[2] - self.center[2],
        ]);
        [
            q[0] / self.radii[0],
            q[1] / self.radii[1],
            q[2] / self.radii[2],
        ]
    }

    /// Squared normalised distance from the centre: at most 1 inside.
    #[inline]
    pub fn level(&self, p: V3) -> f64 {
        let u = self.unit(p);
        u[0] * u[0] + u[1] * u[1] + u[2] * u[2]
    }

    pub fn contains(&self, p: V3) -> bool {
        self.level(p) <= 1.0
    }

    /// Patient position of a point given in unit-sphere coordinates.
    pub fn point(&self, u: V3) -> V3 {
        let d = self.rot.to_patient([
            u[0] * self.radii[0],
            u[1] * self.radii[1],
            u[2] * self.radii[2],
        ]);
        [
            self.center[0] + d[0],
            self.center[1] + d[1],
            self.center[2] + d[2],
        ]
    }

    pub fn bounds(&self) -> Bounds {
        let m = &self.rot.0;
        let mut lo = [0.0; 3];
        let mut hi = [0.0; 3];
        for a in 0..3 {
            // Half extent along patient axis a of the rotated ellipsoid.
            let e = (0..3)
                .map(|b| (m[a][b] * self.radii[b]).powi(2))
                .sum::<f64>()
                .sqrt();
            lo[a] = self.center[a] - e;
            hi[a] = self.center[a] + e;
        }
        (lo, hi)
    }
}

/// A tube through `points` whose radius goes linearly from `radii[n]` to `radii[n + 1]` along each
/// segment, with round joints and ends.
#[derive(Clone, Debug)]
pub struct Tube {
    pub points: Vec<V3>,
    pub radii: Vec<f64>,
}

impl Tube {
    pub fn new(points: Vec<V3>, radii: Vec<f64>) -> Self {
        debug_assert_eq!(points.len(), radii.len());
        Tube { points, radii }
    }

    /// Smallest ratio of distance to local radius over the segments: at most 1 inside. Lets the
    /// caller tell the lumen from the wall.
    pub fn level(&self, p: V3) -> f64 {
        let mut best = f64::INFINITY;
        for s in 0..self.points.len().saturating_sub(1) {
            let (a, b) = (self.points[s], self.points[s + 1]);
            let ab = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
            let ap = [p[0] - a[0], p[1] - a[1], p[2] - a[2]];
            let len2 = ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2];
            let t = if len2 > 0.0 {
                ((ap[0] * ab[0] + ap[1] * ab[1] + ap[2] * ab[2]) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let d = [ap[0] - t * ab[0], ap[1] - t * ab[1], ap[2] - t * ab[2]];
            let r = self.radii[s] + t * (self.radii[s + 1] - self.radii[s]);
            let l = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt() / r;
            best = best.min(l);
        }
        best
    }

    pub fn bounds(&self) -> Bounds {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for (p, r) in self.points.iter().zip(&self.radii) {
            for a in 0..3 {
                lo[a] = lo[a].min(p[a] - r);
                hi[a] = hi[a].max(p[a] + r);
            }
        }
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_round_trips_and_bounds_enclose() {
        let e = Ellipsoid::new(
            [10.0, -5.0, 3.0],
            [30.0, 10.0, 20.0],
            Rot::zyx(30.0, 10.0, -5.0),
        );
        let (lo, hi) = e.bounds();
        for u in [
            [1.0, 0.0, 0.0],
            [0.0, -1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.6, 0.0, 0.8],
        ] {
            let p = e.point(u);
            assert!((e.level(p) - 1.0).abs() < 1e-9);
            for a in 0..3 {
                assert!(p[a] >= lo[a] - 1e-9 && p[a] <= hi[a] + 1e-9);
            }
        }
    }

    #[test]
    fn tube_level_is_distance_over_radius() {
        let t = Tube::new(vec![[0.0, 0.0, 0.0], [0.0, 0.0, 10.0]], vec![2.0, 4.0]);
        assert!((t.level([1.0, 0.0, 0.0]) - 0.5).abs() < 1e-12);
        assert!((t.level([0.0, 3.0, 10.0]) - 0.75).abs() < 1e-12);
        assert!(t.level([0.0, 0.0, -3.0]) > 1.0);
    }
}
