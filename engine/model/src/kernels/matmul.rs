//! `C = A · Wᵀ` with AVX-512F: A (M, K) f32 and W (N, K) f32 or bf16, row-major, C (M, N) f32.
//!
//! The loop nest follows BLIS: for each block of columns and of K (`KC`), Wᵀ's block is
//! packed into 32-column panels (each K step's 32 values contiguous, zero-padded past N; bf16
//! widened to f32 while packing, so the register tile is the same for both),
//! then 12-row strips of A run against each panel in the register tile (24 accumulators).
//! Column blocks are split across threads; each thread owns its columns of C.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use super::WeightElem;

/// Whether this CPU runs the kernel (checked once).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            std::is_x86_feature_detected!("avx512f")
                && std::env::var_os("GROUNDGLASS_NO_AVX512").is_none()
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

const MR: usize = 12;
const NR: usize = 32;
const KC: usize = 256;
/// Panels per column block at most (the packed block, KC × 256 floats, stays in L2).
const MAX_PANELS: usize = 8;

/// C = A · Wᵀ. Panics if the slices are shorter than the sizes say, or if AVX-512F is not
/// available (callers check [`available`]).
pub fn matmul_wt<W: WeightElem>(a: &[f32], m: usize, k: usize, w: &[W], n: usize, c: &mut [f32]) {
    assert!(a.len() >= m * k && w.len() >= n * k && c.len() >= m * n);
    assert!(available(), "AVX-512F is not available");
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use rayon::prelude::*;
        // Blocks of at most MAX_PANELS panels, as many as a multiple of the threads so
        // that none idles at the end (768 columns on 2 threads: 4 blocks of 6 panels).
        let panels = n.div_ceil(NR);
        let threads = rayon::current_num_threads().max(1);
        let rounds = panels.div_ceil(threads * MAX_PANELS);
        let per_block = panels.div_ceil(threads * rounds).max(1);
        let blocks = panels.div_ceil(per_block);
        let c_ptr = SendPtr(c.as_mut_ptr());
        (0..blocks).into_par_iter().for_each_init(
            || vec![0f32; KC * MAX_PANELS * NR],
            |packed, block| {
                let j0 = block * per_block * NR;
                let nc = (per_block * NR).min(n - j0);
                // SAFETY: AVX-512F is available (asserted above); each block writes only its own
                // columns j0..j0+nc of C, which no other block touches; the sizes were checked.
                unsafe { block_product(a, m, k, w, n, j0, nc, packed, c_ptr) };
            },
        );
    }
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: the blocks write disjoint columns of C (see `matmul_wt`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Columns j0..j0+nc of C for all rows.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn block_product<W: WeightElem>(
    a: &[f32],
    m: usize,
    k: usize,
    w: &[W],
    n: usize,
    j0: usize,
    nc: usize,
    packed: &mut [f32],
    c: SendPtr,
) {
    let panels = nc.div_ceil(NR);
    let mut p0 = 0;
    while p0 < k {
        let kc = KC.min(k - p0);
        // Pack Wᵀ[p0..p0+kc, j0..j0+nc]: panel q, step p, lane l = W[j0 + q*NR + l][p0 + p].
        for q in 0..panels {
            let panel = packed.as_mut_ptr().add(q * KC * NR);
            for half in 0..NR / 16 {
                let first = j0 + q * NR + half * 16;
                let lanes = 16.min((j0 + nc).saturating_sub(first));
                pack_16(w, k, first, lanes, p0, kc, panel.add(half * 16));
            }
        }
        let accumulate = p0 > 0;
        let mut i0 = 0;
        while i0 < m {
            let rows = MR.min(m - i0);
            let a_strip = a.as_ptr().add(i0 * k + p0);
            for q in 0..panels {
                let jq = j0 + q * NR;
                let cols = NR.min(j0 + nc - jq);
                let b = packed.as_ptr().add(q * KC * NR);
                let c_tile = c.0.add(i0 * n + jq);
                let t = Tile {
                    kc,
                    a: a_strip,
                    lda: k,
                    b,
                    c: c_tile,
                    ldc: n,
                    accumulate,
                };
                if cols == NR {
                    tile(rows, t);
                } else {
                    // A partial panel: run the full tile on a scratch copy of C.
                    let mut scratch = [0f32; MR * NR];
                    if accumulate {
                        for r in 0..rows {
                            for l in 0..cols {
                                scratch[r * NR + l] = *c_tile.add(r * n + l);
                            }
                        }
                    }
                    let c = scratch.as_mut_ptr();
                    tile(rows, Tile { c, ldc: NR, ..t });
                    for r in 0..rows {
                        for l in 0..cols {
                            *c_tile.add(r * n + l) = scratch[r * NR + l];
                        }
                    }
                }
            }
            i0 += MR;
        }
        p0 += kc;
    }
}

/// Writes 16 lanes of a panel: lane l, step p (at `panel[p * NR + l]`) = W[first + l][p0 + p]
/// for the first `lanes` lanes, zero for the rest. Sixteen steps at a time go through a 16 × 16
/// register transpose (a plain strided copy took a sixth of the product's time).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack_16<W: WeightElem>(
    w: &[W],
    k: usize,
    first: usize,
    lanes: usize,
    p0: usize,
    kc: usize,
    panel: *mut f32,
) {
    use std::arch::x86_64::*;
    let zeros = [W::ZERO; 16];
    let row = |l: usize| -> *const W {
        if l < lanes {
            w.as_ptr().add((first + l) * k + p0)
        } else {
            zeros.as_ptr()
        }
    };
    let rows: [*const W; 16] = std::array::from_fn(row);
    let mut p = 0;
    while p + 16 <= kc {
        let step = |l: usize| if l < lanes { p } else { 0 };
        let r: [__m512; 16] = std::array::from_fn(|l| W::load16(rows[l].add(step(l))));
        let t = transpose_16(r);
        for (i, v) in t.iter().enumerate() {
            _mm512_storeu_ps(panel.add((p + i) * NR), *v);
        }
        p += 16;
    }
    while p < kc {
        for (l, r) in rows.iter().enumerate() {
            *panel.add(p * NR + l) = if l < lanes { (*r.add(p)).to_f32() } else { 0.0 };
        }
        p += 1;
    }
}

