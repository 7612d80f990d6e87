//! Volumes longer than the adapter's 3D-texture limit on one axis (a 2,100-slice CT on a GPU that
//! takes 2,048): the long axis is cut into parts, and the parts are laid side by side along the
//! other two axes of one texture, as pages of a book laid out on a table. One texture and one
//! upload per voxel, as for any volume; the shader maps a voxel to its texel (`fold` in
//! `shaders/slice.wgsl`, the same arithmetic as [`Fold::texel`]). Binding one texture keeps the
//! bind group the same for every adapter (arrays of textures are an optional feature), and
//! trilinear sampling reads each of its eight texels through the same mapping, so a part's
//! boundary is invisible.

use std::ops::Range;

/// How one axis of a volume is folded into a texture; `None` from [`Fold::plan`] when it fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fold {
    /// The long axis (0 = i, 1 = j, 2 = k).
    pub axis: usize,
    /// Voxels of the long axis per part (the texture's extent on that axis).
    pub part: usize,
    /// Parts laid along the next axis ((axis + 1) % 3) before a new row starts along the one after.
    pub across: usize,
    pub parts: usize,
}

/// One rectangular piece of a write: where it lands in the texture, its size, and its first
/// voxel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub origin: [u32; 3],
    pub extent: [u32; 3],
    pub first_voxel: [usize; 3],
}

impl Fold {
    /// `Ok(None)` when every axis fits `limit`; the fold when one axis does not and the parts fit
    /// beside each other; an error saying what does not fit otherwise.
    pub fn plan(dims: [usize; 3], limit: usize) -> Result<Option<Fold>, String> {
        if dims.contains(&0) {
            return Err(format!("the volume is {dims:?} voxels: an axis is empty"));
        }
        let long: Vec<usize> = (0..3).filter(|&a| dims[a] > limit).collect();
        let axis = match long.as_slice() {
            [] => return Ok(None),
            [a] => *a,
            _ => {
                return Err(format!(
                    "the volume is {dims:?} voxels; this GPU takes 3D textures up to {limit} on a \
                     side, and more than one axis is longer"
                ))
            }
        };
        let (b, c) = ((axis + 1) % 3, (axis + 2) % 3);
        let across = limit / dims[b];
        let rows = limit / dims[c];
        let parts = dims[axis].div_ceil(limit);
        if across * rows < parts {
            return Err(format!(
                "the volume is {dims:?} voxels; this GPU takes 3D textures up to {limit} on a \
                 side, and its {parts} parts of axis {axis} do not fit beside each other"
            ));
        }
        Ok(Some(Fold {
            axis,
            part: dims[axis].div_ceil(parts),
            across,
            parts,
        }))
    }

    /// The texture's size.
    pub fn texture_dims(&self, dims: [usize; 3]) -> [usize; 3] {
        let (b, c) = ((self.axis + 1) % 3, (self.axis + 2) % 3);
        let mut t = dims;
        t[self.axis] = self.part;
        t[b] = dims[b] * self.parts.min(self.across);
        t[c] = dims[c] * self.parts.div_ceil(self.across);
        t
    }

    /// The texel that holds voxel `p`.
    pub fn texel(&self, dims: [usize; 3], p: [usize; 3]) -> [usize; 3] {
        let (b, c) = ((self.axis + 1) % 3, (self.axis + 2) % 3);
        let part = p[self.axis] / self.part;
        let mut q = p;
        q[self.axis] = p[self.axis] % self.part;
        q[b] = p[b] + (part % self.across) * dims[b];
        q[c] = p[c] + (part / self.across) * dims[c];
        q
    }

    /// The shader's `fold` uniform: axis, part, across (axis -1: not folded).
    pub fn uniform(fold: Option<Fold>) -> [f32; 4] {
        match fold {
            Some(f) => [
                f.axis as f32,
                f.part as f32,
                f.across as f32,
                f.parts as f32,
            ],
            None => [-1.0, 1.0, 1.0, 1.0],
        }
    }

