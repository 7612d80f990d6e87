//! `C = A · Wᵀ` for W quantized to GGML's q8_0, A and C f32, on CPUs with AVX-512 VNNI: the
//! pattern of [`super::q4k`] for 8-bit weights.
//!
//! Why by hand: Candle's q8_0 product read 27-30 GB/s of a 34 GB/s read limit and decoding was
//! at 0.90-0.95x llama.cpp; this one reads 33 GB/s, 1.13-1.18x (BENCHMARKS.md). Tiles hold 16 rows of 256 values (eight q8_0 blocks
//! a row) stored +128 as bytes for `vpdpbusd`, with each block's f16 scale: 4,352 bytes, exactly
//! q8_0's. Activations are quantized per 32 values (as GGML's q8_0) and each block's sum takes
//! the +128 back out, in integers.

use rayon::prelude::*;

use super::tiled::{self, PackError, Row, TileKernel, SPAN, TILE_ROWS};

/// Values in a q8_0 block, and blocks in a tile's span.
const BLOCK: usize = 32;
const BLOCKS: usize = SPAN / BLOCK;
/// Bytes of one q8_0 block as GGML stores it: d (f16), 32 i8.
const Q8_0_BYTES: usize = 34;

#[repr(C, align(64))]
#[derive(Clone)]
pub struct Tile {
    /// `[group of 4 values (64)][row (16)][4 bytes]`, each value + 128.
    qs: [u8; SPAN * TILE_ROWS],
    /// f16 bits, `[block (8)][row (16)]`.
    d: [u16; BLOCKS * TILE_ROWS],
}

const _: () = assert!(std::mem::size_of::<Tile>() == 4352);

/// A weight matrix (N, K) in tiles: tile-row `t` is `tiles[t * K/256 ..]`.
pub struct PackedQ8_0 {
    n: usize,
    k: usize,
    tiles: Vec<Tile>,
}

impl std::fmt::Debug for PackedQ8_0 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedQ8_0({} x {})", self.n, self.k)
    }
}

/// Whether this CPU runs the VNNI kernel (`GROUNDGLASS_NO_Q8_0_GEMV=1` says no, for comparisons).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| {
            tiled::cpu_has_vnni() && std::env::var_os("GROUNDGLASS_NO_Q8_0_GEMV").is_none()
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

