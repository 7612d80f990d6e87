//! `C = A · Wᵀ` with AVX-512: A (M, K) f32 and W (N, K) f32 or bf16, row-major, C (M, N) f32.
//!
//! The loop nest follows BLIS: for each block of columns and of K (`KC` lane steps), Wᵀ's
//! block is packed into 32-column panels (each step's 32 lanes contiguous, zero-padded past N),
//! then 12-row strips of A run against each panel in the register tile (24 accumulators).
//! Column blocks are split across threads; each thread owns its columns of C.
//!
//! Two schemes share that loop:
//! - [`matmul_wt`], exact: a lane is one f32 (bf16 weights widened while packing), one FMA a
//!   step;
//! - [`matmul_wt_bf16`], for bf16 weights on CPUs with AVX512-BF16: a lane is a pair of bf16 (two
//!   K steps), A is rounded to bf16 once, and `vdpbf16ps` does two multiply-adds per lane in the
//!   time of one FMA, accumulating in f32. What PyTorch's bf16 matmul computes; the prefill of the
//!   3B model in bf16 is bound by these products, so it runs about twice as fast.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use super::WeightElem;

/// Whether this CPU runs [`matmul_wt`] (checked once).
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

/// Whether this CPU runs [`matmul_wt_bf16`] (AVX512-BF16; `GROUNDGLASS_EXACT_BF16` turns it off
/// so that bf16 weights meet f32 activations exactly, as [`matmul_wt`] does).
pub fn bf16_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            available()
                && std::is_x86_feature_detected!("avx512bf16")
                && std::env::var_os("GROUNDGLASS_EXACT_BF16").is_none()
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
/// Panels per column block at most (the packed block, KC × 256 lanes, stays in L2).
const MAX_PANELS: usize = 8;

/// One call of the register tile: `kc` steps of a strip of A against a
/// packed panel `b`, into C at `c` (row stride `ldc`), added to what is there or not.
#[derive(Clone, Copy)]
struct Tile<L> {
    kc: usize,
    /// A's strip: step p's MR rows at `a[p * MR..]`.
    a: *const L,
    b: *const L,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
}

/// Calls `$kernel::<rows>` for a strip of 1..=MR rows.
macro_rules! dispatch {
    ($rows:expr, $kernel:ident, $t:expr) => {
        match $rows {
            12 => $kernel::<12>($t),
            11 => $kernel::<11>($t),
            10 => $kernel::<10>($t),
            9 => $kernel::<9>($t),
            8 => $kernel::<8>($t),
            7 => $kernel::<7>($t),
            6 => $kernel::<6>($t),
            5 => $kernel::<5>($t),
            4 => $kernel::<4>($t),
            3 => $kernel::<3>($t),
            2 => $kernel::<2>($t),
            _ => $kernel::<1>($t),
        }
    };
}

/// C = A · Wᵀ, exactly (f32 products of f32 activations and f32 or widened bf16 weights).
/// Panics if the slices are shorter than the sizes say, or if AVX-512F is not available (callers
/// check [`available`]).
pub fn matmul_wt<W: WeightElem>(a: &[f32], m: usize, k: usize, w: &[W], n: usize, c: &mut [f32]) {
    assert!(a.len() >= m * k && w.len() >= n * k && c.len() >= m * n);
    assert!(available(), "AVX-512F is not available");
    let a = strips(&a[..m * k], m, k, |row, to| to.copy_from_slice(row));
    run::<Widened<W>>(&a, m, k, w, k, n, c, None);
}

/// C = A · Wᵀ as [`matmul_wt`] computes it, W held in panels already (no packing). Panics as
/// [`matmul_wt`] does.
pub fn matmul_panels(a: &[f32], m: usize, w: &super::panels::PanelMatrix, c: &mut [f32]) {
    let (k, n) = (w.cols(), w.rows());
    assert!(a.len() >= m * k && c.len() >= m * n);
    assert!(available(), "AVX-512F is not available");
    assert_eq!(super::panels::WIDTH, NR);
    let a = strips(&a[..m * k], m, k, |row, to| to.copy_from_slice(row));
    run::<Widened<f32>>(&a, m, k, &[], k, n, c, Some(w.data()));
}

