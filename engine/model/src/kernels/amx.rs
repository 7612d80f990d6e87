//! `C = A · Wᵀ` for bf16 weights on Intel AMX tiles (Sapphire Rapids and later): A rounded to
//! bf16, products summed in f32, what [`super::matmul::matmul_wt_bf16`] computes with
//! `vdpbf16ps`, at several times its rate. The bf16 prefill of the 3B model is bound by these
//! products, and PyTorch (oneDNN) runs them on AMX where the CPU has it.
//!
//! The roles are swapped: the product is computed as `Cᵀ = W · Aᵀ`. A weight row, as stored, is
//! already what a tile's left operand wants (a tile row is 32 consecutive bf16 of one row), so a
//! chunk of W is only copied, row by row, into a contiguous block; the activations, small, are
//! rounded to bf16 pairs and transposed into the right operand's layout (a tile row is one pair
//! of K steps for 16 tokens). Blocks of `C` are transposed when stored.
//!
//! Loop nest: threads take blocks of W's rows (`ROWS_PER_TASK`); within one, for each chunk of
//! K (`KC` pairs), each 32-row block of W is copied (32 KiB, L1) and runs against every block of
//! 32 tokens in the 2 × 2 tile kernel (four 16 × 16 f32 accumulators in tiles 0-3, two W tiles,
//! two token tiles), the accumulators kept in a per-task buffer between chunks. The tokens'
//! chunks stay in L2, and the next W block is prefetched while the current one works.
//!
//! Measured on a 2-core Sapphire-Rapids-class VM (BENCHMARKS.md): 400-650 GFLOPS on the 3B
//! model's shapes against 100-120 for the `vdpbf16ps` kernel. A tile product alone runs at
//! about 2.2 TFLOPS a core; each iteration's four tile loads, which wait for the products that
//! read their registers before (tiles are not renamed), hold it to about a third of that.
//!
//! Inline assembly, because Rust's AMX intrinsics are not stable; the tile registers are not
//! ones the compiler allocates, so they may hold values from one `asm!` block to the next.
//! Linux grants a process the AMX register state only on request (`arch_prctl`), made once in
//! [`available`].
#![cfg_attr(
    not(all(target_arch = "x86_64", target_os = "linux")),
    allow(dead_code)
)]

/// Pairs of K steps (two bf16) per chunk of K.
const KC: usize = 256;
/// W rows per block of the tile kernel (two tiles of 16) and tokens per block (two tiles).
const BLOCK: usize = 32;
/// W rows a thread takes at a time.
const ROWS_PER_TASK: usize = 128;

/// Whether this CPU and kernel run [`matmul_wt_bf16`]: AMX-TILE and AMX-BF16, AVX512-BF16 for
/// rounding the activations, and the kernel's permission to use the tile data (asked for here,
/// once for the process). `GROUNDGLASS_NO_AMX` turns it off (the `vdpbf16ps` kernel runs), as
/// does `GROUNDGLASS_EXACT_BF16`.
pub fn available() -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            super::matmul::bf16_available()
                && std::env::var_os("GROUNDGLASS_NO_AMX").is_none()
                && cpu_has_amx_bf16()
                && request_tile_data()
        })
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        false
    }
}

/// CPUID leaf 7: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE (std's detection of them is unstable).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn cpu_has_amx_bf16() -> bool {
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 7 answers zeros where it is not defined.
    let leaf = unsafe { std::arch::x86_64::__cpuid_count(7, 0) };
    leaf.edx & (1 << 22) != 0 && leaf.edx & (1 << 24) != 0
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: without it the first tile
/// instruction faults. Refused by kernels older than 5.16 and where the hypervisor hides AMX.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_data() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a plain system call with integer arguments; it changes which register state the
    // kernel lets this process use, nothing in its memory.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

