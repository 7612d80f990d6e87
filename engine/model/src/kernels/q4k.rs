//! `C = A · Wᵀ` for W quantized to GGML's q4_k, A and C f32, on CPUs with AVX-512 VNNI.
//!
//! Why by hand: Candle's q4_k product repacks every matrix into tiles that hold each
//! sub-block's scale and minimum as f32, 3,072 bytes for 16 rows of 256 values where q4_k takes
//! 2,304, and applies them with float operations per sub-block. Decoding read 1.33x the bytes it
//! needed and ran at 0.41-0.44 of this machine's read limit (BENCHMARKS.md). Here the tiles keep
//! the 6-bit scales and minimums as bytes (2,368 bytes a tile, 1.03x q4_k), the sub-block sums
//! are scaled in integers (exact), and two float operations per tile and row of A remain.
//!
//! The weights are packed once, at load, from the q4_k blocks Candle quantized (or read from the
//! cached GGUF); the q4_k blocks are not kept. Activations are quantized per 256 values to i8
//! with one f32 scale (as GGML's q8_K), and each 32-value sub-block's sum of those i8 is kept for
//! the minimums' term. [`product`] runs the VNNI kernel where the CPU has it and otherwise the
//! portable one, which does the same operations in the same order (the tests compare them bit
//! for bit); callers use Candle's own q4_k kernels on CPUs without VNNI ([`available`]).

use rayon::prelude::*;

use super::tiled::{self, PackError, Row, TileKernel, TILE_ROWS};

/// Values in a q4_k super-block, and in a sub-block.
const BLOCK: usize = 256;
const SUB: usize = 32;
const SUBS: usize = BLOCK / SUB;
/// Bytes of one q4_k block as GGML stores it: d, dmin (f16), 12 bytes of packed 6-bit scales
/// and minimums, 128 bytes of 4-bit values.
const Q4K_BYTES: usize = 144;

/// One super-block (256 values along K) of 16 weight rows.
#[repr(C, align(64))]
#[derive(Clone)]
pub struct Tile {
    /// `[group of 8 values (32)][row (16)][4 bytes]`: byte j holds value 8g+j in its low nibble
    /// and value 8g+4+j in its high one, so one 64-byte load feeds a `vpdpbusd` for 16 rows.
    qs: [u8; BLOCK / 2 * TILE_ROWS],
    /// `[sub-block (8)][row (16)]`, 6-bit.
    scales: [u8; SUBS * TILE_ROWS],
    mins: [u8; SUBS * TILE_ROWS],
    /// f16 bits, per row.
    d: [u16; TILE_ROWS],
    dmin: [u16; TILE_ROWS],
}

const _: () = assert!(std::mem::size_of::<Tile>() == 2368);

/// A weight matrix (N, K) in tiles: tile-row `t` (rows 16t..16t+16) is `tiles[t * K/256 ..]`.
pub struct PackedQ4K {
    n: usize,
    k: usize,
    tiles: Vec<Tile>,
}

impl std::fmt::Debug for PackedQ4K {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedQ4K({} x {})", self.n, self.k)
    }
}

/// Whether this CPU runs the VNNI kernel (`GROUNDGLASS_NO_Q4K_GEMV=1` says no, for comparisons).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            tiled::cpu_has_vnni() && std::env::var_os("GROUNDGLASS_NO_Q4K_GEMV").is_none()
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether a matrix of this shape packs.
pub fn fits(n: usize, k: usize) -> bool {
    tiled::fits(n, k)
}

/// GGML's unpacking of the 6-bit scale and minimum of sub-block `j` (q4_k, q5_k).
fn scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