/// C = A · Wᵀ as [`matmul_wt_bf16`] computes it, W held in pair panels already (no packing).
/// Panics as [`matmul_wt_bf16`] does.
pub fn matmul_pair_panels(a: &[f32], m: usize, w: &super::panels::PairPanels, c: &mut [f32]) {
    let (k, n) = (w.cols(), w.rows());
    assert!(a.len() >= m * k && c.len() >= m * n);
    assert!(bf16_available(), "AVX512-BF16 is not available");
    let pairs = k.div_ceil(2);
    let a = strips(&a[..m * k], m, pairs, row_to_pairs);
    run::<Bf16Pairs>(&a, m, pairs, &[], k, n, c, Some(w.data()));
}

/// C = A · Wᵀ with A rounded to bf16 (to nearest even) and products summed in f32. Panics if the
/// slices are shorter than the sizes say, or if AVX512-BF16 is not available (callers check
/// [`bf16_available`]).
pub fn matmul_wt_bf16(a: &[f32], m: usize, k: usize, w: &[half::bf16], n: usize, c: &mut [f32]) {
    assert!(a.len() >= m * k && w.len() >= n * k && c.len() >= m * n);
    assert!(bf16_available(), "AVX512-BF16 is not available");
    let pairs = k.div_ceil(2);
    let a = strips(&a[..m * k], m, pairs, row_to_pairs);
    run::<Bf16Pairs>(&a, m, pairs, w, k, n, c, None);
}

/// A (M rows of K) in the tile's layout: strips of MR rows, each row made `steps` lanes by `lanes`
/// (a copy, or bf16 pairs); strip s, step p, row r at `(s * steps + p) * MR + r`, so that the tile
/// finds a step's MR values together at offsets known when it is compiled (read row by row, the
/// loop spent an integer op per broadcast on addresses). Rows past M are zero.
fn strips<L: Copy + Default + Send + Sync>(
    a: &[f32],
    m: usize,
    steps: usize,
    lanes: impl Fn(&[f32], &mut [L]) + Sync,
) -> Vec<L> {
    use rayon::prelude::*;
    let k = a.len() / m.max(1);
    let mut out = vec![L::default(); m.div_ceil(MR) * MR * steps];
    if steps == 0 || m == 0 {
        return out;
    }
    out.par_chunks_mut(steps * MR).enumerate().for_each_init(
        || vec![L::default(); steps],
        |row, (strip, to)| {
            for r in 0..MR.min(m - strip * MR) {
                let i = strip * MR + r;
                lanes(&a[i * k..(i + 1) * k], row);
                for (p, &lane) in row.iter().enumerate() {
                    to[p * MR + r] = lane;
                }
            }
        },
    );
    out
}

/// One row of A as bf16 pairs, one u32 per two K steps (the first in the low half, as
/// `vdpbf16ps` reads them; an odd K's last pair padded with zero), rounded to nearest even (as
/// `half::bf16::from_f32` and PyTorch round). `to` holds K/2 rounded up.
pub(super) fn row_to_pairs(from: &[f32], to: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX512-BF16 was checked by the caller (`matmul_wt_bf16`).
    let mut p = unsafe { whole_pairs(from, to) };
    #[cfg(not(target_arch = "x86_64"))]
    let mut p = 0;
    while p < to.len() {
        let lo = half::bf16::from_f32(from[2 * p]).to_bits();
        let hi = from
            .get(2 * p + 1)
            .map_or(0, |&v| half::bf16::from_f32(v).to_bits());
        to[p] = u32::from(lo) | (u32::from(hi) << 16);
        p += 1;
    }
}

/// The pairs of [`row_to_pairs`] 16 at a time while 32 values are left; returns how many it wrote.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn whole_pairs(from: &[f32], to: &mut [u32]) -> usize {
    use std::arch::x86_64::*;
    let mut p = 0;
    while 2 * p + 32 <= from.len() && p + 16 <= to.len() {
        let lo = _mm512_loadu_ps(from.as_ptr().add(2 * p));
        let hi = _mm512_loadu_ps(from.as_ptr().add(2 * p + 16));
        // The second operand fills the low 16 bf16: memory order is kept.
        _mm512_storeu_si512(to.as_mut_ptr().add(p) as *mut _, convert_32(hi, lo));
        p += 16;
    }
    p
}

