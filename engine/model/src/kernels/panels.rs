//! Weight matrices held as the prefill kernel's panels, for `x · Wᵀ` on CPUs with AVX-512F.
//!
//! W (N, K) row-major is stored as N/32 panels (the last zero-padded), panel p holding columns
//! 32p..32p+32 of Wᵀ step by step: `data[(p * K + s) * 32 + l]` = W[32p + l][s]. Two reasons:
//! - Decoding several sequences together (`serve`'s batches): a weight row read along K serves
//!   one output, so with row-major W the few rows of A have to be multiplied into four weight
//!   rows streamed side by side to keep the FMA units busy, and on the machines measured four
//!   interleaved streams read slower than one (BENCHMARKS.md). A panel is one stream: each step's
//!   32 weights are two vectors, multiplied into every row of A against that row's value at the
//!   step, broadcast. A batch of 8 then decodes at about the speed of one row.
//! - The prefill ([`super::matmul`]) multiplies these very panels, so it no longer packs the
//!   weight on every call.
//!
//! Each output keeps one accumulator and adds its K products in order, whatever the rows beside
//! it (of A or of W), so a sequence's result does not depend on the batch it is decoded in.
//!
//! bf16 weights on CPUs with AVX512-BF16 (and without AMX, whose prefill has its own tiles) are
//! held the same way as [`PairPanels`]: a lane is a pair of consecutive K steps, as the prefill's
//! `vdpbf16ps` scheme packs them, and decoding multiplies each pair into A's rows split into two
//! bf16 parts (`x ≈ hi + lo`), as [`super::gemv_pairs`] does.

use rayon::prelude::*;

/// Columns of Wᵀ a panel (the prefill tile's width).
pub const WIDTH: usize = 32;

/// Rows of A multiplied against a panel at once (16 accumulators, the rest of the registers for
/// the panel's two vectors and the broadcast).
const GROUP: usize = 8;

/// W in panels (see the module's documentation).
#[derive(Debug)]
pub struct PanelMatrix {
    n: usize,
    k: usize,
    data: Vec<f32>,
}

impl PanelMatrix {
    /// W (N, K) row-major, repacked. Panics if `w` is shorter than N·K.
    pub fn from_rows(w: &[f32], n: usize, k: usize) -> Self {
        assert!(w.len() >= n * k, "{} weights for ({n}, {k})", w.len());
        let mut data = vec![0f32; n.div_ceil(WIDTH) * WIDTH * k];
        if k > 0 {
            data.par_chunks_mut(WIDTH * k)
                .enumerate()
                .for_each(|(p, panel)| {
                    for l in 0..WIDTH.min(n - p * WIDTH) {
                        let row = &w[(p * WIDTH + l) * k..(p * WIDTH + l + 1) * k];
                        for (s, &v) in row.iter().enumerate() {
                            panel[s * WIDTH + l] = v;
                        }
                    }
                });
        }
        PanelMatrix { n, k, data }
    }

    /// N: outputs.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// K: inputs.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// Bytes held (the padding of the last panel included).
    pub fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }

    /// The panels, `(N / 32 rounded up) · K · 32` values.
    pub(crate) fn data(&self) -> &[f32] {
        &self.data
    }

    /// Row `j` of W as it was given.
    pub fn row(&self, j: usize) -> Vec<f32> {
        let (p, l) = (j / WIDTH, j % WIDTH);
        (0..self.k)
            .map(|s| self.data[(p * self.k + s) * WIDTH + l])
            .collect()
    }

    /// C (M, N) = A (M, K) · Wᵀ for a few rows of A (decoding), every weight read once. Panics if
    /// a slice is shorter than the sizes say.
    pub fn decode(&self, a: &[f32], m: usize, c: &mut [f32]) {
        let (n, k) = (self.n, self.k);
        assert!(a.len() >= m * k && c.len() >= m * n);
        if m == 0 || n == 0 {
            return;
        }
        let panel_len = k * WIDTH;
        each_group(n, m, c, |p, first, rows, tile| {
            let panel = &self.data[p * panel_len..(p + 1) * panel_len];
            group(a, k, first, rows, panel, tile);
        });
    }
}