impl PackedQ4K {
    /// Packs a matrix from its q4_k blocks as GGML lays them out (row by row, `K/256` blocks a
    /// row), on all threads.
    pub fn from_q4k_blocks(bytes: &[u8], n: usize, k: usize) -> Result<Self, PackError> {
        if !fits(n, k) {
            return Err(PackError::Shape { kind: "q4_k", n, k });
        }
        let kb = k / BLOCK;
        let expected = n * kb * Q4K_BYTES;
        if bytes.len() != expected {
            return Err(PackError::Bytes {
                kind: "q4_k",
                n,
                k,
                got: bytes.len(),
                expected,
            });
        }
        let empty = Tile {
            qs: [0; BLOCK / 2 * TILE_ROWS],
            scales: [0; SUBS * TILE_ROWS],
            mins: [0; SUBS * TILE_ROWS],
            d: [0; TILE_ROWS],
            dmin: [0; TILE_ROWS],
        };
        let mut tiles = vec![empty; n / TILE_ROWS * kb];
        tiles.par_chunks_mut(kb).enumerate().for_each(|(t, row)| {
            for (b, tile) in row.iter_mut().enumerate() {
                for r in 0..TILE_ROWS {
                    let at = ((t * TILE_ROWS + r) * kb + b) * Q4K_BYTES;
                    pack_block(&bytes[at..at + Q4K_BYTES], r, tile);
                }
            }
        });
        Ok(PackedQ4K { n, k, tiles })
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    pub fn cols(&self) -> usize {
        self.k
    }

    /// Bytes the tiles take.
    pub fn bytes(&self) -> usize {
        self.tiles.len() * std::mem::size_of::<Tile>()
    }
}

/// One row's q4_k block into row `r` of `tile`.
fn pack_block(block: &[u8], r: usize, tile: &mut Tile) {
    tile.d[r] = u16::from_le_bytes([block[0], block[1]]);
    tile.dmin[r] = u16::from_le_bytes([block[2], block[3]]);
    let scales = &block[4..16];
    for j in 0..SUBS {
        let (sc, mn) = scale_min(j, scales);
        tile.scales[j * TILE_ROWS + r] = sc;
        tile.mins[j * TILE_ROWS + r] = mn;
    }
    // GGML's 128 value bytes: chunk c (32 bytes) holds values 64c..64c+32 in the low nibbles
    // and 64c+32..64c+64 in the high ones.
    let qs = &block[16..];
    let value = |i: usize| {
        let (c, o) = (i / 64, i % 64);
        let byte = qs[c * 32 + o % 32];
        if o < 32 {
            byte & 0x0F
        } else {
            byte >> 4
        }
    };
    for g in 0..BLOCK / 8 {
        for j in 0..4 {
            tile.qs[(g * TILE_ROWS + r) * 4 + j] = value(8 * g + j) | (value(8 * g + 4 + j) << 4);
        }
    }
}

/// C (M, N) = A (M, K) · Wᵀ. Panics if a slice is shorter than the sizes say.
pub fn product(a: &[f32], m: usize, w: &PackedQ4K, c: &mut [f32]) {
    product_with(a, m, w, c, available());
}

fn product_with(a: &[f32], m: usize, w: &PackedQ4K, c: &mut [f32], vnni: bool) {
    tiled::product::<PackedQ4K>(a, m, (w.n, w.k), &w.tiles, c, vnni);
}

impl TileKernel for PackedQ4K {
    type Tile = Tile;
    const SCALE_BLOCK: usize = BLOCK;