/// 32 f32 rounded to bf16, `b`'s 16 in the low half.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn convert_32(
    a: std::arch::x86_64::__m512,
    b: std::arch::x86_64::__m512,
) -> std::arch::x86_64::__m512i {
    std::mem::transmute(std::arch::x86_64::_mm512_cvtne2ps_pbh(a, b))
}

/// One way of laying K steps into panel lanes and multiplying them.
trait Scheme {
    /// The weight's element.
    type W: Copy + Send + Sync;
    /// A panel lane and an element of A as the tile reads it (f32, or a u32 holding two bf16).
    type Lane: Copy + Default + Send + Sync + 'static;

    /// Writes 16 lanes of a panel: lane l, step p (at `panel[p * NR + l]`) = W's row `first + l`
    /// at step `p0 + p` for the first `lanes` lanes, zero for the rest.
    ///
    /// # Safety
    /// AVX-512F; W holds rows `first..first + lanes` of `k` elements; `panel` is valid for
    /// `kc * NR` lanes.
    #[allow(clippy::too_many_arguments)]
    unsafe fn pack_16(
        w: &[Self::W],
        k: usize,
        first: usize,
        lanes: usize,
        p0: usize,
        kc: usize,
        panel: *mut Self::Lane,
    );

    /// `rows` (1..=MR) rows of the register tile.
    ///
    /// # Safety
    /// The scheme's CPU features; the pointers in `t` valid for the sizes it names.
    unsafe fn tile(rows: usize, t: Tile<Self::Lane>);
}