/// C (M, N) from its tiles: one task per panel p, each group of at most [`GROUP`] rows
/// `first..first + rows` computed by `product(p, first, rows, tile)` into `tile[r]` and written
/// to C's columns 32p.. (only those below N).
fn each_group(
    n: usize,
    m: usize,
    c: &mut [f32],
    product: impl Fn(usize, usize, usize, &mut [[f32; WIDTH]; GROUP]) + Sync,
) {
    assert!(c.len() >= m * n);
    let out = OutPtr(c.as_mut_ptr());
    let out = &out;
    (0..n.div_ceil(WIDTH)).into_par_iter().for_each(|p| {
        let lanes = WIDTH.min(n - p * WIDTH);
        let mut first = 0;
        while first < m {
            let rows = GROUP.min(m - first);
            let mut tile = [[0f32; WIDTH]; GROUP];
            product(p, first, rows, &mut tile);
            for (r, values) in tile.iter().take(rows).enumerate() {
                // SAFETY: row first + r < m and columns p·32..p·32 + lanes < n lie inside C
                // (asserted above); each panel's task writes only its own columns.
                unsafe {
                    let to = out.0.add((first + r) * n + p * WIDTH);
                    std::ptr::copy_nonoverlapping(values.as_ptr(), to, lanes);
                }
            }
            first += rows;
        }
    });
}

/// C's base pointer, shared by the panels' tasks (they write disjoint columns).
struct OutPtr(*mut f32);
// SAFETY: see `each_group`: the tasks' writes do not overlap.
unsafe impl Sync for OutPtr {}

/// Rows `first..first + rows` (at most [`GROUP`]) of A against one panel, into `tile[r]`.
fn group(
    a: &[f32],
    k: usize,
    first: usize,
    rows: usize,
    panel: &[f32],
    tile: &mut [[f32; WIDTH]; GROUP],
) {
    #[cfg(target_arch = "x86_64")]
    if super::matmul::available() {
        // SAFETY: AVX-512F was detected; the sizes are the caller's, checked there.
        unsafe {
            match rows {
                8 => group_avx512::<8>(a, k, first, panel, tile),
                7 => group_avx512::<7>(a, k, first, panel, tile),
                6 => group_avx512::<6>(a, k, first, panel, tile),
                5 => group_avx512::<5>(a, k, first, panel, tile),
                4 => group_avx512::<4>(a, k, first, panel, tile),
                3 => group_avx512::<3>(a, k, first, panel, tile),
                2 => group_avx512::<2>(a, k, first, panel, tile),
                _ => group_avx512::<1>(a, k, first, panel, tile),
            }
        }
        return;
    }
    // Elsewhere (never chosen by the layers, which take panels only with AVX-512F; kept so the
    // type works everywhere): the same operations in the same order.
    for (r, out) in tile.iter_mut().take(rows).enumerate() {
        let x = &a[(first + r) * k..(first + r + 1) * k];
        *out = [0f32; WIDTH];
        for (s, &xv) in x.iter().enumerate() {
            for (l, o) in out.iter_mut().enumerate() {
                *o = xv.mul_add(panel[s * WIDTH + l], *o);
            }
        }
    }
}

/// R rows of A against a panel: per step, two vectors of weights, each row's value broadcast, two
/// FMAs a row. No software prefetch: the panel is one forward stream, which the hardware
/// prefetcher follows (measured faster than prefetching ahead).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn group_avx512<const R: usize>(
    a: &[f32],
    k: usize,
    first: usize,
    panel: &[f32],
    tile: &mut [[f32; WIDTH]; GROUP],
) {
    use std::arch::x86_64::*;
    let x: [*const f32; R] = std::array::from_fn(|i| a.as_ptr().add((first + i) * k));
    let w = panel.as_ptr();
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    for s in 0..k {
        let w0 = _mm512_loadu_ps(w.add(s * WIDTH));
        let w1 = _mm512_loadu_ps(w.add(s * WIDTH + 16));
        for i in 0..R {
            let xv = _mm512_set1_ps(*x[i].add(s));
            lo[i] = _mm512_fmadd_ps(xv, w0, lo[i]);
            hi[i] = _mm512_fmadd_ps(xv, w1, hi[i]);
        }
    }
    for i in 0..R {
        _mm512_storeu_ps(tile[i].as_mut_ptr(), lo[i]);
        _mm512_storeu_ps(tile[i].as_mut_ptr().add(16), hi[i]);
    }
}