    /// The texture writes that put the voxel box `range` in place: one per part it touches
    /// (within a part every voxel moves by the same offset, so each piece is one rectangle).
    pub fn pieces(fold: Option<Fold>, dims: [usize; 3], range: [Range<usize>; 3]) -> Vec<Piece> {
        let piece = |r: &[Range<usize>; 3], origin: [usize; 3]| Piece {
            origin: origin.map(|o| o as u32),
            extent: [0, 1, 2].map(|a| (r[a].end - r[a].start) as u32),
            first_voxel: [r[0].start, r[1].start, r[2].start],
        };
        if range.iter().any(|r| r.start >= r.end) {
            return Vec::new();
        }
        let Some(f) = fold else {
            return vec![piece(
                &range,
                [range[0].start, range[1].start, range[2].start],
            )];
        };
        let along = &range[f.axis];
        let first = along.start / f.part;
        let last = (along.end - 1) / f.part;
        (first..=last)
            .map(|p| {
                let mut r = range.clone();
                r[f.axis] = along.start.max(p * f.part)..along.end.min((p + 1) * f.part);
                let start = [r[0].start, r[1].start, r[2].start];
                piece(&r, f.texel(dims, start))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every voxel lands on its own texel inside the texture, for folds along each axis.
    fn check_bijective(dims: [usize; 3], limit: usize) -> Fold {
        let fold = Fold::plan(dims, limit)
            .expect("fits")
            .expect("needs folding");
        let t = fold.texture_dims(dims);
        assert!(t.iter().all(|&d| d <= limit), "{t:?} within {limit}");
        let mut seen = vec![false; t[0] * t[1] * t[2]];
        for k in 0..dims[2] {
            for j in 0..dims[1] {
                for i in 0..dims[0] {
                    let q = fold.texel(dims, [i, j, k]);
                    assert!(q[0] < t[0] && q[1] < t[1] && q[2] < t[2], "{q:?} in {t:?}");
                    let at = (q[2] * t[1] + q[1]) * t[0] + q[0];
                    assert!(!seen[at], "two voxels on texel {q:?}");
                    seen[at] = true;
                }
            }
        }
        fold
    }

    #[test]
    fn a_long_axis_folds_into_one_texture_without_collisions() {
        // Along k, the common case (a long series), with a last part shorter than the others.
        let f = check_bijective([4, 3, 23], 8);
        assert_eq!((f.axis, f.parts, f.part, f.across), (2, 3, 8, 2));
        // Along i and along j.
        check_bijective([19, 3, 2], 8);
        check_bijective([2, 17, 3], 8);
        // What users open: 2,100 and 3,000 slices on a 2,048 limit.
        let f = Fold::plan([128, 128, 2100], 2048)
            .expect("fits")
            .expect("folds");
        assert_eq!(f.texture_dims([128, 128, 2100]), [256, 128, 1050]);
        let f = Fold::plan([512, 512, 3000], 2048)
            .expect("fits")
            .expect("folds");
        assert_eq!(f.texture_dims([512, 512, 3000]), [1024, 512, 1500]);
        assert_eq!(Fold::plan([512, 512, 300], 2048), Ok(None));
    }

    #[test]
    fn what_cannot_fold_is_refused_with_a_reason() {
        let e = Fold::plan([3000, 3000, 10], 2048).expect_err("two long axes");
        assert!(e.contains("more than one axis"), "{e}");
        let e = Fold::plan([1500, 1500, 9000], 2048).expect_err("parts do not fit");
        assert!(e.contains("do not fit"), "{e}");
        assert!(Fold::plan([0, 4, 4], 2048).is_err());
    }

    #[test]
    fn pieces_cover_a_box_and_land_where_texel_says() {
        let dims = [4, 3, 23];
        let fold = Fold::plan(dims, 8).expect("fits");
        for range in [
            [0..4, 0..3, 0..23],
            [0..4, 0..3, 7..9],
            [1..3, 0..2, 15..16],
            [0..4, 0..3, 22..23],
        ] {
            let pieces = Fold::pieces(fold, dims, range.clone());
            let mut covered = 0;
            for p in &pieces {
                let q = fold.expect("folded").texel(dims, p.first_voxel);
                assert_eq!(p.origin, q.map(|x| x as u32));
                // The piece's last voxel is as far from its first in the texture as in the volume.
                let last = [0, 1, 2].map(|a| p.first_voxel[a] + p.extent[a] as usize - 1);
                let ql = fold.expect("folded").texel(dims, last);
                for a in 0..3 {
                    assert_eq!(ql[a] - q[a], last[a] - p.first_voxel[a]);
                }
                covered += p.extent.iter().product::<u32>();
            }
            let want: usize = range.iter().map(|r| r.len()).product();
            assert_eq!(covered as usize, want, "{range:?}");
        }
        // Not folded: the box itself.
        let p = Fold::pieces(None, dims, [0..4, 0..3, 5..6]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].origin, [0, 0, 5]);
        assert!(Fold::pieces(fold, dims, [0..4, 0..3, 5..5]).is_empty());
    }
}
