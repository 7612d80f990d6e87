//! `C = A · Wᵀ` for a few rows of A (decoding: one), W (N, K) f32 or bf16, A and C f32.
//!
//! The layers decode from row-major weights here only where they hold no panels
//! ([`super::panels`]: f32 on CPUs without AVX-512F, bf16 on CPUs without AVX512-BF16 or with AMX).
//!
//! Bound by memory: every weight is read once, so the kernel streams W's rows in order and keeps
//! A (a few rows of K floats) in L1. Threads take contiguous runs of W's rows. With AVX-512F the
//! products are written with intrinsics (below); otherwise they are plain Rust over 32
//! accumulators, which the compiler turns into vector code, compiled for AVX2 + FMA and for the
//! baseline. The best one this CPU runs is picked once. bf16 weights on a CPU with AVX512-BF16 go
//! to [`super::gemv_pairs`] instead.

use rayon::prelude::*;

use super::WeightElem;

/// W rows per task: enough work to amortise the scheduling, small enough to balance two cores.
const ROWS_PER_TASK: usize = 64;

/// C (M, N) = A (M, K) · Wᵀ, W (N, K). Panics if a slice is shorter than the sizes say.
pub fn gemv<W: WeightElem>(a: &[f32], m: usize, k: usize, w: &[W], n: usize, c: &mut [f32]) {
    assert!(a.len() >= m * k && w.len() >= n * k && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    if std::any::TypeId::of::<W>() == std::any::TypeId::of::<half::bf16>()
        && super::gemv_pairs::available()
    {
        // SAFETY: W is bf16 (same type id), so the slice is one of bf16.
        let w = unsafe { std::slice::from_raw_parts(w.as_ptr() as *const half::bf16, w.len()) };
        super::gemv_pairs::gemv_pairs(a, m, k, w, n, c);
        return;
    }
    let level = level();
    if m == 1 {
        c[..n]
            .par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(t, out)| {
                let j0 = t * ROWS_PER_TASK;
                rows(level, a, 1, k, &w[j0 * k..(j0 + out.len()) * k], out);
            });
        return;
    }
    // Several rows of A: each task writes its W rows' outputs transposed (W row-major), then C
    // is filled from that (M·N floats, small next to W).
    let mut transposed = vec![0f32; n * m];
    transposed
        .par_chunks_mut(ROWS_PER_TASK * m)
        .enumerate()
        .for_each(|(t, out)| {
            let j0 = t * ROWS_PER_TASK;
            let count = out.len() / m;
            rows(level, a, m, k, &w[j0 * k..(j0 + count) * k], out);
        });
    for j in 0..n {
        for i in 0..m {
            c[i * n + j] = transposed[j * m + i];
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Avx512,
    Avx2,
    Portable,
}

fn level() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            if std::is_x86_feature_detected!("avx512f")
                && std::env::var_os("GROUNDGLASS_NO_AVX512").is_none()
            {
                Level::Avx512
            } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            {
                Level::Avx2
            } else {
                Level::Portable
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Level::Portable
    }
}

/// For each row j of `w` (rows of K), `out[j * m + i]` = A row i · W row j.
fn rows<W: WeightElem>(level: Level, a: &[f32], m: usize, k: usize, w: &[W], out: &mut [f32]) {
    match level {
        // SAFETY: the level was detected on this CPU.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { rows_avx512(a, m, k, w, out) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { rows_avx2(a, m, k, w, out) },
        _ => rows_body(a, m, k, w, out),
    }
}

/// Elements ahead each weight stream is prefetched (measured: 512 bf16 = 1 KiB).
const PREFETCH: usize = 512;

/// AVX-512: 32 values a step, both halves into one accumulator an output, then the rest of K
/// one value at a time. Every output sees these operations in this order however the rows are
/// grouped, so a row's result does not depend on the rows beside it (of A or of W). The grouping
/// is for speed. One row of A whose values fit in L1 with room to spare (K <= 4096) streams the
/// weights one row at a time (one stream reads faster than four interleaved; BENCHMARKS.md).
/// Otherwise four weight rows go together (four streams in flight, each prefetched) against up to
/// four rows of A: the weights of a step are loaded (and widened, for bf16) once and multiplied
/// into every row of A in the group, so decoding several sequences together (`serve`'s batches)
/// costs little more than one.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512<W: WeightElem>(a: &[f32], m: usize, k: usize, w: &[W], out: &mut [f32]) {
    let n = w.len() / k;
    let row = |j: usize| w.as_ptr().add(j * k);
    let one_stream = m == 1 && 4 * k <= 16 * 1024;
    let mut j = 0;
    if !one_stream {
        while j + 4 <= n {
            let four = [row(j), row(j + 1), row(j + 2), row(j + 3)];
            let out = &mut out[j * m..];
            let mut i = 0;
            while i < m {
                // Only the first group streams the weights from memory; the others find them
                // cached.
                let prefetch = i == 0;
                match m - i {
                    1 => block::<W, 4, 1>(a, i, m, k, four, out, prefetch),
                    2 => block::<W, 4, 2>(a, i, m, k, four, out, prefetch),
                    3 => block::<W, 4, 3>(a, i, m, k, four, out, prefetch),
                    _ => block::<W, 4, 4>(a, i, m, k, four, out, prefetch),
                }
                i += (m - i).min(4);
            }
            j += 4;
        }
    }
    while j < n {
        for i in 0..m {
            block::<W, 1, 1>(a, i, m, k, [row(j)], &mut out[j * m..], false);
        }
        j += 1;
    }
}

