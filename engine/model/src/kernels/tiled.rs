//! What the q4_k and q8_0 kernels ([`super::q4k`], [`super::q8_0`]) share: weights in tiles of
//! 16 rows by 256 values, activations quantized to i8, and the driver that runs the tile-rows
//! against groups of up to four rows of A on all threads.

use rayon::prelude::*;

/// Values along K in a tile.
pub const SPAN: usize = 256;
/// Weight rows in a tile: one 16-lane vector of outputs.
pub const TILE_ROWS: usize = 16;
/// Values whose i8 sum [`QuantizedRows`] keeps (the weights' offsets are taken out with it).
pub const SUM_BLOCK: usize = 32;
/// Tile-rows per task: 64 weight rows, as the f32/bf16 GEMV.
const TILES_PER_TASK: usize = 4;
/// Rows of A multiplied against one loaded tile.
const MAX_GROUP: usize = 4;

/// Why a matrix cannot be packed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{kind} matrix ({n}, {k}): rows must be a multiple of 16 and columns of 256")]
    Shape {
        kind: &'static str,
        n: usize,
        k: usize,
    },
    #[error("{kind} matrix ({n}, {k}): {got} bytes of blocks, {expected} expected")]
    Bytes {
        kind: &'static str,
        n: usize,
        k: usize,
        got: usize,
        expected: usize,
    },
}

/// Whether a matrix of this shape packs into tiles.
pub fn fits(n: usize, k: usize) -> bool {
    n > 0 && k > 0 && n.is_multiple_of(TILE_ROWS) && k.is_multiple_of(SPAN)
}

/// Whether this CPU has AVX-512 F, BW and VNNI, which the hand-written kernels need.
pub fn cpu_has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vnni")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A tiled weight format: how one tile-row (all of K for 16 weight rows) multiplies a group of
/// `G` quantized rows of A, giving `G` vectors of 16 outputs; the two kernels do the same
/// operations in the same order.
pub trait TileKernel {
    type Tile: Sync;
    /// Values of A that share one activation scale (a multiple of [`SUM_BLOCK`]).
    const SCALE_BLOCK: usize;
    fn portable<const G: usize>(tiles: &[Self::Tile], rows: &[Row; G]) -> [[f32; 16]; G];
    /// # Safety
    /// Only where [`cpu_has_vnni`] is true.
    #[cfg(target_arch = "x86_64")]
    unsafe fn vnni<const G: usize>(tiles: &[Self::Tile], rows: &[Row; G]) -> [[f32; 16]; G];
}

/// One tile-row against a group of rows of A, by the VNNI kernel where `vnni` says (true only
/// where [`cpu_has_vnni`] is), else the portable one.
fn group<T: TileKernel, const G: usize>(
    tiles: &[T::Tile],
    rows: &[Row; G],
    vnni: bool,
) -> [[f32; 16]; G] {
    #[cfg(target_arch = "x86_64")]
    if vnni {
        // SAFETY: `vnni` is only true where the CPU has the features.
        return unsafe { T::vnni(tiles, rows) };
    }
    let _ = vnni;
    T::portable(tiles, rows)
}

/// Rows of activations quantized to i8 with one f32 scale per `scale_block` values (round to
/// nearest, half away from zero) and the i8 sum of every [`SUM_BLOCK`] values.
pub struct QuantizedRows {
    k: usize,
    scale_block: usize,
    q: Vec<i8>,
    scale: Vec<f32>,
    sums: Vec<i32>,
}

impl QuantizedRows {
    pub fn new(a: &[f32], m: usize, k: usize, scale_block: usize) -> Self {
        let mut q = vec![0i8; m * k];
        let mut scale = vec![0f32; m * k / scale_block];
        let mut sums = vec![0i32; m * k / SUM_BLOCK];
        let quantize_block = |q: &mut [i8], scale: &mut f32, sums: &mut [i32], x: &[f32]| {
            let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
            for (q, &v) in q.iter_mut().zip(x) {
                // |v * inv| <= 127 (a non-finite value gives 0).
                let s = v * inv;
                *q = (s + 0.5f32.copysign(s)) as i8;
            }
            *scale = d;
            for (sum, block) in sums.iter_mut().zip(q.chunks_exact(SUM_BLOCK)) {
                *sum = block.iter().map(|&v| i32::from(v)).sum();
            }
        };
        let quantize_row = |q: &mut [i8], scale: &mut [f32], sums: &mut [i32], x: &[f32]| {
            let blocks = q
                .chunks_mut(scale_block)
                .zip(scale.iter_mut())
                .zip(sums.chunks_mut(scale_block / SUM_BLOCK))
                .zip(x.chunks_exact(scale_block));
            for (((q, scale), sums), x) in blocks {
                quantize_block(q, scale, sums, x);
            }
        };
        let (scales, sums_a_row) = (k / scale_block, k / SUM_BLOCK);
        if m >= MAX_GROUP {
            q.par_chunks_mut(k)
                .zip(scale.par_chunks_mut(scales))
                .zip(sums.par_chunks_mut(sums_a_row))
                .zip(a[..m * k].par_chunks(k))
                .for_each(|(((q, scale), sums), x)| quantize_row(q, scale, sums, x));
        } else {
            q.chunks_mut(k)
                .zip(scale.chunks_mut(scales))
                .zip(sums.chunks_mut(sums_a_row))
                .zip(a[..m * k].chunks(k))
                .for_each(|(((q, scale), sums), x)| quantize_row(q, scale, sums, x));
        }
        QuantizedRows {
            k,
            scale_block,
            q,
            scale,
            sums,
        }
    }