/// C = A · Wᵀ with A rounded to bf16 (to nearest even) and products summed in f32, on AMX tiles.
/// Panics if the slices are shorter than the sizes say, or if AMX is not available (callers
/// check [`available`]).
pub fn matmul_wt_bf16(a: &[f32], m: usize, k: usize, w: &[half::bf16], n: usize, c: &mut [f32]) {
    assert!(a.len() >= m * k && w.len() >= n * k && c.len() >= m * n);
    assert!(available(), "AMX is not available");
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        use rayon::prelude::*;
        let pairs = k.div_ceil(2).div_ceil(16) * 16;
        let tokens = tokens_as_tiles(&a[..m * k], m, k, pairs);
        let blocks = n.div_ceil(BLOCK);
        let per_task = (ROWS_PER_TASK / BLOCK)
            .min(blocks.div_ceil(rayon::current_num_threads().max(1)))
            .max(1);
        let tasks = blocks.div_ceil(per_task);
        let c_ptr = SendPtr(c.as_mut_ptr());
        let shape = Shape { m, k, n, pairs };
        (0..tasks).into_par_iter().for_each_init(
            || (Vec::new(), Vec::new()),
            |(acc, copy), task| {
                let rows = task * per_task * BLOCK..((task + 1) * per_task * BLOCK).min(n);
                // SAFETY: AMX was checked above; each task writes only its own columns
                // (rows of W) of C, which no other task touches.
                unsafe { task_product(&tokens, w, shape, rows, acc, copy, c_ptr) };
            },
        );
    }
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: the tasks write disjoint columns of C (see `matmul_wt_bf16`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

#[derive(Clone, Copy)]
struct Shape {
    m: usize,
    k: usize,
    n: usize,
    /// K's pairs, rounded up to a tile's 16.
    pairs: usize,
}

/// A as the tiles' right operand: token tile t (16 tokens), pair p, token q at
/// `(t * pairs + p) * 16 + q`, one u32 holding the pair (first step in the low half), rounded to
/// bf16. Tokens past M (up to a whole block of 32) and pairs past K are zero.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn tokens_as_tiles(a: &[f32], m: usize, k: usize, pairs: usize) -> Vec<u32> {
    use rayon::prelude::*;
    let tiles = m.div_ceil(BLOCK) * 2;
    let mut out = vec![0u32; tiles * pairs * 16];
    out.par_chunks_mut(pairs * 16).enumerate().for_each_init(
        || vec![0u32; 16 * pairs],
        |rows, (tile, to)| {
            let first = tile * 16;
            let count = 16.min(m.saturating_sub(first));
            if count == 0 {
                return;
            }
            rows.fill(0);
            for r in 0..count {
                let i = first + r;
                let row = &mut rows[r * pairs..r * pairs + k.div_ceil(2)];
                super::matmul::row_to_pairs(&a[i * k..(i + 1) * k], row);
            }
            // SAFETY: AVX-512F comes with AMX here (`available`); both buffers hold 16
            // rows of `pairs`, a multiple of 16.
            unsafe { transpose_rows(rows, to, pairs) };
        },
    );
    out
}

/// 16 rows of `pairs` u32 (row-major) into `pairs` rows of 16 (each 16 × 16 block transposed).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_rows(rows: &[u32], to: &mut [u32], pairs: usize) {
    use std::arch::x86_64::*;
    for p in (0..pairs).step_by(16) {
        let r: [__m512; 16] =
            std::array::from_fn(
                |i| _mm512_loadu_ps(rows.as_ptr().add(i * pairs + p) as *const f32),
            );
        let t = super::matmul::transpose_16(r);
        for (i, v) in t.iter().enumerate() {
            _mm512_storeu_ps(to.as_mut_ptr().add((p + i) * 16) as *mut f32, *v);
        }
    }
}

/// The tile configuration `ldtilecfg` reads: palette 1, all eight tiles 16 rows of 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

const TILES: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    bytes_per_row: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// Columns `rows` of C (rows of W) for all tokens. `acc` and `copy` are the thread's buffers.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "avx512f")]
unsafe fn task_product(
    tokens: &[u32],
    w: &[half::bf16],
    shape: Shape,
    rows: std::ops::Range<usize>,
    acc: &mut Vec<f32>,
    copy: &mut Vec<u32>,
    c: SendPtr,
) {
    use std::arch::asm;
    let Shape { m, k, n, pairs } = shape;
    let w_blocks = rows.len().div_ceil(BLOCK);
    let t_blocks = m.div_ceil(BLOCK);
    // Accumulators: block (wb, tb) holds four 16 × 16 tiles at ((wb * t_blocks + tb) * 4) * 256.
    acc.clear();
    acc.resize(w_blocks * t_blocks * 4 * 256, 0.0);
    copy.clear();
    copy.resize(BLOCK * KC, 0);
    asm!("ldtilecfg [{}]", in(reg) &TILES as *const TileConfig, options(nostack, readonly));
    let mut p0 = 0;
    while p0 < pairs {
        let kc = KC.min(pairs - p0);
        for wb in 0..w_blocks {
            // This chunk of the W block is copied into a contiguous 32 × `kc` pairs (32 KiB),
            // where it stays in L1 while every token block passes. Read in place, rows K apart,
            // it did not: at K = 9216 (rows 18 KiB apart) the 32 rows fall into a quarter of
            // L1's sets and evict each other, which held the down projection to half the rate
            // of the others. The copy also zero-pads K and the last rows.
            let first = rows.start + wb * BLOCK;
            pack_w_chunk(w, k, n, first, p0, kc, copy);
            // The next chunk's rows are fetched meanwhile, a share per token block.
            let next = if wb + 1 < w_blocks {
                Some((first + BLOCK, p0, kc))
            } else if p0 + kc < pairs {
                Some((rows.start, p0 + kc, KC.min(pairs - p0 - kc)))
            } else {
                None
            };
            for tb in 0..t_blocks {
                if let Some((next_row, next_p0, next_kc)) = next {
                    prefetch_share(w, k, n, next_row, next_p0, next_kc, tb, t_blocks);
                }
                let x = tokens.as_ptr().add((2 * tb * pairs + p0) * 16) as *const u8;
                let block = acc.as_mut_ptr().add((wb * t_blocks + tb) * 4 * 256);
                let w0 = copy.as_ptr() as *const u8;
                tile_block(w0, kc * 4, x, pairs * 16 * 4, kc / 16, block, p0 > 0);
            }
        }
        p0 += kc;
    }
    asm!("tilerelease", options(nostack, nomem));
    for wb in 0..w_blocks {
        for tb in 0..t_blocks {
            let block = acc.as_ptr().add((wb * t_blocks + tb) * 4 * 256);
            for tile in 0..4 {
                let first_row = rows.start + wb * BLOCK + (tile / 2) * 16;
                let first_token = tb * BLOCK + (tile % 2) * 16;
                store_transposed(block.add(tile * 256), c.0, n, m, first_row, first_token);
            }
        }
    }
}

