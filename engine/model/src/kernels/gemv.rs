//! `C = A · Wᵀ` for a few rows of A (decoding: one), W (N, K) f32 or bf16, A and C f32.
//!
//! Bound by memory: every weight is read once, so the kernel streams W's rows in order and keeps
//! A (a few rows of K floats) in L1. Threads take contiguous runs of W's rows. The dot products
//! are plain Rust over 32 accumulators, which the compiler turns into vector code; the same body
//! is compiled for AVX-512F, for AVX2 + FMA and for the baseline, and the best one this CPU runs
//! is picked once.

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

/// AVX-512: four weight rows at a time (four streams in flight, each A load shared by four
/// FMAs), 32 values per step; the rest of K and of the rows through the plain body.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512<W: WeightElem>(a: &[f32], m: usize, k: usize, w: &[W], out: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = w.len() / k.max(1);
    let steps = k / 32;
    let quads = n / 4;
    for q in 0..quads {
        let rows: [*const W; 4] = std::array::from_fn(|r| w.as_ptr().add((4 * q + r) * k));
        for i in 0..m {
            let x = a.as_ptr().add(i * k);
            let mut acc = [_mm512_setzero_ps(); 8];
            for s in 0..steps {
                let x0 = _mm512_loadu_ps(x.add(32 * s));
                let x1 = _mm512_loadu_ps(x.add(32 * s + 16));
                for r in 0..4 {
                    _mm_prefetch::<_MM_HINT_T0>(rows[r].add(32 * s + PREFETCH) as *const i8);
                    let w0 = W::load16(rows[r].add(32 * s));
                    let w1 = W::load16(rows[r].add(32 * s + 16));
                    acc[2 * r] = _mm512_fmadd_ps(x0, w0, acc[2 * r]);
                    acc[2 * r + 1] = _mm512_fmadd_ps(x1, w1, acc[2 * r + 1]);
                }
            }
            for r in 0..4 {
                let mut sum = _mm512_reduce_add_ps(_mm512_add_ps(acc[2 * r], acc[2 * r + 1]));
                for p in 32 * steps..k {
                    sum += *x.add(p) * (*rows[r].add(p)).to_f32();
                }
                out[(4 * q + r) * m + i] = sum;
            }
        }
    }
    let done = quads * 4;
    rows_body(a, m, k, &w[done * k..], &mut out[done * m..]);
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
}