    pub fn row(&self, i: usize) -> Row<'_> {
        let (scales, sums) = (self.k / self.scale_block, self.k / SUM_BLOCK);
        Row {
            q: &self.q[i * self.k..(i + 1) * self.k],
            scale: &self.scale[i * scales..(i + 1) * scales],
            sums: &self.sums[i * sums..(i + 1) * sums],
        }
    }
}

/// One quantized row of A: `q[p] · scale[p / SCALE_BLOCK]` is its value p.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    pub q: &'a [i8],
    pub scale: &'a [f32],
    pub sums: &'a [i32],
}

/// C (M, N) = A (M, K) · Wᵀ with W as `tiles` (tile-row `t` is `tiles[t * K/256 ..]`). Panics if
/// a slice is shorter than the sizes say.
pub fn product<T: TileKernel>(
    a: &[f32],
    m: usize,
    (n, k): (usize, usize),
    tiles: &[T::Tile],
    c: &mut [f32],
    vnni: bool,
) {
    assert!(a.len() >= m * k && c.len() >= m * n && tiles.len() == n * k / (TILE_ROWS * SPAN));
    if m == 0 {
        return;
    }
    let acts = QuantizedRows::new(a, m, k, T::SCALE_BLOCK);
    let kt = k / SPAN;
    let rows: Vec<Row> = (0..m).map(|i| acts.row(i)).collect();
    // Each task: a run of tile-rows against every row of A, its outputs as [tile-row][row of
    // A][16]; with several rows of A, C is filled from that afterwards (M·N floats, small next
    // to W), with one it is C itself. A tile-row's tiles stay in cache while the rows of A pass
    // over them (the prefill).
    let mut staged = if m == 1 {
        Vec::new()
    } else {
        vec![0f32; n * m]
    };
    let out: &mut [f32] = if m == 1 { &mut c[..n] } else { &mut staged };
    out.par_chunks_mut(TILES_PER_TASK * TILE_ROWS * m)
        .zip(tiles.par_chunks(TILES_PER_TASK * kt))
        .for_each(|(out, tiles)| {
            for (t, tile_row) in tiles.chunks_exact(kt).enumerate() {
                let out = &mut out[t * TILE_ROWS * m..(t + 1) * TILE_ROWS * m];
                for (g, group) in rows.chunks(MAX_GROUP).enumerate() {
                    let out = &mut out[g * MAX_GROUP * TILE_ROWS..];
                    tile_row_product::<T>(tile_row, group, out, vnni);
                }
            }
        });
    if m == 1 {
        return;
    }
    for (t, block) in staged.chunks_exact(TILE_ROWS * m).enumerate() {
        for (i, outputs) in block.chunks_exact(TILE_ROWS).enumerate() {
            c[i * n + t * TILE_ROWS..i * n + (t + 1) * TILE_ROWS].copy_from_slice(outputs);
        }
    }
}

/// One tile-row against up to four rows of A: `out[i * 16 + r]`.
fn tile_row_product<T: TileKernel>(tiles: &[T::Tile], rows: &[Row], out: &mut [f32], vnni: bool) {
    macro_rules! group {
        ($g:literal) => {{
            let rows: &[Row; $g] = rows.try_into().expect("group size");
            let acc = group::<T, $g>(tiles, rows, vnni);
            for (i, acc) in acc.iter().enumerate() {
                out[i * TILE_ROWS..(i + 1) * TILE_ROWS].copy_from_slice(acc);
            }
        }};
    }
    match rows.len() {
        1 => group!(1),
        2 => group!(2),
        3 => group!(3),
        4 => group!(4),
        g => unreachable!("groups are 1 to {MAX_GROUP} rows, not {g}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::values;

    #[test]
    fn quantized_rows_round_each_block_to_its_own_scale_and_sum_it() {
        let (m, k) = (3, 512);
        let mut a = values(m * k, 31);
        a[5] = 0.0;
        a[288..320].fill(0.0); // a 32-value block of zeros
        for scale_block in [32, 256] {
            let acts = QuantizedRows::new(&a, m, k, scale_block);
            for i in 0..m {
                let row = acts.row(i);
                for p in 0..k {
                    let x = a[i * k + p];
                    let d = row.scale[p / scale_block];
                    assert!(row.q[p].unsigned_abs() <= 127);
                    assert!((f32::from(row.q[p]) * d - x).abs() <= d * 0.5 + 1e-6, "{p}");
                }
                for (b, sum) in row.sums.iter().enumerate() {
                    let q = &row.q[b * SUM_BLOCK..(b + 1) * SUM_BLOCK];
                    assert_eq!(*sum, q.iter().map(|&v| i32::from(v)).sum::<i32>());
                }
            }
        }
    }
}