/// W rows `first..first + 32`, pairs `p0..p0 + kc`, into `to` (32 rows of `kc` u32 pairs), zero
/// past K and past N.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn pack_w_chunk(
    w: &[half::bf16],
    k: usize,
    n: usize,
    first: usize,
    p0: usize,
    kc: usize,
    to: &mut [u32],
) {
    let (from, len) = chunk_steps(k, p0, kc);
    for r in 0..BLOCK {
        let row = &mut to[r * kc..(r + 1) * kc];
        let row = as_halves(row);
        let i = first + r;
        if i < n {
            let src = &w[i * k + from..i * k + from + len];
            // SAFETY: bf16 is a u16 in memory (`half` is `repr(transparent)`).
            let src: &[u16] =
                unsafe { std::slice::from_raw_parts(src.as_ptr() as *const u16, src.len()) };
            row[..len].copy_from_slice(src);
            row[len..].fill(0);
        } else {
            row.fill(0);
        }
    }
}

/// The K steps of pairs `p0..p0 + kc` that lie inside a row of K: the first and how many.
fn chunk_steps(k: usize, p0: usize, kc: usize) -> (usize, usize) {
    let from = (2 * p0).min(k);
    (from, (2 * kc).min(k - from))
}

/// A u32 buffer as twice as many u16 (each pair's first step in the low half, little-endian).
fn as_halves(v: &mut [u32]) -> &mut [u16] {
    // SAFETY: u16 has a smaller alignment than u32, and the bytes are the same memory.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u16, v.len() * 2) }
}

/// Token block `tb` of `t_blocks` prefetches its share of the cache lines of W rows
/// `first..first + 32` at pairs `p0..p0 + kc`, so that the next packing reads from cache.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[allow(clippy::too_many_arguments)]
#[inline]
fn prefetch_share(
    w: &[half::bf16],
    k: usize,
    n: usize,
    first: usize,
    p0: usize,
    kc: usize,
    tb: usize,
    t_blocks: usize,
) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let rows = BLOCK.min(n.saturating_sub(first));
    let (from, len) = chunk_steps(k, p0, kc);
    let bytes = len * 2;
    let lines_per_row = bytes.div_ceil(64);
    let lines = rows * lines_per_row;
    if lines == 0 {
        return;
    }
    let share = lines.div_ceil(t_blocks);
    let base = w.as_ptr() as *const u8;
    for line in tb * share..((tb + 1) * share).min(lines) {
        let (r, l) = (line / lines_per_row, line % lines_per_row);
        let offset = ((first + r) * k + from) * 2 + l * 64;
        // SAFETY: a prefetch never faults; the address lies inside W's row `first + r`.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(base.add(offset) as *const i8) };
    }
}