/// The blocked product with scheme S: A has `steps` lanes a row (K, or K's pairs), W `k` elements,
/// or W as whole panels already (`panels`, in [`super::panels`]' layout: `w` is then unused).
#[allow(clippy::too_many_arguments)]
fn run<S: Scheme>(
    a: &[S::Lane],
    m: usize,
    steps: usize,
    w: &[S::W],
    k: usize,
    n: usize,
    c: &mut [f32],
    panels: Option<&[S::Lane]>,
) {
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use rayon::prelude::*;
        // Blocks of at most MAX_PANELS panels, as many as a multiple of the threads so
        // that none idles at the end (768 columns on 2 threads: 4 blocks of 6 panels).
        let panel_count = n.div_ceil(NR);
        let threads = rayon::current_num_threads().max(1);
        let rounds = panel_count.div_ceil(threads * MAX_PANELS);
        let per_block = panel_count.div_ceil(threads * rounds).max(1);
        let blocks = panel_count.div_ceil(per_block);
        let c_ptr = SendPtr(c.as_mut_ptr());
        (0..blocks).into_par_iter().for_each_init(
            || vec![S::Lane::default(); KC * MAX_PANELS * NR],
            |packed, block| {
                let j0 = block * per_block * NR;
                let nc = (per_block * NR).min(n - j0);
                let shape = Shape {
                    m,
                    steps,
                    k,
                    n,
                    j0,
                    nc,
                };
                // SAFETY: the callers asserted the scheme's CPU features and the sizes; each
                // block writes only its own columns j0..j0+nc of C, which no other block touches.
                unsafe { block_product::<S>(a, w, shape, packed, panels, c_ptr) };
            },
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, steps, w, k, c, panels);
        unreachable!("the AVX-512 kernels run on x86-64 only");
    }
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: the blocks write disjoint columns of C (see `run`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Sizes of one column block's product.
#[derive(Clone, Copy)]
struct Shape {
    m: usize,
    /// Lanes of A a row.
    steps: usize,
    /// Elements of W a row.
    k: usize,
    n: usize,
    j0: usize,
    nc: usize,
}

/// Columns j0..j0+nc of C for all rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn block_product<S: Scheme>(
    a: &[S::Lane],
    w: &[S::W],
    shape: Shape,
    packed: &mut [S::Lane],
    panels: Option<&[S::Lane]>,
    c: SendPtr,
) {
    let Shape {
        m,
        steps,
        k,
        n,
        j0,
        nc,
    } = shape;
    let panels_here = nc.div_ceil(NR);
    let packed = packed.as_mut_ptr();
    let mut p0 = 0;
    while p0 < steps {
        let kc = KC.min(steps - p0);
        // Panel q's steps p0.. of this block: packed here, or where the whole panels lie.
        let b_of = |q: usize| match panels {
            Some(all) => all.as_ptr().add(((j0 / NR + q) * steps + p0) * NR),
            None => packed.add(q * KC * NR) as *const S::Lane,
        };
        if panels.is_none() {
            for q in 0..panels_here {
                let panel = packed.add(q * KC * NR);
                for half in 0..NR / 16 {
                    let first = j0 + q * NR + half * 16;
                    let lanes = 16.min((j0 + nc).saturating_sub(first));
                    S::pack_16(w, k, first, lanes, p0, kc, panel.add(half * 16));
                }
            }
        }
        let accumulate = p0 > 0;
        let mut i0 = 0;
        while i0 < m {
            let rows = MR.min(m - i0);
            // A in strips (see `strips`): this strip's step p0.
            let a_strip = a.as_ptr().add((i0 / MR * steps + p0) * MR);
            for q in 0..panels_here {
                let jq = j0 + q * NR;
                let cols = NR.min(j0 + nc - jq);
                let b = b_of(q);
                let c_tile = c.0.add(i0 * n + jq);
                let t = Tile {
                    kc,
                    a: a_strip,
                    b,
                    c: c_tile,
                    ldc: n,
                    accumulate,
                };
                if cols == NR {
                    S::tile(rows, t);
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
                    S::tile(rows, Tile { c, ldc: NR, ..t });
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

/// The exact scheme: one f32 lane a K step, bf16 weights widened while packing.
struct Widened<W>(std::marker::PhantomData<W>);

impl<W: WeightElem> Scheme for Widened<W> {
    type W = W;
    type Lane = f32;

    /// Sixteen steps at a time go through a 16 × 16 register transpose (a plain strided copy
    /// took a sixth of the product's time).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn pack_16(
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
        let rows: [*const W; 16] = std::array::from_fn(|l| {
            if l < lanes {
                w.as_ptr().add((first + l) * k + p0)
            } else {
                zeros.as_ptr()
            }
        });
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

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn pack_16(_: &[W], _: usize, _: usize, _: usize, _: usize, _: usize, _: *mut f32) {}

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile(rows: usize, t: Tile<f32>) {
        dispatch!(rows, fma_kernel, t);
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn tile(_: usize, _: Tile<f32>) {}
}

/// The bf16 scheme: a u32 lane holds two K steps as bf16 (W's are its row's consecutive pair,
/// so packing is the same 16 × 16 transpose on 32-bit lanes, without conversion).
struct Bf16Pairs;

impl Scheme for Bf16Pairs {
    type W = half::bf16;
    type Lane = u32;

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn pack_16(
        w: &[half::bf16],
        k: usize,
        first: usize,
        lanes: usize,
        p0: usize,
        kc: usize,
        panel: *mut u32,
    ) {
        use std::arch::x86_64::*;
        let zeros = [half::bf16::ZERO; 32];
        let rows: [*const half::bf16; 16] = std::array::from_fn(|l| {
            if l < lanes {
                w.as_ptr().add((first + l) * k + 2 * p0)
            } else {
                zeros.as_ptr()
            }
        });
        // Whole pairs of this row left from step p0 (an odd K's last pair is padded below).
        let whole = (k / 2).saturating_sub(p0);
        let mut p = 0;
        while p + 16 <= kc.min(whole) {
            let step = |l: usize| if l < lanes { 2 * p } else { 0 };
            let r: [__m512; 16] =
                std::array::from_fn(|l| _mm512_loadu_ps(rows[l].add(step(l)) as *const f32));
            let t = transpose_16(r);
            for (i, v) in t.iter().enumerate() {
                _mm512_storeu_ps(panel.add((p + i) * NR) as *mut f32, *v);
            }
            p += 16;
        }
        while p < kc {
            for (l, r) in rows.iter().enumerate() {
                let pair = if l < lanes {
                    let lo = (*r.add(2 * p)).to_bits();
                    let hi = if 2 * (p0 + p) + 1 < k {
                        (*r.add(2 * p + 1)).to_bits()
                    } else {
                        0
                    };
                    u32::from(lo) | (u32::from(hi) << 16)
                } else {
                    0
                };
                *panel.add(p * NR + l) = pair;
            }
            p += 1;
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn pack_16(
        _: &[half::bf16],
        _: usize,
        _: usize,
        _: usize,
        _: usize,
        _: usize,
        _: *mut u32,
    ) {
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn tile(rows: usize, t: Tile<u32>) {
        dispatch!(rows, dot_kernel, t);
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn tile(_: usize, _: Tile<u32>) {}
}

/// The transpose of a 16 × 16 block held in 16 registers (row i in `r[i]`). Pure data movement:
/// the bits of each lane, f32 or a pair of bf16, arrive unchanged.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) fn transpose_16(r: [std::arch::x86_64::__m512; 16]) -> [std::arch::x86_64::__m512; 16] {
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

/// The exact register tile: R rows of A (broadcast one value at a time) against a 32-wide panel
/// (two vectors), accumulated over `kc` steps in 2·R registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_kernel<const R: usize>(t: Tile<f32>) {
    use std::arch::x86_64::*;
    let (a, b) = (t.a, t.b);
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    for p in 0..t.kc {
        let b0 = _mm512_loadu_ps(b.add(p * NR));
        let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
        for r in 0..R {
            let av = _mm512_set1_ps(*a.add(p * MR + r));
            lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);
            hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);
        }
    }
    store(&lo, &hi, t.c, t.ldc, t.accumulate);
}

/// The bf16 register tile: as [`fma_kernel`], each lane a pair of K steps (`vdpbf16ps`: two
/// products of bf16 added to the f32 accumulator).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dot_kernel<const R: usize>(t: Tile<u32>) {
    use std::arch::x86_64::*;
    let (a, b) = (t.a, t.b);
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    for p in 0..t.kc {
        let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR) as *const _));
        let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(p * NR + 16) as *const _));
        for r in 0..R {
            let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(p * MR + r) as i32));
            lo[r] = _mm512_dpbf16_ps(lo[r], av, b0);
            hi[r] = _mm512_dpbf16_ps(hi[r], av, b1);
        }
    }
    store(&lo, &hi, t.c, t.ldc, t.accumulate);
}