impl PackedQ8_0 {
    /// Packs a matrix from its q8_0 blocks as GGML lays them out (row by row), on all threads.
    pub fn from_q8_0_blocks(bytes: &[u8], n: usize, k: usize) -> Result<Self, PackError> {
        if !fits(n, k) {
            return Err(PackError::Shape { kind: "q8_0", n, k });
        }
        let (kt, row_bytes) = (k / SPAN, k / BLOCK * Q8_0_BYTES);
        if bytes.len() != n * row_bytes {
            return Err(PackError::Bytes {
                kind: "q8_0",
                n,
                k,
                got: bytes.len(),
                expected: n * row_bytes,
            });
        }
        let empty = Tile {
            qs: [0; SPAN * TILE_ROWS],
            d: [0; BLOCKS * TILE_ROWS],
        };
        let mut tiles = vec![empty; n / TILE_ROWS * kt];
        tiles.par_chunks_mut(kt).enumerate().for_each(|(t, row)| {
            for (s, tile) in row.iter_mut().enumerate() {
                for r in 0..TILE_ROWS {
                    for b in 0..BLOCKS {
                        let at = (t * TILE_ROWS + r) * row_bytes + (s * BLOCKS + b) * Q8_0_BYTES;
                        let block = &bytes[at..at + Q8_0_BYTES];
                        tile.d[b * TILE_ROWS + r] = u16::from_le_bytes([block[0], block[1]]);
                        for (v, &q) in block[2..].iter().enumerate() {
                            let g = b * BLOCK / 4 + v / 4;
                            tile.qs[(g * TILE_ROWS + r) * 4 + v % 4] = (q as i8 as u8) ^ 0x80;
                        }
                    }
                }
            }
        });
        Ok(PackedQ8_0 { n, k, tiles })
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

/// C (M, N) = A (M, K) · Wᵀ. Panics if a slice is shorter than the sizes say.
pub fn product(a: &[f32], m: usize, w: &PackedQ8_0, c: &mut [f32]) {
    product_with(a, m, w, c, available());
}

fn product_with(a: &[f32], m: usize, w: &PackedQ8_0, c: &mut [f32], vnni: bool) {
    tiled::product::<PackedQ8_0>(a, m, (w.n, w.k), &w.tiles, c, vnni);
}

impl TileKernel for PackedQ8_0 {
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

/// The portable kernel: the VNNI kernel's operations in its order (per block an exact integer
/// sum, then `acc[block parity] = isum·(d·da) + acc[..]`, fused; the two summed at the end).
#[allow(clippy::needless_range_loop)] // r indexes the tile's arrays and the outputs alike
fn tile_row_portable<const G: usize>(tiles: &[Tile], rows: &[Row; G]) -> [[f32; 16]; G] {
    let mut out = [[0f32; 16]; G];
    for (row, out) in rows.iter().zip(out.iter_mut()) {
        for r in 0..TILE_ROWS {
            let mut acc = [0f32; 2];
            for (s, tile) in tiles.iter().enumerate() {
                for b in 0..BLOCKS {
                    let at = s * BLOCKS + b;
                    let q = &row.q[at * BLOCK..(at + 1) * BLOCK];
                    let mut isum = 0i32;
                    for (v, &a) in q.iter().enumerate() {
                        let g = b * BLOCK / 4 + v / 4;
                        isum += i32::from(tile.qs[(g * TILE_ROWS + r) * 4 + v % 4]) * i32::from(a);
                    }
                    isum -= 128 * row.sums[at];
                    let d = half::f16::from_bits(tile.d[b * TILE_ROWS + r]).to_f32();
                    acc[b % 2] = (isum as f32).mul_add(d * row.scale[at], acc[b % 2]);
                }
            }
            out[r] = acc[0] + acc[1];
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_row_vnni<const G: usize>(tiles: &[Tile], rows: &[Row; G]) -> [[f32; 16]; G] {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; G];
    for (s, tile) in tiles.iter().enumerate() {
        let qs = tile.qs.as_ptr();
        for b in 0..BLOCKS {
            let at = s * BLOCKS + b;
            let mut lo = [_mm512_setzero_si512(); G];
            let mut hi = [_mm512_setzero_si512(); G];
            for pair in 0..BLOCK / 8 {
                let g = b * BLOCK / 4 + 2 * pair;
                // SAFETY: g + 1 < 64 groups of 64 bytes.
                let (w0, w1) = unsafe {
                    (
                        _mm512_loadu_si512(qs.add(g * 64) as *const __m512i),
                        _mm512_loadu_si512(qs.add((g + 1) * 64) as *const __m512i),
                    )
                };
                for i in 0..G {
                    // SAFETY: a row of A holds K values, 4g + 8 <= 256 within this tile's span.
                    let (a0, a1) = unsafe {
                        let p = rows[i].q.as_ptr().add(s * SPAN + 4 * g) as *const i32;
                        (p.read_unaligned(), p.add(1).read_unaligned())
                    };
                    lo[i] = _mm512_dpbusd_epi32(lo[i], w0, _mm512_set1_epi32(a0));
                    hi[i] = _mm512_dpbusd_epi32(hi[i], w1, _mm512_set1_epi32(a1));
                }
            }
            // SAFETY: 16 f16 at b * 16 < 128.
            let d = unsafe {
                _mm512_cvtph_ps(_mm256_loadu_si256(
                    tile.d.as_ptr().add(b * TILE_ROWS) as *const __m256i
                ))
            };
            for i in 0..G {
                let offset = _mm512_set1_epi32(128 * rows[i].sums[at]);
                let isum = _mm512_sub_epi32(_mm512_add_epi32(lo[i], hi[i]), offset);
                let scale = _mm512_mul_ps(d, _mm512_set1_ps(rows[i].scale[at]));
                acc[i][b % 2] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc[i][b % 2]);
            }
        }
    }
    let mut out = [[0f32; 16]; G];
    for i in 0..G {
        // SAFETY: 16 floats.
        unsafe { _mm512_storeu_ps(out[i].as_mut_ptr(), _mm512_add_ps(acc[i][0], acc[i][1])) };
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

    fn quantized(n: usize, k: usize, seed: u32) -> Result<(PackedQ8_0, QTensor, Vec<f32>)> {
        let w = Tensor::from_vec(values(n * k, seed), (n, k), &Device::Cpu)?;
        let q = QTensor::quantize(&w, GgmlDType::Q8_0)?;
        let dequantized = q.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()?;
        let packed = PackedQ8_0::from_q8_0_blocks(&q.data()?, n, k)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Ok((packed, q, dequantized))
    }

    #[test]
    fn products_match_the_dequantized_reference_on_ragged_row_counts() -> Result<()> {
        let (n, k) = (48, 768);
        let (packed, _, w) = quantized(n, k, 21)?;
        for m in [1, 2, 3, 4, 5, 7, 9] {
            let a = values(m * k, 22 + m as u32);
            let acts = tiled::QuantizedRows::new(&a, m, k, BLOCK);
            let mut portable = vec![0f32; m * n];
            product_with(&a, m, &packed, &mut portable, false);
            for i in 0..m {
                let row = acts.row(i);
                for j in 0..n {
                    let expected: f64 = (0..k)
                        .map(|p| {
                            f64::from(row.q[p])
                                * f64::from(row.scale[p / BLOCK])
                                * f64::from(w[j * k + p])
                        })
                        .sum();
                    let got = portable[i * n + j];
                    assert!(
                        (f64::from(got) - expected).abs() < 1e-3,
                        "m = {m}, ({i}, {j})"
                    );
                }
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
    fn a_row_alone_equals_itself_in_a_batch_and_candle_agrees() -> Result<()> {
        use candle_core::Module;
        let (m, n, k) = (6, 32, 512);
        let (packed, q, _) = quantized(n, k, 23)?;
        let a = values(m * k, 24);
        let mut batch = vec![0f32; m * n];
        product(&a, m, &packed, &mut batch);
        for i in 0..m {
            let mut alone = vec![0f32; n];
            product(&a[i * k..(i + 1) * k], 1, &packed, &mut alone);
            assert_eq!(alone, batch[i * n..(i + 1) * n], "row {i}");
        }
        // Against the product of the q8_0 weights with the unrounded activations (|y| ~ 7), the
        // 8-bit activations cost about 1 % of a product, as Candle's do.
        let x = Tensor::from_vec(a, (m, k), &Device::Cpu)?;
        let exact = x.matmul(&q.dequantize(&Device::Cpu)?.t()?)?;
        let candle = candle_core::quantized::QMatMul::from_qtensor(q)?.forward(&x)?;
        let error =
            |y: &Tensor| -> Result<f32> { (y - &exact)?.abs()?.max_all()?.to_scalar::<f32>() };
        let ours = error(&Tensor::from_vec(batch, (m, n), &Device::Cpu)?)?;
        let candles = error(&candle)?;
        assert!(
            ours < 0.15 && ours <= 2.0 * candles,
            "ours {ours}, Candle's {candles}"
        );
        Ok(())
    }

    #[test]
    fn a_misfit_shape_or_byte_count_is_refused() {
        assert!(PackedQ8_0::from_q8_0_blocks(&[], 16, 32).is_err());
        assert!(PackedQ8_0::from_q8_0_blocks(&[0; 10], 16, 256).is_err());
    }
}