/// One 32 × 32 block of Cᵀ over `chunks` of 16 pairs: W rows `w0` (stride `w_stride` bytes),
/// tokens `x` (two token tiles `x_next` bytes apart), the four accumulators at `block`, loaded
/// from there (`accumulate`) or zeroed, and stored back. Tiles: 0 = (W 0-15, tokens 0-15),
/// 1 = (W 0-15, tokens 16-31), 2 = (W 16-31, tokens 0-15), 3 = (W 16-31, tokens 16-31); 4, 5 W;
/// 6, 7 tokens. The loads are interleaved with the products (a tile register is not renamed: a
/// load waits for the products that read the register before), which measured 20 % faster than
/// loading all four first.
///
/// # Safety
/// AMX configured by `ldtilecfg` (`TILES`) on this thread; the pointers valid for what they name.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline]
unsafe fn tile_block(
    w0: *const u8,
    w_stride: usize,
    x: *const u8,
    x_next: usize,
    chunks: usize,
    block: *mut f32,
    accumulate: bool,
) {
    use std::arch::asm;
    let row_bytes: usize = 64;
    if accumulate {
        asm!(
            "tileloadd tmm0, [{c} + {s}*1]",
            "tileloadd tmm1, [{c} + {s}*1 + 1024]",
            "tileloadd tmm2, [{c} + {s}*1 + 2048]",
            "tileloadd tmm3, [{c} + {s}*1 + 3072]",
            c = in(reg) block,
            s = in(reg) row_bytes,
            options(nostack, readonly)
        );
    } else {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        );
    }
    asm!(
        "2:",
        "tileloadd tmm4, [{w0} + {ws}*1]",
        "tileloadd tmm6, [{x0} + {s}*1]",
        "tdpbf16ps tmm0, tmm4, tmm6",
        "tileloadd tmm7, [{x1} + {s}*1]",
        "tdpbf16ps tmm1, tmm4, tmm7",
        "tileloadd tmm5, [{w1} + {ws}*1]",
        "tdpbf16ps tmm2, tmm5, tmm6",
        "tdpbf16ps tmm3, tmm5, tmm7",
        "add {w0}, 64",
        "add {w1}, 64",
        "add {x0}, 1024",
        "add {x1}, 1024",
        "dec {chunks}",
        "jnz 2b",
        w0 = inout(reg) w0 => _,
        w1 = inout(reg) w0.add(16 * w_stride) => _,
        x0 = inout(reg) x => _,
        x1 = inout(reg) x.add(x_next) => _,
        chunks = inout(reg) chunks => _,
        ws = in(reg) w_stride,
        s = in(reg) row_bytes,
        options(nostack, readonly)
    );
    asm!(
        "tilestored [{c} + {s}*1], tmm0",
        "tilestored [{c} + {s}*1 + 1024], tmm1",
        "tilestored [{c} + {s}*1 + 2048], tmm2",
        "tilestored [{c} + {s}*1 + 3072], tmm3",
        c = in(reg) block,
        s = in(reg) row_bytes,
        options(nostack)
    );
}

/// A 16 × 16 accumulator tile (row = W row, column = token) into C (row = token, column = W
/// row), leaving out tokens past M and W rows past N.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "avx512f")]
unsafe fn store_transposed(
    tile: *const f32,
    c: *mut f32,
    n: usize,
    m: usize,
    first_row: usize,
    first_token: usize,
) {
    use std::arch::x86_64::*;
    if first_row >= n || first_token >= m {
        return;
    }
    let r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(tile.add(i * 16)));
    let t = super::matmul::transpose_16(r);
    let lanes = 16.min(n - first_row);
    let mask: __mmask16 = if lanes == 16 { !0 } else { (1u16 << lanes) - 1 };
    for (q, v) in t.iter().enumerate().take(16.min(m - first_token)) {
        _mm512_mask_storeu_ps(c.add((first_token + q) * n + first_row), mask, *v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::{assert_close, bf16s, product, values};

    #[test]
    fn tiles_match_a_plain_product_on_ragged_sizes() {
        if !available() {
            eprintln!("skipped: this CPU (or kernel) gives no AMX");
            return;
        }
        // Tokens not a multiple of 16 or 32, W rows past a whole block, K odd, K not a multiple
        // of 32 (a zero-padded last chunk), K over one and over two chunks (of 512 steps), and K
        // and N multiples of 32 over several tasks.
        for (m, k, n) in [
            (1, 1, 1),
            (13, 7, 33),
            (40, 64, 64),
            (33, 1100, 70),
            (17, 513, 130),
            (273, 2048, 96),
            (64, 1088, 544),
            (5, 32, 16),
            (20, 1201, 40),
        ] {
            let a = values(m * k, 1);
            let w = bf16s(&values(n * k, 2));
            let rounded: Vec<f32> = bf16s(&a).iter().map(|v| v.to_f32()).collect();
            let mut c = vec![f32::NAN; m * n];
            matmul_wt_bf16(&a, m, k, &w, n, &mut c);
            assert_close(
                &c,
                &product(&rounded, m, k, &w, n),
                k,
                &format!("amx {m}x{k}x{n}"),
            );
        }
    }
}