    fn portable<const G: usize>(tiles: &[Tile], rows: &[Row; G]) -> [[f32; 16]; G] {
        tile_row_portable(tiles, rows)
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn vnni<const G: usize>(tiles: &[Tile], rows: &[Row; G]) -> [[f32; 16]; G] {
        // SAFETY: the caller holds the trait's contract (the CPU has the features).
        unsafe { tile_row_vnni(tiles, rows) }
    }
}

/// The portable kernel: the VNNI kernel's operations in its order (integer sums, then per tile
/// `acc = s1·(d·da) + acc` and `acc = -s2·(dmin·da) + acc`, each fused).
#[allow(clippy::needless_range_loop)] // r indexes the tile's arrays and the outputs alike
fn tile_row_portable<const G: usize>(tiles: &[Tile], rows: &[Row; G]) -> [[f32; 16]; G] {
    let mut acc = [[0f32; 16]; G];
    for (b, tile) in tiles.iter().enumerate() {
        for (row, acc) in rows.iter().zip(acc.iter_mut()) {
            let q = &row.q[b * BLOCK..(b + 1) * BLOCK];
            let da = row.scale[b];
            for r in 0..TILE_ROWS {
                let (mut s1, mut s2) = (0i32, 0i32);
                for sub in 0..SUBS {
                    let mut isum = 0i32;
                    for g in sub * 4..sub * 4 + 4 {
                        for j in 0..4 {
                            let byte = tile.qs[(g * TILE_ROWS + r) * 4 + j];
                            isum += i32::from(byte & 0x0F) * i32::from(q[8 * g + j]);
                            isum += i32::from(byte >> 4) * i32::from(q[8 * g + 4 + j]);
                        }
                    }
                    s1 += isum * i32::from(tile.scales[sub * TILE_ROWS + r]);
                    s2 += i32::from(tile.mins[sub * TILE_ROWS + r]) * row.sums[b * SUBS + sub];
                }
                let d = half::f16::from_bits(tile.d[r]).to_f32();
                let dmin = half::f16::from_bits(tile.dmin[r]).to_f32();
                acc[r] = (s1 as f32).mul_add(d * da, acc[r]);
                acc[r] = (-(s2 as f32)).mul_add(dmin * da, acc[r]);
            }
        }
    }
    acc
}

/// Per sub-block: eight `vpdpbusd` (4-bit weights, unsigned, against i8 activations broadcast
/// four at a time) into two accumulators, scaled by the sub-block's scale in integers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_row_vnni<const G: usize>(tiles: &[Tile], rows: &[Row; G]) -> [[f32; 16]; G] {
    use std::arch::x86_64::*;
    let nibble = _mm512_set1_epi8(0x0F);
    let mut acc = [_mm512_setzero_ps(); G];
    for (b, tile) in tiles.iter().enumerate() {
        let qs = tile.qs.as_ptr();
        let mut s1 = [_mm512_setzero_si512(); G];
        let mut s2 = [_mm512_setzero_si512(); G];
        for sub in 0..SUBS {
            let mut lo = [_mm512_setzero_si512(); G];
            let mut hi = [_mm512_setzero_si512(); G];
            for g in sub * 4..sub * 4 + 4 {
                // SAFETY: g < 32, and a tile holds 32 groups of 64 bytes.
                let w = unsafe { _mm512_loadu_si512(qs.add(g * 64) as *const __m512i) };
                let wl = _mm512_and_si512(w, nibble);
                let wh = _mm512_and_si512(_mm512_srli_epi16::<4>(w), nibble);
                for i in 0..G {
                    // SAFETY: a row of A holds K >= 256 (b + 1) values, 8g + 8 <= 256.
                    let (a0, a1) = unsafe {
                        let p = rows[i].q.as_ptr().add(b * BLOCK + 8 * g) as *const i32;
                        (p.read_unaligned(), p.add(1).read_unaligned())
                    };
                    lo[i] = _mm512_dpbusd_epi32(lo[i], wl, _mm512_set1_epi32(a0));
                    hi[i] = _mm512_dpbusd_epi32(hi[i], wh, _mm512_set1_epi32(a1));
                }
            }
            // SAFETY: 16 bytes at sub * 16 < 128.
            let (sc, mn) = unsafe {
                (
                    _mm512_cvtepu8_epi32(_mm_loadu_si128(
                        tile.scales.as_ptr().add(sub * TILE_ROWS) as *const __m128i,
                    )),
                    _mm512_cvtepu8_epi32(_mm_loadu_si128(
                        tile.mins.as_ptr().add(sub * TILE_ROWS) as *const __m128i
                    )),
                )
            };
            for i in 0..G {
                let isum = _mm512_add_epi32(lo[i], hi[i]);
                s1[i] = _mm512_add_epi32(s1[i], _mm512_mullo_epi32(isum, sc));
                let sums = _mm512_set1_epi32(rows[i].sums[b * SUBS + sub]);
                s2[i] = _mm512_add_epi32(s2[i], _mm512_mullo_epi32(mn, sums));
            }
        }
        // SAFETY: 16 f16 each.
        let (d, dmin) = unsafe {
            (
                _mm512_cvtph_ps(_mm256_loadu_si256(tile.d.as_ptr() as *const __m256i)),
                _mm512_cvtph_ps(_mm256_loadu_si256(tile.dmin.as_ptr() as *const __m256i)),
            )
        };
        for i in 0..G {
            let da = _mm512_set1_ps(rows[i].scale[b]);
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1[i]), _mm512_mul_ps(d, da), acc[i]);
            acc[i] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(s2[i]), _mm512_mul_ps(dmin, da), acc[i]);
        }
    }
    let mut out = [[0f32; 16]; G];
    for i in 0..G {
        // SAFETY: 16 floats.
        unsafe { _mm512_storeu_ps(out[i].as_mut_ptr(), acc[i]) };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::values;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    type Result<T> = candle_core::Result<T>;

    fn pack(q: &QTensor, n: usize, k: usize) -> Result<PackedQ4K> {
        PackedQ4K::from_q4k_blocks(&q.data()?, n, k)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    }

    fn quantized(n: usize, k: usize, seed: u32) -> Result<(PackedQ4K, Vec<f32>)> {
        let w = Tensor::from_vec(values(n * k, seed), (n, k), &Device::Cpu)?;
        let q = QTensor::quantize(&w, GgmlDType::Q4K)?;
        let dequantized = q.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()?;
        Ok((pack(&q, n, k)?, dequantized))
    }

    /// The f64 product of the dequantized weights with the activations as the kernel quantized
    /// them.
    fn reference(a: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
        let acts = tiled::QuantizedRows::new(a, m, k, BLOCK);
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            let row = acts.row(i);
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    let x = f64::from(row.q[p]) * f64::from(row.scale[p / BLOCK]);
                    s += x * f64::from(w[j * k + p]);
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    #[test]
    fn packing_keeps_every_value_scale_and_minimum() -> Result<()> {
        let (n, k) = (32, 512);
        let (packed, dequantized) = quantized(n, k, 11)?;
        // Dequantize the tiles back and compare with Candle's dequantization of the blocks.
        for j in 0..n {
            let (t, r) = (j / TILE_ROWS, j % TILE_ROWS);
            for p in 0..k {
                let tile = &packed.tiles[t * (k / BLOCK) + p / BLOCK];
                let (v, g, o) = (p % BLOCK, (p % BLOCK) / 8, (p % BLOCK) % 8);
                let byte = tile.qs[(g * TILE_ROWS + r) * 4 + o % 4];
                let q = if o < 4 { byte & 0x0F } else { byte >> 4 };
                let sub = v / SUB;
                let d = half::f16::from_bits(tile.d[r]).to_f32();
                let dmin = half::f16::from_bits(tile.dmin[r]).to_f32();
                let value = d * f32::from(tile.scales[sub * TILE_ROWS + r]) * f32::from(q)
                    - dmin * f32::from(tile.mins[sub * TILE_ROWS + r]);
                let expected = dequantized[j * k + p];
                assert!(
                    (value - expected).abs() < 1e-6,
                    "({j}, {p}): {value} vs {expected}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn products_match_the_dequantized_reference_on_ragged_row_counts() -> Result<()> {
        let (n, k) = (48, 768);
        let (packed, dequantized) = quantized(n, k, 12)?;
        for m in [1, 2, 3, 4, 5, 7, 9] {
            let a = values(m * k, 13 + m as u32);
            let expected = reference(&a, m, k, &dequantized, n);
            let mut portable = vec![0f32; m * n];
            product_with(&a, m, &packed, &mut portable, false);
            for (i, (x, y)) in portable.iter().zip(&expected).enumerate() {
                assert!((x - y).abs() < 1e-3, "m = {m}, output {i}: {x} vs {y}");
            }
            if available() {
                let mut vnni = vec![0f32; m * n];
                product_with(&a, m, &packed, &mut vnni, true);
                assert_eq!(vnni, portable, "m = {m}: VNNI against portable");
            }
        }
        Ok(())
    }

    #[test]
    fn a_row_of_a_gives_the_same_outputs_alone_and_in_a_batch() -> Result<()> {
        let (n, k) = (32, 256);
        let (packed, _) = quantized(n, k, 14)?;
        let a = values(6 * k, 15);
        let mut batch = vec![0f32; 6 * n];
        product(&a, 6, &packed, &mut batch);
        for i in 0..6 {
            let mut alone = vec![0f32; n];
            product(&a[i * k..(i + 1) * k], 1, &packed, &mut alone);
            assert_eq!(alone, batch[i * n..(i + 1) * n], "row {i}");
        }
        Ok(())
    }

    #[test]
    fn products_stay_close_to_candles_q4_k_product() -> Result<()> {
        use candle_core::Module;
        let (m, n, k) = (3, 64, 1024);
        let w = Tensor::from_vec(values(n * k, 16), (n, k), &Device::Cpu)?;
        let q = QTensor::quantize(&w, GgmlDType::Q4K)?;
        let packed = pack(&q, n, k)?;
        let a = values(m * k, 17);
        let x = Tensor::from_vec(a.clone(), (m, k), &Device::Cpu)?;
        let candle: Vec<f32> = candle_core::quantized::QMatMul::from_qtensor(q)?
            .forward(&x)?
            .flatten_all()?
            .to_vec1()?;
        let mut ours = vec![0f32; m * n];
        product(&a, m, &packed, &mut ours);
        // Both quantize the activations to 8 bits per 256 values (Candle's rounding differs).
        for (i, (x, y)) in ours.iter().zip(&candle).enumerate() {
            assert!((x - y).abs() < 0.05, "output {i}: {x} vs Candle's {y}");
        }
        Ok(())
    }

    #[test]
    fn a_misfit_shape_or_byte_count_is_refused() {
        assert!(matches!(
            PackedQ4K::from_q4k_blocks(&[], 15, 256),
            Err(PackError::Shape { .. })
        ));
        assert!(matches!(
            PackedQ4K::from_q4k_blocks(&[0; 100], 16, 256),
            Err(PackError::Bytes { .. })
        ));
    }
}