/// A bf16 weight matrix in panels of bf16 pairs: `data[(p * P + q) * 32 + l]` holds W[32p + l]
/// at steps 2q (low half) and 2q + 1 (high half, zero past an odd K), P = K/2 rounded up.
#[derive(Debug)]
pub struct PairPanels {
    n: usize,
    k: usize,
    data: Vec<u32>,
}

impl PairPanels {
    /// W (N, K) row-major, repacked. Panics if `w` is shorter than N·K.
    pub fn from_rows(w: &[half::bf16], n: usize, k: usize) -> Self {
        assert!(w.len() >= n * k, "{} weights for ({n}, {k})", w.len());
        let pairs = k.div_ceil(2);
        let mut data = vec![0u32; n.div_ceil(WIDTH) * WIDTH * pairs];
        if pairs > 0 {
            data.par_chunks_mut(WIDTH * pairs)
                .enumerate()
                .for_each(|(p, panel)| {
                    for l in 0..WIDTH.min(n - p * WIDTH) {
                        let row = &w[(p * WIDTH + l) * k..(p * WIDTH + l + 1) * k];
                        for (q, two) in row.chunks(2).enumerate() {
                            let high = two.get(1).map_or(0, |v| u32::from(v.to_bits()));
                            panel[q * WIDTH + l] = u32::from(two[0].to_bits()) | (high << 16);
                        }
                    }
                });
        }
        PairPanels { n, k, data }
    }

    /// N: outputs.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// K: inputs.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// Bytes held (the padding of the last panel included).
    pub fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<u32>()
    }

    /// The panels, `(N / 32 rounded up) · P · 32` pairs.
    pub(crate) fn data(&self) -> &[u32] {
        &self.data
    }

    /// Row `j` of W as it was given.
    pub fn row(&self, j: usize) -> Vec<half::bf16> {
        let (p, l, pairs) = (j / WIDTH, j % WIDTH, self.k.div_ceil(2));
        (0..self.k)
            .map(|s| {
                let pair = self.data[(p * pairs + s / 2) * WIDTH + l];
                half::bf16::from_bits((pair >> (16 * (s % 2))) as u16)
            })
            .collect()
    }

    /// C (M, N) = A (M, K) · Wᵀ for a few rows of A (decoding), every weight read once, A split
    /// into `hi + lo`. Panics if a slice is shorter than the sizes say or the CPU has no
    /// AVX512-BF16 ([`super::gemv_pairs::available`]).
    pub fn decode(&self, a: &[f32], m: usize, c: &mut [f32]) {
        let (n, k) = (self.n, self.k);
        assert!(a.len() >= m * k && c.len() >= m * n);
        assert!(
            super::gemv_pairs::available(),
            "AVX512-BF16 is not available"
        );
        if m == 0 || n == 0 {
            return;
        }
        let pairs = k.div_ceil(2);
        let (hi, lo) = super::gemv_pairs::split_rows(a, m, k);
        let panel_len = pairs * WIDTH;
        each_group(n, m, c, |p, first, rows, tile| {
            let panel = &self.data[p * panel_len..(p + 1) * panel_len];
            // SAFETY: AVX512-BF16 is asserted above; the sizes are this function's.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                let x = (&hi[first * pairs..], &lo[first * pairs..]);
                match rows {
                    8 => pair_group::<8>(x, pairs, panel, tile),
                    7 => pair_group::<7>(x, pairs, panel, tile),
                    6 => pair_group::<6>(x, pairs, panel, tile),
                    5 => pair_group::<5>(x, pairs, panel, tile),
                    4 => pair_group::<4>(x, pairs, panel, tile),
                    3 => pair_group::<3>(x, pairs, panel, tile),
                    2 => pair_group::<2>(x, pairs, panel, tile),
                    _ => pair_group::<1>(x, pairs, panel, tile),
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (&hi, &lo, panel, first, rows, tile);
        });
    }
}

