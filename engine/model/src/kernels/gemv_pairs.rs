//! The decoding product for bf16 weights on CPUs with AVX512-BF16: `vdpbf16ps` multiplies the
//! weights' bf16 pairs as they are stored, where the widening kernel ([`super::gemv`]) spends
//! three vector operations on every sixteen weights turning them into f32 first. Each row of A
//! is split into two bf16 rows, its rounding and the rest (`x ≈ hi + lo`, about 16 significant
//! bits, against 24 in f32 and 8 in PyTorch's bf16 activations), and each weight pair is
//! multiplied into both.
//!
//! Each weight row is read front to back. Every output sees the same operations in the same order
//! whatever the rows beside it (of A or of W), so a row's result does not depend on the batch it
//! is decoded in.

use rayon::prelude::*;

use super::matmul::row_to_pairs;

/// W rows per task, as in [`super::gemv`].
const ROWS_PER_TASK: usize = 64;

/// Whether this CPU runs the kernel. `GROUNDGLASS_NO_BF16_GEMV` turns it off (the widening
/// kernel decodes instead), and so does `GROUNDGLASS_EXACT_BF16`, which asks for bf16 weights to
/// meet f32 activations exactly everywhere (as it does of the prefill's products).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bf16")
                && std::env::var_os("GROUNDGLASS_NO_BF16_GEMV").is_none()
                && std::env::var_os("GROUNDGLASS_EXACT_BF16").is_none()
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// C (M, N) = A (M, K) · Wᵀ, W (N, K) bf16. Call only where [`available`].
pub fn gemv_pairs(a: &[f32], m: usize, k: usize, w: &[half::bf16], n: usize, c: &mut [f32]) {
    assert!(available() && a.len() >= m * k && w.len() >= n * k && c.len() >= m * n);
    if m == 0 || n == 0 || k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    let pairs = k.div_ceil(2);
    let (hi, lo) = split_rows(a, m, k);
    let x = Pairs {
        hi: &hi,
        lo: &lo,
        pairs,
    };
    let mut transposed = vec![0f32; n * m];
    transposed
        .par_chunks_mut(ROWS_PER_TASK * m)
        .enumerate()
        .for_each(|(t, out)| {
            let j0 = t * ROWS_PER_TASK;
            let count = out.len() / m;
            // SAFETY: `available` checked the CPU.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                rows(&x, m, k, &w[j0 * k..(j0 + count) * k], out)
            };
        });
    if m == 1 {
        c[..n].copy_from_slice(&transposed);
        return;
    }
    for j in 0..n {
        for i in 0..m {
            c[i * n + j] = transposed[j * m + i];
        }
    }
}

/// A's M rows of K as bf16 pairs (`row_to_pairs`, K/2 rounded up a row): their rounding, then
/// what the rounding left out (`x ≈ hi + lo`).
pub(super) fn split_rows(a: &[f32], m: usize, k: usize) -> (Vec<u32>, Vec<u32>) {
    let pairs = k.div_ceil(2);
    let mut hi = vec![0u32; m * pairs];
    let mut lo = vec![0u32; m * pairs];
    let mut rest = vec![0f32; k];
    for i in 0..m {
        let row = &a[i * k..(i + 1) * k];
        row_to_pairs(row, &mut hi[i * pairs..(i + 1) * pairs]);
        for (p, r) in rest.iter_mut().enumerate() {
            let pair = hi[i * pairs + p / 2];
            let bits = if p % 2 == 0 {
                pair & 0xFFFF
            } else {
                pair >> 16
            };
            *r = row[p] - f32::from_bits(bits << 16);
        }
        row_to_pairs(&rest, &mut lo[i * pairs..(i + 1) * pairs]);
    }
    (hi, lo)
}

/// A's rows split into bf16 pairs, `pairs` per row.
struct Pairs<'a> {
    hi: &'a [u32],
    lo: &'a [u32],
    pairs: usize,
}

