//! The few hand-written CPU kernels: `x · Wᵀ` with f32 activations and f32 or bf16 weights.
//!
//! Candle's CPU matmul (the `gemm` crate) runs its AVX2 kernels on stable Rust and, for bf16,
//! converts and copies the weight on every call: decoding a 3B model in bf16 ran at 5 % of this
//! machine's memory bandwidth. Two kernels replace it where it matters:
//! - [`matmul`]: the prefill's large products on CPUs with AVX-512F (W packed into panels,
//!   converted from bf16 while packing);
//! - [`amx`]: the same bf16 products on Intel's AMX tiles where the CPU has them;
//! - [`gemv`]: decoding's few rows, streaming every weight once, on any x86-64 (AVX-512F, AVX2 +
//!   FMA or baseline, picked at run time) and elsewhere in portable code;
//! - [`panels`]: f32 weights held as [`matmul`]'s panels (bf16 as its panels of pairs, with
//!   AVX512-BF16), so that the prefill skips packing and decoding a batch streams each weight once
//!   (AVX-512F; the layers use it wherever the CPU has it);
//! - [`attention`]: a decoding step's attention over each sequence's cache (portable code);
//! - [`q4k`]: q4_k matrices on CPUs with AVX-512 VNNI (Candle's own q4_k product read 1.33x the
//!   bytes and reached 0.41-0.44 of the read limit; elsewhere Candle's kernels stay).
//!
//! Both are checked against a plain f64 product on ragged sizes (tests below and in each file).

pub mod amx;
pub mod attention;
pub mod gemv;
pub mod gemv_pairs;
pub mod matmul;
pub mod panels;
pub mod q4k;
pub mod q8_0;
pub mod tiled;

/// [`read_bandwidth_gb_per_s`] over 256 MiB, measured once per process (about 20 ms): what the
/// speed estimates shown after each model load are made from.
pub fn machine_read_bandwidth_gb_per_s() -> f64 {
    static MEASURED: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *MEASURED.get_or_init(|| read_bandwidth_gb_per_s(256, 2))
}

/// This machine's memory read bandwidth in GB/s on all threads: the best of `runs` sums over a
/// buffer of `mib` MiB (wide independent sums per chunk keep the loads, not the adds, the limit).
/// What bounds decoding at batch 1, so the speed estimate the panel shows comes from it.
pub fn read_bandwidth_gb_per_s(mib: usize, runs: usize) -> f64 {
    use rayon::prelude::*;
    let data = vec![1u64; mib * 1024 * 1024 / 8];
    let mut best = 0f64;
    for _ in 0..runs.max(1) {
        let t = std::time::Instant::now();
        let sum: u64 = data
            .par_chunks(1 << 16)
            .map(|c| c.iter().fold(0u64, |a, &v| a.wrapping_add(v)))
            .sum();
        let s = t.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        best = best.max((data.len() * 8) as f64 / s / 1e9);
    }
    best
}

/// A weight element the kernels read: f32, or bf16 widened to f32 (exact: bf16 is the top half of
/// an f32).
pub trait WeightElem: Copy + Send + Sync + 'static {
    const ZERO: Self;
    fn to_f32(self) -> f32;

    /// Sixteen consecutive elements at `p`, as f32.
    ///
    /// # Safety
    /// `p` must be valid for sixteen reads and the CPU must have AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512;
}

impl WeightElem for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512 {
        std::arch::x86_64::_mm512_loadu_ps(p)
    }
}

impl WeightElem for half::bf16 {
    const ZERO: Self = half::bf16::ZERO;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from_bits(u32::from(self.to_bits()) << 16)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load16(p: *const Self) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        // bf16 is an f32's top half: widen to 32 bits and shift into place.
        let halves = _mm256_loadu_si256(p as *const __m256i);
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(halves)))
    }
}

#[cfg(test)]
pub(crate) mod reference {
    //! A plain f64 product and reproducible values for the kernels' tests.

    use super::WeightElem;

    pub fn product<W: WeightElem>(a: &[f32], m: usize, k: usize, w: &[W], n: usize) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for p in 0..k {
                    s += f64::from(a[i * k + p]) * f64::from(w[j * k + p].to_f32());
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    pub fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    pub fn bf16s(values: &[f32]) -> Vec<half::bf16> {
        values.iter().map(|&v| half::bf16::from_f32(v)).collect()
    }

    pub fn assert_close(got: &[f32], expected: &[f32], k: usize, what: &str) {
        assert_eq!(got.len(), expected.len(), "{what}: length");
        for (i, (x, y)) in got.iter().zip(expected).enumerate() {
            assert!(
                (x - y).abs() < 1e-4 * (k as f32).sqrt().max(1.0),
                "{what} at {i}: {x} vs {y}"
            );
        }
    }
}