/// R rows of A (as `hi` and `lo` pairs, `pairs` a row) against a panel of pairs: per step, two
/// vectors of weight pairs, and for each row its `hi` pair then its `lo` pair, broadcast, each
/// through `vdpbf16ps` into the same accumulator.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pair_group<const R: usize>(
    (hi, lo): (&[u32], &[u32]),
    pairs: usize,
    panel: &[u32],
    tile: &mut [[f32; WIDTH]; GROUP],
) {
    use std::arch::x86_64::*;
    let bh = |v: __m512i| -> __m512bh { std::mem::transmute(v) };
    let w = panel.as_ptr();
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for q in 0..pairs {
        let w0 = bh(_mm512_loadu_si512(w.add(q * WIDTH) as *const _));
        let w1 = bh(_mm512_loadu_si512(w.add(q * WIDTH + 16) as *const _));
        for (i, [a0, a1]) in acc.iter_mut().enumerate() {
            let h = bh(_mm512_set1_epi32(*hi.get_unchecked(i * pairs + q) as i32));
            let l = bh(_mm512_set1_epi32(*lo.get_unchecked(i * pairs + q) as i32));
            *a0 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(*a0, h, w0), l, w0);
            *a1 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(*a1, h, w1), l, w1);
        }
    }
    for i in 0..R {
        _mm512_storeu_ps(tile[i].as_mut_ptr(), acc[i][0]);
        _mm512_storeu_ps(tile[i].as_mut_ptr().add(16), acc[i][1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::{assert_close, bf16s, product, values};

    #[test]
    fn decoding_and_repacking_match_a_plain_product_on_ragged_sizes() {
        for (m, k, n) in [
            (1, 1, 1),
            (1, 31, 7),
            (3, 65, 200),
            (8, 768, 33),
            (9, 300, 64),
            (15, 17, 40),
            (2, 0, 5),
        ] {
            let a = values(m * k, 31);
            let w = values(n * k, 32);
            let panels = PanelMatrix::from_rows(&w, n, k);
            assert_eq!(panels.rows(), n);
            for j in [0, n / 2, n - 1] {
                assert_eq!(panels.row(j), w[j * k..(j + 1) * k], "row {j} of {n}x{k}");
            }
            let mut c = vec![f32::NAN; m * n];
            panels.decode(&a, m, &mut c);
            assert_close(&c, &product(&a, m, k, &w, n), k, &format!("{m}x{k}x{n}"));
        }
    }

    #[test]
    fn bf16_pairs_match_a_plain_product_and_do_not_depend_on_the_rows_beside_them() {
        if !crate::kernels::gemv_pairs::available() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        for (m, k, n) in [
            (1, 1, 1),
            (1, 31, 7),
            (3, 65, 200),
            (8, 2304, 33),
            (13, 301, 40),
        ] {
            let a = values(m * k, 51);
            let w = bf16s(&values(n * k, 52));
            let panels = PairPanels::from_rows(&w, n, k);
            for j in [0, n / 2, n - 1] {
                assert_eq!(panels.row(j), w[j * k..(j + 1) * k], "row {j} of {n}x{k}");
            }
            let mut c = vec![f32::NAN; m * n];
            panels.decode(&a, m, &mut c);
            assert_close(&c, &product(&a, m, k, &w, n), k, &format!("{m}x{k}x{n}"));
            for i in 0..m {
                let mut alone = vec![0f32; n];
                panels.decode(&a[i * k..(i + 1) * k], 1, &mut alone);
                assert_eq!(alone, c[i * n..(i + 1) * n], "{m}x{k}x{n} row {i}");
            }
        }
    }

    /// What `serve`'s batches rely on: a row's product is the same bits alone or beside others.
    #[test]
    fn a_rows_product_does_not_depend_on_the_rows_beside_it() {
        let (m, k, n) = (13, 2304 + 5, 70);
        let a = values(m * k, 41);
        let panels = PanelMatrix::from_rows(&values(n * k, 42), n, k);
        let mut together = vec![0f32; m * n];
        panels.decode(&a, m, &mut together);
        for i in 0..m {
            let mut alone = vec![0f32; n];
            panels.decode(&a[i * k..(i + 1) * k], 1, &mut alone);
            assert_eq!(alone, together[i * n..(i + 1) * n], "row {i}");
        }
    }
}
