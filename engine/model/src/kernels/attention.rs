//! Attention of one new token over a sequence's cached keys and values, f32 on the CPU: what a
//! decoding step does per sequence and layer. Through Candle's tensor ops this was about twenty
//! small operations (each allocating its output, two `gemm` calls among them), about 3.5 ms a
//! token for the 100M benchmark model: as much as its matrix products, and paid again for every
//! sequence `serve` decodes together. Here it is one pass over the keys and one over the values
//! per KV head (for all the query heads that share it), the KV heads of all sequences spread over
//! the threads.

use rayon::prelude::*;

/// Where one sequence's keys (or values) lie: `data[offset + head * head_stride + j * d ..][..d]`
/// is key `j` of KV head `head` (the layout of Candle's growing KV cache, narrowed).
#[derive(Clone, Copy, Debug)]
pub struct CacheView<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub head_stride: usize,
}

impl CacheView<'_> {
    #[inline]
    fn row(&self, head: usize, j: usize, d: usize) -> &[f32] {
        let at = self.offset + head * self.head_stride + j * d;
        &self.data[at..at + d]
    }
}

/// One sequence's new token.
pub struct TokenAttention<'a> {
    /// Rotated queries, `heads * d`.
    pub q: &'a [f32],
    pub keys: CacheView<'a>,
    pub values: CacheView<'a>,
    /// Keys `first..last` are attended (causal and, on sliding layers, within the window).
    pub first: usize,
    pub last: usize,
}

/// The shapes and scalings shared by every sequence of a step.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub d: usize,
    /// Applied to q · k before the cap.
    pub scale: f32,
    /// Gemma 2's attention soft-cap, `cap * tanh(s / cap)`, when it runs.
    pub softcap: Option<f32>,
}

/// For each sequence, softmax(q · Kᵀ · scale, capped) · V per head, written to `out`
/// (`sequences.len() * heads * d`, sequence-major, heads in order).
pub fn decode_attention(sequences: &[TokenAttention], heads: Heads, out: &mut [f32]) {
    let Heads {
        heads: h,
        kv_heads,
        d,
        ..
    } = heads;
    assert!(out.len() >= sequences.len() * h * d && kv_heads > 0 && h % kv_heads == 0);
    let groups = h / kv_heads;
    // One task per sequence and KV head: the query heads sharing that key head are consecutive,
    // so their outputs are one run of `groups * d`, and each key and value is read once for all.
    out[..sequences.len() * h * d]
        .par_chunks_mut(groups * d)
        .enumerate()
        .for_each(|(unit, out)| {
            let (s, kv) = (unit / kv_heads, unit % kv_heads);
            one_group(&sequences[s], kv, groups, heads, out);
        });
}

fn one_group(t: &TokenAttention, kv: usize, groups: usize, heads: Heads, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::matmul::available() {
        // SAFETY: AVX-512F was detected.
        return unsafe { one_group_avx512(t, kv, groups, heads, out) };
    }
    one_group_body(t, kv, groups, heads, out)
}

/// The same operations in the same order, compiled for AVX-512 (the crate's baseline is SSE2).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn one_group_avx512(
    t: &TokenAttention,
    kv: usize,
    groups: usize,
    heads: Heads,
    out: &mut [f32],
) {
    one_group_body(t, kv, groups, heads, out)
}