/// Writes (or adds) a tile's accumulators to R rows of C.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store<const R: usize>(
    lo: &[std::arch::x86_64::__m512; R],
    hi: &[std::arch::x86_64::__m512; R],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    for r in 0..R {
        let out = c.add(r * ldc);
        let (mut l, mut h) = (lo[r], hi[r]);
        if accumulate {
            l = _mm512_add_ps(l, _mm512_loadu_ps(out));
            h = _mm512_add_ps(h, _mm512_loadu_ps(out.add(16)));
        }
        _mm512_storeu_ps(out, l);
        _mm512_storeu_ps(out.add(16), h);
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
            (17, 1100, 70),
            (3, 33, 16),
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
            // Panels made once are what each call packs: the same products, bit for bit.
            let panels = super::super::panels::PanelMatrix::from_rows(&w, n, k);
            let mut from_panels = vec![f32::NAN; m * n];
            matmul_panels(&a, m, &panels, &mut from_panels);
            assert_eq!(from_panels, c, "panels {m}x{k}x{n}");
            let w = bf16s(&w);
            let mut c = vec![f32::NAN; m * n];
            matmul_wt(&a, m, k, &w, n, &mut c);
            assert_close(
                &c,
                &product(&a, m, k, &w, n),
                k,
                &format!("bf16 {m}x{k}x{n}"),
            );
            if bf16_available() {
                // The product of A rounded to bf16 (to nearest even) with the bf16 weights.
                let rounded: Vec<f32> = bf16s(&a).iter().map(|v| v.to_f32()).collect();
                let mut c = vec![f32::NAN; m * n];
                matmul_wt_bf16(&a, m, k, &w, n, &mut c);
                assert_close(
                    &c,
                    &product(&rounded, m, k, &w, n),
                    k,
                    &format!("bf16 pairs {m}x{k}x{n}"),
                );
                let panels = super::super::panels::PairPanels::from_rows(&w, n, k);
                let mut from_panels = vec![f32::NAN; m * n];
                matmul_pair_panels(&a, m, &panels, &mut from_panels);
                assert_eq!(from_panels, c, "pair panels {m}x{k}x{n}");
            }
        }
    }
}