/// Rows `first..first + R` of A against `WR` weight rows; `out[r * m + first + i]` gets row i's
/// product with weight row r.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<W: WeightElem, const WR: usize, const R: usize>(
    a: &[f32],
    first: usize,
    m: usize,
    k: usize,
    rows: [*const W; WR],
    out: &mut [f32],
    prefetch: bool,
) {
    use std::arch::x86_64::*;
    let steps = k / 32;
    let x: [*const f32; R] = std::array::from_fn(|i| a.as_ptr().add((first + i) * k));
    let mut acc = [[_mm512_setzero_ps(); R]; WR];
    for s in 0..steps {
        let wv: [[__m512; 2]; WR] = std::array::from_fn(|r| {
            if prefetch {
                _mm_prefetch::<_MM_HINT_T0>(rows[r].add(32 * s + PREFETCH) as *const i8);
            }
            [
                W::load16(rows[r].add(32 * s)),
                W::load16(rows[r].add(32 * s + 16)),
            ]
        });
        for i in 0..R {
            let x0 = _mm512_loadu_ps(x[i].add(32 * s));
            let x1 = _mm512_loadu_ps(x[i].add(32 * s + 16));
            for r in 0..WR {
                acc[r][i] = _mm512_fmadd_ps(x0, wv[r][0], acc[r][i]);
                acc[r][i] = _mm512_fmadd_ps(x1, wv[r][1], acc[r][i]);
            }
        }
    }
    for r in 0..WR {
        for i in 0..R {
            let mut sum = _mm512_reduce_add_ps(acc[r][i]);
            for p in 32 * steps..k {
                sum += *x[i].add(p) * (*rows[r].add(p)).to_f32();
            }
            out[r * m + first + i] = sum;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_avx2<W: WeightElem>(a: &[f32], m: usize, k: usize, w: &[W], out: &mut [f32]) {
    rows_body(a, m, k, w, out)
}

#[inline(always)]
fn rows_body<W: WeightElem>(a: &[f32], m: usize, k: usize, w: &[W], out: &mut [f32]) {
    for (j, row) in w.chunks_exact(k).enumerate() {
        for i in 0..m {
            out[j * m + i] = dot(&a[i * k..(i + 1) * k], row);
        }
    }
}

/// Lanes of the accumulator: two AVX-512 vectors, four AVX2 ones.
const LANES: usize = 32;

#[inline(always)]
fn dot<W: WeightElem>(x: &[f32], w: &[W]) -> f32 {
    let mut acc = [0f32; LANES];
    let (xs, x_tail) = x.split_at(x.len() / LANES * LANES);
    let (ws, w_tail) = w.split_at(xs.len());
    for (xc, wc) in xs.chunks_exact(LANES).zip(ws.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += xc[l] * wc[l].to_f32();
        }
    }
    // Pairwise, so the order (and so the result) is the same on every level.
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
        width /= 2;
    }
    let mut sum = acc[0];
    for (xv, wv) in x_tail.iter().zip(w_tail) {
        sum += xv * wv.to_f32();
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::{assert_close, bf16s, product, values};

    fn check_all_levels<W: WeightElem>(w_of: impl Fn(&[f32]) -> Vec<W>) {
        // Ragged: K under, over and not a multiple of the 32 lanes; N not a multiple of a task.
        for (m, k, n) in [
            (1, 1, 1),
            (1, 31, 7),
            (1, 2304, 129),
            (3, 65, 200),
            (15, 300, 64),
            (2, 96, 9),
            (4, 64, 8),
            (8, 2304, 12),
            (5, 33, 7),
        ] {
            let a = values(m * k, 11);
            let w = w_of(&values(n * k, 12));
            let expected = product(&a, m, k, &w, n);
            let mut c = vec![f32::NAN; m * n];
            gemv(&a, m, k, &w, n, &mut c);
            assert_close(&c, &expected, k, &format!("gemv {m}x{k}x{n}"));
            // Each level this CPU has, directly (the dispatcher picks only the best).
            let mut levels = vec![Level::Portable];
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    levels.push(Level::Avx2);
                }
                if std::is_x86_feature_detected!("avx512f") {
                    levels.push(Level::Avx512);
                }
            }
            for level in levels {
                let mut t = vec![f32::NAN; m * n];
                rows(level, &a, m, k, &w, &mut t);
                let c: Vec<f32> = (0..m * n).map(|x| t[(x % n) * m + x / n]).collect();
                assert_close(&c, &expected, k, &format!("{level:?} {m}x{k}x{n}"));
            }
        }
    }

    #[test]
    fn f32_weights_match_a_plain_product() {
        check_all_levels(|v| v.to_vec());
    }

    #[test]
    fn bf16_weights_match_a_plain_product_of_the_rounded_weights() {
        check_all_levels(bf16s);
    }

    /// What `serve`'s batches rely on: a row's product is the same bits whether it is computed
    /// alone or beside others, through the dispatcher and on every level this CPU has (one row
    /// takes another layout than several; K above and below the one-stream bound).
    #[test]
    fn a_rows_product_does_not_depend_on_the_rows_beside_it() {
        for (m, k, n) in [(7, 2304 + 5, 70), (5, 4096 + 33, 9)] {
            let a = values(m * k, 21);
            let w = bf16s(&values(n * k, 22));
            let wf: Vec<f32> = w.iter().map(|v| v.to_f32()).collect();
            let mut together = vec![0f32; m * n];
            gemv(&a, m, k, &w, n, &mut together);
            for i in 0..m {
                let mut alone = vec![0f32; n];
                gemv(&a[i * k..(i + 1) * k], 1, k, &w, n, &mut alone);
                assert_eq!(alone, together[i * n..(i + 1) * n], "{m}x{k}x{n} row {i}");
            }
            let mut levels = vec![Level::Portable];
            #[cfg(target_arch = "x86_64")]
            {
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    levels.push(Level::Avx2);
                }
                if std::is_x86_feature_detected!("avx512f") {
                    levels.push(Level::Avx512);
                }
            }
            for level in levels {
                let mut together = vec![0f32; m * n];
                rows(level, &a, m, k, &w, &mut together);
                let mut together_f32 = vec![0f32; m * n];
                rows(level, &a, m, k, &wf, &mut together_f32);
                for i in 0..m {
                    let x = &a[i * k..(i + 1) * k];
                    let mut alone = vec![0f32; n];
                    rows(level, x, 1, k, &w, &mut alone);
                    let beside: Vec<f32> = (0..n).map(|j| together[j * m + i]).collect();
                    assert_eq!(alone, beside, "{level:?} bf16 {m}x{k}x{n} row {i}");
                    rows(level, x, 1, k, &wf, &mut alone);
                    let beside: Vec<f32> = (0..n).map(|j| together_f32[j * m + i]).collect();
                    assert_eq!(alone, beside, "{level:?} f32 {m}x{k}x{n} row {i}");
                }
            }
        }
    }
}
