//! A small seeded PRNG (SplitMix64). Phantoms must be reproducible from their seed on every
//! platform and with every dependency version, so the generator is ours.

pub struct Rng {
    state: u64,
}

/// SplitMix64's output function: a strong 64-bit mix.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// The stream named `stream` of `seed`. Each concern (anatomy, lesions, noise) draws from its
    /// own stream, so turning lesions on or changing the noise leaves the anatomy as it was.
    pub fn stream(seed: u64, stream: &str) -> Self {
        // FNV-1a of the name, then mixed with the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in stream.as_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng {
            state: mix(seed ^ mix(h)),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// `v` moved by up to `amp` either way.
    pub fn jitter(&mut self, v: f64, amp: f64) -> f64 {
        v + self.range(-amp, amp)
    }

    /// `v` scaled by up to `frac` either way (0.15: +-15 %).
    pub fn vary(&mut self, v: f64, frac: f64) -> f64 {
        v * (1.0 + self.range(-frac, frac))
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform integer in [lo, hi].
    pub fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit(); // (0, 1]: ln stays finite
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// 65,536 standard normal draws: per-voxel noise is then one table lookup per 16 random bits,
/// which keeps a debug build fast.
pub struct NormalTable(Vec<f32>);

impl NormalTable {
    pub fn new() -> Self {
        let mut r = Rng::stream(0, "normal-table");
        NormalTable((0..1 << 16).map(|_| r.normal() as f32).collect())
    }

    /// Four normal samples from one 64-bit draw.
    #[inline]
    pub fn four(&self, bits: u64) -> [f32; 4] {
        let t = &self.0;
        [
            t[(bits & 0xffff) as usize],
            t[((bits >> 16) & 0xffff) as usize],
            t[((bits >> 32) & 0xffff) as usize],
            t[(bits >> 48) as usize],
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::stream(7, "x").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::stream(7, "x").next_u64(),
            Rng::stream(7, "y").next_u64()
        );
        assert_ne!(
            Rng::stream(7, "x").next_u64(),
            Rng::stream(8, "x").next_u64()
        );
    }

    #[test]
    fn normal_table_is_standard() {
        let t = NormalTable::new();
        let n = t.0.len() as f64;
        let mean = t.0.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var =
            t.0.iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / n;
        assert!(mean.abs() < 0.02, "{mean}");
        assert!((var - 1.0).abs() < 0.03, "{var}");
    }
}