#[inline(always)]
fn one_group_body(t: &TokenAttention, kv: usize, groups: usize, heads: Heads, out: &mut [f32]) {
    let d = heads.d;
    let len = t.last - t.first;
    let first_head = kv * groups;
    // scores[g * len + i]: query head first_head + g against key first + i.
    let mut scores = vec![0f32; groups * len];
    for i in 0..len {
        let key = t.keys.row(kv, t.first + i, d);
        for g in 0..groups {
            let q = &t.q[(first_head + g) * d..(first_head + g + 1) * d];
            scores[g * len + i] = dot(q, key) * heads.scale;
        }
    }
    if let Some(cap) = heads.softcap {
        // Eigen's rational tanh, as the prefill's cap (`fast_gelu::soft_cap`), in a pass of its
        // own so that it is vectorised (the C library's scalar tanhf was 6 % of a batch's step).
        for s in &mut scores {
            *s = cap * crate::fast_gelu::fast_tanh(*s / cap);
        }
    }
    let mut sums = vec![0f32; groups];
    for (g, sum) in sums.iter_mut().enumerate() {
        let row = &mut scores[g * len..(g + 1) * len];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for s in row.iter_mut() {
            *s = (*s - max).exp();
            *sum += *s;
        }
    }
    out.iter_mut().for_each(|o| *o = 0.0);
    for i in 0..len {
        let value = t.values.row(kv, t.first + i, d);
        for (g, o) in out.chunks_exact_mut(d).enumerate() {
            let w = scores[g * len + i] / sums[g];
            for (o, v) in o.iter_mut().zip(value) {
                *o += w * v;
            }
        }
    }
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight lanes, so the compiler vectorises it.
    let mut acc = [0f32; 8];
    let (ac, at) = a.split_at(a.len() / 8 * 8);
    let (bc, bt) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(8).zip(bc.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in at.iter().zip(bt) {
        s += x * y;
    }
    s
}

/// Rotate-half rotary embedding (as Gemma, and Candle's `rope`) of each `d`-wide head in `x`,
/// with `cos` and `sin` (d / 2 each) of the token's position.
pub fn rope(x: &mut [f32], d: usize, cos: &[f32], sin: &[f32]) {
    let half = d / 2;
    for head in x.chunks_exact_mut(d) {
        let (x1, x2) = head.split_at_mut(half);
        for i in 0..half {
            let (a, b) = (x1[i], x2[i]);
            x1[i] = a * cos[i] - b * sin[i];
            x2[i] = a * sin[i] + b * cos[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::values;

    /// Against a plain f64 softmax attention, with grouped heads, a window and the cap.
    #[test]
    fn matches_a_plain_attention_on_ragged_sizes() {
        for (heads, kv_heads, d, cap, first, last, stride_keys) in [
            (4, 2, 12, Some(50.0), 0, 1, 3),
            (8, 4, 96, None, 3, 40, 64),
            (8, 1, 33, Some(5.0), 10, 17, 20),
        ] {
            let q = values(heads * d, 1);
            let k = values(kv_heads * stride_keys * d + 7, 2);
            let v = values(kv_heads * stride_keys * d + 7, 3);
            let view = |data| CacheView {
                data,
                offset: 7,
                head_stride: stride_keys * d,
            };
            let shape = Heads {
                heads,
                kv_heads,
                d,
                scale: 0.3,
                softcap: cap,
            };
            let t = TokenAttention {
                q: &q,
                keys: view(&k),
                values: view(&v),
                first,
                last,
            };
            let mut out = vec![f32::NAN; heads * d];
            decode_attention(&[t], shape, &mut out);
            let groups = heads / kv_heads;
            for h in 0..heads {
                let g = h / groups;
                let at = |data: &[f32], j: usize, i: usize| {
                    data[7 + g * stride_keys * d + j * d + i] as f64
                };
                let scores: Vec<f64> = (first..last)
                    .map(|j| {
                        let s: f64 = (0..d).map(|i| q[h * d + i] as f64 * at(&k, j, i)).sum();
                        let s = s * 0.3;
                        cap.map_or(s, |c: f32| c as f64 * (s / c as f64).tanh())
                    })
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for i in 0..d {
                    let want: f64 = (first..last)
                        .zip(&e)
                        .map(|(j, p)| p / sum * at(&v, j, i))
                        .sum();
                    let got = out[h * d + i] as f64;
                    assert!((got - want).abs() < 1e-5, "head {h}, {i}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn rope_rotates_each_half_pair() {
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        let (c, s) = (0.6f32, 0.8f32);
        rope(&mut x, 4, &[c, 1.0], &[s, 0.0]);
        assert_eq!(x, vec![1.0 * c - 3.0 * s, 2.0, 1.0 * s + 3.0 * c, 4.0]);
    }
}