/// For each row j of `w`, `out[j * m + i]` = A row i · W row j. How the rows are grouped does
/// not change any output (each sees the same operations in the same order), only the speed
/// (Zen 4, BENCHMARKS.md): one row of A whose pairs fit in L1 with room to spare streams the
/// weights one row at a time (32 GB/s where four rows together read 28, at Gemma 2's K = 2304);
/// otherwise four weight rows share each load of the activations (at the MLP's K = 9216 the
/// activations come from L2: one row at a time read 22 GB/s, four 32). Several rows of A go two
/// at a time against four weight rows: each load then feeds two `vdpbf16ps`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn rows(x: &Pairs<'_>, m: usize, k: usize, w: &[half::bf16], out: &mut [f32]) {
    let n = w.len() / k;
    let row = |j: usize| w.as_ptr().add(j * k);
    let one_stream = m == 1 && 4 * k <= 16 * 1024;
    let mut j = 0;
    if !one_stream {
        while j + 4 <= n {
            let four = [row(j), row(j + 1), row(j + 2), row(j + 3)];
            let out = &mut out[j * m..];
            let mut i = 0;
            while i + 2 <= m {
                block::<4, 2>(x, i, m, k, four, out);
                i += 2;
            }
            if i < m {
                block::<4, 1>(x, i, m, k, four, out);
            }
            j += 4;
        }
    }
    while j < n {
        for i in 0..m {
            block::<1, 1>(x, i, m, k, [row(j)], &mut out[j * m..]);
        }
        j += 1;
    }
}

/// `WR` weight rows against rows `first..first + R` of A: `out[r * m + first + i]` gets row i's
/// product with weight row r. Each weight row is read front to back, 32 weights (16 pairs) a
/// step; the products with `hi` and with `lo` go to two accumulators (two independent chains of
/// `vdpbf16ps`), summed at the end, then the last K % 32 one value at a time. Every output sees
/// these operations in this order whatever `WR` and `R` are.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[inline]
unsafe fn block<const WR: usize, const R: usize>(
    x: &Pairs<'_>,
    first: usize,
    m: usize,
    k: usize,
    rows: [*const half::bf16; WR],
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let steps = k / 32;
    let hi: [*const u32; R] = std::array::from_fn(|i| x.hi.as_ptr().add((first + i) * x.pairs));
    let lo: [*const u32; R] = std::array::from_fn(|i| x.lo.as_ptr().add((first + i) * x.pairs));
    let load =
        |p: *const u32| -> __m512bh { std::mem::transmute(_mm512_loadu_si512(p as *const _)) };
    let mut acc = [[[_mm512_setzero_ps(); 2]; R]; WR];
    for s in 0..steps {
        let wv: [__m512bh; WR] = std::array::from_fn(|r| {
            std::mem::transmute(_mm512_loadu_si512(rows[r].add(32 * s) as *const _))
        });
        for i in 0..R {
            let (h, l) = (load(hi[i].add(16 * s)), load(lo[i].add(16 * s)));
            for r in 0..WR {
                acc[r][i][0] = _mm512_dpbf16_ps(acc[r][i][0], h, wv[r]);
                acc[r][i][1] = _mm512_dpbf16_ps(acc[r][i][1], l, wv[r]);
            }
        }
    }
    let bf = |bits: u32| f32::from_bits(bits << 16);
    for r in 0..WR {
        for i in 0..R {
            let [a_hi, a_lo] = acc[r][i];
            let mut sum = _mm512_reduce_add_ps(_mm512_add_ps(a_hi, a_lo));
            for e in 32 * steps..k {
                let (h, l) = (*hi[i].add(e / 2), *lo[i].add(e / 2));
                let shift = 16 * (e % 2) as u32;
                let wv = (*rows[r].add(e)).to_f32();
                sum += bf((h >> shift) & 0xFFFF) * wv + bf((l >> shift) & 0xFFFF) * wv;
            }
            out[r * m + first + i] = sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::{assert_close, bf16s, product, values};

    #[test]
    fn bf16_pairs_match_a_plain_product_and_do_not_depend_on_the_rows_beside_them() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        for (m, k, n) in [
            (1, 1, 1),
            (1, 31, 7),
            (1, 2304, 129),
            (3, 65, 200),
            (2, 4304, 9),
            (1, 4304, 9),
            (8, 2304, 12),
            (5, 33, 7),
        ] {
            let a = values(m * k, 11);
            let w = bf16s(&values(n * k, 12));
            let expected = product(&a, m, k, &w, n);
            let mut c = vec![f32::NAN; m * n];
            gemv_pairs(&a, m, k, &w, n, &mut c);
            assert_close(&c, &expected, k, &format!("{m}x{k}x{n}"));
            for i in 0..m {
                let mut alone = vec![0f32; n];
                gemv_pairs(&a[i * k..(i + 1) * k], 1, k, &w, n, &mut alone);
                assert_eq!(alone, c[i * n..(i + 1) * n], "{m}x{k}x{n} row {i}");
            }
        }
    }
}