/// The transpose of a 16 × 16 block held in 16 registers (row i in `r[i]`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn transpose_16(r: [std::arch::x86_64::__m512; 16]) -> [std::arch::x86_64::__m512; 16] {
    use std::arch::x86_64::*;
    // Pairs of rows interleaved, then pairs of pairs, then 128-bit lanes twice.
    let t: [__m512; 16] = std::array::from_fn(|i| {
        let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(a, b)
        } else {
            _mm512_unpackhi_ps(a, b)
        }
    });
    let u: [__m512; 16] = std::array::from_fn(|i| {
        let base = i / 4 * 4;
        let (a, b) = (t[base + (i % 4) / 2], t[base + 2 + (i % 4) / 2]);
        if i % 2 == 0 {
            _mm512_shuffle_ps::<0x44>(a, b)
        } else {
            _mm512_shuffle_ps::<0xEE>(a, b)
        }
    });
    let v: [__m512; 16] = std::array::from_fn(|i| {
        let base = i / 8 * 8;
        let (a, b) = (u[base + i % 4], u[base + 4 + i % 4]);
        if (i % 8) < 4 {
            _mm512_shuffle_f32x4::<0x88>(a, b)
        } else {
            _mm512_shuffle_f32x4::<0xDD>(a, b)
        }
    });
    std::array::from_fn(|i| {
        let (a, b) = (v[i % 8], v[8 + i % 8]);
        if i < 8 {
            _mm512_shuffle_f32x4::<0x88>(a, b)
        } else {
            _mm512_shuffle_f32x4::<0xDD>(a, b)
        }
    })
}

/// One call of the register tile: `kc` steps of a strip of A (row stride `lda`) against a
/// packed panel `b`, into C at `c` (row stride `ldc`), added to what is there or not.
#[derive(Clone, Copy)]
struct Tile {
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
}

/// Dispatches a strip of `rows` (1..=MR) rows to the kernel for that many rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile(rows: usize, t: Tile) {
    match rows {
        12 => kernel::<12>(t),
        11 => kernel::<11>(t),
        10 => kernel::<10>(t),
        9 => kernel::<9>(t),
        8 => kernel::<8>(t),
        7 => kernel::<7>(t),
        6 => kernel::<6>(t),
        5 => kernel::<5>(t),
        4 => kernel::<4>(t),
        3 => kernel::<3>(t),
        2 => kernel::<2>(t),
        _ => kernel::<1>(t),
    }
}

/// The register tile: R rows of A (broadcast one value at a time) against a 32-wide panel
/// (two vectors), accumulated over `kc` steps in 2·R registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const R: usize>(t: Tile) {
    let Tile {
        kc,
        a,
        lda,
        b,
        c,
        ldc,
        accumulate,
    } = t;
    use std::arch::x86_64::*;
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    for p in 0..kc {
        let b0 = _mm512_loadu_ps(b.add(p * NR));
        let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
        for r in 0..R {
            let av = _mm512_set1_ps(*a.add(r * lda + p));
            lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);
            hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);
        }
    }
    for r in 0..R {
        let out = c.add(r * ldc);
        if accumulate {
            lo[r] = _mm512_add_ps(lo[r], _mm512_loadu_ps(out));
            hi[r] = _mm512_add_ps(hi[r], _mm512_loadu_ps(out.add(16)));
        }
        _mm512_storeu_ps(out, lo[r]);
        _mm512_storeu_ps(out.add(16), hi[r]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::{assert_close, bf16s, product, values};

    #[test]
    fn kernel_matches_a_plain_product_on_ragged_sizes() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        // Edges in every direction: rows not a multiple of 12, columns not of 32 nor of a block,
        // K over one block and not a multiple of it.
        for (m, k, n) in [
            (1, 1, 1),
            (13, 7, 33),
            (25, 300, 290),
            (12, 256, 32),
            (40, 513, 7),
        ] {
            let a = values(m * k, 1);
            let w = values(n * k, 2);
            let mut c = vec![f32::NAN; m * n];
            matmul_wt(&a, m, k, &w, n, &mut c);
            assert_close(
                &c,
                &product(&a, m, k, &w, n),
                k,
                &format!("f32 {m}x{k}x{n}"),
            );
            let w = bf16s(&w);
            let mut c = vec![f32::NAN; m * n];
            matmul_wt(&a, m, k, &w, n, &mut c);
            assert_close(
                &c,
                &product(&a, m, k, &w, n),
                k,
                &format!("bf16 {m}x{k}x{n}"),
            );
        }
    }
}
